"""What every command module of the CLI shares: the command type, tables and times.

Each command module lists its commands in a ``COMMANDS`` tuple; :mod:`._main` adds them to
the parser in a fixed order. There is no registry to mutate, so what a command does never
depends on which modules happened to be imported first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .._store import LocalStore

__all__ = (
    "Command",
    "Handler",
    "cell",
    "columns_argument",
    "no_arguments",
    "select_columns",
    "table",
    "when",
)

#: Returns what ``--json`` prints, and prints its own table otherwise.
Handler = Callable[[argparse.Namespace, "LocalStore"], Any]


class Command(NamedTuple):
    """One ``runstream`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handle: Handler
    #: Writes to the store (creating it if missing); the others open it read-only and
    #: fail when it does not exist.
    writes: bool = False


def no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def columns_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--columns",
        metavar="COLS",
        help="comma-separated columns to show, in order (a metric's name, a parameter, run, "
        "status, started; shell wildcards such as 'val_*' match several). Default: all, "
        "cut to the terminal's width",
    )


def select_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    columns: str | None,
    *,
    keep: int = 1,
    aliases: dict[str, str] | None = None,
) -> tuple[list[str], list[list[object]], str]:
    """The columns ``--columns`` names (an error names what exists), or, without it, as
    many as fit the terminal when printing to one. Returns headers, rows and a note."""
    aliases = aliases or {}
    if columns:
        chosen: list[int] = []
        for wanted in (c.strip() for c in columns.split(",") if c.strip()):
            found = [
                i
                for i, h in enumerate(headers)
                if fnmatch.fnmatchcase(h, wanted) or fnmatch.fnmatchcase(aliases.get(h, h), wanted)
            ]
            if not found:
                from .._core._names import did_you_mean

                names = [aliases.get(h, h) for h in headers]
                raise SystemExit(f"--columns: no column {wanted!r}" + did_you_mean(wanted, names))
            chosen.extend(i for i in found if i not in chosen)
        return _pick(headers, rows, chosen), _pick_rows(rows, chosen), ""
    if not sys.stdout.isatty():
        return list(headers), [list(r) for r in rows], ""
    width = shutil.get_terminal_size().columns
    widths = [max([len(h), *(len(cell(r[i])) for r in rows)]) for i, h in enumerate(headers)]
    used, chosen = 0, []
    for i, w in enumerate(widths):
        if i >= keep and used + w > width:
            break
        chosen.append(i)
        used += w + 2
    if len(chosen) == len(headers):
        return list(headers), [list(r) for r in rows], ""
    left = len(headers) - len(chosen)
    note = f"({left} more columns do not fit: choose with --columns, or see all with --json)"
    return _pick(headers, rows, chosen), _pick_rows(rows, chosen), note


def _pick(headers: Sequence[str], rows: Sequence[Sequence[object]], chosen: list[int]) -> list[str]:
    del rows
    return [headers[i] for i in chosen]


def _pick_rows(rows: Sequence[Sequence[object]], chosen: list[int]) -> list[list[object]]:
    return [[row[i] for i in chosen] for row in rows]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned columns; numbers right-aligned and shortened to 6 significant digits."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"  # inf and -inf as such
    return str(value)


def when(epoch: float | None) -> str:
    """A local wall-clock time for people, or ``-``."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")

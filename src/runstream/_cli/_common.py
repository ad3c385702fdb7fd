"""What every command module of the CLI shares: the command type, tables and times.

Each command module lists its commands in a ``COMMANDS`` tuple; :mod:`._main` adds them to
the parser in a fixed order. There is no registry to mutate, so what a command does never
depends on which modules happened to be imported first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .._store import LocalStore

__all__ = ("Command", "Handler", "cell", "no_arguments", "table", "when")

#: Returns what ``--json`` prints, and prints its own table otherwise.
Handler = Callable[[argparse.Namespace, "LocalStore"], Any]


class Command(NamedTuple):
    """One ``runstream`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handle: Handler


def no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


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
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def when(epoch: float | None) -> str:
    """A local wall-clock time for people, or ``-``."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")

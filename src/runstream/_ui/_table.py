"""The dashboard's run table on the server: filter, sort and page thousands of runs.

The table reads light rows (:meth:`LocalStore.run_overview`: name, status, times and
parameters), and a metric's summaries only when the filter or the sort names that metric,
so a page of an experiment of 10,000 runs builds whole records for that page alone.

The filter is the search box's text: terms separated by spaces, all of which must hold. A
term ``name<op>value`` (``op`` one of ``= != < > <= >= ~``) compares a column: ``run``,
``status``, a parameter, or a metric (its chosen statistic); ``~`` is "contains". Numbers
compare as numbers when both sides are numbers, anything else as lowercase text. Any other
word must appear in the run's name, status or a parameter value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._run._analytics import STATISTICS

if TYPE_CHECKING:
    from .._core._records import MetricSummary, ParameterValue
    from .._store._local import RunOverview

__all__ = (
    "TableQuery",
    "metrics_named",
    "numeric",
    "parameter_names",
    "run_filter",
    "sort_key",
)

_TERM = re.compile(r"^([^<>=!~]+)(<=|>=|!=|=|<|>|~)(.*)$")
#: Summaries of one metric by run id, read on demand.
Summaries = Callable[[str], dict[int, "MetricSummary"]]


@dataclass(frozen=True)
class TableQuery:
    """What a page of the table asks for (``sort``: ``run``, ``status``, ``started``,
    ``created``, ``param:NAME`` or ``metric:NAME``)."""

    filter: str = ""
    sort: str = "created"
    descending: bool = False
    stat: str = "Last"
    offset: int = 0
    limit: int = 200
    columns: dict[str, list[str]] = field(default_factory=dict)


def metrics_named(text: str, sort: str, metrics: Sequence[str]) -> set[str]:
    """The metrics the filter and the sort need summaries of."""
    needed = set()
    for term in text.split():
        m = _TERM.match(term)
        if m and m.group(1) in metrics:
            needed.add(m.group(1))
    if sort.startswith("metric:"):
        needed.add(sort.removeprefix("metric:"))
    return needed


def _field(stat: str) -> str:
    for name, attr in STATISTICS.items():
        if stat.lower() in (name.lower(), attr):
            return attr
    raise ValueError(f"stat must be one of {', '.join(STATISTICS)}, got {stat!r}")


def _text(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
    return str(value).lower()


def _compare(value: object, op: str, raw: str) -> bool:
    if op == "~":
        return raw.lower() in _text(value)
    number: float | None
    try:
        number = float(raw) if raw.strip() else None
    except ValueError:
        number = None
    a: Any
    b: Any
    if isinstance(value, int | float) and not isinstance(value, bool) and number is not None:
        a, b = value, number
    else:
        a, b = _text(value), raw.lower()
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, float) and math.isnan(a):
        return False
    return bool({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])


def run_filter(
    text: str, stat: str, summaries: dict[str, dict[int, MetricSummary]]
) -> Callable[[RunOverview], bool]:
    """A predicate for the rows the filter text keeps (see the module doc)."""
    attr = _field(stat)
    tests: list[Callable[[RunOverview], bool]] = []
    for term in text.split():
        m = _TERM.match(term)
        if m is None:
            needle = term.lower()

            def word(r: RunOverview, needle: str = needle) -> bool:
                values = [r.key.run_name, r.status or "", *r.parameters.values()]
                return any(needle in _text(v) for v in values)

            tests.append(word)
            continue
        key, op, raw = m.groups()

        def column(r: RunOverview, key: str = key, op: str = op, raw: str = raw) -> bool:
            value: object
            if key == "status":
                value = r.status or ""
            elif key == "run":
                value = r.key.run_name
            elif key in r.parameters:
                value = r.parameters[key]
            elif key in summaries and r.key.run_id in summaries[key]:
                value = getattr(summaries[key][r.key.run_id], attr)
            else:
                return False
            return _compare(value, op, raw)

        tests.append(column)
    return lambda r: all(t(r) for t in tests)


def sort_key(
    sort: str, stat: str, summaries: dict[str, dict[int, MetricSummary]]
) -> Callable[[RunOverview], Any]:
    """A key that orders rows by the column, with missing values and NaN set apart (the
    caller puts them last, whichever the direction)."""
    attr = _field(stat)

    def value(r: RunOverview) -> object:
        if sort == "run":
            return r.key.run_name
        if sort == "status":
            return r.status
        if sort == "started":
            return r.start_time
        if sort.startswith("param:"):
            return r.parameters.get(sort.removeprefix("param:"))
        if sort.startswith("metric:"):
            found = summaries.get(sort.removeprefix("metric:"), {}).get(r.key.run_id)
            return None if found is None else getattr(found, attr)
        return r.created

    def key(r: RunOverview) -> tuple[int, int, Any]:
        v = value(r)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return (1, 0, 0)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (0, 0, v)
        return (0, 1, str(v).lower())

    return key


def parameter_names(rows: Sequence[RunOverview]) -> list[str]:
    return sorted({p for r in rows for p in r.parameters})


def numeric(value: ParameterValue | None) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

"""From stored step statistics to BatchPutMetrics calls of at most 10 data.

A round turns what each series has not sent yet into data: one datum per step (the
step's mean, at its last timestamp), so a run that logs many points per step costs one
datum per step. When the round holds more data than the API budget sends in ``horizon``
seconds, consecutive steps are grouped further (the group's mean at its last step): the
service gets a coarser curve, the local store keeps every step. Data are packed 10 to a
call, series by series in step order, so each acknowledged call moves every cursor it
touches forward (see :mod:`._journal`).

Data the service cannot take are kept out of the calls and recorded as rejected:
non-finite values (not JSON numbers) and timestamps outside the service's window (two
weeks back, two hours ahead), which would fail every time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..._core import _aggregate
from ..._core._aggregate import StepStats
from ..._core._names import TIMESTAMP_WINDOW
from ._journal import CallResult, Cursor, Item

__all__ = (
    "BATCH_SIZE",
    "Call",
    "group_steps",
    "plan",
    "rejected_call",
    "request_data",
    "result_of",
)

BATCH_SIZE = 10
_RETRYABLE = frozenset({"INTERNAL_ERROR", "CONFLICT_ERROR"})
# Leave a margin: a datum planned now is sent a little later.
_TOO_OLD_MARGIN = 600.0


@dataclass(slots=True)
class Call:
    """One BatchPutMetrics call: what it sends, what it rejects locally, how far it gets."""

    items: list[Item] = field(default_factory=list)
    local_rejects: list[tuple[Item, str]] = field(default_factory=list)
    advance: dict[tuple[int, str], tuple[int, int | None]] = field(default_factory=dict)


def group_steps(stats: StepStats, stride: int) -> StepStats:
    """Merge every ``stride`` consecutive steps into one row (at the group's last step).

    Steps logged without a step (negative, bucketed by second) never share a group with
    real steps: they are sent without ``Step``.
    """
    if stride <= 1 or len(stats) <= 1:
        return stats
    parts = []
    for mask in (stats.step < 0, stats.step >= 0):
        part = stats.take(np.flatnonzero(mask))
        if len(part) == 0:
            continue
        starts = np.arange(0, len(part), stride)
        ends = np.minimum(starts + stride, len(part)) - 1
        parts.append(
            StepStats(
                step=part.step[ends],
                count=np.add.reduceat(part.count, starts),
                sum=np.add.reduceat(part.sum, starts),
                min=np.minimum.reduceat(part.min, starts),
                max=np.maximum.reduceat(part.max, starts),
                m2=np.zeros(len(starts)),  # not sent
                first=part.first[starts],
                last=part.last[ends],
                last_ts=np.maximum.reduceat(part.last_ts, starts),
            )
        )
    return _aggregate.concatenate(parts)


def _items(cursor: Cursor, stats: StepStats) -> list[Item]:
    with np.errstate(all="ignore"):
        means = stats.sum / stats.count
    return [
        Item(cursor.metric, step, value, ts, points, series=cursor.key)
        for step, value, ts, points in zip(
            stats.step.tolist(),
            means.tolist(),
            stats.last_ts.tolist(),
            np.asarray(stats.count).tolist(),
            strict=True,
        )
    ]


def _local_reject(item: Item, now: float) -> str | None:
    if not math.isfinite(item.value):
        return "NON_FINITE_VALUE"
    before, after = TIMESTAMP_WINDOW
    if item.ts < now - before + _TOO_OLD_MARGIN or item.ts > now + after:
        return "TIMESTAMP_OUT_OF_WINDOW"
    return None


def plan(
    series: list[tuple[Cursor, StepStats]],
    retries: list[Item],
    budget: int,
    now: float | None = None,
) -> list[Call]:
    """Pack a round into calls: retries first, then each series in step order.

    ``budget`` is how many data the round may send; beyond it, steps are grouped.
    """
    now = time.time() if now is None else now
    total = sum(len(stats) for _, stats in series)
    stride = max(1, math.ceil(total / max(1, budget - len(retries))))
    calls: list[Call] = [Call()]

    def add(item: Item) -> None:
        reason = _local_reject(item, now)
        if reason is not None:
            calls[-1].local_rejects.append((item, reason))
            return
        if len(calls[-1].items) == BATCH_SIZE:
            calls.append(Call())
        calls[-1].items.append(item)

    for item in retries:
        add(item)
    for cursor, stats in series:
        items = _items(cursor, group_steps(stats, stride))
        for item in items:
            add(item)
            calls[-1].advance[cursor.key] = (cursor.round_chunk, item.step)
        # The series' round is complete with its last datum (or at once, if it has none).
        calls[-1].advance[cursor.key] = (cursor.round_chunk, None)
    return [c for c in calls if c.items or c.local_rejects or c.advance]


def request_data(items: list[Item]) -> list[dict[str, Any]]:
    """The ``MetricData`` of a call; a datum logged without a step goes without ``Step``."""
    data = []
    for item in items:
        datum: dict[str, Any] = {
            "MetricName": item.metric,
            "Timestamp": datetime.fromtimestamp(item.ts, tz=UTC),
            "Value": item.value,
        }
        if item.step >= 0:
            datum["Step"] = item.step
        data.append(datum)
    return data


def result_of(call: Call, errors: list[dict[str, Any]] | None) -> CallResult:
    """Sort a call's data by the per-item errors of its response.

    INTERNAL_ERROR and CONFLICT_ERROR items are retried (alone); any other code
    (VALIDATION_ERROR, METRIC_LIMIT_EXCEEDED) is reported as rejected, never resent.
    """
    codes = {int(e.get("MetricIndex", -1)): str(e.get("Code")) for e in errors or ()}
    result = CallResult(advance=dict(call.advance), rejected=list(call.local_rejects))
    result.api_calls = 1 if call.items else 0
    for index, item in enumerate(call.items):
        code = codes.get(index)
        if code is None:
            result.sent.append(item)
        elif code in _RETRYABLE:
            result.retry.append((item, code))
        else:
            result.rejected.append((item, code))
    return result


def rejected_call(call: Call, code: str) -> CallResult:
    """The whole call was refused as invalid: every datum is reported, none resent."""
    result = CallResult(advance=dict(call.advance), rejected=list(call.local_rejects))
    result.api_calls = 1
    result.rejected.extend((item, code) for item in call.items)
    return result

"""Per-step statistics: pure numpy reductions, no I/O.

A metric's points are kept as *step statistics*: one row per step with count, sum, min,
max, M2 (the sum of squared deviations, for the variance), first, last and the last
timestamp. Rows for the same step merge exactly, whether they come from two flushes of one
process or from two workers (Chan et al.'s parallel variance), so the store never needs the
raw points and a reader can merge whatever chunks it finds.

:class:`StepStats` is a struct of arrays. In the common case of one point per step
("singletons") count, sum, min, max, first and last are all the logged values: the fields
then share one array and M2 is a broadcast zero, so draining a buffer touches 24 bytes per
point, not 72. Arrays are never mutated after construction, which is what makes sharing safe.

Steps are ``int64``. A point logged without a step is a point in time, never merged with
another: it is stored at the negative key ``-(microsecond + 1)``, its epoch time in
microseconds, made unique among the points of one drain (several calls drained at once get
consecutive microseconds, in the order they were logged). One sort key serves both kinds;
readers turn the keys back into times (:func:`key_time`) and put them in time order
(schema version 3; version 2 bucketed such points by whole second, merging them).
NaN and infinities propagate on purpose: a diverged loss must stay visible.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = (
    "FIELDS",
    "StepStats",
    "combine",
    "concatenate",
    "decode",
    "empty",
    "encode",
    "from_points",
    "key_time",
    "summarize",
    "time_keys",
    "upgrade_v2_keys",
)

FIELDS = ("step", "count", "sum", "min", "max", "m2", "first", "last", "last_ts")
_VALUE_FIELDS = ("sum", "min", "max", "first", "last")
_FORMAT_STATS = b"S"
_FORMAT_POINTS = b"P"
_HEADER = struct.Struct("<cq")  # format, rows


class StepStats:
    """Step statistics of one metric, one row per step, sorted by step (struct of arrays)."""

    __slots__ = FIELDS

    step: NDArray[np.int64]
    count: NDArray[np.int64]
    sum: NDArray[np.float64]
    min: NDArray[np.float64]
    max: NDArray[np.float64]
    m2: NDArray[np.float64]
    first: NDArray[np.float64]
    last: NDArray[np.float64]
    last_ts: NDArray[np.float64]

    def __init__(self, **fields: NDArray[np.generic]) -> None:
        for name in FIELDS:
            setattr(self, name, fields[name])

    @classmethod
    def singletons(
        cls, steps: NDArray[np.int64], values: NDArray[np.float64], ts: NDArray[np.float64]
    ) -> StepStats:
        """One point per step: the value fields share ``values``, nothing is copied."""
        n = len(steps)
        return cls(
            step=steps,
            count=np.broadcast_to(np.int64(1), (n,)),
            m2=np.broadcast_to(np.float64(0.0), (n,)),
            last_ts=ts,
            **dict.fromkeys(_VALUE_FIELDS, values),
        )

    @property
    def is_singletons(self) -> bool:
        """True when every step holds exactly one point (shared value arrays)."""
        return self.sum is self.min is self.last

    def __len__(self) -> int:
        return len(self.step)

    def __getitem__(self, field: str) -> NDArray[np.generic]:
        if field not in FIELDS:
            raise KeyError(field)
        return getattr(self, field)  # type: ignore[no-any-return]

    def take(self, index: NDArray[np.intp] | slice) -> StepStats:
        if self.is_singletons:
            return StepStats.singletons(self.step[index], self.sum[index], self.last_ts[index])
        return StepStats(**{name: getattr(self, name)[index] for name in FIELDS})

    @property
    def points(self) -> int:
        return len(self) if self.is_singletons else int(self.count.sum())

    def __repr__(self) -> str:
        return f"StepStats(steps={len(self)}, points={self.points})"


def empty() -> StepStats:
    return StepStats.singletons(
        np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64)
    )


def time_keys(steps: NDArray[np.int64], timestamps: NDArray[np.float64], after: int = -1) -> int:
    """Replace ``-1`` (no step) in place by each point's time key, ``-(microsecond + 1)``.

    The points without a step come in logging order with non-decreasing timestamps (one
    drain's stamp, or explicit timestamps sorted); each gets its own key, the next free
    microsecond after ``after`` (the last one a previous drain of the metric used), so no
    two calls merge. Returns the last microsecond used (``after`` if none).
    """
    missing = np.flatnonzero(steps < 0)
    if not len(missing):
        return after
    micros = np.floor(timestamps[missing] * 1e6).astype(np.int64)
    micros[0] = max(int(micros[0]), after + 1)
    rank = np.arange(len(missing), dtype=np.int64)
    micros = np.maximum.accumulate(micros - rank) + rank  # strictly increasing
    steps[missing] = -(micros + 1)
    return int(micros[-1])


def key_time(keys: NDArray[np.int64]) -> NDArray[np.float64]:
    """The epoch seconds a step-less point's key stands for (see :func:`time_keys`)."""
    return (-keys - 1).astype(np.float64) / 1e6


def upgrade_v2_keys(stats: StepStats) -> StepStats:
    """Version-2 keys ``-(second + 1)`` as version-3 keys ``-(microsecond + 1)``."""
    steps = np.array(stats.step, dtype=np.int64)
    old = steps < 0
    steps[old] = -((-steps[old] - 1) * 1_000_000 + 1)
    if stats.is_singletons:
        return StepStats.singletons(steps, stats.sum, stats.last_ts)
    fields = {name: getattr(stats, name) for name in FIELDS}
    fields["step"] = steps  # the mapping keeps the order: still sorted
    return StepStats(**fields)


def from_points(
    steps: NDArray[np.int64], values: NDArray[np.float64], timestamps: NDArray[np.float64]
) -> StepStats:
    """Group raw points (in logging order) by step into step statistics."""
    return combine([StepStats.singletons(steps, values, timestamps)])


def combine(parts: list[StepStats]) -> StepStats:
    """Merge step statistics into one row per step, sorted by step.

    ``parts`` are in chronological order; within a step, rows are ordered by their last
    timestamp (ties keep the parts' order), which decides ``first`` and ``last``.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    rows = parts[0] if len(parts) == 1 else concatenate(parts)
    steps = rows.step
    if len(rows) > 1 and not _in_order(steps, rows.last_ts):
        rows = rows.take(np.lexsort((rows.last_ts, steps)))
        steps = rows.step
    if len(rows) < 2 or bool(np.all(steps[1:] != steps[:-1])):
        return rows
    return _reduce(rows, _group_starts(steps))


def concatenate(parts: list[StepStats]) -> StepStats:
    """Rows of several parts, in order, without merging equal steps."""
    if all(p.is_singletons for p in parts):
        return StepStats.singletons(
            np.concatenate([p.step for p in parts]),
            np.concatenate([p.sum for p in parts]),
            np.concatenate([p.last_ts for p in parts]),
        )
    return StepStats(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS})


def _in_order(steps: NDArray[np.int64], last_ts: NDArray[np.float64]) -> bool:
    """Already sorted by (step, last_ts)? Steps alone are not enough: a chunk committed
    late (a retried write, another worker) may hold older points of the same step."""
    later_step = steps[1:] > steps[:-1]
    same_step_later = (steps[1:] == steps[:-1]) & (last_ts[1:] >= last_ts[:-1])
    return bool(np.all(later_step | same_step_later))


def _group_starts(sorted_steps: NDArray[np.int64]) -> NDArray[np.intp]:
    change = np.flatnonzero(sorted_steps[1:] != sorted_steps[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.intp)


def _reduce(rows: StepStats, starts: NDArray[np.intp]) -> StepStats:
    """Reduce runs of equal steps (``starts`` marks each run) with exact merge rules."""
    sizes = np.diff(np.append(starts, len(rows)))
    ends = starts + sizes - 1
    count = np.add.reduceat(rows.count, starts)
    # Diverging values (1e300, inf, NaN) are data, not errors: they overflow to inf/NaN
    # here by design, and a warning (raised in the flusher's thread, or an error under
    # -W error) must not fail the flush.
    with np.errstate(all="ignore"):
        total = np.add.reduceat(rows.sum, starts)
        mean = total / count
        # Chan's parallel variance: M2 = sum(M2_i) + sum(n_i * (mean_i - mean)^2).
        deviation = rows.sum / rows.count - np.repeat(mean, sizes)
        m2 = np.add.reduceat(rows.m2 + rows.count * deviation * deviation, starts)
    return StepStats(
        step=rows.step[starts],
        count=count,
        sum=total,
        min=np.minimum.reduceat(rows.min, starts),
        max=np.maximum.reduceat(rows.max, starts),
        m2=m2,
        first=rows.first[starts],
        last=rows.last[ends],
        last_ts=np.maximum.reduceat(rows.last_ts, starts),
    )


def summarize(stats: StepStats) -> StepStats:
    """Collapse step statistics into one row over all steps; its ``step`` is the last step.

    ``first`` and ``last`` follow the rows' last timestamps (ties: first and last row).
    """
    if not len(stats):
        return stats
    count = stats.count.sum()
    with np.errstate(all="ignore"):  # NaN/inf/overflow propagate on purpose, silently
        total = stats.sum.sum()
        deviation = stats.sum / stats.count - total / count
        m2 = float(np.sum(stats.m2) + np.sum(stats.count * deviation * deviation))
    ts = stats.last_ts
    first_row = int(np.argmin(ts))
    last_row = len(ts) - 1 - int(np.argmax(ts[::-1]))
    return StepStats(
        step=np.array([stats.step.max()], np.int64),
        count=np.array([count], np.int64),
        sum=np.array([total]),
        min=np.array([stats.min.min()]),
        max=np.array([stats.max.max()]),
        m2=np.array([m2]),
        first=np.array([stats.first[first_row]]),
        last=np.array([stats.last[last_row]]),
        last_ts=np.array([ts[last_row]]),
    )


def encode(stats: StepStats) -> bytes:
    """Serialize for the store.

    Singletons are written as values plus steps and timestamps in their cheapest form:
    consecutive steps as just the first one, and timestamps (stamped once per drain, so
    piecewise constant) run-length encoded. That is about 8 bytes a point instead of 72,
    which is what lets the flusher write millions of points a second.
    """
    n = len(stats)
    if not stats.is_singletons:
        arrays = [np.ascontiguousarray(getattr(stats, f)) for f in FIELDS]
        return b"".join([_HEADER.pack(_FORMAT_STATS, n), *(x.data for x in arrays)])
    steps, ts = stats.step, stats.last_ts
    consecutive = n > 0 and int(steps[-1]) - int(steps[0]) == n - 1 and _strictly_increasing(steps)
    step_part = np.array([steps[0]], np.int64) if consecutive else np.ascontiguousarray(steps)
    starts = np.flatnonzero(ts[1:] != ts[:-1]) + 1 if n else np.zeros(0, np.intp)
    if 2 * (len(starts) + 1) < n:
        run_starts = np.concatenate(([0], starts)).astype(np.int64)
        ts_part = [np.array([len(run_starts)], np.int64), run_starts, ts[run_starts]]
    else:
        ts_part = [np.array([-1], np.int64), np.ascontiguousarray(ts)]
    header = _HEADER.pack(_FORMAT_POINTS, n) + struct.pack("<?", bool(consecutive))
    parts = [step_part, np.ascontiguousarray(stats.sum), *ts_part]
    return b"".join([header, *(np.ascontiguousarray(p).data for p in parts)])


def _strictly_increasing(steps: NDArray[np.int64]) -> bool:
    return bool(np.all(steps[1:] > steps[:-1]))


def decode(blob: bytes) -> StepStats:
    """Inverse of :func:`encode`. Arrays may be read-only views of ``blob``."""
    kind, n = _HEADER.unpack_from(blob)
    offset = _HEADER.size
    if kind == _FORMAT_STATS:
        arrays = {}
        for name in FIELDS:
            dtype = np.int64 if name in ("step", "count") else np.float64
            arrays[name] = np.frombuffer(blob, dtype=dtype, count=n, offset=offset)
            offset += 8 * n
        return StepStats(**arrays)
    if kind != _FORMAT_POINTS:
        raise ValueError(f"unknown step-statistics encoding {kind!r}")

    def take(dtype: type[np.generic], count: int) -> NDArray[np.generic]:
        nonlocal offset
        array = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        offset += 8 * count
        return array

    (consecutive,) = struct.unpack_from("<?", blob, offset)
    offset += 1
    if consecutive:
        first = int(take(np.int64, 1)[0])
        steps = np.arange(first, first + n, dtype=np.int64)
    else:
        steps = take(np.int64, n)
    values = take(np.float64, n)
    runs = int(take(np.int64, 1)[0])
    if runs < 0:
        ts = take(np.float64, n)
    else:
        run_starts = take(np.int64, runs)
        run_values = take(np.float64, runs)
        ts = np.repeat(run_values, np.diff(np.append(run_starts, n)))
    return StepStats.singletons(steps, values, ts)  # type: ignore[arg-type]

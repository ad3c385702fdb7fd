"""Per-step statistics: pure numpy reductions, no I/O.

A metric's points are kept as *step statistics*: one row per step with count, sum, min,
max, M2 (the sum of squared deviations, for the variance), first, last and the last
timestamp. Rows for the same step merge exactly, whether they come from two flushes of one
process or from two workers (Chan et al.'s parallel variance), so the store never needs the
raw points and a reader can merge whatever chunks it finds.

Steps are ``int64``. A point logged without a step is bucketed by wall-clock second and
stored at the negative step ``-(second + 1)``, which keeps one sort key for both kinds.
NaN and infinities propagate on purpose: a diverged loss must stay visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = (
    "STATS_DTYPE",
    "combine",
    "decode",
    "encode",
    "from_points",
    "summarize",
    "time_bucket_steps",
)

STATS_DTYPE = np.dtype(
    [
        ("step", "<i8"),
        ("count", "<i8"),
        ("sum", "<f8"),
        ("min", "<f8"),
        ("max", "<f8"),
        ("m2", "<f8"),
        ("first", "<f8"),
        ("last", "<f8"),
        ("last_ts", "<f8"),
    ]
)
# Chunks of single-point steps (the common case: one value per metric per step) are stored
# as (step, value, timestamp): a third of the bytes, and nothing is lost.
_POINTS_DTYPE = np.dtype([("step", "<i8"), ("value", "<f8"), ("ts", "<f8")])
_FORMAT_STATS = b"S"
_FORMAT_POINTS = b"P"



def time_bucket_steps(steps: NDArray[np.int64], timestamps: NDArray[np.float64]) -> None:
    """Replace ``-1`` (no step) in place by the negative wall-clock-second bucket."""
    missing = steps < 0
    if missing.any():
        steps[missing] = -(np.floor(timestamps[missing]).astype(np.int64) + 1)


def from_points(
    steps: NDArray[np.int64], values: NDArray[np.float64], timestamps: NDArray[np.float64]
) -> NDArray[np.void]:
    """Group raw points by step, in logging order, into step statistics."""
    out = np.empty(len(steps), dtype=STATS_DTYPE)
    out["step"] = steps
    out["count"] = 1
    out["sum"] = values
    out["min"] = values
    out["max"] = values
    out["m2"] = 0.0
    out["first"] = values
    out["last"] = values
    out["last_ts"] = timestamps
    return combine([out])


def combine(parts: list[NDArray[np.void]]) -> NDArray[np.void]:
    """Merge step statistics, one row per step, sorted by step.

    ``parts`` are in chronological order; within a step, rows are ordered by their last
    timestamp (ties keep the parts' order), which decides ``first`` and ``last``.
    """
    rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if len(rows) == 0:
        return rows.copy()
    steps = rows["step"]
    if len(rows) > 1 and not bool(np.all(steps[1:] >= steps[:-1])):
        rows = rows[np.lexsort((rows["last_ts"], steps))]
        steps = rows["step"]
    starts = _group_starts(steps)
    if len(starts) == len(rows):
        return rows.copy() if len(parts) == 1 else rows
    return _reduce(rows, starts)


def _group_starts(sorted_steps: NDArray[np.int64]) -> NDArray[np.intp]:
    if len(sorted_steps) == 0:
        return np.zeros(0, dtype=np.intp)
    change = np.flatnonzero(sorted_steps[1:] != sorted_steps[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.intp)


def _reduce(rows: NDArray[np.void], starts: NDArray[np.intp]) -> NDArray[np.void]:
    """Reduce runs of equal steps (``starts`` marks each run) with exact merge rules."""
    ends = np.append(starts[1:], len(rows)) - 1
    count = np.add.reduceat(rows["count"], starts)
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    # Diverging values (1e300, inf, NaN) are data, not errors: they overflow to inf/NaN
    # here by design, and a warning (an error under -W error) must not fail the flush.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = np.add.reduceat(rows["sum"], starts)
        mean = total / count
        # Chan's parallel variance: M2 = sum(M2_i) + sum(n_i * (mean_i - mean)^2).
        deviation = rows["sum"] / rows["count"] - mean[group_of]
        m2 = np.add.reduceat(rows["m2"] + rows["count"] * deviation * deviation, starts)
    out = np.empty(len(starts), dtype=STATS_DTYPE)
    out["step"] = rows["step"][starts]
    out["count"] = count
    out["sum"] = total
    out["min"] = np.minimum.reduceat(rows["min"], starts)
    out["max"] = np.maximum.reduceat(rows["max"], starts)
    out["m2"] = m2
    out["first"] = rows["first"][starts]
    out["last"] = rows["last"][ends]
    out["last_ts"] = np.maximum.reduceat(rows["last_ts"], starts)
    return out


def summarize(stats: NDArray[np.void]) -> NDArray[np.void]:
    """Collapse step statistics into one row over all steps (``step`` is the last step)."""
    if len(stats) == 0:
        return stats.copy()
    ordered = stats[np.argsort(stats["last_ts"], kind="stable")]
    flat = ordered.copy()
    flat["step"] = 0
    row = _reduce(flat, np.zeros(1, dtype=np.intp))
    row["step"] = stats["step"].max()
    return row


def encode(stats: NDArray[np.void]) -> bytes:
    """Serialize step statistics for the store, compactly when every step has one point."""
    if len(stats) and bool(np.all(stats["count"] == 1)):
        points = np.empty(len(stats), dtype=_POINTS_DTYPE)
        points["step"] = stats["step"]
        points["value"] = stats["sum"]
        points["ts"] = stats["last_ts"]
        return _FORMAT_POINTS + points.tobytes()
    return _FORMAT_STATS + np.ascontiguousarray(stats).tobytes()


def decode(blob: bytes) -> NDArray[np.void]:
    """Inverse of :func:`encode`; the result is a fresh, writable array."""
    kind, body = blob[:1], memoryview(blob)[1:]
    if kind == _FORMAT_STATS:
        return np.frombuffer(body, dtype=STATS_DTYPE).copy()
    if kind != _FORMAT_POINTS:
        raise ValueError(f"unknown step-statistics encoding {kind!r}")
    points = np.frombuffer(body, dtype=_POINTS_DTYPE)
    out = np.empty(len(points), dtype=STATS_DTYPE)
    out["step"] = points["step"]
    out["count"] = 1
    for field in ("sum", "min", "max", "first", "last"):
        out[field] = points["value"]
    out["m2"] = 0.0
    out["last_ts"] = points["ts"]
    return out

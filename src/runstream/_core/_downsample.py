"""Downsampling for display only: what a chart of a given width can show, and no more.

A series is split into ``buckets`` of equal x width (one per pixel column, roughly) and
each bucket keeps its first and last points, its minimum and maximum, and its first
non-finite point (M4 aggregation, plus the NaN that marks a diverged loss). Drawn as a line,
the result covers exactly the pixels the full series covers: every spike stays visible.
The store always keeps every step; this runs on the way to the browser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ("downsample", "window")


def window(x: NDArray[np.float64], lo: float | None, hi: float | None) -> slice:
    """The slice of sorted ``x`` inside ``[lo, hi]``, one point wider on each side so a
    zoomed line runs to the chart's edges."""
    start = 0 if lo is None else max(int(np.searchsorted(x, lo, side="left")) - 1, 0)
    stop = len(x) if hi is None else min(int(np.searchsorted(x, hi, side="right")) + 1, len(x))
    return slice(start, max(start, stop))


def downsample(x: NDArray[np.float64], y: NDArray[np.float64], buckets: int) -> NDArray[np.intp]:
    """Indices (sorted) of the points to draw; all of them when there are few enough.

    :param x: sorted positions (steps or seconds)
    :param y: values; NaN and infinities allowed
    :param buckets: how many x intervals to keep extremes for, at least 1
    """
    n = len(x)
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    if n <= 4 * buckets:
        return np.arange(n, dtype=np.intp)
    edges = np.linspace(float(x[0]), float(x[-1]), buckets + 1)[1:-1]
    bucket = np.searchsorted(edges, x, side="right")
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    sizes = np.diff(np.append(starts, n))
    group = np.repeat(np.arange(len(starts)), sizes)
    finite = np.isfinite(y)
    low = np.where(finite, y, np.inf)
    high = np.where(finite, y, -np.inf)
    picks = [
        starts,
        starts + sizes - 1,
        _first_where(low == np.minimum.reduceat(low, starts)[group], group),
        _first_where(high == np.maximum.reduceat(high, starts)[group], group),
        _first_where(~finite, group),
    ]
    return np.unique(np.concatenate(picks)).astype(np.intp)


def _first_where(mask: NDArray[np.bool_], group: NDArray[np.intp]) -> NDArray[np.intp]:
    """The first index of each group where ``mask`` holds (groups are contiguous)."""
    hits = np.flatnonzero(mask)
    if len(hits) == 0:
        return hits
    groups = group[hits]
    first = np.concatenate(([True], groups[1:] != groups[:-1]))
    return hits[first]

"""Display downsampling keeps every bucket's extremes, ends and first non-finite point."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from runstream._core._downsample import downsample, window

values = arrays(
    np.float64,
    st.integers(1, 3000),
    elements=st.one_of(st.floats(-1e6, 1e6), st.sampled_from([np.nan, np.inf, -np.inf])),
)


@given(values, st.integers(1, 200))
def test_extremes_and_ends_survive(y: np.ndarray, buckets: int) -> None:
    x = np.cumsum(np.ones(len(y)))  # sorted, evenly spaced steps
    keep = downsample(x, y, buckets)
    assert np.all(np.diff(keep) > 0)
    if len(y) > 4 * buckets:
        assert len(keep) <= 5 * buckets
    else:
        assert len(keep) == len(y)
    assert keep[0] == 0
    assert keep[-1] == len(y) - 1
    finite = np.isfinite(y)
    if finite.any():
        kept = y[keep][np.isfinite(y[keep])]
        assert kept.min() == y[finite].min()
        assert kept.max() == y[finite].max()
    if (~finite).any():
        assert (~np.isfinite(y[keep])).any()  # a diverged value stays visible


def test_many_points_shrink_to_a_few_per_bucket() -> None:
    x = np.arange(1_000_000, dtype=np.float64)
    y = np.sin(x / 1000) + (x == 777_777) * 50  # one spike
    keep = downsample(x, y, 1000)
    assert len(keep) <= 5 * 1000
    assert 777_777 in keep


def test_window_is_one_point_wider_than_the_range() -> None:
    x = np.arange(10, dtype=np.float64)
    part = window(x, 3.5, 6.5)
    assert (part.start, part.stop) == (3, 8)
    assert window(x, None, None) == slice(0, 10)


def test_buckets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="buckets"):
        downsample(np.arange(3.0), np.arange(3.0), 0)

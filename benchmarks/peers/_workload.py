"""The workload every tracker logs: S steps x K scalar metrics, the same values for all.

Values are precomputed Python floats (and, for dict APIs, one dict per step), so producing
them is never inside a timed region.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ("Workload", "metric_names", "metric_value")

_FIRST_NAMES = ("loss", "acc", "lr", "grad_norm")


def metric_names(count: int) -> tuple[str, ...]:
    """``count`` distinct names: the four a training loop usually logs, then ``m0004``…"""
    if count < 1:
        raise ValueError(f"a workload logs at least 1 metric per step, got {count}")
    extra = (f"m{k:04d}" for k in range(len(_FIRST_NAMES), count))
    return (*_FIRST_NAMES[:count], *extra)


def metric_value(step: int, metric: int) -> float:
    """A deterministic, non-constant value: a decaying curve with a small per-step ripple."""
    ripple = ((step * 7919 + metric * 104729) % 1000) / 100_000
    return 1.0 / (1.0 + 0.001 * step) + 0.01 * metric + ripple


@dataclass(frozen=True)
class Workload:
    """``steps`` steps of ``metrics`` scalars each.

    :ivar rows: per step, the ``(name, value)`` pairs a scalar API is called with
    :ivar dicts: per step, the mapping a dict API is called with
    """

    steps: int
    metrics: int
    names: tuple[str, ...] = field(init=False)
    rows: list[tuple[tuple[str, float], ...]] = field(init=False, repr=False)
    dicts: list[dict[str, float]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"a workload has at least 1 step, got {self.steps}")
        names = metric_names(self.metrics)
        rows = [
            tuple((name, metric_value(step, k)) for k, name in enumerate(names))
            for step in range(self.steps)
        ]
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "dicts", [dict(row) for row in rows])

    def points(self, steps: int | None = None) -> int:
        """How many points ``steps`` steps (default: all) log."""
        return (self.steps if steps is None else steps) * self.metrics

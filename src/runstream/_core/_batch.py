"""What a flush writes: one batch per worker of a run, and the run's identity in a store.

These are plain values, built by :mod:`._ingest` (the hot path's drain) and written by the
store; they live here, below both, so the hot path never imports the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _aggregate

if TYPE_CHECKING:
    from ._aggregate import StepStats
    from ._records import Artifact, ParameterValue

__all__ = ("ArtifactWrite", "Batch", "ParameterWrite", "RunKey")


@dataclass(frozen=True, slots=True)
class RunKey:
    """A run's identity in a store."""

    run_id: int
    experiment_name: str | None
    run_name: str


@dataclass(frozen=True, slots=True)
class ParameterWrite:
    name: str
    value: ParameterValue
    ts: float


@dataclass(frozen=True, slots=True)
class ArtifactWrite:
    direction: str
    name: str
    artifact: Artifact
    ts: float


@dataclass(slots=True)
class Batch:
    """Everything one flush writes for one worker of one run."""

    run_id: int
    worker: str
    metrics: dict[str, StepStats] = field(default_factory=dict)
    parameters: list[ParameterWrite] = field(default_factory=list)
    artifacts: list[ArtifactWrite] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(stats.points for stats in self.metrics.values())

    def is_empty(self) -> bool:
        return not (self.metrics or self.parameters or self.artifacts)

    def split(self) -> list[Batch]:
        """One batch per item (a metric, a parameter, an artifact), in this order: when the
        store refuses a batch outright, writing the items alone finds the one it refuses."""
        parts = [Batch(self.run_id, self.worker, metrics={n: s}) for n, s in self.metrics.items()]
        parts += [Batch(self.run_id, self.worker, parameters=[p]) for p in self.parameters]
        parts += [Batch(self.run_id, self.worker, artifacts=[a]) for a in self.artifacts]
        return parts

    def describe(self) -> str:
        """What the batch holds, for an error message: names, not data."""
        parts = [f"metric {n!r} ({s.points} points)" for n, s in self.metrics.items()]
        parts += [f"parameter {p.name!r}" for p in self.parameters]
        parts += [f"{a.direction} artifact {a.name!r}" for a in self.artifacts]
        shown = ", ".join(parts[:5])
        return shown if len(parts) <= 5 else f"{shown} and {len(parts) - 5} more"

    def absorb(self, later: Batch) -> None:
        """Merge a later batch into this one (used when a write failed and is retried)."""
        for name, stats in later.metrics.items():
            mine = self.metrics.get(name)
            self.metrics[name] = stats if mine is None else _aggregate.combine([mine, stats])
        self.parameters.extend(later.parameters)
        self.artifacts.extend(later.artifacts)

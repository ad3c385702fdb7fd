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

    def absorb(self, later: Batch) -> None:
        """Merge a later batch into this one (used when a write failed and is retried)."""
        for name, stats in later.metrics.items():
            mine = self.metrics.get(name)
            self.metrics[name] = stats if mine is None else _aggregate.combine([mine, stats])
        self.parameters.extend(later.parameters)
        self.artifacts.extend(later.artifacts)

"""What the read side returns: plain, typed records with stable field names.

These are the shapes of the command line's ``--json`` output too, so renaming a field is a
breaking change. Timestamps are epoch seconds (UTC). JSON has no NaN: a NaN or infinite
statistic is written as ``null`` there, and stays a float in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = (
    "Artifact",
    "Artifacts",
    "ExperimentRecord",
    "MetricSummary",
    "RunRecord",
    "RunStats",
    "Series",
    "SeriesRow",
    "SyncStatus",
    "WorkerRecord",
)

ParameterValue = str | int | float


class MetricSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A metric over the whole run, as SageMaker's ``TrialComponentMetricSummary``."""

    min: float
    max: float
    avg: float
    std: float
    last: float
    count: int
    last_step: int | None = None
    timestamp: float | None = None


class Artifact(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An input or output artifact: a value (URI or path) and its media type."""

    value: str
    media_type: str | None = None
    sha256: str | None = None
    size: int | None = None


class Artifacts(msgspec.Struct, frozen=True, kw_only=True):
    input: dict[str, Artifact] = msgspec.field(default_factory=dict)
    output: dict[str, Artifact] = msgspec.field(default_factory=dict)


class WorkerRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One process that logged into the run, and how it ended."""

    worker: str
    status: str
    message: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    host: str | None = None
    pid: int | None = None


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A run read back from the store: everything ``runstream show --json`` prints."""

    experiment_name: str | None
    run_name: str
    trial_component_name: str
    status: str
    message: str | None = None
    created: float
    start_time: float | None = None
    end_time: float | None = None
    parameters: dict[str, ParameterValue] = msgspec.field(default_factory=dict)
    metrics: dict[str, MetricSummary] = msgspec.field(default_factory=dict)
    artifacts: Artifacts = msgspec.field(default_factory=Artifacts)
    workers: list[WorkerRecord] = msgspec.field(default_factory=list)


class ExperimentRecord(msgspec.Struct, frozen=True, kw_only=True):
    experiment_name: str
    display_name: str | None = None
    description: str | None = None
    created: float
    run_count: int


class SeriesRow(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a metric's series. ``step`` is ``None`` for points logged without one;
    those are bucketed by wall-clock second, given by ``timestamp``."""

    name: str
    step: int | None
    count: int
    mean: float
    min: float
    max: float
    last: float
    std: float
    timestamp: float


class Series:
    """A metric's full series, one entry per step, as numpy arrays (columnar)."""

    __slots__ = ("count", "last", "max", "mean", "min", "name", "std", "step", "timestamp")

    def __init__(self, name: str, stats: NDArray[np.void]) -> None:
        self.name = name
        count = stats["count"]
        self.step: NDArray[np.int64] = stats["step"].copy()
        self.count: NDArray[np.int64] = count.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean: NDArray[np.float64] = stats["sum"] / count
            self.std: NDArray[np.float64] = np.sqrt(stats["m2"] / count)
        self.min: NDArray[np.float64] = stats["min"].copy()
        self.max: NDArray[np.float64] = stats["max"].copy()
        self.last: NDArray[np.float64] = stats["last"].copy()
        self.timestamp: NDArray[np.float64] = stats["last_ts"].copy()

    def __len__(self) -> int:
        return len(self.step)

    def __repr__(self) -> str:
        return f"Series(name={self.name!r}, steps={len(self)})"

    def rows(self) -> list[SeriesRow]:
        """The series as records (``step`` ``None`` for time-bucketed points)."""
        return [
            SeriesRow(
                name=self.name,
                step=step if step >= 0 else None,
                count=count,
                mean=mean,
                min=lo,
                max=hi,
                last=last,
                std=std,
                timestamp=ts,
            )
            for step, count, mean, lo, hi, last, std, ts in zip(
                self.step.tolist(),
                self.count.tolist(),
                self.mean.tolist(),
                self.min.tolist(),
                self.max.tolist(),
                self.last.tolist(),
                self.std.tolist(),
                self.timestamp.tolist(),
                strict=True,
            )
        ]


class SyncStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where a run stands with a remote backend (SageMaker): ``Run.stats.sync``, and what
    ``runstream status`` and ``runstream sync`` print.

    ``points_*`` count logged points; ``data_sent`` counts what went over the wire after
    per-step aggregation (one datum per step, or per group of steps when a run logs
    faster than the API budget). ``state`` is ``synced``, ``pending`` or ``blocked``
    (credentials refused: nothing is sent until they change; everything stays local).
    """

    experiment_name: str | None
    run_name: str
    backend: str
    state: str
    points_pending: int = 0
    points_sent: int = 0
    points_retried: int = 0
    points_rejected: int = 0
    data_sent: int = 0
    api_calls: int = 0
    throttled: int = 0
    files_pending: int = 0
    files_uploaded: int = 0
    last_error: str | None = None
    last_sync: float | None = None


class RunStats(msgspec.Struct, frozen=True, kw_only=True):
    """A run's ingestion counters, from :attr:`runstream.Run.stats`.

    ``points_logged == points_written + points_pending`` at all times: a point is never
    dropped; ``points_dropped`` exists so monitoring can assert it stays zero.
    """

    points_logged: int
    points_written: int
    points_pending: int
    points_dropped: int = 0
    parameters_pending: int = 0
    files_pending: int = 0
    files_written: int = 0
    flushes: int = 0
    write_errors: int = 0
    compactions: int = 0
    last_error: str | None = None
    #: the remote backend's side, for a run entered with ``backend="sagemaker"``
    sync: SyncStatus | None = None

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

    from ._aggregate import StepStats

__all__ = (
    "Artifact",
    "Artifacts",
    "ExperimentRecord",
    "MetricSummary",
    "RunRecord",
    "RunStats",
    "Series",
    "SeriesRow",
    "StragglerRow",
    "Stragglers",
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
    #: None until a worker enters the run (as the official trial component has no status)
    status: str | None
    message: str | None = None
    created: float
    start_time: float | None = None
    end_time: float | None = None
    parameters: dict[str, ParameterValue] = msgspec.field(default_factory=dict)
    metrics: dict[str, MetricSummary] = msgspec.field(default_factory=dict)
    artifacts: Artifacts = msgspec.field(default_factory=Artifacts)
    workers: list[WorkerRecord] = msgspec.field(default_factory=list)
    #: Parameters that workers set to different values: name -> {worker: value}.
    parameter_conflicts: dict[str, dict[str, ParameterValue]] = msgspec.field(default_factory=dict)


class ExperimentRecord(msgspec.Struct, frozen=True, kw_only=True):
    experiment_name: str
    display_name: str | None = None
    description: str | None = None
    created: float
    run_count: int


class SeriesRow(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a metric's series. ``step`` is ``None`` for a point logged without one:
    each such call is its own row, at ``timestamp``, and they come first, oldest first."""

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

    def __init__(self, name: str, stats: StepStats) -> None:
        # Arrays may be read-only views shared between fields; that is fine for readers.
        if len(stats) and stats.step[0] < 0:
            # Points without a step are stored newest first (keys -(microsecond + 1)):
            # put them in the order they were logged, before the stepped ones.
            unstepped = int(np.searchsorted(stats.step, 0))
            stats = stats.take(
                np.concatenate((np.arange(unstepped - 1, -1, -1), np.arange(unstepped, len(stats))))
            )
        self.name = name
        self.step: NDArray[np.int64] = stats.step
        self.count: NDArray[np.int64] = np.asarray(stats.count)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean: NDArray[np.float64] = stats.sum / stats.count
            self.std: NDArray[np.float64] = np.sqrt(stats.m2 / stats.count)
        self.min: NDArray[np.float64] = stats.min
        self.max: NDArray[np.float64] = stats.max
        self.last: NDArray[np.float64] = stats.last
        self.timestamp: NDArray[np.float64] = stats.last_ts

    def __len__(self) -> int:
        return len(self.step)

    def __repr__(self) -> str:
        return f"Series(name={self.name!r}, steps={len(self)})"

    def rows(self) -> list[SeriesRow]:
        """The series as records (``step`` ``None`` for points logged without one)."""
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
    ``stride`` is 1 while every step is sent as its own datum; larger when the backlog
    passed the lag bound (``RUNSTREAM_MAX_LAG``) and the oldest steps were grouped.
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
    #: data (one per step per series at full resolution) not acknowledged yet
    data_pending: int = 0
    #: ``data_pending`` in seconds of the sink's budget (None: budget unknown)
    lag_seconds: float | None = None
    #: the stride of the data sent last (1: every step), and the largest ever used
    stride: int = 1
    max_stride: int = 1
    #: ``"auto"`` (group the oldest steps only past the lag bound) or ``"full"`` (never)
    resolution: str = "auto"
    #: the store's sync agent: ``"running (pid N)"``, ``"stopped"``, or None (unknown)
    agent: str | None = None
    #: when the last round that left nothing of the run pending began (epoch seconds)
    caught_up: float | None = None
    #: ``log_file`` copies the backend refused for good (kept in the store, not resent)
    files_rejected: int = 0


class RunStats(msgspec.Struct, frozen=True, kw_only=True):
    """A run's ingestion counters, from :attr:`runstream.Run.stats`.

    ``points_logged == points_written + points_pending + points_spilled + points_rejected
    + points_dropped + points_lost`` at all times. Spilled points are ones the store could
    not take in time (a long outage, or closing), kept in ``<store>/spill/`` (or the
    fallback folder, when the store's disk is full) and written in when it recovers or by
    the next run. Rejected points are in an item (a metric's points of one flush, a
    parameter, an artifact) the store refused outright, kept as a ``.rejected`` spill file
    for inspection; the rest of that flush is written. Dropped points are device tensors
    that neither the copy off the device nor a direct read could recover (each logged as an
    error); for every other value it stays zero, so monitoring can assert it. Lost points
    were written to a database that was then deleted or replaced, or could be kept nowhere
    (no disk took a spill and memory was at its bound); each loss is logged.
    ``files_failed`` counts ``log_file`` copies that failed every retry;
    ``spills_quarantined`` spill files that could not be read back.
    """

    points_logged: int
    points_written: int
    points_pending: int
    points_spilled: int = 0
    points_rejected: int = 0
    points_dropped: int = 0
    points_lost: int = 0
    parameters_pending: int = 0
    files_pending: int = 0
    files_written: int = 0
    files_failed: int = 0
    spills_quarantined: int = 0
    flushes: int = 0
    write_errors: int = 0
    compactions: int = 0
    last_error: str | None = None
    #: the remote backend's side, for a run entered with ``backend="sagemaker"``
    sync: SyncStatus | None = None


class StragglerRow(msgspec.Struct, frozen=True, kw_only=True):
    """The slowest worker at one step: the one whose value (say, step time) is largest."""

    step: int | None
    worker: str
    value: float
    mean: float
    workers: int


class Stragglers:
    """Per step, which worker had the largest mean value, beside the mean over workers.

    Built from per-worker series aligned on the union of their steps; a worker missing a
    step is left out of that step.
    """

    __slots__ = ("mean", "name", "slowest", "step", "value", "worker_names", "workers")

    def __init__(
        self,
        name: str,
        step: NDArray[np.int64],
        slowest: NDArray[np.intp],
        value: NDArray[np.float64],
        mean: NDArray[np.float64],
        workers: NDArray[np.int64],
        worker_names: list[str],
    ) -> None:
        self.name = name
        self.step = step
        self.slowest = slowest
        self.value = value
        self.mean = mean
        self.workers = workers
        self.worker_names = worker_names

    @classmethod
    def from_series(cls, name: str, by_worker: dict[str, Series]) -> Stragglers:
        names = list(by_worker)
        steps = np.unique(np.concatenate([s.step for s in by_worker.values()]))
        grid = np.full((len(names), len(steps)), np.nan)
        for row, series in enumerate(by_worker.values()):
            grid[row, np.searchsorted(steps, series.step)] = series.mean
        present = ~np.isnan(grid)
        masked = np.where(present, grid, -np.inf)
        slowest = np.argmax(masked, axis=0)
        counts = present.sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean = np.where(present, grid, 0.0).sum(axis=0) / counts
        return cls(
            name,
            steps,
            slowest,
            masked[slowest, np.arange(len(steps))],
            mean,
            counts,
            names,
        )

    def __len__(self) -> int:
        return len(self.step)

    def slowest_counts(self) -> dict[str, int]:
        """How many steps each worker was the slowest at."""
        counts = np.bincount(self.slowest, minlength=len(self.worker_names))
        return {name: int(c) for name, c in zip(self.worker_names, counts, strict=True)}

    def rows(self) -> list[StragglerRow]:
        return [
            StragglerRow(
                step=step if step >= 0 else None,
                worker=self.worker_names[index],
                value=value,
                mean=mean,
                workers=workers,
            )
            for step, index, value, mean, workers in zip(
                self.step.tolist(),
                self.slowest.tolist(),
                self.value.tolist(),
                self.mean.tolist(),
                self.workers.tolist(),
                strict=True,
            )
        ]

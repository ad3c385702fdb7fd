"""runstream: experiment tracking that costs a training loop almost nothing.

A drop-in for ``sagemaker.experiments`` (``Run``, ``load_run``, ``list_runs``,
``Experiment``) whose logging calls append to in-memory buffers and return; a background
flusher aggregates them with numpy and writes them to an embedded SQLite store.
"""

from __future__ import annotations

from ._analytics import ExperimentAnalytics as ExperimentAnalytics
from ._analytics import best_run as best_run
from ._exceptions import BackendError as BackendError
from ._exceptions import FlushTimeoutError as FlushTimeoutError
from ._exceptions import RunNotFoundError as RunNotFoundError
from ._exceptions import RunstreamError as RunstreamError
from ._exceptions import SchemaError as SchemaError
from ._exceptions import StoreError as StoreError
from ._experiment import Experiment as Experiment
from ._experiment import SortByType as SortByType
from ._experiment import SortOrderType as SortOrderType
from ._experiment import list_runs as list_runs
from ._records import Artifact as Artifact
from ._records import Artifacts as Artifacts
from ._records import ExperimentRecord as ExperimentRecord
from ._records import MetricSummary as MetricSummary
from ._records import RunRecord as RunRecord
from ._records import RunStats as RunStats
from ._records import Series as Series
from ._records import SeriesRow as SeriesRow
from ._records import SyncStatus as SyncStatus
from ._records import WorkerRecord as WorkerRecord
from ._run import Flush as Flush
from ._run import Run as Run
from ._run import current_run as current_run
from ._run import load_run as load_run

__all__ = (
    "Artifact",
    "Artifacts",
    "BackendError",
    "Experiment",
    "ExperimentAnalytics",
    "ExperimentRecord",
    "Flush",
    "FlushTimeoutError",
    "MetricSummary",
    "Run",
    "RunNotFoundError",
    "RunRecord",
    "RunStats",
    "RunstreamError",
    "SchemaError",
    "Series",
    "SeriesRow",
    "SortByType",
    "SortOrderType",
    "StoreError",
    "SyncStatus",
    "WorkerRecord",
    "best_run",
    "current_run",
    "list_runs",
    "load_run",
)
__version__ = "0.1.0"

for _name in __all__:
    globals()[_name].__module__ = __name__  # reprs and docs say runstream.Run
del _name

"""runstream: experiment tracking that costs a training loop almost nothing.

A drop-in for ``sagemaker.experiments`` (``Run``, ``load_run``, ``list_runs``,
``Experiment``) whose logging calls append to in-memory buffers and return; a background
flusher aggregates them with numpy and writes them to an embedded SQLite store.
"""

from __future__ import annotations

import types as _types

from ._core import _version
from ._core._exceptions import BackendError as BackendError
from ._core._exceptions import FlushTimeoutError as FlushTimeoutError
from ._core._exceptions import RunContinuedWarning as RunContinuedWarning
from ._core._exceptions import RunNotFoundError as RunNotFoundError
from ._core._exceptions import RunstreamError as RunstreamError
from ._core._exceptions import SchemaError as SchemaError
from ._core._exceptions import StoreError as StoreError
from ._core._records import Artifact as Artifact
from ._core._records import Artifacts as Artifacts
from ._core._records import ExperimentRecord as ExperimentRecord
from ._core._records import MetricSummary as MetricSummary
from ._core._records import ParameterValue as ParameterValue
from ._core._records import RunRecord as RunRecord
from ._core._records import RunStats as RunStats
from ._core._records import Series as Series
from ._core._records import SeriesRow as SeriesRow
from ._core._records import Stragglers as Stragglers
from ._core._records import SyncStatus as SyncStatus
from ._core._records import WorkerRecord as WorkerRecord
from ._run._analytics import ExperimentAnalytics as ExperimentAnalytics
from ._run._analytics import best_run as best_run
from ._run._experiment import Experiment as Experiment
from ._run._experiment import SortByType as SortByType
from ._run._experiment import SortOrderType as SortOrderType
from ._run._experiment import list_runs as list_runs
from ._run._load import load_run as load_run
from ._run._run import Flush as Flush
from ._run._run import Run as Run
from ._run._run import current_run as current_run

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
    "ParameterValue",
    "Run",
    "RunContinuedWarning",
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
    "Stragglers",
    "SyncStatus",
    "WorkerRecord",
    "best_run",
    "current_run",
    "list_runs",
    "load_run",
)
__version__ = _version.VERSION

for _name in __all__:
    if not isinstance(globals()[_name], _types.UnionType):  # ParameterValue has no module
        globals()[_name].__module__ = __name__  # reprs and docs say runstream.Run
del _name, _types

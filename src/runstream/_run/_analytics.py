"""Analytics: runs as a table, the best run by a metric, series as numpy arrays.

:class:`ExperimentAnalytics` is ``sagemaker.analytics.ExperimentAnalytics`` on the local
store: one row per run with the official columns (``TrialComponentName``, ``DisplayName``,
one column per parameter, ``"<metric> - Min|Max|Avg|StdDev|Last|Count"``, ``"<artifact> -
MediaType|Value"``, ``Trials``, ``Experiments``), plus runstream's ``RunName``,
``ExperimentName``, ``Status``, ``StartTime`` and ``EndTime``. ``dataframe()`` is a pandas
DataFrame when pandas is installed (``pip install runstream[pandas]``) and the same rows as
plain dicts otherwise.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core._exceptions import RunNotFoundError
from .._core._names import run_group_name
from .._store import LocalStore

if TYPE_CHECKING:
    from .._core._aggregate import StepStats
    from .._core._records import RunRecord, Series

__all__ = (
    "STATISTICS",
    "ExperimentAnalytics",
    "best_run",
    "finite_summary",
    "read_runs",
    "run_table",
    "select_best",
)

StorePath = str | os.PathLike[str] | None

#: The official statistic suffixes, in the official column order, and the summary fields.
STATISTICS: dict[str, str] = {
    "Min": "min",
    "Max": "max",
    "Avg": "avg",
    "StdDev": "std",
    "Last": "last",
    "Count": "count",
}
_SORT_ORDERS = ("Ascending", "Descending")


class ExperimentAnalytics:
    """The runs of an experiment (or the unassigned runs) as a table.

    The signature is the official one; ``search_expression`` and ``sagemaker_session`` are
    for SageMaker Search and have no meaning on the local store. ``sort_by`` is a column
    name (``"loss - Last"``, a parameter), ``"CreationTime"``, ``"Name"``, or the Search
    form ``"Metrics.<metric>.<Stat>"`` / ``"Parameters.<name>"``; runs missing the value (or
    with NaN) sort last either way.

    :param store: the store directory (default: ``$RUNSTREAM_STORE``, else ``./.runstream``)
    :param unassigned: the runs with no experiment instead (``experiment_name`` must be None)
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        search_expression: dict[str, Any] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        metric_names: Sequence[str] | None = None,
        parameter_names: Sequence[str] | None = None,
        sagemaker_session: object | None = None,
        input_artifact_names: Sequence[str] | None = None,
        output_artifact_names: Sequence[str] | None = None,
        *,
        store: StorePath = None,
        unassigned: bool = False,
    ) -> None:
        if search_expression is not None:
            raise ValueError(
                "search_expression is a SageMaker Search filter, which the local store does "
                "not run; filter the records or the DataFrame instead"
            )
        if unassigned == (experiment_name is not None):
            raise ValueError(
                "ExperimentAnalytics needs an experiment_name, or unassigned=True without one"
            )
        if sort_order is not None and sort_order not in _SORT_ORDERS:
            raise ValueError(f"sort_order must be one of {_SORT_ORDERS}, got {sort_order!r}")
        self.experiment_name = experiment_name.lower() if experiment_name else None
        self.sort_by = sort_by
        self.sort_order = sort_order or "Descending"
        self.metric_names = list(metric_names) if metric_names is not None else None
        self.parameter_names = list(parameter_names) if parameter_names is not None else None
        self.input_artifact_names = input_artifact_names
        self.output_artifact_names = output_artifact_names
        self._store_path = store
        self._runs: list[RunRecord] | None = None

    def __repr__(self) -> str:
        where = self.experiment_name or "unassigned runs"
        return f"ExperimentAnalytics({where!r})"

    def clear_cache(self) -> None:
        self._runs = None

    def runs(self, force_refresh: bool = False) -> list[RunRecord]:
        """The run records behind the rows, in the table's order (read once, then cached)."""
        if force_refresh:
            self.clear_cache()
        if self._runs is None:
            with LocalStore(self._store_path) as store:
                self._runs = read_runs(store, self.experiment_name)
        return self._runs

    def records(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """One dict per run with the official column names (NaN stays a float NaN)."""
        rows = run_table(
            self.runs(force_refresh),
            metric_names=self.metric_names,
            parameter_names=self.parameter_names,
            input_artifact_names=self.input_artifact_names,
            output_artifact_names=self.output_artifact_names,
        )
        if self.sort_by is not None:
            rows = _sort_rows(rows, _column_of(self.sort_by), self.sort_order == "Descending")
        return rows

    def dataframe(self, force_refresh: bool = False) -> Any:
        """A pandas DataFrame of :meth:`records`, or the records themselves without pandas."""
        rows = self.records(force_refresh)
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            return rows
        return pandas.DataFrame(rows)

    def series(self, run_name: str, metric_name: str, worker: str | None = None) -> Series:
        """A run's metric by step as numpy arrays (merged over workers unless one is named)."""
        with LocalStore(self._store_path) as store:
            key = store.find_run(self.experiment_name, run_name.lower())
            return store.series(key.run_id, metric_name, worker)


def read_runs(store: LocalStore, experiment_name: str | None) -> list[RunRecord]:
    """All runs of an experiment (``None``: the unassigned runs), oldest first."""
    if experiment_name is not None:
        store.experiment(experiment_name)  # raises RunNotFoundError
    keys = store.run_keys(experiment_name, unassigned=experiment_name is None)
    return store.records([key for key, _ in keys])


def run_table(
    runs: Iterable[RunRecord],
    *,
    metric_names: Sequence[str] | None = None,
    parameter_names: Sequence[str] | None = None,
    input_artifact_names: Sequence[str] | None = None,
    output_artifact_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs as rows with the official ``ExperimentAnalytics`` columns (see the module doc)."""
    return [
        _row(r, metric_names, parameter_names, input_artifact_names, output_artifact_names)
        for r in runs
    ]


def _row(
    run: RunRecord,
    metric_names: Sequence[str] | None,
    parameter_names: Sequence[str] | None,
    inputs: Sequence[str] | None,
    outputs: Sequence[str] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "TrialComponentName": run.trial_component_name,
        "DisplayName": run.run_name,
        "RunName": run.run_name,
        "ExperimentName": run.experiment_name,
        "Status": run.status,
        "StartTime": run.start_time,
        "EndTime": run.end_time,
    }
    row.update(
        (name, value)
        for name, value in sorted(run.parameters.items())
        if parameter_names is None or name in parameter_names
    )
    for name, summary in sorted(run.metrics.items()):
        if metric_names is None or name in metric_names:
            for stat, field in STATISTICS.items():
                row[f"{name} - {stat}"] = getattr(summary, field)
    for artifacts, wanted in ((run.artifacts.input, inputs), (run.artifacts.output, outputs)):
        for name, artifact in sorted(artifacts.items()):
            if wanted is None or name in wanted:
                row[f"{name} - MediaType"] = artifact.media_type
                row[f"{name} - Value"] = artifact.value
    experiment = run.experiment_name
    row["Trials"] = [run_group_name(experiment)] if experiment else []
    row["Experiments"] = [experiment] if experiment else []
    return row


def _column_of(sort_by: str) -> str:
    """The table column a ``sort_by`` names, accepting SageMaker Search's property names."""
    aliases = {"CreationTime": "StartTime", "Name": "RunName"}
    if sort_by in aliases:
        return aliases[sort_by]
    head, _, rest = sort_by.partition(".")
    if head == "Metrics" and "." in rest:
        metric, _, stat = rest.rpartition(".")
        return f"{metric} - {stat}"
    if head == "Parameters" and rest:
        return rest
    return sort_by


def _sort_rows(rows: list[dict[str, Any]], column: str, descending: bool) -> list[dict[str, Any]]:
    present = [r for r in rows if _sortable(r.get(column))]
    missing = [r for r in rows if not _sortable(r.get(column))]
    numbers = all(isinstance(r[column], int | float) for r in present)
    present.sort(key=lambda r: r[column] if numbers else str(r[column]), reverse=descending)
    return present + missing


def _sortable(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _stat_field(stat: str) -> str:
    for name, field in STATISTICS.items():
        if stat.lower() in (name.lower(), field):
            return field
    raise ValueError(f"stat must be one of {', '.join(STATISTICS)}, got {stat!r}")


def select_best(
    runs: Iterable[RunRecord], metric_name: str, *, maximize: bool = False, stat: str = "Last"
) -> tuple[RunRecord, float]:
    """The run whose ``stat`` of ``metric_name`` is best, and that value.

    Runs without the metric, or whose value is NaN (a diverged loss), never win.

    :raises ValueError: ``stat`` is not one of :data:`STATISTICS`
    :raises RunNotFoundError: no run has a number for the metric
    """
    field = _stat_field(stat)
    scored = [
        (float(getattr(r.metrics[metric_name], field)), r) for r in runs if metric_name in r.metrics
    ]
    scored = [(value, r) for value, r in scored if not math.isnan(value)]
    if not scored:
        raise RunNotFoundError(f"no run has a value for metric {metric_name!r}")
    pick = max if maximize else min
    value, record = pick(scored, key=lambda vr: vr[0])
    return record, value


def best_run(
    experiment_name: str | None,
    metric_name: str,
    maximize: bool = False,
    *,
    stat: str = "Last",
    store: StorePath = None,
) -> RunRecord:
    """The best run of an experiment (``None``: of the unassigned runs) by a metric.

    :param maximize: ``True`` when higher is better (accuracy), ``False`` for a loss
    :param stat: which summary decides: ``Last`` (default), ``Min``, ``Max``, ``Avg``,
        ``StdDev`` or ``Count``
    :raises RunNotFoundError: no such experiment, or no run has a number for the metric
    """
    with LocalStore(store) as local:
        runs = read_runs(local, experiment_name.lower() if experiment_name else None)
    record, _ = select_best(runs, metric_name, maximize=maximize, stat=stat)
    return record


def finite_summary(stats: StepStats) -> dict[str, Any]:
    """A metric's summary over its finite points, and how many points are not finite.

    The stored summary of a diverged run is NaN or infinite for min, max and avg although
    most of its points are finite; this is computed on read from the step statistics. A
    step holding a single point (the usual case) is counted exactly; a step that merged
    several points, one of them non-finite, cannot be taken apart and counts as non-finite
    as a whole (``nonfinite`` is then an upper bound).

    ``{"min", "max", "avg", "std", "count", "nonfinite", "nan", "inf"}``: statistics over
    the ``count`` finite points (NaN when there are none), ``nan`` and ``inf`` the steps'
    kinds of non-finite value (an infinite step is one whose mean is ±inf).
    """
    ok = np.isfinite(stats.sum) & np.isfinite(stats.min) & np.isfinite(stats.max)
    counts = stats.count[ok].astype(np.float64)
    n = float(counts.sum())
    bad_counts = stats.count[~ok]
    bad_means = stats.sum[~ok] / np.maximum(bad_counts, 1)
    nan = int(bad_counts[np.isnan(bad_means)].sum())
    out: dict[str, Any] = {
        "count": int(n),
        "nonfinite": int(bad_counts.sum()),
        "nan": nan,
        "inf": int(bad_counts.sum()) - nan,
        "min": math.nan,
        "max": math.nan,
        "avg": math.nan,
        "std": math.nan,
    }
    if n:
        means = stats.sum[ok] / counts
        avg = float(stats.sum[ok].sum() / n)
        # Chan's parallel variance over the steps: within-step M2 plus between-step spread.
        m2 = float(np.asarray(stats.m2)[ok].sum() + (counts * (means - avg) ** 2).sum())
        out.update(
            min=float(stats.min[ok].min()),
            max=float(stats.max[ok].max()),
            avg=avg,
            std=math.sqrt(max(m2, 0.0) / n),
        )
    return out

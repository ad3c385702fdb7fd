"""The dashboard's JSON API: read-only queries on a store, as plain JSON-able values.

Every endpoint is a ``GET`` with query parameters (names of runs and metrics may hold any
character, so they never go in the path). Records have the field names of
:mod:`runstream._core._records`, exactly as ``runstream ... --json`` prints them; NaN and
infinities are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (``null`` is no
value). Version 1; fields are only ever added.

``/api/experiments``
    ``{"store", "experiments": [ExperimentRecord], "unassigned_runs": int}``
``/api/runs?experiment=E`` (or ``?unassigned=true``)
    ``{"experiment_name": E|null, "runs": [RunRecord]}``, oldest first
``/api/runs?experiment=E&limit=N[&offset=K][&sort=S][&desc=true][&stat=Last][&filter=F]``
    one page of the table, filtered and sorted on the server (see :mod:`._table`; ``sort``
    is ``created``, ``run``, ``status``, ``started``, ``param:NAME`` or ``metric:NAME``):
    ``{"experiment_name", "total", "matched", "offset", "limit", "parameters": [str],
    "metrics": [str], "runs": [RunRecord], "finite": {run: {metric: FiniteSummary}}}``.
    ``finite`` is given for metrics with non-finite points: min, max, avg and std over the
    finite points, ``count`` of them, and ``nonfinite`` (``nan``, ``inf``) points.
``/api/run?experiment=E&run=R`` (no ``experiment``: an unassigned run)
    ``{"run": RunRecord, "metrics": [{"metric", "workers": [str], "finite"?}]}``: ``finite``
    (a FiniteSummary, as in ``/api/runs``) only for a metric with non-finite points
``/api/series?experiment=E&run=R&metric=M[&view=merged|workers][&points=N][&from=X&to=Y]``
    ``{"metric", "axis": "step"|"time", "first_nonfinite": x|null, "lines": [{"worker":
    str|null, "steps": int, "unstepped": int, "x": [], "y": [], "min": [], "max": []}]}``.
    ``y`` is the mean of the step's values (over workers in the merged view), ``min`` and
    ``max`` their range. Each line is downsampled for display to about ``points`` buckets
    (default 1000, at most 20000) between ``from`` and ``to``; ``steps`` counts all stored
    steps. Points logged without a step are charted by time, one point per call in the
    order logged (``axis: "time"``, x in epoch seconds) when the metric has no stepped
    points, else counted in ``unstepped``; no step is ever made up for them.
``/api/curves?experiment=E&metric=M&runs=["R1","R2"][&x=step|relative|wall][&group=P][&points=N][&from=X&to=Y]``
    several runs' lines of one metric for one chart: ``{"metric", "axis":
    "step"|"relative"|"time", "first_nonfinite", "lines": [{"run", "label", "steps", "x",
    "y", "min", "max"}]}``. ``runs`` is a JSON list of names (at most 200); runs without the
    metric are left out. ``x``: by step (default), seconds since the run started, or wall
    time (epoch seconds, ``axis: "time"``); a metric logged only without steps is by wall
    time. ``group=P`` (by step only) answers one line per value of parameter ``P``: ``y``
    the mean over the group's runs at each step (finite values), ``min``/``max`` their
    range, ``runs`` how many, ``group`` the value.
``/api/best?experiment=E&metric=M[&maximize=true][&stat=Last]``
    ``{"run": RunRecord, "metric", "stat", "maximize", "value"}``
``/api/file?experiment=E&run=R&name=N[&direction=output|input]``
    the stored file of an artifact logged with ``log_file`` (not JSON)

Errors are ``{"error": message}`` with status 400 (bad parameter) or 404 (no such thing).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core._aggregate import key_time
from .._core._downsample import downsample, window
from .._core._exceptions import RunNotFoundError
from .._core._json import jsonable
from .._run._analytics import STATISTICS, finite_summary, read_runs, select_best
from .._run._validate import is_media_type
from .._store import run_graphs
from ._table import metrics_named, parameter_names, run_filter, sort_key

if TYPE_CHECKING:
    from .._core._aggregate import StepStats
    from .._core._batch import RunKey
    from .._core._records import Artifact, MetricSummary, RunRecord
    from .._store import LocalStore
    from .._store._local import RunOverview

__all__ = (
    "API_VERSION",
    "Api",
    "ApiError",
    "StoredFile",
    "curve_lines",
    "series_lines",
)

API_VERSION = 1
DEFAULT_POINTS = 1000
MAX_POINTS = 20_000
DEFAULT_PAGE = 200
MAX_PAGE = 5000
MAX_CURVE_RUNS = 200
_SORTS = ("created", "run", "status", "started")
_X_AXES = ("step", "relative", "wall")
_CACHED_SERIES = 8
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")

Query = Mapping[str, str]


class ApiError(Exception):
    """A request the API refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file to send: where it is, and what to call it."""

    path: Path
    name: str
    media_type: str


class Api:
    """The endpoints over one open store (thread-safe: the store serializes its reads)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        # Step statistics of recently charted metrics, by (run, metric, worker, version):
        # zooming into a 1M-step series, or polling a live one that has not changed, then
        # skips reading and merging the chunks again. A new flush changes the version.
        self._cache: OrderedDict[tuple[object, ...], StepStats] = OrderedDict()
        self._cache_lock = threading.Lock()
        endpoints: dict[str, Callable[[Query], Any]] = {
            "/api/experiments": self.experiments,
            "/api/runs": self.runs,
            "/api/run": self.run,
            "/api/graphs": self.graphs,
            "/api/series": self.series,
            "/api/curves": self.curves,
            "/api/best": self.best,
        }
        # What each route answers is plain JSON-able data with NaN and the infinities as
        # the strings "NaN", "Infinity" and "-Infinity" (runstream._core._json).
        self.routes: dict[str, Callable[[Query], Any]] = {
            path: _encoded(endpoint) for path, endpoint in endpoints.items()
        }

    def experiments(self, query: Query) -> dict[str, Any]:
        return {
            "api_version": API_VERSION,
            "store": str(self.store.path),
            "experiments": self.store.list_experiments(),
            "unassigned_runs": len(self.store.run_keys(None, unassigned=True)),
        }

    def runs(self, query: Query) -> dict[str, Any]:
        experiment = _experiment(query, allow_unassigned_flag=True)
        if not any(k in query for k in ("limit", "offset", "sort", "filter")):
            return {"experiment_name": experiment, "runs": self._read_runs(experiment)}
        return self._page(experiment, query)

    def _page(self, experiment: str | None, query: Query) -> dict[str, Any]:
        """One page of the run table; whole records are built for that page only."""
        offset = _integer(query, "offset", 0, 0, 1 << 40)
        limit = _integer(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        sort = query.get("sort") or "created"
        if sort not in _SORTS and not sort.startswith(("param:", "metric:")):
            raise ApiError(
                400,
                f"sort must be one of {', '.join(_SORTS)}, param:NAME or metric:NAME, got {sort!r}",
            )
        descending = _boolean(query, "desc")
        stat = _stat(query)
        text = query.get("filter", "")
        if not text.split() and sort == "created" and not descending:
            # The first paint of a big experiment: no row needs reading beyond the page.
            keys = [k for k, _ in self._keys(experiment)]
            ids = [k.run_id for k in keys]
            total = matched = len(keys)
            page_keys = keys[offset : offset + limit]
            parameters = self.store.parameter_names_of(ids)
            metrics = self.store.metric_names_of(ids)
        else:
            rows = self._overview(experiment)
            ids = [r.key.run_id for r in rows]
            metrics = self.store.metric_names_of(ids)
            summaries = {
                m: self._finite_where_needed(ids, m, stat)
                for m in metrics_named(text, sort, metrics)
            }
            keep = run_filter(text, stat, summaries)
            kept = [r for r in rows if keep(r)] if text.split() else rows
            if sort != "created" or descending:
                key = sort_key(sort, stat, summaries)
                keyed = [(key(r), r) for r in kept]
                present = [kr for kr in keyed if kr[0][0] == 0]
                present.sort(key=lambda kr: kr[0], reverse=descending)
                kept = [r for _, r in present] + [r for k, r in keyed if k[0] != 0]
            total, matched = len(rows), len(kept)
            page_keys = [r.key for r in kept[offset : offset + limit]]
            parameters = parameter_names(rows)
        records = self.store.records(page_keys)
        return {
            "experiment_name": experiment,
            "total": total,
            "matched": matched,
            "offset": offset,
            "limit": limit,
            "parameters": parameters,
            "metrics": metrics,
            "runs": records,
            "finite": self._finite_of(records),
        }

    def _keys(self, experiment: str | None) -> list[tuple[RunKey, float]]:
        try:
            if experiment is not None:
                self.store.experiment(experiment)  # raises RunNotFoundError
            return self.store.run_keys(experiment, unassigned=experiment is None)
        except RunNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc

    def _overview(self, experiment: str | None) -> list[RunOverview]:
        try:
            if experiment is not None:
                self.store.experiment(experiment)  # raises RunNotFoundError
            return self.store.run_overview(experiment, unassigned=experiment is None)
        except RunNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc

    def _finite_where_needed(
        self, ids: list[int], metric: str, stat: str
    ) -> dict[int, MetricSummary]:
        """Summaries of one metric for sorting and filtering; where min, max, avg or std
        is not finite (a diverged run), the value over the finite points instead."""
        import msgspec

        summaries = self.store.metric_summaries(ids, metric)
        field = STATISTICS.get(stat, "last")
        if field in ("last", "count"):
            return summaries
        bad = [i for i, s in summaries.items() if not math.isfinite(getattr(s, field))]
        for run_id, stats in self.store.step_stats_of(bad, metric).items():
            finite = finite_summary(stats)
            summaries[run_id] = msgspec.structs.replace(
                summaries[run_id], **{k: finite[k] for k in ("min", "max", "avg", "std")}
            )
        return summaries

    def _finite_of(self, records: list[RunRecord]) -> dict[str, dict[str, Any]]:
        """Finite summaries of the metrics that hold non-finite points, by run and metric."""
        wanted: dict[str, list[RunRecord]] = {}
        for record in records:
            for name, summary in record.metrics.items():
                if not all(map(math.isfinite, (summary.min, summary.max, summary.avg))):
                    wanted.setdefault(name, []).append(record)
        found: dict[str, dict[str, Any]] = {}
        for name, having in wanted.items():
            keys = [self.store.find_run(r.experiment_name, r.run_name) for r in having]
            stats = self.store.step_stats_of([k.run_id for k in keys], name)
            for key in keys:
                if key.run_id in stats:
                    found.setdefault(key.run_name, {})[name] = finite_summary(stats[key.run_id])
        return found

    def run(self, query: Query) -> dict[str, Any]:
        key = self._key(query)
        record = self.store.records([key])[0]
        metrics = []
        for name in self.store.metric_names(key.run_id):
            entry: dict[str, Any] = {
                "metric": name,
                "workers": self.store.workers_of_metric(key.run_id, name),
            }
            summary = record.metrics.get(name)
            if summary and not all(map(math.isfinite, (summary.min, summary.max, summary.avg))):
                entry["finite"] = finite_summary(self._stats(key, name, None))
            metrics.append(entry)
        return {"run": record, "metrics": metrics}

    def curves(self, query: Query) -> dict[str, Any]:
        """Several runs' lines of one metric (the experiment page's charts)."""
        experiment = _experiment(query)
        metric = _required(query, "metric")
        try:
            names = json.loads(_required(query, "runs"))
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(400, "runs must be a JSON list of run names")
        if not 1 <= len(names) <= MAX_CURVE_RUNS:
            raise ApiError(400, f"runs must name 1 to {MAX_CURVE_RUNS} runs, got {len(names)}")
        x = query.get("x", "step")
        if x not in _X_AXES:
            raise ApiError(400, f"x must be one of {', '.join(_X_AXES)}, got {x!r}")
        group = query.get("group") or None
        if group is not None and x != "step":
            raise ApiError(400, "group needs x=step (runs are aligned by step)")
        points = _integer(query, "points", DEFAULT_POINTS, 1, MAX_POINTS)
        bounds = _number(query, "from"), _number(query, "to")
        try:
            keys = [self.store.find_run(experiment, n) for n in dict.fromkeys(names)]
        except RunNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc
        records = self.store.records(keys)
        stats = self.store.step_stats_of([k.run_id for k in keys], metric)
        runs = [
            (record, stats[key.run_id])
            for key, record in zip(keys, records, strict=True)
            if key.run_id in stats
        ]
        return curve_lines(metric, runs, x, group, points, bounds)

    def graphs(self, query: Query) -> dict[str, Any]:
        """The run's graphs (``log_precision_recall`` and the like): the official documents."""
        return {"graphs": run_graphs(self.store, self._key(query).run_id)}

    def series(self, query: Query) -> dict[str, Any]:
        key = self._key(query)
        metric = _required(query, "metric")
        view = query.get("view", "merged")
        if view not in ("merged", "workers"):
            raise ApiError(400, f"view must be 'merged' or 'workers', got {view!r}")
        points = _integer(query, "points", DEFAULT_POINTS, 1, MAX_POINTS)
        bounds = _number(query, "from"), _number(query, "to")
        workers: list[str | None] = [None]
        if view == "workers":
            workers = list(self.store.workers_of_metric(key.run_id, metric))
        stats = [self._stats(key, metric, w) for w in workers]
        return series_lines(metric, stats, workers, points, bounds)

    def best(self, query: Query) -> dict[str, Any]:
        experiment = _experiment(query, allow_unassigned_flag=True)
        metric = _required(query, "metric")
        maximize = _boolean(query, "maximize")
        stat = query.get("stat", "Last")
        try:
            record, value = select_best(
                self._read_runs(experiment), metric, maximize=maximize, stat=stat
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return {"run": record, "metric": metric, "stat": stat, "maximize": maximize, "value": value}

    def file(self, query: Query) -> StoredFile:
        """The stored file behind an artifact; only files the store itself wrote."""
        record = self.store.records([self._key(query)])[0]
        direction = query.get("direction", "output")
        if direction not in ("input", "output"):
            raise ApiError(400, f"direction must be 'input' or 'output', got {direction!r}")
        name = _required(query, "name")
        artifact = getattr(record.artifacts, direction).get(name)
        if artifact is None:
            raise ApiError(404, f"run {record.run_name!r} has no {direction} artifact {name!r}")
        path = self._stored_path(artifact)
        if path is None:
            raise ApiError(404, f"artifact {name!r} is {artifact.value!r}, not a stored file")
        # Stores written before media types were checked may hold anything: only a value of
        # a media type's shape is sent as one.
        media_type = artifact.media_type
        if not is_media_type(media_type):
            media_type = "application/octet-stream"
        return StoredFile(path, name, media_type)

    def _stored_path(self, artifact: Artifact) -> Path | None:
        # The path is rebuilt from a validated hash, never taken from the stored value, so
        # no record can point the server outside the store's artifact directory.
        sha = artifact.sha256 or ""
        if not _SHA256.fullmatch(sha) or artifact.value != f"artifacts/sha256/{sha[:2]}/{sha}":
            return None
        path = self.store.artifact_dir / "sha256" / sha[:2] / sha
        return path if path.is_file() else None

    def _read_runs(self, experiment: str | None) -> list[RunRecord]:
        try:
            return read_runs(self.store, experiment)
        except RunNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc

    def _key(self, query: Query) -> RunKey:
        try:
            return self.store.find_run(_experiment(query), _required(query, "run"))
        except RunNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc

    def _stats(self, key: RunKey, metric: str, worker: str | None) -> StepStats:
        version = self.store.metric_version(key.run_id, metric, worker)
        if version == 0:
            raise ApiError(404, f"run {key.run_name!r} has no metric {metric!r}")
        cache_key = (key.run_id, metric, worker, version)
        with self._cache_lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
        try:
            stats = self.store.step_stats(key.run_id, metric, worker)
        except RunNotFoundError as exc:
            raise ApiError(404, f"run {key.run_name!r} has no metric {metric!r}") from exc
        with self._cache_lock:
            self._cache[cache_key] = stats
            while len(self._cache) > _CACHED_SERIES:
                self._cache.popitem(last=False)
        return stats


def series_lines(
    metric: str,
    stats: list[StepStats],
    workers: list[str | None],
    points: int,
    bounds: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Step statistics as chart lines, downsampled for display (see the module doc)."""
    stepped = any(bool((s.step >= 0).any()) for s in stats)
    axis = "step" if stepped or not any(len(s) for s in stats) else "time"
    lines = []
    first_bad: float | None = None
    for worker, rows in zip(workers, stats, strict=True):
        line, bad = _line(rows, axis, points, bounds)
        lines.append({"worker": worker, **line})
        if bad is not None and (first_bad is None or bad < first_bad):
            first_bad = bad
    return {"metric": metric, "axis": axis, "first_nonfinite": first_bad, "lines": lines}


def _line(
    rows: StepStats, axis: str, points: int, bounds: tuple[float | None, float | None]
) -> tuple[dict[str, Any], float | None]:
    # Rows are sorted by step and points without one sit at negative keys, first: slicing
    # (a view) separates them without copying a million records.
    unstepped = int(np.searchsorted(rows.step, 0))
    if axis == "step":
        rows = rows.take(slice(unstepped, None))
        x = rows.step.astype(np.float64)
    else:  # one point per call, keyed -(microsecond + 1): newest first, so reversed
        rows = rows.take(slice(None, None, -1))
        x = key_time(rows.step)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = rows.sum / rows.count
    bad = np.flatnonzero(~np.isfinite(y))
    first_bad = float(x[bad[0]]) if len(bad) else None
    part = window(x, *bounds)
    keep = downsample(x[part], y[part], points) + (part.start or 0)
    line = {
        "steps": len(rows),
        "unstepped": unstepped if axis == "step" else 0,
        "x": x[keep].tolist(),
        "y": y[keep].tolist(),
        "min": rows.min[keep].tolist(),
        "max": rows.max[keep].tolist(),
    }
    return line, first_bad


def curve_lines(
    metric: str,
    runs: list[tuple[RunRecord, StepStats]],
    x: str,
    group: str | None,
    points: int,
    bounds: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Lines of several runs for one chart, or their groups' means (see the module doc)."""
    stepped = any(bool((s.step >= 0).any()) for _, s in runs)
    axis = "relative" if x == "relative" else "step" if x == "step" and stepped else "time"
    first_bad: float | None = None
    parts = []
    for record, rows in runs:
        unstepped = int(np.searchsorted(rows.step, 0))
        if stepped:
            rows = rows.take(slice(unstepped, None))
            times = rows.last_ts
        else:  # one point per call, keyed -(microsecond + 1): newest first
            rows = rows.take(slice(None, None, -1))
            times = key_time(rows.step)
        if not len(rows):
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            y = rows.sum / rows.count
        if axis == "step":
            xs = rows.step.astype(np.float64)
        else:
            xs = np.asarray(times, dtype=np.float64)
            if axis == "relative":
                xs = xs - (record.start_time or float(xs.min()))
            order = np.argsort(xs, kind="stable")
            xs, y, rows = xs[order], y[order], rows.take(order)
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad) and (first_bad is None or xs[bad[0]] < first_bad):
            first_bad = float(xs[bad[0]])
        parts.append((record, xs, y, rows))
    lines = []
    if group is None:
        for record, xs, y, rows in parts:
            part = window(xs, *bounds)
            keep = downsample(xs[part], y[part], points) + (part.start or 0)
            lines.append(
                {
                    "run": record.run_name,
                    "label": record.run_name,
                    "steps": len(rows),
                    "x": xs[keep].tolist(),
                    "y": y[keep].tolist(),
                    "min": rows.min[keep].tolist(),
                    "max": rows.max[keep].tolist(),
                }
            )
    else:
        lines = _group_lines(group, parts, points, bounds)
    return {"metric": metric, "axis": axis, "first_nonfinite": first_bad, "lines": lines}


def _group_lines(
    group: str,
    parts: list[tuple[RunRecord, Any, Any, StepStats]],
    points: int,
    bounds: tuple[float | None, float | None],
) -> list[dict[str, Any]]:
    """Each group's mean at each step over its runs' finite values, with its min-max band."""
    members: dict[object, list[tuple[Any, Any]]] = {}
    for record, xs, y, _ in parts:
        value = record.parameters.get(group)
        ident = "NaN" if isinstance(value, float) and math.isnan(value) else value
        members.setdefault(ident, []).append((xs, y))

    def order(value: object) -> tuple[int, Any]:
        if value is None:
            return (2, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value)
        return (1, str(value))

    lines = []
    for member in sorted(members, key=order):
        xs = np.concatenate([m[0] for m in members[member]])
        ys = np.concatenate([m[1] for m in members[member]])
        ok = np.isfinite(ys)
        steps, inverse = np.unique(xs[ok], return_inverse=True)
        n = np.bincount(inverse, minlength=len(steps))
        mean = np.bincount(inverse, weights=ys[ok], minlength=len(steps)) / np.maximum(n, 1)
        lo = np.full(len(steps), np.inf)
        hi = np.full(len(steps), -np.inf)
        np.minimum.at(lo, inverse, ys[ok])
        np.maximum.at(hi, inverse, ys[ok])
        part = window(steps, *bounds)
        keep = downsample(steps[part], mean[part], points) + (part.start or 0)
        shown = "(none)" if member is None else _param_text(member)
        lines.append(
            {
                "group": member,
                "label": f"{group}={shown} ({_runs_text(len(members[member]))})",
                "runs": len(members[member]),
                "steps": len(steps),
                "x": steps[keep].tolist(),
                "y": mean[keep].tolist(),
                "min": lo[keep].tolist(),
                "max": hi[keep].tolist(),
            }
        )
    return lines


def _runs_text(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _param_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _stat(query: Query) -> str:
    raw = query.get("stat", "Last")
    for name, field in STATISTICS.items():
        if raw.lower() in (name.lower(), field):
            return name
    raise ApiError(400, f"stat must be one of {', '.join(STATISTICS)}, got {raw!r}")


def _encoded(endpoint: Callable[[Query], Any]) -> Callable[[Query], Any]:
    def answer(query: Query) -> Any:
        return jsonable(endpoint(query))

    return answer


def _required(query: Query, name: str) -> str:
    value = query.get(name)
    if not value:
        raise ApiError(400, f"the query parameter {name!r} is required")
    return value


def _experiment(query: Query, *, allow_unassigned_flag: bool = False) -> str | None:
    """The experiment named (lowercased, as names are stored), or None for unassigned."""
    experiment = query.get("experiment") or None
    if allow_unassigned_flag:
        unassigned = _boolean(query, "unassigned")
        if unassigned == (experiment is not None):
            raise ApiError(400, "pass either experiment=NAME or unassigned=true")
    return experiment.lower() if experiment else None


def _boolean(query: Query, name: str) -> bool:
    value = query.get(name, "false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, f"{name} must be true or false, got {value!r}")


def _integer(query: Query, name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be an integer from {lo} to {hi}, got {raw!r}")
    return value


def _number(query: Query, name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number, got {raw!r}")
    return value

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
``/api/run?experiment=E&run=R`` (no ``experiment``: an unassigned run)
    ``{"run": RunRecord, "metrics": [{"metric", "workers": [str]}]}``
``/api/series?experiment=E&run=R&metric=M[&view=merged|workers][&points=N][&from=X&to=Y]``
    ``{"metric", "axis": "step"|"time", "first_nonfinite": x|null, "lines": [{"worker":
    str|null, "steps": int, "unstepped": int, "x": [], "y": [], "min": [], "max": []}]}``.
    ``y`` is the mean of the step's values (over workers in the merged view), ``min`` and
    ``max`` their range. Each line is downsampled for display to about ``points`` buckets
    (default 1000, at most 20000) between ``from`` and ``to``; ``steps`` counts all stored
    steps. Points logged without a step are charted by time, one point per call in the
    order logged (``axis: "time"``, x in epoch seconds) when the metric has no stepped
    points, else counted in ``unstepped``; no step is ever made up for them.
``/api/best?experiment=E&metric=M[&maximize=true][&stat=Last]``
    ``{"run": RunRecord, "metric", "stat", "maximize", "value"}``
``/api/file?experiment=E&run=R&name=N[&direction=output|input]``
    the stored file of an artifact logged with ``log_file`` (not JSON)

Errors are ``{"error": message}`` with status 400 (bad parameter) or 404 (no such thing).
"""

from __future__ import annotations

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
from .._run._analytics import read_runs, select_best
from .._run._validate import is_media_type
from .._store import run_graphs

if TYPE_CHECKING:
    from .._core._aggregate import StepStats
    from .._core._batch import RunKey
    from .._core._records import Artifact, RunRecord
    from .._store import LocalStore

__all__ = ("API_VERSION", "Api", "ApiError", "StoredFile", "series_lines")

API_VERSION = 1
DEFAULT_POINTS = 1000
MAX_POINTS = 20_000
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
        return {"experiment_name": experiment, "runs": self._read_runs(experiment)}

    def run(self, query: Query) -> dict[str, Any]:
        key = self._key(query)
        record = self.store.records([key])[0]
        metrics = [
            {"metric": name, "workers": self.store.workers_of_metric(key.run_id, name)}
            for name in self.store.metric_names(key.run_id)
        ]
        return {"run": record, "metrics": metrics}

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

"""Runs read back from an MLflow server, as the same records the store gives.

``runstream runs|show|series --backend mlflow`` read the server of
``MLFLOW_TRACKING_URI`` through :class:`MLflowView`, which answers the store's read
methods, so tables and ``--json`` have the same shapes. A run is the MLflow run of that
name in the experiment of that name (runs with no experiment: MLflow's Default
experiment); metric summaries are computed from each metric's full history
(``metrics/get-history``); parameters that look like numbers are read as numbers;
``workers`` come from the ``runstream.workers`` tag (with the run's status: MLflow keeps
no per-worker state); artifacts from the ``runstream.input.*``/``runstream.output.*`` tags.
MLflow has no step-less points: they are points at step 0, and read back as that step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import numpy as np

from ..._core import _aggregate
from ..._core._batch import RunKey
from ..._core._exceptions import BackendError, RunNotFoundError, RunstreamError
from ..._core._records import (
    Artifact,
    Artifacts,
    ExperimentRecord,
    MetricSummary,
    RunRecord,
    Series,
    WorkerRecord,
)
from ._client import MLflowClient, MLflowError, classify
from ._endpoint import EndpointError, endpoint_from_uri
from ._sender import DEFAULT_EXPERIMENT, STATUS

__all__ = ("MLflowView",)

T = TypeVar("T")
_FROM_STATUS = {v: k for k, v in STATUS.items()} | {
    "RUNNING": "InProgress",
    "SCHEDULED": "InProgress",
}


class MLflowView:
    """The read side of a store, from an MLflow server."""

    def __init__(self, uri: str | None = None) -> None:
        try:
            self._endpoint = endpoint_from_uri(uri)
        except EndpointError as exc:
            raise BackendError(str(exc)) from exc
        self._runs: dict[int, tuple[str | None, str, dict[str, Any]]] = {}

    # -- what runstream runs/show/series call ----------------------------------------------

    def experiment(self, name: str) -> ExperimentRecord:
        async def main(client: MLflowClient) -> ExperimentRecord:
            found = await self._experiment(client, name)
            runs = await self._search(client, str(found["experiment_id"]))
            return ExperimentRecord(
                experiment_name=name,
                display_name=name,
                created=float(found.get("creation_time") or 0) / 1000,
                run_count=len(runs),
            )

        return self._call(main)

    def run_keys(
        self, experiment_name: str | None, *, unassigned: bool = False
    ) -> list[tuple[RunKey, float]]:
        async def main(client: MLflowClient) -> list[tuple[RunKey, float]]:
            if unassigned or experiment_name is None:
                experiment_id, name = DEFAULT_EXPERIMENT, None
            else:
                experiment_id = str(
                    (await self._experiment(client, experiment_name))["experiment_id"]
                )
                name = experiment_name
            runs = await self._search(client, experiment_id)
            runs.sort(key=lambda r: (int(r["info"].get("start_time") or 0), r["info"]["run_name"]))
            return [
                (self._key(name, r), float(r["info"].get("start_time") or 0) / 1000) for r in runs
            ]

        return self._call(main)

    def find_run(self, experiment_name: str | None, run_name: str) -> RunKey:
        async def main(client: MLflowClient) -> RunKey:
            if experiment_name is None:
                experiment_id = DEFAULT_EXPERIMENT
            else:
                experiment_id = str(
                    (await self._experiment(client, experiment_name))["experiment_id"]
                )
            found = await client.find_run(experiment_id, run_name)
            if found is None:
                where = experiment_name or "(unassigned)"
                raise RunNotFoundError(f"no run {run_name!r} in MLflow experiment {where!r}")
            return self._key(experiment_name, found)

        return self._call(main)

    def records(self, keys: Sequence[RunKey]) -> list[RunRecord]:
        async def main(client: MLflowClient) -> list[RunRecord]:
            out = []
            for key in keys:
                experiment, _, run = self._runs[key.run_id]
                out.append(await self._record(client, experiment, run))
            return out

        return self._call(main)

    def metric_names(self, run_id: int) -> list[str]:
        _, _, run = self._runs[run_id]
        return sorted(m["key"] for m in run.get("data", {}).get("metrics", []))

    def workers_of_metric(self, run_id: int, name: str) -> list[str]:
        return []  # MLflow holds the merged series only

    def series(self, run_id: int, name: str, worker: str | None = None) -> Series:
        if worker is not None:
            raise BackendError("MLflow holds the merged series only: read --worker locally")
        _, _, run = self._runs[run_id]
        run_uuid = str(run["info"]["run_id"])

        async def main(client: MLflowClient) -> Series:
            points = await _history(client, run_uuid, name)
            return Series(name, _stats(points))

        return self._call(main)

    def worker_series(self, run_id: int, name: str) -> dict[str, Series]:
        raise BackendError("MLflow holds the merged series only: read --by-worker locally")

    # -- helpers ----------------------------------------------------------------------------

    def _key(self, experiment: str | None, run: dict[str, Any]) -> RunKey:
        run_id = len(self._runs) + 1
        self._runs[run_id] = (experiment, str(run["info"]["run_name"]), run)
        return RunKey(run_id, experiment, str(run["info"]["run_name"]))

    @staticmethod
    async def _experiment(client: MLflowClient, name: str) -> dict[str, Any]:
        try:
            found = await client.get("experiments/get-by-name", experiment_name=name)
        except MLflowError as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                raise RunNotFoundError(f"no experiment named {name!r} in MLflow") from exc
            raise
        experiment: dict[str, Any] = found["experiment"]
        return experiment

    @staticmethod
    async def _search(client: MLflowClient, experiment_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 1000}
            if token:
                body["page_token"] = token
            page = await client.post("runs/search", body)
            runs.extend(page.get("runs") or [])
            token = page.get("next_page_token")
            if not token:
                return runs

    async def _record(
        self, client: MLflowClient, experiment: str | None, run: dict[str, Any]
    ) -> RunRecord:
        info, data = run["info"], run.get("data", {})
        tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        status = _FROM_STATUS.get(str(info.get("status")), "InProgress")
        metrics = {}
        for name in sorted({m["key"] for m in data.get("metrics", [])}):
            metrics[name] = _summary(await _history(client, str(info["run_id"]), name))
        start = _seconds(info.get("start_time"))
        end = _seconds(info.get("end_time"))
        artifacts: dict[str, dict[str, Artifact]] = {"input": {}, "output": {}}
        for key, value in tags.items():
            for direction in ("input", "output"):
                prefix = f"runstream.{direction}."
                if key.startswith(prefix) and not key.endswith(".media_type"):
                    name = key[len(prefix) :]
                    artifacts[direction][name] = Artifact(
                        value=value, media_type=tags.get(f"{key}.media_type")
                    )
        workers = [w for w in tags.get("runstream.workers", "").split(",") if w]
        return RunRecord(
            experiment_name=experiment,
            run_name=str(info["run_name"]),
            trial_component_name=tags.get("runstream.trial_component_name", str(info["run_name"])),
            status=status,
            created=start or 0.0,
            start_time=start,
            end_time=end if status != "InProgress" else None,
            parameters={p["key"]: _number(p["value"]) for p in data.get("params", [])},
            metrics=metrics,
            artifacts=Artifacts(input=artifacts["input"], output=artifacts["output"]),
            workers=[
                WorkerRecord(worker=w, status=status, start_time=start, end_time=end)
                for w in workers
            ],
        )

    def _call(self, main: Callable[[MLflowClient], Awaitable[T]]) -> T:
        async def run() -> T:
            async with MLflowClient(self._endpoint) as client:
                return await main(client)

        try:
            return anyio.run(run)
        except RunstreamError:
            raise
        except Exception as exc:
            raise BackendError(f"reading from MLflow failed: {classify(exc)}") from exc


async def _history(client: MLflowClient, run_id: str, name: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"run_id": run_id, "metric_key": name, "max_results": 25000}
        if token:
            params["page_token"] = token
        page = await client.get("metrics/get-history", **params)
        points.extend(page.get("metrics") or [])
        token = page.get("next_page_token")
        if not token:
            return points


def _stats(points: list[dict[str, Any]]) -> _aggregate.StepStats:
    if not points:
        return _aggregate.empty()
    points = sorted(points, key=lambda p: (int(p.get("step") or 0), int(p["timestamp"])))
    steps = np.array([int(p.get("step") or 0) for p in points], np.int64)
    values = np.array([float(p["value"]) for p in points], np.float64)
    times = np.array([int(p["timestamp"]) / 1000 for p in points], np.float64)
    return _aggregate.from_points(steps, values, times)


def _summary(points: list[dict[str, Any]]) -> MetricSummary:
    values = np.array([float(p["value"]) for p in points], np.float64)
    if not len(values):
        nan = float("nan")
        return MetricSummary(min=nan, max=nan, avg=nan, std=nan, last=nan, count=0)
    latest = max(points, key=lambda p: (int(p["timestamp"]), int(p.get("step") or 0)))
    with np.errstate(all="ignore"):
        return MetricSummary(
            min=float(np.min(values)),
            max=float(np.max(values)),
            avg=float(np.mean(values)),
            std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            last=float(latest["value"]),
            count=len(values),
            last_step=int(max(int(p.get("step") or 0) for p in points)),
            timestamp=int(latest["timestamp"]) / 1000,
        )


def _seconds(ms: Any) -> float | None:
    return None if ms in (None, "", 0) else int(ms) / 1000


def _number(text: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text

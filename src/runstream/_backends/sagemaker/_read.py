"""Runs read back from SageMaker, as the same :class:`~runstream.RunRecord` the store gives.

A run is a trial component of the experiment's run group (``Default-Run-Group-<exp>``)
named ``<experiment>-<run>``; DescribeTrialComponent gives its status, times,
parameters, artifacts and the service's metric summaries. ``workers`` is empty: the
service does not know them.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

from ..._core import _names
from ..._core._batch import RunKey
from ..._core._exceptions import BackendError, RunNotFoundError, RunstreamError
from ..._core._records import Artifact, Artifacts, ExperimentRecord, MetricSummary, RunRecord
from ._clients import Clients, Failure, classify, open_clients, session_for
from ._hosts import PREFIX as HOST_PREFIX
from ._ratelimit import bucket

__all__ = ("SageMakerView", "read_run", "read_runs", "record_from_trial_component")

T = TypeVar("T")

_READ_CONCURRENCY = 4


def read_runs(experiment: str) -> list[RunRecord]:
    """Every run of ``experiment`` in SageMaker, oldest first."""
    return _run(lambda: _read_runs(experiment))


def read_run(experiment: str | None, run: str) -> RunRecord:
    """One run from SageMaker. :raises RunNotFoundError: no such trial component."""
    return _run(lambda: _read_run(experiment, run))


async def _read_runs(experiment: str) -> list[RunRecord]:
    async with open_clients(session_for()) as clients:
        names = await _run_trial_components(clients, experiment)
        records: dict[str, RunRecord] = {}
        limiter = anyio.CapacityLimiter(_READ_CONCURRENCY)

        async def one(name: str) -> None:
            async with limiter:
                records[name] = await _describe(clients, experiment, name)

        async with anyio.create_task_group() as tasks:
            for name in names:
                tasks.start_soon(one, name)
    return sorted(records.values(), key=lambda r: (r.created, r.run_name))


async def _read_run(experiment: str | None, run: str) -> RunRecord:
    name = _names.trial_component_name(experiment, run)
    async with open_clients(session_for()) as clients:
        return await _describe(clients, experiment, name)


async def _run_trial_components(clients: Clients, experiment: str) -> list[str]:
    trial = _names.run_group_name(experiment)
    prefix = f"{experiment}-"
    names: list[str] = []
    token: str | None = None
    while True:
        await bucket("control").take()
        args: dict[str, Any] = {"TrialName": trial, "MaxResults": 100}
        if token:
            args["NextToken"] = token
        try:
            page = await clients.sagemaker.list_trial_components(**args)
        except Exception as exc:
            if classify(exc).failure is Failure.REJECTED:
                raise RunNotFoundError(
                    f"no experiment named {experiment!r} in SageMaker ({classify(exc)})"
                ) from exc
            raise
        names.extend(
            s["TrialComponentName"]
            for s in page.get("TrialComponentSummaries", [])
            if s["TrialComponentName"].startswith(prefix)
        )
        token = page.get("NextToken")
        if not token:
            return names


async def _describe(clients: Clients, experiment: str | None, name: str) -> RunRecord:
    await bucket("control").take()
    try:
        found = await clients.sagemaker.describe_trial_component(TrialComponentName=name)
    except Exception as exc:
        if classify(exc).failure is Failure.REJECTED:
            raise RunNotFoundError(f"no run {name!r} in SageMaker ({classify(exc)})") from exc
        raise
    return record_from_trial_component(found, experiment)


def record_from_trial_component(tc: dict[str, Any], experiment: str | None) -> RunRecord:
    name = str(tc["TrialComponentName"])
    run = name[len(experiment) + 1 :] if experiment and name.startswith(f"{experiment}-") else name
    status = tc.get("Status") or {}
    primary = str(status.get("PrimaryStatus") or "InProgress")
    return RunRecord(
        experiment_name=experiment,
        run_name=run,
        trial_component_name=name,
        status=primary,
        message=None if primary == "InProgress" else status.get("Message"),
        created=_epoch(tc.get("CreationTime")) or 0.0,
        start_time=_epoch(tc.get("StartTime")),
        end_time=_epoch(tc.get("EndTime")),
        parameters={
            k: _parameter(v)
            for k, v in (tc.get("Parameters") or {}).items()
            if not k.startswith(HOST_PREFIX)  # each host's status: the run's is `status`
        },
        metrics={str(m["MetricName"]): _summary(m) for m in tc.get("Metrics") or ()},
        artifacts=Artifacts(
            input=_artifacts(tc.get("InputArtifacts")),
            output=_artifacts(tc.get("OutputArtifacts")),
        ),
    )


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _parameter(value: dict[str, Any]) -> str | int | float:
    if "NumberValue" in value:
        return float(value["NumberValue"])
    return str(value.get("StringValue", ""))


def _summary(metric: dict[str, Any]) -> MetricSummary:
    def number(key: str) -> float:
        value = metric.get(key)
        return math.nan if value is None else float(value)

    return MetricSummary(
        min=number("Min"),
        max=number("Max"),
        avg=number("Avg"),
        std=number("StdDev"),
        last=number("Last"),
        count=int(metric.get("Count") or 0),
        timestamp=_epoch(metric.get("TimeStamp")),
    )


def _artifacts(raw: dict[str, Any] | None) -> dict[str, Artifact]:
    return {
        str(name): Artifact(value=str(a.get("Value", "")), media_type=a.get("MediaType"))
        for name, a in (raw or {}).items()
    }


class SageMakerView:
    """The read side of a store, from SageMaker: what ``runstream runs`` and ``show`` call
    on a :class:`~runstream._store.LocalStore`, so ``--backend sagemaker`` prints the same
    tables and the same ``--json`` as the local store does."""

    def __init__(self) -> None:
        self._names: dict[int, tuple[str | None, str]] = {}

    def experiment(self, name: str) -> ExperimentRecord:
        async def main() -> ExperimentRecord:
            async with open_clients(session_for()) as clients:
                await bucket("control").take()
                try:
                    found = await clients.sagemaker.describe_experiment(ExperimentName=name)
                except Exception as exc:
                    raise _not_found(f"no experiment named {name!r} in SageMaker", exc) from exc
                runs = await _run_trial_components(clients, name)
            return ExperimentRecord(
                experiment_name=name,
                display_name=found.get("DisplayName"),
                description=found.get("Description"),
                created=_epoch(found.get("CreationTime")) or 0.0,
                run_count=len(runs),
            )

        return _run(main)

    def run_keys(
        self, experiment_name: str | None, *, unassigned: bool = False
    ) -> list[tuple[RunKey, float]]:
        if unassigned or experiment_name is None:
            raise BackendError("SageMaker has no unassigned runs to list: name an experiment")
        records = _run(lambda: _read_runs(experiment_name))
        return [(self._key(r.experiment_name, r.run_name), r.created) for r in records]

    def find_run(self, experiment_name: str | None, run_name: str) -> RunKey:
        return self._key(experiment_name, run_name)

    def records(self, keys: Sequence[RunKey]) -> list[RunRecord]:
        async def main() -> list[RunRecord]:
            found: dict[int, RunRecord] = {}
            async with open_clients(session_for()) as clients:
                limiter = anyio.CapacityLimiter(_READ_CONCURRENCY)

                async def one(key: RunKey) -> None:
                    exp = key.experiment_name
                    name = _names.trial_component_name(exp, key.run_name)
                    async with limiter:
                        found[key.run_id] = await _describe(clients, exp, name)

                async with anyio.create_task_group() as tasks:
                    for key in keys:
                        tasks.start_soon(one, key)
            return [found[k.run_id] for k in keys]

        return _run(main)

    def _key(self, experiment: str | None, run: str) -> RunKey:
        run_id = len(self._names) + 1
        self._names[run_id] = (experiment, run)
        return RunKey(run_id, experiment, run)


def _not_found(message: str, exc: Exception) -> Exception:
    outcome = classify(exc)
    if outcome.code == "ResourceNotFound":  # what SageMaker answers for a missing entity
        return RunNotFoundError(f"{message} ({outcome})")
    return BackendError(f"SageMaker: {outcome}")


def _run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        return anyio.run(main)
    except RunstreamError:
        raise
    except Exception as exc:
        raise BackendError(f"reading from SageMaker failed: {classify(exc)}") from exc

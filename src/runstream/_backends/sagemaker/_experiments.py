"""``Experiment`` under ``backend="sagemaker"``: each method is its SageMaker API call.

Blocking, in a thread of their own (the caller may be inside an event loop), with
botocore's standard retries: these are control-plane calls a user makes once, not the
run's sync. AWS errors are raised as botocore's ``ClientError``, as the official SDK
raises them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio
from botocore.config import Config

from .._thread import in_thread
from ._clients import session_for

__all__ = (
    "create_experiment",
    "delete_all",
    "delete_experiment",
    "describe_experiment",
    "list_trials",
    "update_experiment",
)

T = TypeVar("T")
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="runstream")


def _call(session: object | None, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        async with session_for(session).client("sagemaker", config=_CONFIG) as sm:
            return await work(sm)

    return in_thread(lambda: anyio.run(main), "runstream-experiment")


def _given(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def create_experiment(
    session: object | None,
    name: str,
    display_name: str | None,
    description: str | None,
    tags: list[dict[str, str]] | None,
) -> dict[str, Any]:
    request = _given(
        ExperimentName=name, DisplayName=display_name, Description=description, Tags=tags
    )

    async def work(sm: Any) -> dict[str, Any]:
        found: dict[str, Any] = await sm.create_experiment(**request)
        return found

    return _call(session, work)


def describe_experiment(session: object | None, name: str) -> dict[str, Any]:
    async def work(sm: Any) -> dict[str, Any]:
        found: dict[str, Any] = await sm.describe_experiment(ExperimentName=name)
        return found

    return _call(session, work)


def update_experiment(
    session: object | None, name: str, display_name: str | None, description: str | None
) -> None:
    request = _given(ExperimentName=name, DisplayName=display_name, Description=description)

    async def work(sm: Any) -> None:
        await sm.update_experiment(**request)

    _call(session, work)


def delete_experiment(session: object | None, name: str) -> None:
    async def work(sm: Any) -> None:
        await sm.delete_experiment(ExperimentName=name)

    _call(session, work)


async def _trials(sm: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = await sm.list_trials(**request, **_given(NextToken=token))
        found.extend(page.get("TrialSummaries") or [])
        token = page.get("NextToken")
        if not token:
            return found


def list_trials(
    session: object | None,
    name: str,
    created_before: datetime | None,
    created_after: datetime | None,
    sort_by: str | None,
    sort_order: str | None,
) -> list[dict[str, Any]]:
    request = _given(
        ExperimentName=name,
        CreatedBefore=created_before,
        CreatedAfter=created_after,
        SortBy=sort_by,
        SortOrder=sort_order,
    )
    return _call(session, lambda sm: _trials(sm, request))


def delete_all(session: object | None, name: str) -> None:
    """The experiment, its trials and their trial components (disassociated first)."""

    async def work(sm: Any) -> None:
        for trial in await _trials(sm, {"ExperimentName": name}):
            trial_name = trial["TrialName"]
            token: str | None = None
            while True:
                page = await sm.list_trial_components(
                    TrialName=trial_name, **_given(NextToken=token)
                )
                for component in page.get("TrialComponentSummaries") or []:
                    tc = component["TrialComponentName"]
                    await sm.disassociate_trial_component(
                        TrialComponentName=tc, TrialName=trial_name
                    )
                    await sm.delete_trial_component(TrialComponentName=tc)
                token = page.get("NextToken")
                if not token:
                    break
            await sm.delete_trial(TrialName=trial_name)
        await sm.delete_experiment(ExperimentName=name)

    _call(session, work)

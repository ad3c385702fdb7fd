"""``load_run()`` inside a SageMaker training, processing or transform job.

As the official SDK: ``TRAINING_JOB_ARN``, else the processing job's config file, else
``TRANSFORM_JOB_ARN`` names the job; describing it gives the ``ExperimentConfig`` its
launcher attached (``RunName`` there is the trial-component name ``<experiment>-<run>``).
The describe call is retried 4 times (1, 2, 4 s apart), as the official SDK does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import anyio

from ..._core._environment import running_in_job
from ..._flush._backoff import Backoff
from ._clients import open_clients, session_for

__all__ = ("job_run",)

_ATTEMPTS = 4


def job_run(
    sagemaker_session: object | None = None,
    environ: Mapping[str, str] = os.environ,
    processing_config: str | None = None,
) -> tuple[str, str] | None:
    """``(experiment, run)`` of the job this process runs in, or ``None`` outside a job.

    :raises RuntimeError: the job has no ``RunName`` in its ExperimentConfig
    """
    job = running_in_job(environ, processing_config)
    if job is None:
        return None
    kind, name = job
    described = anyio.run(_describe, kind, name, sagemaker_session)
    config = described.get("ExperimentConfig") or {}
    if not config.get("RunName") or not config.get("ExperimentName"):
        raise RuntimeError(
            "Not able to fetch RunName in ExperimentConfig of the sagemaker job. "
            "Please make sure the ExperimentConfig is correctly set."
        )
    experiment = str(config["ExperimentName"]).lower()
    run = str(config["RunName"]).lower().replace(f"{experiment}-", "", 1)
    return experiment, run


async def _describe(kind: str, name: str, sagemaker_session: object | None) -> dict[str, Any]:
    async with open_clients(session_for(sagemaker_session)) as clients:
        operation = getattr(clients.sagemaker, f"describe_{kind}_job")
        argument = {f"{kind.capitalize()}JobName": name}
        backoff = Backoff(base=1.0, jitter=False)  # 1, 2, 4 s, as the official SDK
        for attempt in range(_ATTEMPTS):
            try:
                found: dict[str, Any] = await operation(**argument)
            except Exception:
                if attempt == _ATTEMPTS - 1:
                    raise
                backoff.failed()
                await backoff.wait()
            else:
                return found
    raise AssertionError("unreachable")  # pragma: no cover

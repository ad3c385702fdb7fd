"""Where a run's data goes besides the local store, which is always written first.

``Run(..., backend="sagemaker")`` or ``RUNSTREAM_BACKEND=sagemaker`` adds a *companion*:
a task that runs in the run's flusher event loop and syncs what the store holds to
SageMaker Experiments and S3 (:mod:`runstream._aws`). The default, ``"local"``, has none.
A companion is started after the run's credentials were checked, and closed after the
run's last local write and final status, so it sends those too.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._records import SyncStatus
    from ._store import LocalStore

__all__ = (
    "BACKENDS",
    "ENV_BACKEND",
    "Companion",
    "job_run",
    "open_companions",
    "resolve_backend",
    "running_in_job",
)

ENV_BACKEND = "RUNSTREAM_BACKEND"
BACKENDS = ("local", "sagemaker")
# How the official SDK recognizes a SageMaker job (sagemaker/experiments/_environment.py).
TRAINING_JOB_ARN_ENV = "TRAINING_JOB_ARN"
TRANSFORM_JOB_ARN_ENV = "TRANSFORM_JOB_ARN"
PROCESSING_JOB_CONFIG_PATH = "/opt/ml/config/processingjobconfig.json"


class Companion(Protocol):
    """A task beside the flusher, in its event loop."""

    async def run(self, blocking: Callable[[Callable[[], Any]], Awaitable[Any]]) -> None:
        """Serve until :meth:`close`, then finish (bounded) and return. Never raises."""

    def close(self) -> None:
        """Thread-safe: the run's last data and status are in the store."""

    @property
    def status(self) -> SyncStatus | None: ...


def resolve_backend(backend: str | None, experiment: str | None, tc_name: str) -> str:
    """The backend named by the argument, else ``$RUNSTREAM_BACKEND``, else ``"local"``.

    :raises ValueError: an unknown backend, or names SageMaker would refuse
    :raises ImportError: ``"sagemaker"`` without the ``aws`` extra installed
    """
    name = backend if backend is not None else os.environ.get(ENV_BACKEND) or "local"
    source = "backend" if backend is not None else ENV_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"{source}={name!r} is not a backend; choose one of {BACKENDS}")
    if name == "sagemaker":
        if importlib.util.find_spec("aioboto3") is None:
            raise ImportError(
                "backend='sagemaker' needs aioboto3: install runstream's aws extra "
                "(pip install 'runstream[aws]')"
            )
        from ._aws import check_sagemaker_name

        if experiment is not None:
            check_sagemaker_name("experiment_name", experiment)
        check_sagemaker_name("trial component (<experiment>-<run>)", tc_name)
    return name


def open_companions(
    backend: str,
    store: LocalStore,
    run_id: int,
    *,
    artifact_bucket: str | None,
    artifact_prefix: str | None,
    sagemaker_session: object | None,
    close_timeout: float,
) -> list[Companion]:
    """Start what ``backend`` needs beside the flusher (after an early credentials check).

    :raises runstream.BackendError: the backend refuses the run's credentials
    """
    if backend != "sagemaker":
        return []
    from ._aws import SageMakerCompanion, preflight

    companion = SageMakerCompanion(
        store, run_id, sagemaker_session=sagemaker_session, close_timeout=close_timeout
    )
    preflight(
        store,
        run_id,
        bucket_name=artifact_bucket,
        prefix=artifact_prefix,
        sagemaker_session=sagemaker_session,
        owner=companion.owner,
    )
    return [companion]


def running_in_job(
    environ: Mapping[str, str] = os.environ, processing_config: str | None = None
) -> tuple[str, str] | None:
    """``(kind, job name)`` inside a SageMaker training, processing or transform job."""
    processing_config = processing_config or PROCESSING_JOB_CONFIG_PATH
    if environ.get(TRAINING_JOB_ARN_ENV):
        return "training", environ[TRAINING_JOB_ARN_ENV].split("/")[-1]
    if os.path.exists(processing_config):
        with open(processing_config) as config:
            arn = str(json.load(config)["ProcessingJobArn"])
        return "processing", arn.split("/")[-1]
    if environ.get(TRANSFORM_JOB_ARN_ENV):
        return "transform", environ[TRANSFORM_JOB_ARN_ENV].split("/")[-1]
    return None


def job_run(sagemaker_session: object | None = None) -> tuple[str, str] | None:
    """``(experiment, run)`` from the ExperimentConfig of the SageMaker job this process
    runs in, or ``None`` outside one (checked without importing the AWS SDK)."""
    if running_in_job() is None:
        return None
    from ._aws import job_run as describe_job_run

    return describe_job_run(sagemaker_session)

"""Choosing a run's backend and connecting it to the store's sync agent.

``Run(..., backend="sagemaker")`` or ``RUNSTREAM_BACKEND=sagemaker`` checks the
credentials (the preflight: the only AWS work the training process does), registers the
run for sync, and starts the store's *agent* (:mod:`._agent`) if none runs: a process of
its own that sends what the store holds to SageMaker Experiments and S3 and acknowledges
it in the store's journal. The run keeps a *link* (a :class:`Sender`) that reads the sync
state and, inside a SageMaker job, waits for the agent at close. ``backend="mlflow"``
does the same for the MLflow tracking server of ``MLFLOW_TRACKING_URI`` (:mod:`.mlflow`):
its preflight creates-or-gets the MLflow run, and the agent sends it. The default,
``"local"``, has none. The sinks' interface is in :mod:`._sink`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, Protocol

from .._core._environment import running_in_job

if TYPE_CHECKING:
    from .._core._records import SyncStatus
    from .._store import LocalStore

__all__ = (
    "BACKENDS",
    "ENV_BACKEND",
    "ENV_RESOLUTION",
    "RESOLUTIONS",
    "S3_UPLOAD_ARGS",
    "Sender",
    "create_entities",
    "job_run",
    "open_senders",
    "resolve_backend",
    "resolve_resolution",
    "s3_location",
)

ENV_BACKEND = "RUNSTREAM_BACKEND"
ENV_RESOLUTION = "RUNSTREAM_RESOLUTION"
#: ``1``: closing a run waits for the agent to send it (as always inside a SageMaker job)
ENV_CLOSE_WAIT = "RUNSTREAM_CLOSE_WAIT"
RESOLUTIONS = ("auto", "full")
BACKENDS = ("local", "sagemaker", "mlflow")
# What boto3's upload_file takes as ExtraArgs (boto3.s3.transfer.S3Transfer's list),
# known without importing boto3, so log_file(extra_args=) is checked at the call.
S3_UPLOAD_ARGS = frozenset(
    {
        "ACL",
        "CacheControl",
        "ChecksumAlgorithm",
        "ChecksumCRC32",
        "ChecksumCRC32C",
        "ChecksumCRC64NVME",
        "ChecksumSHA1",
        "ChecksumSHA256",
        "ChecksumType",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "ContentType",
        "ExpectedBucketOwner",
        "Expires",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "Metadata",
        "MpuObjectSize",
        "ObjectLockLegalHoldStatus",
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "RequestPayer",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
        "SSEKMSEncryptionContext",
        "SSEKMSKeyId",
        "ServerSideEncryption",
        "StorageClass",
        "Tagging",
        "WebsiteRedirectLocation",
    }
)


class Sender(Protocol):
    """A run's link to remote sending, a task in its flusher's event loop."""

    async def run(self) -> None:
        """Serve until :meth:`close`, then finish (bounded) and return. Never raises."""

    def close(self) -> None:
        """Thread-safe: the run's last data and status are in the store."""

    @property
    def status(self) -> SyncStatus | None: ...

    def file_options(self, direction: str, name: str, extra_args: dict[str, Any]) -> None:
        """``log_file(extra_args=...)`` for the upload of that artifact (thread-safe)."""


def resolve_backend(backend: str | None, experiment: str | None, tc_name: str) -> str:
    """The backend named by the argument, else ``$RUNSTREAM_BACKEND``, else ``"local"``.

    :raises ValueError: an unknown backend, or names SageMaker would refuse
    :raises ImportError: ``"sagemaker"`` without the ``aws`` extra installed
    """
    name = backend if backend is not None else os.environ.get(ENV_BACKEND) or "local"
    source = "backend" if backend is not None else ENV_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"{source}={name!r} is not a backend; choose one of {BACKENDS}")
    if name == "mlflow":
        _check_mlflow()
    if name == "sagemaker":
        if importlib.util.find_spec("aioboto3") is None:
            raise ImportError(
                "backend='sagemaker' needs aioboto3: install runstream's aws extra "
                "(pip install 'runstream[aws]')"
            )
        from .sagemaker import check_sagemaker_name

        if experiment is not None:
            check_sagemaker_name("experiment_name", experiment)
        check_sagemaker_name("trial component (<experiment>-<run>)", tc_name)
    return name


def resolve_resolution(resolution: str | None) -> str:
    """``"auto"`` or ``"full"``: the argument, else ``$RUNSTREAM_RESOLUTION``, else auto."""
    name = resolution if resolution is not None else os.environ.get(ENV_RESOLUTION) or "auto"
    source = "resolution" if resolution is not None else ENV_RESOLUTION
    if name not in RESOLUTIONS:
        raise ValueError(f"{source}={name!r}: choose one of {RESOLUTIONS}")
    return name


def open_senders(
    backend: str,
    store: LocalStore,
    run_id: int,
    run_name: str,
    *,
    artifact_bucket: str | None,
    artifact_prefix: str | None,
    sagemaker_session: object | None,
    close_timeout: float,
    resolution: str = "auto",
) -> list[Sender]:
    """Check the backend's credentials (the last AWS work this process does), register the
    run with the store's sync agent, and start the agent if none runs.

    :raises runstream.BackendError: the backend refuses the run's credentials
    """
    if backend == "mlflow":
        from .mlflow import preflight as mlflow_preflight

        mlflow_preflight(store, run_id)
    elif backend == "sagemaker":
        from .sagemaker import preflight

        bucket, prefix = s3_location(artifact_bucket, artifact_prefix, sagemaker_session)
        preflight(
            store,
            run_id,
            bucket_name=bucket,
            prefix=prefix,
            sagemaker_session=sagemaker_session,
            resolution=resolution,
        )
    else:
        return []
    from ._agent import AgentLink
    from ._sink import sink_named

    link = AgentLink(
        store,
        sink_named(backend),
        run_id,
        run_name,
        close_timeout=close_timeout,
        in_job=running_in_job() is not None or os.environ.get(ENV_CLOSE_WAIT, "") == "1",
    )
    return [link]


def create_entities(
    backend: str,
    store: LocalStore,
    run_id: int,
    *,
    artifact_bucket: str | None,
    artifact_prefix: str | None,
    sagemaker_session: object | None,
) -> None:
    """At ``Run(...)``, as the official constructor: the run's experiment, trial and trial
    component exist in the backend before the ``with`` block (``list_runs`` finds them).

    :raises runstream.BackendError: the backend refuses the run's credentials
    """
    if backend == "mlflow":
        from .mlflow import preflight as mlflow_preflight

        mlflow_preflight(store, run_id)
        return
    if backend != "sagemaker":
        return
    from .sagemaker import preflight

    bucket, prefix = s3_location(artifact_bucket, artifact_prefix, sagemaker_session)
    preflight(store, run_id, bucket_name=bucket, prefix=prefix, sagemaker_session=sagemaker_session)


def _check_mlflow() -> None:
    """``backend="mlflow"`` needs httpx, and a URI it can use (checked at ``Run(...)``)."""
    if importlib.util.find_spec("httpx") is None:
        raise ImportError(
            "backend='mlflow' needs httpx: install runstream's mlflow extra "
            "(pip install 'runstream[mlflow]')"
        )
    from .mlflow import endpoint_from_uri

    endpoint = endpoint_from_uri()  # EndpointError is a ValueError: the URI is wrong
    if endpoint.signer is not None and importlib.util.find_spec("botocore") is None:
        raise ImportError(
            "MLFLOW_TRACKING_URI is a SageMaker ARN: signing its requests needs botocore, "
            "install runstream's aws extra too (pip install 'runstream[mlflow,aws]')"
        )


DEFAULT_ARTIFACT_PREFIX = "trial-component-artifacts"


def s3_location(
    artifact_bucket: str | None, artifact_prefix: str | None, sagemaker_session: object | None
) -> tuple[str | None, str]:
    """Where a run's files go, by the official SDK's rules: ``(bucket, key prefix)``.

    An explicit ``artifact_bucket`` takes ``artifact_prefix`` as given (default
    ``trial-component-artifacts``). Otherwise the bucket is the session's
    ``default_bucket`` (its configured name, else ``None``: the generated
    ``sagemaker-<region>-<account>``, found when the first file uploads) and the prefix is
    the session's ``default_bucket_prefix`` joined with that prefix. The session is only
    read (no network call here).
    """
    prefix = DEFAULT_ARTIFACT_PREFIX if artifact_prefix is None else artifact_prefix
    if artifact_bucket:
        return artifact_bucket, prefix.strip("/")
    configured = getattr(sagemaker_session, "_default_bucket_name_override", None)
    session_prefix = getattr(sagemaker_session, "default_bucket_prefix", None)
    parts = [p.strip("/") for p in (session_prefix, prefix) if isinstance(p, str) and p]
    bucket = configured if isinstance(configured, str) and configured else None
    return bucket, "/".join(p for p in parts if p)


def job_run(sagemaker_session: object | None = None) -> tuple[str, str] | None:
    """``(experiment, run)`` from the ExperimentConfig of the SageMaker job this process
    runs in, or ``None`` outside one (checked without importing the AWS SDK)."""
    if running_in_job() is None:
        return None
    from .sagemaker import job_run as describe_job_run

    return describe_job_run(sagemaker_session)

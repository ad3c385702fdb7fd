"""The remote backends: where a run's data goes besides the local store.

A *backend* is where (``backend="sagemaker"``); its *sender* is the task that takes what
the store holds there, acknowledges it in the store's sync journal, and never raises into
the training loop. The local store is always written first: the senders read from it.
"""

from ._base import (
    BACKENDS,
    ENV_BACKEND,
    ENV_RESOLUTION,
    RESOLUTIONS,
    S3_UPLOAD_ARGS,
    Sender,
    create_entities,
    job_run,
    open_senders,
    resolve_backend,
    resolve_resolution,
    s3_location,
)

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

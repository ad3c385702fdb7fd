"""The SageMaker backend: sync runs from the store to SageMaker Experiments and S3.

Private; chosen with ``Run(..., backend="sagemaker")`` or ``RUNSTREAM_BACKEND=sagemaker``
and sent by the store's agent (:mod:`.._agent`, also ``runstream sync``). Needs the
``aws`` extra (aioboto3).
"""

from __future__ import annotations

from ._entities import check_sagemaker_name
from ._jobs import job_run
from ._read import SageMakerView, read_run, read_runs
from ._sender import data_per_second, preflight

__all__ = (
    "SageMakerView",
    "check_sagemaker_name",
    "data_per_second",
    "job_run",
    "preflight",
    "read_run",
    "read_runs",
)

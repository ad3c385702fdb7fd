"""The MLflow backend: sync runs from the store to an MLflow tracking server.

Private; chosen with ``Run(..., backend="mlflow")`` or ``RUNSTREAM_BACKEND=mlflow``, the
server named by ``MLFLOW_TRACKING_URI`` (an http(s) URL, or a SageMaker MLflow ARN).
Needs the ``mlflow`` extra (httpx); a SageMaker ARN also the ``aws`` extra (botocore).
"""

from __future__ import annotations

from ._endpoint import ENV_TRACKING_URI, Endpoint, EndpointError, SigV4Signer, endpoint_from_uri
from ._sender import RunSync, preflight

__all__ = (
    "ENV_TRACKING_URI",
    "Endpoint",
    "EndpointError",
    "RunSync",
    "SigV4Signer",
    "endpoint_from_uri",
    "preflight",
)

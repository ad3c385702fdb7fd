"""Where ``MLFLOW_TRACKING_URI`` points, and how its requests are signed.

Two kinds of tracking URI:

- the ``http(s)://`` URL of any MLflow tracking server (self-hosted, a container, a
  managed one behind a proxy); ``MLFLOW_TRACKING_TOKEN`` (a bearer token) or
  ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic auth) are sent as
  MLflow's own client sends them;
- the ARN of a SageMaker MLflow tracking server or MLflow App. Its requests go where AWS's
  ``sagemaker-mlflow`` plugin sends them and are signed as that plugin signs them:

  ======================= ============================================== ===================
  ARN resource type       URL                                            SigV4 service
  ======================= ============================================== ===================
  mlflow-tracking-server  ``https://{region}.experiments.sagemaker.aws`` ``sagemaker-mlflow``
  mlflow-app              ``https://mlflow.sagemaker.{region}.app.aws``  ``sagemaker``
  ======================= ============================================== ===================

  with the ARN in ``x-mlflow-sm-tracking-server-arn`` (an App: ``x-sm-mlflow-app-arn``),
  ``X-Amz-Content-SHA256`` set to the body's SHA-256, ``Content-Length`` signed as
  requests sets it (MLflow's client is built on requests), the ``Connection`` header left out
  of the signature, ``+`` in GET and DELETE URLs signed as ``%20``, and botocore's
  ``SigV4Auth`` for the region in the ARN. ``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`` overrides
  the URL, as in the plugin. Credentials come from botocore's usual chain (``AWS_PROFILE``,
  the environment, files, roles); botocore ships with the ``aws`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = (
    "ENV_TRACKING_URI",
    "Endpoint",
    "EndpointError",
    "SigV4Signer",
    "endpoint_from_uri",
)

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_CUSTOM_ENDPOINT = "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# resource type -> (URL template, SigV4 service, routing header): the plugin's table.
_SAGEMAKER_RESOURCES = {
    "mlflow-tracking-server": (
        "https://{region}.experiments.sagemaker.{suffix}",
        "sagemaker-mlflow",
        "x-mlflow-sm-tracking-server-arn",
    ),
    "mlflow-app": (
        "https://mlflow.sagemaker.{region}.app.{suffix}",
        "sagemaker",
        "x-sm-mlflow-app-arn",
    ),
}
_DNS_SUFFIX = {"aws": "aws", "aws-us-gov": "aws"}


class EndpointError(ValueError):
    """``MLFLOW_TRACKING_URI`` is missing or is neither an http(s) URL nor a SageMaker
    MLflow ARN."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An MLflow server: its base URL, the headers every request carries, its signer."""

    uri: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    signer: SigV4Signer | None = None

    @property
    def arn(self) -> str | None:
        return self.uri if self.uri.startswith("arn:") else None


class SigV4Signer:
    """Signs a request as ``sagemaker_mlflow.auth.AuthBoto`` does, with botocore."""

    def __init__(self, region: str, service: str, credentials: Any = None) -> None:
        self.region = region
        self.service = service
        self._credentials = credentials
        self._expires = math.inf if credentials is not None else 0.0

    def credentials(self) -> Any:
        """The credentials to sign with: given, else the usual AWS chain's; with
        ``SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN``, those of that role, assumed as the plugin
        assumes it (session ``AuthBotoSagemakerMlFlow``) and renewed after
        ``SAGEMAKER_MLFLOW_ASSUME_ROLE_TTL_SECONDS`` (300 to 3,600; default 3,300)."""
        role = os.environ.get(ENV_ASSUME_ROLE)
        if self._credentials is not None and (not role or time.time() < self._expires):
            return self._credentials
        import botocore.session

        session = botocore.session.Session()
        found = session.get_credentials()
        if found is None:
            raise PermissionError(
                "no AWS credentials found to sign requests to SageMaker's MLflow "
                "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, roles)"
            )
        if role:
            found = _assume(session, role)
            self._expires = time.time() + _role_ttl()
        self._credentials = found
        return found

    def sign(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        streamed: tuple[int, str] | None = None,
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus the content hash and the signature.

        ``streamed``: the body is a file sent from disk, of this ``(size, sha256 hex)``
        (``body`` is then empty and not read).
        """
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        signed = {k: v for k, v in headers.items() if k.lower() != "connection"}
        if streamed is not None:
            signed["Content-Length"] = str(streamed[0])
            signed["X-Amz-Content-SHA256"] = streamed[1]
        else:
            if body or method not in ("GET", "HEAD"):
                signed["Content-Length"] = str(len(body))  # as requests sets it, and signs it
            signed["X-Amz-Content-SHA256"] = (
                hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
            )
        if method in ("GET", "DELETE"):
            url = url.replace("+", "%20")  # as the plugin: spaces are signed as %20
        request = AWSRequest(method=method, url=url, data=body, headers=signed)
        SigV4Auth(self.credentials(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())


ENV_ASSUME_ROLE = "SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN"
ENV_ASSUME_ROLE_TTL = "SAGEMAKER_MLFLOW_ASSUME_ROLE_TTL_SECONDS"


def _assume(session: Any, role: str) -> Any:
    """Credentials of ``role`` (STS AssumeRole with the caller's own credentials)."""
    from botocore.credentials import Credentials
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sts = session.create_client("sts")
        found = sts.assume_role(RoleArn=role, RoleSessionName="AuthBotoSagemakerMlFlow")
    except (BotoCoreError, ClientError) as exc:
        raise PermissionError(f"{ENV_ASSUME_ROLE}={role!r}: AssumeRole failed: {exc}") from exc
    given = found["Credentials"]
    return Credentials(given["AccessKeyId"], given["SecretAccessKey"], given["SessionToken"])


def _role_ttl() -> float:
    text = os.environ.get(ENV_ASSUME_ROLE_TTL, "3300")
    try:
        seconds = int(text)
    except ValueError:
        raise ValueError(
            f"{ENV_ASSUME_ROLE_TTL}={text!r}: must be a whole number of seconds"
        ) from None
    return float(max(300, min(seconds, 3600)))  # the plugin's bounds


def endpoint_from_uri(uri: str | None = None, *, credentials: Any = None) -> Endpoint:
    """The server ``uri`` (default ``$MLFLOW_TRACKING_URI``) names.

    :raises EndpointError: no URI, or one that is not an http(s) URL or a SageMaker MLflow ARN
    """
    uri = uri if uri is not None else os.environ.get(ENV_TRACKING_URI)
    if not uri:
        raise EndpointError(
            "backend='mlflow' needs MLFLOW_TRACKING_URI: the http(s) URL of an MLflow "
            "tracking server, or the ARN of a SageMaker MLflow tracking server or App"
        )
    uri = uri.strip()
    if uri.startswith("arn:"):
        return _sagemaker(uri, credentials)
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(
            f"MLFLOW_TRACKING_URI={uri!r} is not an http(s) URL or a SageMaker MLflow ARN "
            "(runstream talks to a tracking server; a local mlruns folder or a database URI "
            "is MLflow's client-side store)"
        )
    headers: dict[str, str] = {}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        pair = base64.standard_b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return Endpoint(uri=uri, url=uri.rstrip("/"), headers=headers)


def _sagemaker(arn: str, credentials: Any) -> Endpoint:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sagemaker" or "/" not in parts[5]:
        raise EndpointError(f"{arn!r} is not the ARN of a SageMaker MLflow tracking server or App")
    partition, region = parts[1], parts[3]
    resource_type, _, resource_id = parts[5].partition("/")
    if resource_type not in _SAGEMAKER_RESOURCES or not resource_id or not region:
        raise EndpointError(
            f"{arn!r}: runstream knows SageMaker MLflow resources of type "
            f"{sorted(_SAGEMAKER_RESOURCES)}, not {resource_type!r}"
        )
    if partition not in _DNS_SUFFIX:
        raise EndpointError(f"{arn!r}: partition {partition!r} is not supported")
    if os.environ.get(ENV_ASSUME_ROLE):
        _role_ttl()  # a TTL that is not a number is refused now, at Run(...)
    template, service, header = _SAGEMAKER_RESOURCES[resource_type]
    url = os.environ.get(ENV_CUSTOM_ENDPOINT) or template.format(
        region=region, suffix=_DNS_SUFFIX[partition]
    )
    return Endpoint(
        uri=arn,
        url=url.rstrip("/"),
        headers={header: arn},
        signer=SigV4Signer(region, service, credentials),
    )

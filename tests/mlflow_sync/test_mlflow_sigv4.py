"""SageMaker MLflow ARNs: the URL, the routing header and the SigV4 signature, checked
against AWS's own ``sagemaker-mlflow`` plugin and against a verifying server."""

from __future__ import annotations

import datetime
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("botocore", reason="the aws extra is not installed")

from runstream import Run
from runstream._backends.mlflow import EndpointError, endpoint_from_uri

from ._support import history, mlflow_run, unique

if TYPE_CHECKING:
    from .rig import MLflowServer

exp = unique()
SERVER_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"
APP_ARN = "arn:aws:sagemaker:us-east-2:123456789012:mlflow-app/app-abc"
FROZEN = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def fixed_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    import botocore.credentials

    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "session-token",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", raising=False)
    return botocore.credentials.Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"
    )


@pytest.mark.parametrize("arn", [SERVER_ARN, APP_ARN])
def test_url_and_header_are_the_plugins(arn: str, fixed_aws: Any, monkeypatch: Any) -> None:
    from sagemaker_mlflow.mlflow_sagemaker_helpers import SageMakerMLflowHostMetadataProvider
    from sagemaker_mlflow.mlflow_sagemaker_request_header_provider import (
        MlflowSageMakerRequestHeaderProvider,
    )

    provider = SageMakerMLflowHostMetadataProvider()
    provider.set_arn(arn)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", arn)  # the plugin reads it through mlflow
    headers = MlflowSageMakerRequestHeaderProvider().request_headers()
    endpoint = endpoint_from_uri(arn)
    assert endpoint.url == provider.construct_tracking_server_url()
    assert endpoint.headers == headers
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", "http://127.0.0.1:9")
    assert endpoint_from_uri(arn).url == provider.construct_tracking_server_url()


@pytest.mark.parametrize("arn", [SERVER_ARN, APP_ARN])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/2.0/mlflow/runs/log-batch", b'{"run_id": "r", "metrics": []}'),
        ("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=a+b%20c", b""),
    ],
)
def test_signature_is_byte_identical_to_the_plugins(
    arn: str, method: str, path: str, body: bytes, fixed_aws: Any, monkeypatch: Any
) -> None:
    import botocore.auth
    import requests
    from sagemaker_mlflow.auth_provider import AuthProvider

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", arn)  # the plugin reads it through mlflow
    endpoint = endpoint_from_uri(arn)
    url = endpoint.url + path
    headers = {**endpoint.headers, "Content-Type": "application/json"}
    # The plugin signs a requests.PreparedRequest as MLflow's client prepares it.
    prepared = requests.Request(method, url, data=body or None, headers=headers).prepare()
    prepared.headers["Connection"] = "keep-alive"
    theirs = AuthProvider().get_auth()(prepared)
    ours = endpoint.signer.sign(method, url, headers, body) if endpoint.signer else {}
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["X-Amz-Date"] == theirs.headers["X-Amz-Date"]
    assert ours["X-Amz-Content-SHA256"] == theirs.headers["X-Amz-Content-SHA256"]
    assert ours["X-Amz-Security-Token"] == "session-token"


def test_not_an_mlflow_uri_is_refused() -> None:
    for wrong in ("file:///tmp/mlruns", "sqlite:///x.db", "arn:aws:s3:::bucket",
                  "arn:aws:sagemaker:us-east-1:1:endpoint/x"):  # fmt: skip
        with pytest.raises(EndpointError):
            endpoint_from_uri(wrong)


# -- end to end: a server that checks every signature before MLflow sees the request ------


class _Verifier:
    """Recomputes each request's SigV4 signature from what arrived; 403 when it differs."""

    def __init__(self, upstream: str, credentials: Any, service: str, region: str) -> None:
        self.checked = 0
        self.refused: list[str] = []
        verifier = self
        host, _, port = upstream.removeprefix("http://").partition(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not verifier.valid(self.command, self.path, dict(self.headers), body):
                    verifier.refused.append(f"{self.command} {self.path}")
                    payload = b'{"error_code": "PERMISSION_DENIED", "message": "bad signature"}'
                    self.send_response(403)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                forward = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request(self.command, self.path, body=body, headers=forward)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                self.send_response(response.status)
                self.send_header("Content-Type", response.getheader("Content-Type") or "")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._credentials, self._service, self._region = credentials, service, region
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def valid(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        import hashlib

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        self.checked += 1
        auth = headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return False
        fields = dict(part.strip().split("=", 1) for part in auth[17:].split(","))
        scope = fields["Credential"].split("/")
        if scope[2:4] != [self._region, self._service]:
            return False
        if headers.get("X-Amz-Content-SHA256") != hashlib.sha256(body).hexdigest():
            return False
        lower = {k.lower(): v for k, v in headers.items()}
        signed = {name: lower[name] for name in fields["SignedHeaders"].split(";")}
        request = AWSRequest(method=method, url=f"http://{lower['host']}{path}", data=body,
                             headers=signed)  # fmt: skip
        request.context["timestamp"] = lower["x-amz-date"]
        signer = SigV4Auth(self._credentials, self._service, self._region)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        return bool(fields["Signature"] == expected)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def verifier(mlflow_server: MLflowServer, fixed_aws: Any) -> Iterator[_Verifier]:
    front = _Verifier(mlflow_server.url, fixed_aws, "sagemaker-mlflow", "eu-west-1")
    try:
        yield front
    finally:
        front.close()


def test_a_run_on_an_arn_is_signed_end_to_end(
    verifier: _Verifier,
    client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    agents: None,
) -> None:
    # The agent signs its requests with the credentials of the environment it started in.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", SERVER_ARN)
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", verifier.url)
    with Run(exp("signed"), "arn", backend="mlflow", store=tmp_path) as run:
        run.log_parameter("lr", 0.1)
        for step in range(30):
            run.log_metric("loss", step / 30, step=step)
    assert verifier.refused == []
    assert verifier.checked >= 5
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "synced", sync
    found = mlflow_run(client, exp("signed"), "arn")
    assert [s for s, _, _ in history(client, found, "loss")] == list(range(30))


def test_a_bad_signature_is_refused_credentials(
    verifier: _Verifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runstream import BackendError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", SERVER_ARN)
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", verifier.url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(BackendError, match="refused the credentials"):
        Run(exp("signed"), "wrong-secret", backend="mlflow", store=tmp_path)


def test_an_assumed_role_signs_as_the_plugin_assumes_it(
    moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN``: requests are signed with the role's credentials
    (STS AssumeRole on moto's server, session name as the plugin's), not the caller's."""
    import boto3

    role = "arn:aws:iam::123456789012:role/mlflow-writer"
    monkeypatch.setenv("SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN", role)
    endpoint = endpoint_from_uri(SERVER_ARN)
    assert endpoint.signer is not None
    headers = endpoint.signer.sign("GET", f"{endpoint.url}/api/2.0/mlflow/x", {}, b"")
    key = headers["Authorization"].split("Credential=")[1].split("/")[0]
    assert key != "testing"
    assert headers["X-Amz-Security-Token"]
    creds = endpoint.signer.credentials()
    who = boto3.client(
        "sts",
        endpoint_url=moto.endpoint,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    ).get_caller_identity()
    assert who["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/mlflow-writer/AuthBotoSagemakerMlFlow"
    )
    assert creds.access_key == key
    assert endpoint.signer.credentials() is creds  # cached until the TTL


def test_an_unknown_assume_role_ttl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN", "arn:aws:iam::1:role/r")
    monkeypatch.setenv("SAGEMAKER_MLFLOW_ASSUME_ROLE_TTL_SECONDS", "soon")
    with pytest.raises(ValueError, match="SAGEMAKER_MLFLOW_ASSUME_ROLE_TTL_SECONDS='soon'"):
        endpoint_from_uri(SERVER_ARN)

"""The AWS rig: moto's server on 127.0.0.1 behind a fault-injecting WSGI layer.

Everything goes over real HTTP through aioboto3 (and, for the compatibility test, the
official SDK's boto3). moto has no fault injection, so :class:`FaultInjector` wraps
moto's own WSGI app: handlers may answer a request themselves (throttling, 5xx, a held
request), or forward it with some metric data removed and report those items as failed
(per-item errors, as the service answers them). It also records which metric data
reached moto, so tests can prove nothing was sent twice.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("aioboto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto is not installed")
pytest.importorskip("flask", reason="moto's server needs flask")

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from runstream._aws import _ratelimit, _sender  # noqa: E402

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
JSON = "application/x-amz-json-1.1"
THROTTLE = (
    "400 Bad Request",
    [("Content-Type", JSON)],
    json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode(),
)
UNAVAILABLE = (
    "503 Service Unavailable",
    [("Content-Type", JSON)],
    json.dumps({"__type": "ServiceUnavailable", "message": "try again"}).encode(),
)


@dataclass
class Forward:
    """Forward the request with these metric data indices removed; report them failed."""

    failed: dict[int, str]


Answer = tuple[str, list[tuple[str, str]], bytes]
Handler = Callable[[Environ, bytes], Answer | Forward | None]


def is_batch_put_metrics(environ: Environ) -> bool:
    return bool(environ.get("PATH_INFO", "").endswith("/BatchPutMetrics"))


def sagemaker_action(environ: Environ) -> str:
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]


@dataclass
class FaultInjector:
    app: Any
    handlers: list[Handler] = field(default_factory=list)
    #: (metric, step) of every datum that reached moto, in order
    delivered: list[tuple[str, int | None]] = field(default_factory=list)
    #: every BatchPutMetrics request body's data, as sent by the client
    requested: list[list[dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        bpm = is_batch_put_metrics(environ)
        if bpm:
            with self.lock:
                self.requested.append(json.loads(body)["MetricData"])
        for handler in list(self.handlers):
            answer = handler(environ, body)
            if isinstance(answer, Forward):
                return self._forward_without(environ, start_response, body, answer.failed)
            if answer is not None:
                status, headers, payload = answer
                start_response(status, headers)
                return [payload]
        if bpm:
            self._record(json.loads(body)["MetricData"])
        return self.app(environ, start_response)

    def _record(self, data: list[dict[str, Any]]) -> None:
        with self.lock:
            self.delivered.extend((d["MetricName"], d.get("Step")) for d in data)

    def _forward_without(
        self, environ: Environ, start_response: StartResponse, body: bytes, failed: dict[int, str]
    ) -> Any:
        request = json.loads(body)
        kept = [d for i, d in enumerate(request["MetricData"]) if i not in failed]
        errors = [{"Code": code, "MetricIndex": i} for i, code in sorted(failed.items())]
        if kept:
            request["MetricData"] = kept
            new_body = json.dumps(request).encode()
            environ["wsgi.input"] = io.BytesIO(new_body)
            environ["CONTENT_LENGTH"] = str(len(new_body))
            self._record(kept)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
                captured["status"] = status

            b"".join(self.app(environ, capture))
            if not captured["status"].startswith("200"):
                raise AssertionError(f"moto refused the forwarded data: {captured['status']}")
        payload = json.dumps({"Errors": errors}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [payload]


@dataclass
class Rig:
    endpoint: str
    injector: FaultInjector

    def reset(self) -> None:
        _post(f"{self.endpoint}/moto-api/reset", b"")
        self.injector.handlers.clear()
        self.injector.delivered.clear()
        self.injector.requested.clear()

    def require_auth(self, enabled: bool) -> None:
        """moto checks credentials against its IAM only when told to."""
        _post(f"{self.endpoint}/moto-api/reset-auth", b"0" if enabled else b"inf")

    def boto3(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1")


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="session")
def moto_rig() -> Iterator[Rig]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    injector = FaultInjector(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, injector, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Rig(f"http://{host}:{port}", injector)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def aws(
    moto_rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    """Credentials and endpoint for moto; fast sender pacing; moto state reset after."""
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_rig.endpoint,
        "AWS_CONFIG_FILE": str(nowhere),
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
        "RUNSTREAM_SAGEMAKER_RATE": "100",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "RUNSTREAM_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        _sender, "DEFAULT_CONFIG", _sender.SyncConfig(interval=0.2, max_backoff=0.2)
    )
    _ratelimit.reset_buckets()
    moto_rig.reset()
    try:
        yield moto_rig
    finally:
        moto_rig.require_auth(False)
        moto_rig.reset()
        _ratelimit.reset_buckets()

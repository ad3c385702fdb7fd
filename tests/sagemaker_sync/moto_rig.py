"""The AWS test rig: moto's server on 127.0.0.1 behind a fault-injecting WSGI layer.

Everything goes over real HTTP through aioboto3 (and, for the compatibility test, the
official SDK's boto3). moto has no fault injection, so :class:`FaultInjector` wraps
moto's own WSGI app: handlers may answer a request themselves (throttling, 5xx, a held
request), or forward it with some metric data removed and report those items as failed
(per-item errors, as the service answers them). It also records which metric data
reached moto, so tests can prove nothing was sent twice.

Where moto answers otherwise than SageMaker, the layer answers as SageMaker does: a
Describe of a missing experiment, trial or trial component is SageMaker's
``ResourceNotFound`` (400), where moto raises a 500 or a ValidationException; and
UpdateTrialComponent's maps (``Parameters``, ``InputArtifacts``, ``OutputArtifacts``) add
to the trial component's and replace only the keys they name, as the service documents
("Existing hyperparameters are replaced if the trial component is updated with an
identical hyperparameter key"), where moto replaces each map whole.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

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


_DESCRIBES = {"DescribeExperiment", "DescribeTrial", "DescribeTrialComponent"}
# UpdateTrialComponent's maps, and the attributes moto keeps them in.
_MERGED = {
    "Parameters": "parameters",
    "InputArtifacts": "input_artifacts",
    "OutputArtifacts": "output_artifacts",
}


def _resource_not_found(message: str) -> Answer:
    body = json.dumps({"__type": "ResourceNotFound", "message": message}).encode()
    return "400 Bad Request", [("Content-Type", JSON)], body


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
    #: held while an UpdateTrialComponent is merged and applied: one at a time, atomic
    updates: threading.Lock = field(default_factory=threading.Lock)

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
        if sagemaker_action(environ) in _DESCRIBES:
            return self._as_sagemaker_answers(environ, start_response)
        if sagemaker_action(environ) == "UpdateTrialComponent":
            with self.updates:
                self._merge_maps(environ, body)
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    def _merge_maps(self, environ: Environ, body: bytes) -> None:
        """The request's maps merged over the trial component's, as the service merges."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sagemaker.models import sagemaker_backends

        request = json.loads(body)
        credential = str(environ.get("HTTP_AUTHORIZATION", "")).partition("Credential=")[2]
        scope = credential.split(",")[0].split("/")
        region = scope[2] if len(scope) > 2 else "us-east-1"
        backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][region]
        component = backend.trial_components.get(request.get("TrialComponentName"))
        if component is None:
            return
        for key, attribute in _MERGED.items():
            if key in request:
                request[key] = {**(getattr(component, attribute) or {}), **request[key]}
        merged = json.dumps(request).encode()
        environ["wsgi.input"] = io.BytesIO(merged)
        environ["CONTENT_LENGTH"] = str(len(merged))

    def _as_sagemaker_answers(self, environ: Environ, start_response: StartResponse) -> Any:
        """A Describe answered as SageMaker answers it when the entity is missing."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
            captured.update(status=status, headers=headers)

        payload = b"".join(self.app(environ, capture))
        status = str(captured["status"])
        missing = status.startswith("500") or (
            status.startswith("400") and b"Could not find" in payload
        )
        if missing:
            entity = sagemaker_action(environ).removeprefix("Describe")
            status, headers, payload = _resource_not_found(f"{entity} does not exist.")
            start_response(status, headers)
            return [payload]
        start_response(status, captured["headers"])
        return [payload]

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


@contextmanager
def serve_moto() -> Iterator[Rig]:
    """moto's WSGI app behind a :class:`FaultInjector`, threaded, on an ephemeral port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    injector = FaultInjector(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, injector, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Rig(f"http://{server.host}:{server.port}", injector)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_synced(run: Any, timeout: float = 60.0) -> Any:
    """After a run closed: wait for the store's agent to send it (a bound, not a speed
    assertion); the run's last sync state."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = run.stats.sync
        if found is not None and found.state != "pending":
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.1)

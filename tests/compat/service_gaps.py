"""What moto 5.2 leaves out or gets wrong, answered as the SageMaker API answers it.

The compatibility tests run the official SDK's public behaviour against moto over HTTP.
Where moto deviates from the service, this layer (a handler of the rig's
:class:`~sagemaker_sync.moto_rig.FaultInjector`) answers instead, per the botocore
service model and the service's documented behaviour; production code never bends to
moto's quirks:

- a second Create{Experiment,Trial,TrialComponent} of an existing name is a
  ``ValidationException`` "... already exists" (moto silently replaces the entity);
- CreateExperiment's DisplayName, Description and Tags, and UpdateExperiment (moto:
  NotImplemented), are kept and shown by DescribeExperiment (moto drops them);
- the lineage calls CreateArtifact, AddAssociation, ListArtifacts (moto: NotImplemented).

It also records every SageMaker control-plane request (action and body), so a test can
check what was sent, as the official unit tests check their mocked client's calls.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sagemaker_sync.moto_rig import JSON, Answer, Environ, sagemaker_action

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _ok(payload: dict[str, Any]) -> Answer:
    return "200 OK", [("Content-Type", JSON)], json.dumps(payload).encode()


def _error(code: str, message: str) -> Answer:
    body = json.dumps({"__type": code, "message": message}).encode()
    return "400 Bad Request", [("Content-Type", JSON)], body


@dataclass
class ServiceGaps:
    app: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    names: dict[str, set[str]] = field(
        default_factory=lambda: {"Experiment": set(), "Trial": set(), "TrialComponent": set()}
    )
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    associations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, action: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for name, body in self.calls if name == action]

    def __call__(self, environ: Environ, body: bytes) -> Answer | None:
        action = sagemaker_action(environ)
        if not action or not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("SageMaker."):
            return None
        request = json.loads(body or b"{}")
        with self.lock:
            self.calls.append((action, request))
            handler = getattr(self, f"_{action}", None)
            if handler is not None:
                answer: Answer | None = handler(request, environ, body)
                return answer
            for kind in self.names:
                if action == f"Delete{kind}":
                    self.names[kind].discard(str(request.get(f"{kind}Name", "")).lower())
        return None

    # -- "already exists", and what moto does not keep -----------------------------------

    def _create(self, kind: str, request: dict[str, Any]) -> Answer | None:
        name = str(request[f"{kind}Name"]).lower()
        if name in self.names[kind]:
            label = "Trial Component" if kind == "TrialComponent" else kind
            return _error("ValidationException", f"{label} with name ({name}) already exists.")
        self.names[kind].add(name)
        return None

    def _CreateExperiment(self, request: dict[str, Any], *_: Any) -> Answer | None:
        refused = self._create("Experiment", request)
        if refused is None:
            self.experiments[str(request["ExperimentName"]).lower()] = {
                k: request[k] for k in ("DisplayName", "Description", "Tags") if k in request
            }
        return refused

    def _CreateTrial(self, request: dict[str, Any], *_: Any) -> Answer | None:
        return self._create("Trial", request)

    def _CreateTrialComponent(self, request: dict[str, Any], *_: Any) -> Answer | None:
        return self._create("TrialComponent", request)

    def _UpdateExperiment(self, request: dict[str, Any], *_: Any) -> Answer | None:
        name = str(request["ExperimentName"]).lower()
        if name not in self.names["Experiment"]:
            return _error("ResourceNotFound", f"Experiment {name} does not exist.")
        kept = self.experiments.setdefault(name, {})
        kept.update({k: request[k] for k in ("DisplayName", "Description") if k in request})
        return _ok({"ExperimentArn": _arn("experiment", name)})

    def _DescribeExperiment(
        self, request: dict[str, Any], environ: Environ, body: bytes
    ) -> Answer | None:
        name = str(request["ExperimentName"]).lower()
        if name not in self.names["Experiment"]:
            return _error("ResourceNotFound", f"Experiment {name} does not exist.")
        status, payload = self._forward(environ, body)
        described = json.loads(payload)
        described.update({k: v for k, v in self.experiments.get(name, {}).items() if k != "Tags"})
        return status, [("Content-Type", JSON)], json.dumps(described).encode()

    def _forward(self, environ: Environ, body: bytes) -> tuple[str, bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        captured: dict[str, str] = {}

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
            captured["status"] = status

        payload = b"".join(self.app(environ, start))
        return captured["status"], payload

    # -- lineage --------------------------------------------------------------------------

    def _CreateArtifact(self, request: dict[str, Any], *_: Any) -> Answer:
        arn = _arn("artifact", uuid.uuid4().hex)
        self.artifacts[arn] = request
        return _ok({"ArtifactArn": arn})

    def _ListArtifacts(self, request: dict[str, Any], *_: Any) -> Answer:
        uri = request.get("SourceUri")
        found = [
            {"ArtifactArn": arn, "ArtifactName": a.get("ArtifactName"), "Source": a["Source"]}
            for arn, a in self.artifacts.items()
            if uri is None or a["Source"]["SourceUri"] == uri
        ]
        return _ok({"ArtifactSummaries": found})

    def _AddAssociation(self, request: dict[str, Any], *_: Any) -> Answer:
        self.associations.append(request)
        return _ok({"SourceArn": request["SourceArn"], "DestinationArn": request["DestinationArn"]})


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"

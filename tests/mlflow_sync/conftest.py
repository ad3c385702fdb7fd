"""Fixtures of the MLflow backend's tests: a real ``mlflow server`` for the session.

MLflow (a test dependency) missing: skipped locally, a failure under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

if importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("httpx") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true: mlflow and httpx must be installed (nox -s tests does)")
    pytest.skip("mlflow is not installed (nox -s tests installs it)", allow_module_level=True)

# AWS's sagemaker-mlflow plugin (installed for the SigV4 comparison) adds a request-header
# provider to MLflow's client that logs an error for every non-ARN tracking URI.
logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)

from _support import agent_environment, end_agents  # noqa: E402

from .rig import FaultProxy, MLflowServer  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowServer]:
    """The session's server. ``RUNSTREAM_TEST_MLFLOW_URL`` names one already running instead
    (development only: a cold ``mlflow server`` creates its database in 15-60 s)."""
    server = MLflowServer(tmp_path_factory.mktemp("mlflow-server"))
    running = os.environ.get("RUNSTREAM_TEST_MLFLOW_URL")
    if running:
        server.url = running.rstrip("/")
        yield server
        return
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def proxy(mlflow_server: MLflowServer) -> Iterator[FaultProxy]:
    front = FaultProxy(mlflow_server.url)
    try:
        yield front
    finally:
        front.close()


@pytest.fixture
def agents(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The sync agents a test starts (see ``_support.agent_environment``)."""
    registry = tmp_path_factory.mktemp("agents") / "pids"
    for name, value in agent_environment(registry).items():
        monkeypatch.setenv(name, value)
    try:
        yield
    finally:
        end_agents(registry)


@pytest.fixture
def mlflow_uri(proxy: FaultProxy, agents: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLFLOW_TRACKING_URI through the fault proxy."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    for name in ("RUNSTREAM_BACKEND", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    proxy.clear()
    try:
        yield proxy.url
    finally:
        proxy.clear()


@pytest.fixture
def client(mlflow_server: MLflowServer) -> Any:
    """MLflow's own client, reading the server directly (not through the proxy)."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=mlflow_server.url)


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's server over HTTP (S3, STS), with this process's AWS settings pointing at it."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("aioboto3") is None:
        pytest.skip("moto and the aws extra are needed")
    from sagemaker_sync.moto_rig import serve_moto

    with serve_moto() as rig:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": rig.endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield rig

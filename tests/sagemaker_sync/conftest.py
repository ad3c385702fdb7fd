"""Fixtures of the SageMaker backend's tests (the rig itself is in :mod:`.moto_rig`).

They skip cleanly where the ``aws`` extra or moto's server dependencies are absent.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aioboto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto is not installed")
pytest.importorskip("flask", reason="moto's server needs flask")
pytest.importorskip("flask_cors", reason="moto's server needs flask-cors")

from runstream._backends.sagemaker import _ratelimit, _sender

from .moto_rig import serve_moto

if TYPE_CHECKING:
    from .moto_rig import Rig


@pytest.fixture(scope="session")
def moto_rig() -> Iterator[Rig]:
    with serve_moto() as rig:
        yield rig


@pytest.fixture
def aws(
    moto_rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    """Credentials and endpoint for moto; fast sender pacing; moto state reset after."""
    folder = tmp_path_factory.mktemp("aws")
    nowhere, registry = folder / "absent", folder / "agents"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_rig.endpoint,
        "AWS_CONFIG_FILE": str(nowhere),
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
        "RUNSTREAM_SAGEMAKER_RATE": "100",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        # The agents the tests start: fast pacing, short idle and linger, and a registry
        # of their pids so that each test ends the agents it started.
        "RUNSTREAM_SYNC_INTERVAL": "0.2",
        "RUNSTREAM_SYNC_MAX_BACKOFF": "0.2",
        "RUNSTREAM_AGENT_IDLE": "1",
        "RUNSTREAM_AGENT_LINGER": "30",
        "RUNSTREAM_AGENT_REGISTRY": str(registry),
        # Most tests read SageMaker right after a run closes: close waits for the agent
        # (as in a job). The agent's own tests unset it.
        "RUNSTREAM_CLOSE_WAIT": "1",
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
        end_agents(registry)
        moto_rig.require_auth(False)
        moto_rig.reset()
        _ratelimit.reset_buckets()


def end_agents(registry: Path) -> None:
    """End the agents a test started (by the pids they registered), SIGKILL after 5 s."""
    if not registry.exists():
        return
    pids = {int(line) for line in registry.read_text().split()}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    registry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of this process that exited is a zombie until reaped: not alive.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True

"""Fixtures of the SageMaker backend's tests (the rig itself is in :mod:`.moto_rig`).

They skip cleanly where the ``aws`` extra or moto's server dependencies are absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aioboto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto is not installed")
pytest.importorskip("flask", reason="moto's server needs flask")
pytest.importorskip("flask_cors", reason="moto's server needs flask-cors")

from runstream._backends.sagemaker import _ratelimit

from _support import end_agents

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
    _ratelimit.reset_buckets()
    moto_rig.reset()
    try:
        yield moto_rig
    finally:
        end_agents(registry)
        moto_rig.require_auth(False)
        moto_rig.reset()
        _ratelimit.reset_buckets()

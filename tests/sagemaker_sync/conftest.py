"""Fixtures of the SageMaker backend's tests (the rig itself is in :mod:`.moto_rig`).

They skip cleanly where the ``aws`` extra or moto's server dependencies are absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aioboto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto is not installed")
pytest.importorskip("flask", reason="moto's server needs flask")
pytest.importorskip("flask_cors", reason="moto's server needs flask-cors")

from _support import agent_environment, end_agents
from runstream._backends.sagemaker import _ratelimit

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
        **agent_environment(registry),
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

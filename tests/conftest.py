"""Shared fixtures: every test gets its own store on ``tmp_path`` and a clean environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from _support import ENVIRONMENT_VARIABLES

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No store variables from the caller's shell, and ``./.runstream`` lands in tmp_path."""
    for variable in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    # Child processes run in tmp_path too: a relative PYTHONPATH (PYTHONPATH=src) must
    # still lead them to the runstream under test.
    if os.environ.get("PYTHONPATH"):
        paths = os.environ["PYTHONPATH"].split(os.pathsep)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(os.path.abspath(p) for p in paths if p))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store directory of its own (created on first use, as a user's would be)."""
    return str(tmp_path / "store")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

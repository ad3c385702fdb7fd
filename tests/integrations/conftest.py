"""Helpers for the integration tests: worker processes, and reading a run back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

WORKERS = Path(__file__).parent / "workers"


RunScript = Callable[..., None]
ParameterWorkers = Callable[[Path], set[str]]


def _run_script(script: str, *args: str, envs: list[dict[str, str]], timeout: float = 300) -> None:
    """Run one of ``workers/`` as concurrent real processes, one per environment (a worker
    each); fail with a process's output if it fails."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKERS / script), *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in envs
    ]
    failures = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if proc.returncode:
            failures.append(f"{script} exited {proc.returncode}:\n{output}")
    if failures:
        pytest.fail("\n".join(failures))


def _parameter_workers(store: Path) -> set[str]:
    """The workers that wrote parameters, straight from the store's SQLite file."""
    with sqlite3.connect(store / "runstream.db") as db:
        return {row[0] for row in db.execute("SELECT DISTINCT worker FROM parameters")}


@pytest.fixture
def run_script() -> RunScript:
    return _run_script


@pytest.fixture
def parameter_workers() -> ParameterWorkers:
    return _parameter_workers

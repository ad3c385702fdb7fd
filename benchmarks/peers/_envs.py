"""One cached virtual environment per tracker.

An environment lives in ``<cache>/<name>-<key>``, where the key hashes its requirements,
the Python that builds it and (for runstream) ``pyproject.toml``: change a pin and a new one
is built; change nothing and a re-run reuses it. A failed install is remembered with its
reason, so a re-run skips it at once (``--retry-envs`` tries again).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ("Environment", "ensure_environment")

_INSTALL_TIMEOUT = 1200.0


@dataclass(frozen=True)
class Environment:
    """A usable environment (``python`` set) or why there is none (``reason`` set)."""

    name: str
    python: str | None
    reason: str | None = None


def _requirements(name: str, pins: tuple[str, ...], repo: Path) -> list[str]:
    return [pin.format(repo=repo) for pin in pins]


def _key(requirements: list[str], python: str, repo: Path) -> str:
    digest = hashlib.sha256()
    # The interpreter itself, not the name it was called by (python, python3, a venv's).
    digest.update(json.dumps([requirements, os.path.realpath(python), sys.version]).encode())
    if any("{repo}" in r or str(repo) in r for r in requirements):
        digest.update((repo / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:12]


def ensure_environment(
    name: str,
    pins: tuple[str, ...],
    *,
    cache: Path,
    repo: Path,
    python: str = sys.executable,
    retry: bool = False,
) -> Environment:
    """Build (or reuse) the environment; never raises for an install that fails."""
    requirements = _requirements(name, pins, repo)
    folder = cache / f"{name}-{_key(requirements, python, repo)}"
    ready, failed = folder / ".ready", folder / ".failed"
    interpreter = str(folder / "bin" / "python")
    if ready.exists():
        return Environment(name, interpreter)
    if failed.exists() and not retry:
        return Environment(name, None, failed.read_text().strip())
    shutil.rmtree(folder, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    log = folder.with_suffix(".log")
    steps = (
        [python, "-m", "venv", str(folder)],
        [interpreter, "-m", "pip", "install", "--disable-pip-version-check", *requirements],
    )
    with log.open("w") as out:
        for command in steps:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            try:
                done = subprocess.run(
                    command, stdout=out, stderr=subprocess.STDOUT, timeout=_INSTALL_TIMEOUT
                )
            except subprocess.TimeoutExpired:
                return _failed(name, folder, f"install timed out after {_INSTALL_TIMEOUT:.0f}s")
            if done.returncode != 0:
                return _failed(name, folder, f"cannot install: {_last_error(log)} (see {log})")
    ready.write_text(" ".join(requirements))
    return Environment(name, interpreter)


def _failed(name: str, folder: Path, reason: str) -> Environment:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".failed").write_text(reason)
    return Environment(name, None, reason)


_ERROR = re.compile(r"^ERROR: |^\w*Error: ")


def _last_error(log: Path) -> str:
    """pip's first ``ERROR:`` (or a build's ``…Error:``) line says what went wrong."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR.search(line)]
    return (errors or lines or ["no output"])[0][:300]

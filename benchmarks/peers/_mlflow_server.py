"""The MLflow tracking server the MLflow-server trackers share: ``mlflow server`` (SQLite
backend store, artifacts served by the server) in a process of its own, on a free
loopback port, run by the mlflow environment's Python. Stopped (its process group) when
the harness is done."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ("MlflowServer",)


class MlflowServer:
    """``url = MlflowServer(python, root).start()``, then ``stop()``."""

    def __init__(self, python: str, root: Path, timeout: float = 300.0) -> None:
        self._python = python
        self._root = root
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self._root.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        url = f"http://127.0.0.1:{port}"
        log = self._root / "server.log"
        command = [
            self._python, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self._root / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(self._root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner: tracking only
        }
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mlflow server exited at start; see {log}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                return url
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {self._timeout}s; see {log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # what is left of its group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

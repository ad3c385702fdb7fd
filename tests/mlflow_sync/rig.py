"""A real ``mlflow server`` on 127.0.0.1, and a fault-injecting HTTP proxy in front of it.

:class:`MLflowServer` runs MLflow's own server (SQLite backend store, artifacts served by
the server: ``--serve-artifacts``) as a process of its own, in its own process group, so a
test can SIGKILL it and start it again on the same port and database. :class:`FaultProxy`
forwards every request to it over real HTTP and can, on command, answer with a status of
its choosing (429, 503, 401), or forward a request and then drop its response (the server
did the work; the client never hears of it).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ("FaultProxy", "MLflowServer", "free_port", "serve_mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MLflowServer:
    """``mlflow server`` as a real process: start, kill (SIGKILL), start again."""

    def __init__(self, root: Path, port: int | None = None, *, artifact_root: str = "") -> None:
        """``artifact_root``: an ``s3://`` location the server only names (no artifact
        serving): clients upload there directly. Default: the server serves artifacts."""
        self.root = root
        self.artifact_root = artifact_root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    def start(self, timeout: float = 600.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        if self.artifact_root:
            command += ["--no-serve-artifacts", "--default-artifact-root", self.artifact_root]
        else:
            command += [
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.root / "artifacts"),
            ]
        # No job runner (MLflow 3 starts one with several huey consumers): a tracking server only.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server and its workers (its whole process group)."""
        if self._process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL whatever of its process group is left (its workers)."""
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        self.kill()


@contextmanager
def serve_mlflow(root: Path) -> Iterator[MLflowServer]:
    server = MLflowServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class _Rule:
    match: Callable[[str, str], bool]
    action: str  # "status:<code>" or "drop"
    times: int
    hits: int = 0


@dataclass
class FaultProxy:
    """An HTTP proxy to ``upstream`` that injects the faults it is told to."""

    upstream: str
    rules: list[_Rule] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        proxy = self
        host, _, port = self.upstream.removeprefix("http://").partition(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                    rule = next(
                        (
                            r
                            for r in proxy.rules
                            if r.hits < r.times and r.match(self.command, self.path)
                        ),
                        None,
                    )
                    if rule is not None:
                        rule.hits += 1
                if rule is not None and rule.action.startswith("status:"):
                    code = int(rule.action.partition(":")[2])
                    payload = b'{"error_code": "INJECTED", "message": "injected by the test proxy"}'
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except OSError:
                    self.close_connection = True  # upstream down: the client sees a reset
                    return
                finally:
                    connection.close()
                if rule is not None and rule.action == "drop":
                    self.close_connection = True  # the server did it; the client never hears
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, action: str, path: str = "", times: int = 1, method: str = "") -> _Rule:
        rule = _Rule(lambda m, p: path in p and (not method or m == method), action, times)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

"""The moto server the AWS trackers share, in a process of its own (so its request
handling does not share a tracker's GIL), on a free loopback port.

It stops when :meth:`MotoServer.stop` closes its stdin, or when the harness dies (the pipe
closes with it), or after two hours at most.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ("MotoServer",)

# Runs in the moto environment: serve until stdin closes (or the watchdog fires).
_SERVE = """
import sys, threading
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
threading.Timer(7200, server.stop).start()
sys.stdin.read()
server.stop()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    """``with MotoServer(python, log) as url:`` — the server's endpoint URL."""

    def __init__(self, python: str, log: Path, timeout: float = 60.0) -> None:
        self._python = python
        self._log = log
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [self._python, "-c", _SERVE, str(port)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited at start; see {self._log}")
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                return url
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not answer within {self._timeout}s; see {self._log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""Dashboard under concurrent clients: request latency with 50 clients at once.

Builds a small store (one experiment of 20 runs), serves it with ``runstream ui``'s server on
127.0.0.1, and has ``--clients`` threads each send ``--requests`` requests at once (a new
connection each, as browsers open them) to ``/api/experiments`` and ``/api/runs``. Prints
the median, p99 and maximum latency, and the machine. ``--backlog 5`` serves with the
listen backlog the server had before (the standard library's default), for comparison.

    python benchmarks/bench_ui_clients.py [--clients 50] [--requests 20] [--backlog N]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._machine import describe
from runstream import Run
from runstream._store import LocalStore
from runstream._ui import _server


def _store(path: Path) -> None:
    for i in range(20):
        with Run("clients", f"run-{i}", store=path) as run:
            run.log_parameters({"lr": 0.01 * (i + 1), "batch": 32})
            for step in range(50):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)


def _client(port: int, requests: int, start: threading.Event, out: list[float]) -> None:
    start.wait()
    for i in range(requests):
        path = "/api/experiments" if i % 2 else "/api/runs?experiment=clients&limit=20"
        began = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        finally:
            connection.close()
        out.append(time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--backlog", type=int, default=None, help="listen backlog to serve with")
    args = parser.parse_args()
    if args.backlog is not None:
        _server._Server.request_queue_size = args.backlog
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        _store(path)
        with LocalStore(path) as store, _server.Dashboard(store, port=0).start() as dashboard:
            port = dashboard.port
            start = threading.Event()
            latencies: list[list[float]] = [[] for _ in range(args.clients)]
            threads = [
                threading.Thread(target=_client, args=(port, args.requests, start, out))
                for out in latencies
            ]
            for thread in threads:
                thread.start()
            start.set()
            for thread in threads:
                thread.join()
    flat = sorted(t for one in latencies for t in one)
    p99 = flat[min(len(flat) - 1, int(0.99 * len(flat)))]
    backlog = _server._Server.request_queue_size
    print(
        f"{args.clients} clients x {args.requests} requests, listen backlog {backlog}: "
        f"median {statistics.median(flat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {flat[-1] * 1000:.1f} ms ({len(flat)} requests, all 200)"
    )


if __name__ == "__main__":
    main()

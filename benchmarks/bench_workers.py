"""Many workers, one run: points per second into one run as the number of worker processes
goes 1 -> 2 -> 4 -> 8, on the embedded store and (``--moto``) synced to SageMaker on moto's
server, and each worker's own loop rate.

Each worker is a real process logging ``--points`` points (4 metrics per step) into the
same run, then closing it. Reported per worker count: the aggregate rate until the last
worker's data is durable, and the median worker's logging rate, which shows how much
each loop slows down as workers share the machine and the store.

    python benchmarks/bench_workers.py [--points 500000] [--workers 1 2 4 8] [--moto]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import runstream
from benchmarks._machine import describe

WORKER = textwrap.dedent(
    """
    import json, sys, time
    import runstream
    store, worker, steps, backend = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    began = time.time()
    with runstream.Run(
        "bench", "workers", store=store, worker=worker, backend=backend, close_timeout=600
    ) as run:
        start = time.perf_counter()
        log = run.log_metric
        for step in range(steps):
            log("loss", 0.5, step=step)
            log("accuracy", 0.25, step=step)
            log("learning_rate", 1e-3, step=step)
            log("step_time", 0.01, step=step)
        logged = time.perf_counter() - start
    print(json.dumps({"logged_s": logged, "began": began, "ended": time.time()}))
    """
)


def run_workers(count: int, points: int, backend: str) -> None:
    steps = points // 4
    with tempfile.TemporaryDirectory() as store:
        runstream.Run("bench", "workers", store=store).close()  # create it once, up front
        env = dict(os.environ, RUNSTREAM_WORLD_SIZE=str(count))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, store, f"w{i}", str(steps), backend],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for i in range(count)
        ]
        outputs = [json.loads(p.communicate()[0]) for p in procs]
        ended = max(o["ended"] for o in outputs)
        synced = ""
        if backend == "sagemaker":
            # One sender per run holds the store's lease; what it had not sent when its
            # worker closed is sent by `runstream sync`, counted in the time.
            sync = subprocess.run(
                [sys.executable, "-m", "runstream", "sync", "--store", store, "--json"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            ended = time.time()
            (state,) = json.loads(sync.stdout)
            synced = f" {state['points_sent']:>10,} {state['points_pending']:>8,}"
        # From the first worker's start to the last point stored (for moto: acknowledged);
        # interpreter start-up is not the store's cost.
        wall = ended - min(o["began"] for o in outputs)
        record = runstream.list_runs("bench", store=store)[0].record()
    total = count * steps * 4
    stored = sum(m.count for m in record.metrics.values())
    worker_rate = statistics.median(steps * 4 / o["logged_s"] for o in outputs)
    print(
        f"{count:>7} {total:>12,} {total / wall / 1e6:>14.3f} {worker_rate / 1e6:>16.2f} "
        f"{stored:>12,} {record.status:>10}{synced}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=500_000, help="points per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument(
        "--moto", action="store_true", help="sync to SageMaker on moto's server as well"
    )
    parser.add_argument("--moto-points", type=int, default=20_000, help="points per worker")
    args = parser.parse_args()
    print(describe())
    header = (
        f"{'workers':>7} {'points':>12} {'run M pts/s':>14} {'worker M pts/s':>16} "
        f"{'read back':>12} {'status':>10}"
    )
    print("embedded store\n" + header)
    for count in args.workers:
        run_workers(count, args.points, "local")
    if args.moto:
        from benchmarks.bench_sagemaker import configure, moto_server

        with tempfile.TemporaryDirectory() as home, moto_server() as endpoint:
            configure(endpoint, home)
            print(f"\nsynced to SageMaker on moto ({endpoint}, a child process)")
            print(f"{header} {'sent':>10} {'pending':>8}")
            for count in args.workers:
                run_workers(count, args.moto_points, "sagemaker")


if __name__ == "__main__":
    main()

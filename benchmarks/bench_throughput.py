"""Throughput: how fast the flusher drains full buffers, and what one producer sustains.

1. *Drain*: buffers holding ``--drain-points`` points (4 metrics, one point per step) are
   drained, aggregated and written to a real SQLite store by the same code the flusher
   runs; each phase is timed.
2. *End to end*: one thread logs ``--points`` points through ``Run.log_metric`` (and again
   through ``log_metrics``) with the flusher running, until the final flush lands; reports
   points/s and the peak memory growth.

    python benchmarks/bench_throughput.py [--drain-points 5000000] [--points 10000000]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import threading
import time

import runstream
from benchmarks._machine import describe
from runstream._core._ingest import Ingest
from runstream._store import LocalStore

METRICS = ("loss", "accuracy", "learning_rate", "grad_norm")


def drain_throughput(points: int) -> None:
    per_metric = points // len(METRICS)
    with tempfile.TemporaryDirectory() as path, LocalStore(path) as store:
        key = store.ensure_run("bench", "drain")
        store.set_worker_status(key.run_id, "w", "InProgress", started=time.time())
        ingest = Ingest(capacity=points)
        for name in METRICS:
            buf = ingest.register(name)
            for step in range(per_metric):
                buf += (step, step * 0.001)
        total = per_metric * len(METRICS)
        gc.collect()
        t0 = time.perf_counter()
        ingest.drain()
        t1 = time.perf_counter()
        batch = ingest.take_batch(key.run_id, "w")
        t2 = time.perf_counter()
        store.write(batch)
        t3 = time.perf_counter()
    print(f"drain {total:,} buffered points into the store:")
    for label, seconds in (
        ("lists -> numpy step stats", t1 - t0),
        ("combine into a batch", t2 - t1),
        ("SQLite write (one transaction)", t3 - t2),
        ("total", t3 - t0),
    ):
        print(f"  {label:32}{seconds * 1000:9.1f} ms {total / seconds / 1e6:9.2f} M points/s")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def end_to_end(points: int, *, batched: bool) -> None:
    steps = points // len(METRICS)
    with tempfile.TemporaryDirectory() as path:
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        with runstream.Run("bench", "end-to-end", store=path) as run:
            if batched:
                log_metrics = run.log_metrics
                for step in range(steps):
                    log_metrics(
                        {"loss": 0.5, "accuracy": 0.25, "learning_rate": 1e-3, "grad_norm": 1.5},
                        step=step,
                    )
            else:
                log = run.log_metric
                for step in range(steps):
                    log("loss", 0.5, step=step)
                    log("accuracy", 0.25, step=step)
                    log("learning_rate", 1e-3, step=step)
                    log("grad_norm", 1.5, step=step)
            logged_s = time.perf_counter() - t0
            stats = run.flush().stats
        total_s = time.perf_counter() - t0
        record = runstream.list_runs("bench", store=path)[0].record()
    counted = sum(m.count for m in record.metrics.values())
    api = "log_metrics(dict)" if batched else "log_metric x4"
    print(
        f"{api:18} {steps * 4:,} points: logging {steps * 4 / logged_s / 1e6:.2f} M/s, "
        f"until durable {steps * 4 / total_s / 1e6:.2f} M/s ({total_s:.1f} s); "
        f"peak RSS growth {rss_mb() - before:.0f} MB; "
        f"read back {counted:,}; compactions {stats.compactions}; threads alive after close "
        f"{threading.active_count() - 1}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drain-points", type=int, default=5_000_000)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--only", choices=["drain", "scalar", "batched"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "drain":
        drain_throughput(args.drain_points)
    elif args.only:
        end_to_end(args.points, batched=args.only == "batched")
    else:
        # Each scenario in a fresh process, so peak memory is its own.
        print(describe(), flush=True)
        for only in ("drain", "scalar", "batched"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--only",
                    only,
                    "--points",
                    str(args.points),
                    "--drain-points",
                    str(args.drain_points),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()

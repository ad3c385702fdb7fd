"""A simulated training loop with and without logging: the slowdown runstream costs.

Each step does a fixed float32 216x216 matmul on one BLAS thread (about 200 us), then logs
4 metrics with ``log_metric(..., step=i)``. The run is open, and its flusher running, for
both variants; blocks of steps alternate between the two so that drift in the machine
hits both alike. Reported: the median block time of each and the slowdown.

    python benchmarks/bench_training_loop.py [--steps-per-block 1000] [--rounds 30]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import os

# One BLAS thread, set before numpy loads: the second core stays free for the flusher, as
# on a GPU box where the Python thread is the bottleneck.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import time

import numpy as np

import runstream
from benchmarks._machine import describe

METRICS = ("loss", "accuracy", "learning_rate", "grad_norm")


def block(run: runstream.Run | None, a: np.ndarray, b: np.ndarray, first: int, n: int) -> float:
    """Seconds for ``n`` training steps, logging into ``run`` unless it is None."""
    start = time.perf_counter()
    # A preallocated output: a fresh 186 KB array per step would be mmap'd and page-faulted
    # every time, adding more noise than the thing measured.
    out = np.empty_like(a)
    for step in range(first, first + n):
        np.matmul(a, b, out=out)
        if run is not None:
            loss = float(out[0, 0])
            run.log_metric("loss", loss, step=step)
            run.log_metric("accuracy", 0.5, step=step)
            run.log_metric("learning_rate", 1e-3, step=step)
            run.log_metric("grad_norm", loss * 0.1, step=step)
        else:
            float(out[0, 0])  # the same host read, so only logging differs
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps-per-block", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--tick", type=float, default=None, help="the run's drain interval (s; default: Run's)"
    )
    args = parser.parse_args()
    print(describe())
    rng = np.random.default_rng(0)
    a = rng.standard_normal((216, 216), dtype=np.float32)
    b = rng.standard_normal((216, 216), dtype=np.float32)
    n = args.steps_per_block
    bare: list[float] = []
    logged: list[float] = []
    with (
        tempfile.TemporaryDirectory() as store,
        runstream.Run(
            "bench", "training-loop", store=store, **({"tick": args.tick} if args.tick else {})
        ) as run,
    ):
        block(None, a, b, 0, n)  # warm up BLAS and the interpreter
        step = 0
        for _ in range(args.rounds):
            bare.append(block(None, a, b, step, n))
            logged.append(block(run, a, b, step, n))
            step += n
        close_start = time.perf_counter()
        stats = run.flush().stats
        flush_s = time.perf_counter() - close_start
    base, with_log = statistics.median(bare), statistics.median(logged)
    # Each logged block next to the bare block just before it: drift hits both alike.
    paired = statistics.median(w / b - 1 for w, b in zip(logged, bare, strict=True))
    per_step_us = base / n * 1e6
    overhead_us = (with_log - base) / n * 1e6
    print(f"{args.rounds} rounds x {n} steps, {len(METRICS)} metrics per step")
    print(f"step without logging: {per_step_us:8.1f} us (median block)")
    print(f"step with logging:    {with_log / n * 1e6:8.1f} us")
    print(
        f"overhead per step:    {overhead_us:8.2f} us ({overhead_us / len(METRICS):.2f} us/point)"
    )
    print(f"slowdown (medians):   {(with_log / base - 1) * 100:+8.2f} %")
    print(f"slowdown (paired):    {paired * 100:+8.2f} % (median of block pairs)")
    spread = (max(bare) - min(bare)) / base * 100
    print(f"noise (baseline block spread): {spread:.1f} %")
    print(
        f"final flush: {flush_s * 1000:.0f} ms; points written {stats.points_written:,} of "
        f"{stats.points_logged:,}, dropped {stats.points_dropped}"
    )


if __name__ == "__main__":
    main()

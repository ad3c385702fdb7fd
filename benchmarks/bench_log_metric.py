"""Per-call cost of ``Run.log_metric`` on the hot path, beside a floor, in one run.

The floor is what no tracker can beat: a function that appends a tuple to a list. Each
call is timed with ``perf_counter_ns`` around it (the timer's own cost is in both numbers).
Rounds alternate floor and runstream so that machine noise hits both alike; the medians
of the per-round medians are reported, and their ratio.

    python benchmarks/bench_log_metric.py [--calls 200000] [--rounds 5]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import runstream
from benchmarks._machine import describe


def time_calls(log: Callable[..., None], calls: int) -> tuple[float, float]:
    """Median and p99 in ns of ``log("loss", value, step=i)``, timed one call at a time."""
    clock = time.perf_counter_ns
    samples = [0] * calls
    value = 0.25
    for i in range(calls):
        start = clock()
        log("loss", value, step=i)
        samples[i] = clock() - start
    samples.sort()
    return float(samples[calls // 2]), float(samples[int(calls * 0.99)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(describe())
    sink: list[tuple[str, float, int | None]] = []

    def floor(name: str, value: float, step: int | None = None) -> None:
        sink.append((name, value, step))

    results: dict[str, list[tuple[float, float]]] = {"floor": [], "runstream": []}
    with (
        tempfile.TemporaryDirectory() as store,
        runstream.Run("bench", "log-metric", store=store) as run,
    ):
        for _ in range(args.rounds):
            sink.clear()
            results["floor"].append(time_calls(floor, args.calls))
            results["runstream"].append(time_calls(run.log_metric, args.calls))
        stats = run.flush().stats
    print(f"{args.rounds} rounds x {args.calls:,} calls; ns per call (timer included)")
    print(f"{'':12}{'median':>10}{'p99':>10}")
    medians = {}
    for name, rounds in results.items():
        medians[name] = statistics.median(m for m, _ in rounds)
        p99 = statistics.median(p for _, p in rounds)
        print(f"{name:12}{medians[name]:>10.0f}{p99:>10.0f}")
    print(f"ratio runstream/floor (median): {medians['runstream'] / medians['floor']:.2f}x")
    print(
        f"points written: {stats.points_written:,} of {stats.points_logged:,} logged, "
        f"{stats.points_dropped} dropped"
    )


if __name__ == "__main__":
    main()

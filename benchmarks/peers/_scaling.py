"""runstream alone, as a run grows (10^4 → 10^8 points) and as metrics per step grow (1 →
1,000): per-call cost, memory, closing time, what lands in the store. One size per process.

Values come from a small cyclic table, so a 10^8-point run needs no 10^8-float workload.
Calls are timed one by one in sampled blocks (at most about a million timed calls per run);
the other blocks run the same loop without the timer, and the whole loop's wall time gives
the mean cost per point.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import runstream

from ._child import peak_rss_mb, rss_mb
from ._timing import percentile_us
from ._workload import metric_names, metric_value

__all__ = ("measure",)

_BLOCK = 256  # steps per block
_PERIOD = 4096  # distinct values per metric
_TIMED_CALLS = 1_000_000
_clock = time.perf_counter_ns


def _tree_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1024 * 1024)


def measure(steps: int, metrics: int, style: str, budget: float, workdir: Path) -> dict[str, Any]:
    """Log ``steps`` x ``metrics`` points (``kw``: log_metric, ``dict``: log_metrics)."""
    names = metric_names(metrics)
    table = [[metric_value(i, k) for i in range(_PERIOD)] for k in range(metrics)]
    blocks = -(-steps // _BLOCK)
    calls_per_block = _BLOCK * (1 if style == "dict" else metrics)
    stride = max(1, blocks * calls_per_block // _TIMED_CALLS)
    store = workdir / "store"
    durations: list[int] = []
    rss_before = rss_mb()
    run = runstream.Run("scaling", f"s{steps}-k{metrics}-{style}", store=store)
    deadline = _clock() + int(budget * 1e9)
    done = 0
    loop_ns = 0
    with run:
        log_metric, log_metrics = run.log_metric, run.log_metrics
        for block in range(blocks):
            first, last = block * _BLOCK, min(steps, (block + 1) * _BLOCK)
            rows = [
                [(names[k], table[k][step % _PERIOD]) for k in range(metrics)]
                for step in range(first, last)
            ]
            dicts = [dict(row) for row in rows] if style == "dict" else []
            timed = block % stride == 0
            start = _clock()
            for i, step in enumerate(range(first, last)):
                if style == "dict":
                    if timed:
                        t0 = _clock()
                        log_metrics(dicts[i], step=step)
                        durations.append(_clock() - t0)
                    else:
                        log_metrics(dicts[i], step=step)
                elif timed:
                    for name, value in rows[i]:
                        t0 = _clock()
                        log_metric(name, value, step=step)
                        durations.append(_clock() - t0)
                else:
                    for name, value in rows[i]:
                        log_metric(name, value, step=step)
            end = _clock()
            loop_ns += end - start
            done = last
            if end > deadline:
                break
        rss_logged = rss_mb()
        start = _clock()
    close_s = (_clock() - start) / 1e9  # leaving the block: the last flush, then Completed
    points = done * metrics
    record = runstream.list_runs("scaling", store=store)[0].record()
    stored = sum(m.count for m in record.metrics.values())
    return {
        "steps": done,
        "metrics": metrics,
        "style": style,
        "points": points,
        "planned_points": steps * metrics,
        "timed_calls": len(durations),
        "p50_us": percentile_us(durations, 50),
        "p99_us": percentile_us(durations, 99),
        "loop_us_per_point": loop_ns / points / 1000,
        "close_s": close_s,
        "rss_before_mb": rss_before,
        "rss_end_of_loop_mb": rss_logged,
        "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_before,
        "store_mb": _tree_mb(store),
        "read_back": stored,
        "versions": {"runstream": runstream.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers._scaling")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--metrics", type=int, required=True)
    p.add_argument("--style", choices=("kw", "dict"), default="kw")
    p.add_argument("--budget", type=float, default=120.0)
    p.add_argument("--workdir", required=True)
    p.add_argument("--result", required=True)
    args = p.parse_args(argv)
    workdir = Path(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    result = measure(args.steps, args.metrics, args.style, args.budget, workdir)
    Path(args.result).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

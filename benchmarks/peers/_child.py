"""One measurement in one process, inside a tracker's environment; writes a JSON result.

``python -m benchmarks.peers._child PHASE --adapter module:Class ... --result FILE``
where PHASE is ``hot`` (the bare loop, close, memory), ``train`` (the simulated training
loop's slowdown) or ``readback`` (count the points of an earlier ``hot`` run, in this fresh
process). An adapter that raises :class:`Unavailable` yields ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from ._timing import (
    matmul_step,
    percentile_us,
    time_calls,
    timer_cost_ns,
    training_slowdown,
)
from ._trackers.base import Adapter, Context, Unavailable, load_adapter
from ._workload import Workload

__all__ = ("main",)

_MB = 1024 * 1024


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), from /proc."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:  # gone already, or not Linux
        pass
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / _MB  # KiB on Linux


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (helpers a tracker started, e.g. wandb-core)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                kids = [int(k) for k in children.read().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def helpers_peak_mb() -> float:
    return sum(rss_mb(pid, "VmHWM") for pid in descendants(os.getpid()))


def _hot(adapter: Adapter, workload: Workload, budget: float) -> dict[str, Any]:
    timer = timer_cost_ns()
    rss_start = rss_mb()
    start = time.perf_counter()
    log = adapter.open()
    open_s = time.perf_counter() - start
    rss_before = rss_mb()
    deadline = time.perf_counter_ns() + int(budget * 1e9)
    times = time_calls(log, adapter.style, workload, deadline)
    helpers = helpers_peak_mb()
    start = time.perf_counter()
    adapter.close()
    close_s = time.perf_counter() - start
    durations = times.durations_ns
    return {
        "steps": times.steps,
        "points": times.points,
        "calls": len(durations),
        "p50_us": percentile_us(durations, 50),
        "p99_us": percentile_us(durations, 99),
        "mean_us": sum(durations) / len(durations) / 1000,
        "loop_us_per_point": times.loop_ns / times.points / 1000,
        "timer_ns": timer,
        "open_s": open_s,
        "close_s": close_s,
        "rss_start_mb": rss_start,
        "rss_before_loop_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_before,
        "helpers_peak_rss_mb": helpers,
    }


def _train(adapter: Adapter, workload: Workload, budget: float, size: int) -> dict[str, Any]:
    work = matmul_step(size)
    for _ in range(50):  # warm the caches and the BLAS kernel before the first baseline
        work()
    log = adapter.open()
    deadline = time.perf_counter_ns() + int(budget * 1e9)
    slowdown, close_s = training_slowdown(
        log, adapter.style, workload, work, deadline, adapter.close
    )
    return {
        "steps": slowdown.steps,
        "work_us_per_step": slowdown.baseline * 1e6,
        "logged_us_per_step": slowdown.logged * 1e6,
        "baseline_s_per_step": [slowdown.baseline_before, slowdown.baseline_after],
        "slowdown_pct": slowdown.percent,
        "noise_pct": slowdown.noise_percent,
        "close_s": close_s,
    }


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    names = Workload(1, args.metrics).names
    context = Context(
        workdir=Path(args.workdir),
        experiment=args.experiment,
        run=args.run,
        names=names,
        endpoint=args.endpoint,
    )
    adapter = load_adapter(args.adapter, context)
    result: dict[str, Any] = {
        "phase": args.phase,
        "style": adapter.style,
        "load_average": os.getloadavg()[0],  # the machine may be shared: say how busy it was
    }
    try:
        if args.phase == "readback":
            result["counts"] = adapter.read_back()
        else:
            workload = Workload(args.steps, args.metrics)
            if args.phase == "hot":
                result.update(_hot(adapter, workload, args.budget))
            else:
                result.update(_train(adapter, workload, args.budget, args.work_size))
    except Unavailable as why:
        return {"phase": args.phase, "skipped": str(why)}
    result["versions"] = {
        "python": sys.version.split()[0],
        **adapter.versions(),
    }
    result["notes"] = adapter.notes()
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers._child")
    p.add_argument("phase", choices=("hot", "train", "readback"))
    p.add_argument("--adapter", required=True, help="module:Class")
    p.add_argument("--workdir", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--metrics", type=int, default=4)
    p.add_argument("--budget", type=float, default=60.0, help="seconds the loop may run")
    p.add_argument("--work-size", type=int, default=216)
    p.add_argument("--endpoint", default=None)
    p.add_argument("--result", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    result = run_phase(args)
    Path(args.result).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

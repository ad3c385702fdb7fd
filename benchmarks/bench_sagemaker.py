"""The SageMaker backend against moto's server (a child process on 127.0.0.1).

Prints, with the machine:

1. the training loop's time per step with no logging, the local backend and
   ``backend="sagemaker"`` (the store's agent sends), in one run, ABBA-paired, and the
   time ``close`` takes outside a job;
2. data acknowledged per second against the BatchPutMetrics budget, the lag and the
   stride, at 1k, 10k and 100k points per second logged.

moto is not AWS: its rates measure moto and the client on this machine, not the service.
Usage: ``python benchmarks/bench_sagemaker.py [--quick] [--pin]`` (needs the aws extra and moto's
server: ``pip install -e '.[aws]' moto flask flask-cors``; the official SDK is optional).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator

# One BLAS thread, as the peers harness: a multi-threaded matmul on two shared cores
# measures the BLAS pool's contention with everything else, not the logging.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

import runstream  # noqa: E402
from runstream._backends.sagemaker import _ratelimit  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server as a child process (its own GIL), on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if PINNED is not None:
        os.sched_setaffinity(proc.pid, PINNED[1])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def configure(endpoint: str, home: str) -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.path.join(home, "absent"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "absent"),
        SAGEMAKER_SUPPRESS_V2_WARNING="1",
    )


def set_rate(calls_per_second: float | None) -> None:
    if calls_per_second is None:
        os.environ.pop(_ratelimit.ENV_RATE, None)
    else:
        os.environ[_ratelimit.ENV_RATE] = str(calls_per_second)
    _ratelimit.reset_buckets()


# -- 1. the loop: none / local / sagemaker, ABBA-paired, and close ---------------------


def matmul_loop(log: Callable[[int, dict[str, float]], None] | None, steps: int) -> float:
    """Seconds per step of a 216x216 float32 matmul that logs 4 metrics (as bench_peers)."""
    rng = np.random.default_rng(1)
    a = rng.random((216, 216), dtype=np.float32)
    b = rng.random((216, 216), dtype=np.float32)
    started = time.perf_counter()
    for step in range(steps):
        c = a @ b
        if log is not None:
            x = float(c[0, 0])
            log(step, {"loss": x, "acc": 1 - x, "lr": 0.01, "grad_norm": x * 2})
    return (time.perf_counter() - started) / steps


#: ``--pin``: the CPUs of the training process, and of moto's server and the agents
PINNED: tuple[set[int], set[int]] | None = None


def pin_agent(store: str) -> None:
    """``--pin``: move the store's agent (it inherits the training process's CPUs) to the
    service's CPU, as on a training host where it would have a core of its own."""
    if PINNED is None:
        return
    from runstream._backends import _journal
    from runstream._store import LocalStore

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = _journal.agent_state(LocalStore(store))
        if state is not None and state.alive:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(state.pid, PINNED[1])
            return
        time.sleep(0.01)


def block(store: str, backend: str | None, name: str, steps: int) -> tuple[float, float]:
    """(seconds per step of the loop, seconds the close took)."""
    if backend is None:
        return matmul_loop(None, steps), 0.0
    run = runstream.Run("bench", name, store=store, backend=backend)
    with run:
        if backend == "sagemaker":
            pin_agent(store)
        per_step = matmul_loop(lambda s, m: run.log_metrics(m, step=s), steps)
        closing = time.perf_counter()
    return per_step, time.perf_counter() - closing


def slowdown(store: str, rounds: int, steps: int) -> None:
    """ABBA: each round runs none, local, sagemaker, sagemaker, local, none; a ratio per
    round pairs each variant with the no-logging blocks around it; medians are printed."""
    set_rate(None)
    per: dict[str, list[float]] = {"none": [], "local": [], "sagemaker": []}
    closes: dict[str, list[float]] = {"local": [], "sagemaker": []}
    order = ("none", "local", "sagemaker", "sagemaker", "local", "none")
    for r in range(rounds):
        for i, variant in enumerate(order):
            backend = None if variant == "none" else variant
            t, c = block(store, backend, f"abba-{variant}-{r}-{i}", steps)
            per[variant].append(t)
            if backend is not None:
                closes[variant].append(c)
    med = {k: float(np.median(v)) for k, v in per.items()}
    ratio_local = [s / lo - 1 for s, lo in zip(per["sagemaker"], per["local"], strict=True)]
    ratio_none = [s / n - 1 for s, n in zip(per["sagemaker"], per["none"], strict=True)]
    local_none = [lo / n - 1 for lo, n in zip(per["local"], per["none"], strict=True)]
    print(f"  {rounds} ABBA rounds x {steps:,} steps per block")
    for k in ("none", "local", "sagemaker"):
        print(f"  {k:10s} {med[k] * 1e6:8.1f} us/step (median)")
    print(
        f"  sagemaker vs local: {np.median(ratio_local) * 100:+.2f} % (median of pairs); "
        f"sagemaker vs none: {np.median(ratio_none) * 100:+.2f} %; "
        f"local vs none: {np.median(local_none) * 100:+.2f} %"
    )
    print(
        f"  close: local median {np.median(closes['local']):.3f} s, sagemaker median "
        f"{np.median(closes['sagemaker']):.3f} s (max {max(closes['sagemaker']):.3f} s)"
    )


# -- 2. data acknowledged per second, and the lag ---------------------------------------


def acknowledged(store: str, points_per_second: float, seconds: float, rate: float) -> None:
    """Log 4 metrics a step at ``points_per_second`` for ``seconds``; the agent's data
    acknowledged per second against the budget, the lag, the stride."""
    set_rate(rate)
    budget = rate * 10
    steps_per_second = points_per_second / 4
    run = runstream.Run("bench", f"ack-{points_per_second:g}", store=store, backend="sagemaker")
    with run:
        started = time.perf_counter()
        step = 0
        first = None
        while (now := time.perf_counter() - started) < seconds:
            due = int(now * steps_per_second)
            while step < due:
                run.log_metrics({"a": step, "b": 1.0, "c": 2.0, "d": 3.0}, step=step)
                step += 1
            if first is None and now > 1.0:
                first = (time.perf_counter(), run.stats.sync)
            time.sleep(0.002)
        end = (time.perf_counter(), run.stats.sync)
    assert first is not None
    assert first[1] is not None
    assert end[1] is not None
    acked = (end[1].data_sent - first[1].data_sent) / (end[0] - first[0])
    print(
        f"  {points_per_second:>9,.0f} points/s logged ({step * 4:,} points): "
        f"{acked:,.0f} data/s acknowledged (budget {budget:,.0f}); lag at the end "
        f"{end[1].lag_seconds} s, stride {end[1].stride}; close returned, agent sends the rest"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rate", type=float, default=100.0, help="BatchPutMetrics calls/s")
    parser.add_argument("--steps", type=int, default=10_000, help="steps per ABBA block")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the training process on the first CPU, moto's server and the agents on the "
        "others (a training host gives the agent a core of its own; moto stands for a "
        "service on other machines)",
    )
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    global PINNED
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs two CPUs")
        PINNED = ({cpus[0]}, set(cpus[1:]))
        os.sched_setaffinity(0, PINNED[0])
        print(f"pinned: training process on CPU {cpus[0]}; moto and the agents on {cpus[1:]}")
    with tempfile.TemporaryDirectory() as home, moto_server() as endpoint:
        configure(endpoint, home)
        os.environ["RUNSTREAM_AGENT_IDLE"] = "1"
        registry = os.path.join(home, "agents")
        os.environ["RUNSTREAM_AGENT_REGISTRY"] = registry  # ended below
        print(f"moto server: {endpoint} (child process)")
        print("1. training loop (216x216 float32 matmul, 4 metrics/step), ABBA, and close")
        slowdown(os.path.join(home, "s1"), args.rounds, int(args.steps * scale))
        print(f"2. data acknowledged per second (budget {args.rate:g} calls/s x 10 data)")
        for i, pps in enumerate((1_000, 10_000, 100_000)):
            acknowledged(os.path.join(home, f"a{i}"), pps, 10 * scale, args.rate)
        end_agents(registry)


def end_agents(registry: str) -> None:
    """The agents this run started still send its backlog: end them with the moto server."""
    with contextlib.suppress(OSError), open(registry) as file:
        for pid in {int(line) for line in file.read().split()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


if __name__ == "__main__":
    main()

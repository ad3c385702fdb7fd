"""The SageMaker backend against moto's server (a child process on 127.0.0.1).

Prints, with the machine:

1. API calls per 1M points logged, for a loop logging as fast as it can (runstream groups
   steps to fit the API budget) and for the official SDK (10 points per call, always);
2. points per second delivered to moto at full resolution (no grouping), 1 and 8
   concurrent runs;
3. the training loop's time per step with no tracking, runstream local, runstream syncing
   to SageMaker, and the official SDK's ``log_metric`` on the same server.

moto is not AWS: its rates measure moto and the client on this machine, not the service.
Usage: ``python benchmarks/bench_sagemaker.py [--quick]`` (needs the aws extra and moto's
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
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator

import numpy as np

import runstream
from runstream._backends.sagemaker import _ratelimit


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


# -- 1. API calls per 1M points -----------------------------------------------------------


def calls_per_million(store: str, seconds: float, steps_per_second: float | None) -> None:
    """Log 4 metrics per step for ``seconds``, as fast as possible or paced."""
    set_rate(None)  # the default budget: 10 BatchPutMetrics calls per second
    names = ("loss", "acc", "lr", "grad_norm")
    steps = 0
    label = "as fast as possible" if steps_per_second is None else f"{steps_per_second:g} steps/s"
    started = time.perf_counter()
    with runstream.Run("bench", f"calls-{steps_per_second or 0:g}", store=store,
                       backend="sagemaker") as run:  # fmt: skip
        values = np.random.default_rng(0).random(1024).tolist()
        while (now := time.perf_counter() - started) < seconds:
            if steps_per_second is not None and steps >= now * steps_per_second:
                time.sleep(0.001)
                continue
            for _ in range(100 if steps_per_second is None else 1):
                run.log_metrics(dict.fromkeys(names, values[steps % 1024]), step=steps)
                steps += 1
        logged = time.perf_counter() - started
    closed = time.perf_counter() - started
    sync = run.stats.sync
    assert sync is not None
    points = steps * len(names)
    print(
        f"  runstream, {label}: {points:,} points ({points / logged:,.0f}/s); "
        f"{sync.api_calls} API calls, {sync.data_sent:,} data sent = "
        f"{sync.api_calls / points * 1e6:,.0f} calls per 1M points; acknowledged "
        f"{closed - logged:.1f} s after the loop; pending {sync.points_pending}, "
        f"rejected {sync.points_rejected}"
    )


# -- 2. delivery at full resolution -----------------------------------------------------


def deliver(store: str, runs: int, steps: int) -> None:
    set_rate(10_000)  # no grouping: measure how fast full resolution reaches moto
    done: list[runstream.RunStats] = []

    def one(index: int) -> None:
        with runstream.Run(
            "bench", f"deliver-{runs}-{index}", store=store, backend="sagemaker",
            close_timeout=600,
        ) as run:  # fmt: skip
            for step in range(steps):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
        done.append(run.stats)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    sent = sum(s.sync.points_sent for s in done if s.sync is not None)
    calls = sum(s.sync.api_calls for s in done if s.sync is not None)
    print(
        f"  {runs} run(s) x {steps:,} steps: {sent:,} points delivered in {elapsed:.1f} s "
        f"= {sent / elapsed:,.0f} points/s ({calls} calls, {calls / elapsed:,.0f} calls/s)"
    )


# -- 3. the training loop's slowdown ----------------------------------------------------


def training_loop(log: Callable[[int, dict[str, float]], None] | None, steps: int) -> float:
    """Seconds per step of a small numpy 'training step' that logs 4 metrics."""
    rng = np.random.default_rng(1)
    weights = rng.random((48, 48))
    batch = rng.random((48, 48))
    started = time.perf_counter()
    for step in range(steps):
        weights = np.tanh(weights @ batch) * 0.5  # the model's work
        if log is not None:
            loss = float(weights[0, 0])
            log(step, {"loss": loss, "acc": 1 - loss, "lr": 0.01, "grad_norm": loss * 2})
    return (time.perf_counter() - started) / steps


def tracked_loop(store: str, backend: str, name: str, steps: int) -> float:
    with runstream.Run("bench", name, store=store, backend=backend) as run:
        return training_loop(lambda s, m: run.log_metrics(m, step=s), steps)


def slowdown(store: str, steps: int, official: bool) -> None:
    """Best of 3 (this machine is shared: the minimum is the least disturbed run)."""
    set_rate(None)
    rows: list[tuple[str, float]] = [("no tracking", 1.0), ("runstream, local store", 1.0),
                                     ("runstream, syncing to SageMaker", 1.0)]  # fmt: skip
    for attempt in range(3):  # interleaved, so drifting load hits all alike
        measured = (
            training_loop(None, steps),
            tracked_loop(store, "local", f"loop-local-{attempt}", steps),
            tracked_loop(store, "sagemaker", f"loop-sm-{attempt}", steps),
        )
        rows = [(label, min(best, new)) for (label, best), new in zip(rows, measured, strict=True)]
    baseline = rows[0][1]
    # A synchronous HTTP call every 10th point: fewer steps keep this row short.
    official_row = official_sdk_loop(min(steps, 2_000)) if official else None
    if official_row is not None:
        rows.append(official_row)
    for label, per_step in rows:
        print(
            f"  {label:34s} {per_step * 1e6:9.1f} us/step  "
            f"({(per_step / baseline - 1) * 100:+7.1f} %)"
        )


def official_sdk_loop(steps: int) -> tuple[str, float] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import boto3
            import sagemaker
            from sagemaker.experiments import Run as OfficialRun
    except ImportError:
        print("  (the official sagemaker SDK is not installed: no comparison)")
        return None
    import logging

    logging.getLogger("sagemaker").setLevel(logging.ERROR)
    calls = [0]

    def count(**_: object) -> None:
        calls[0] += 1

    boto = boto3.Session(region_name="us-east-1")
    boto.events.register("before-call.sagemaker-metrics.BatchPutMetrics", count)
    session = sagemaker.Session(boto_session=boto)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with OfficialRun("bench-official", "loop", sagemaker_session=session) as run:

            def log(step: int, metrics: dict[str, float]) -> None:
                for name, value in metrics.items():
                    run.log_metric(name, value, step=step)

            per_step = training_loop(log, steps)
    points = steps * 4
    print(f"  (official SDK: {calls[0]} BatchPutMetrics calls for {points:,} points)")
    return ("official SDK log_metric (sync HTTP)", per_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke)")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    print(f"machine: {machine()}")
    try:
        import sagemaker  # noqa: F401

        official = True
    except ImportError:
        official = False
    with tempfile.TemporaryDirectory() as home, moto_server() as endpoint:
        configure(endpoint, home)
        print(f"moto server: {endpoint} (child process)")
        print("1. API calls per 1M points (4 metrics per step; official SDK: 100,000, always)")
        calls_per_million(os.path.join(home, "s1"), 5 * scale, steps_per_second=None)
        calls_per_million(os.path.join(home, "s1"), 5 * scale, steps_per_second=500)
        calls_per_million(os.path.join(home, "s1"), 5 * scale, steps_per_second=20)
        print("2. points/s delivered to moto at full resolution (1 point per step)")
        deliver(os.path.join(home, "s2"), runs=1, steps=int(10_000 * scale))
        deliver(os.path.join(home, "s3"), runs=8, steps=int(2_500 * scale))
        print("3. training-loop time per step (48x48 matmul + tanh, 4 metrics logged)")
        slowdown(os.path.join(home, "s4"), steps=int(30_000 * scale), official=official)


if __name__ == "__main__":
    main()

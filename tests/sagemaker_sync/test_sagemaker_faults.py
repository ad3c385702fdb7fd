"""Faults moto cannot make, injected in front of it: throttling, per-item errors, a
sender killed mid-batch, refused credentials. Nothing may be lost, sent twice, or
raised into the training loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import runstream
from _support import agent_pid, python_child, wait_until

from .moto_rig import THROTTLE, Forward, is_batch_put_metrics

if TYPE_CHECKING:
    from .moto_rig import Environ, Rig

WAIT = 60.0  # a bound on waiting for a background event, never an assertion on speed


def summaries(aws: Rig, tc: str) -> dict[str, dict[str, Any]]:
    found = aws.boto3("sagemaker").describe_trial_component(TrialComponentName=tc)
    return {m["MetricName"]: m for m in found["Metrics"]}


def test_sustained_throttling_loses_nothing_and_never_blocks_the_loop(
    aws: Rig, tmp_path: Path
) -> None:
    throttling = threading.Event()
    throttling.set()
    throttled = threading.Semaphore(0)

    def throttle(environ: Environ, body: bytes) -> Any:
        if is_batch_put_metrics(environ) and throttling.is_set():
            throttled.release()
            return THROTTLE
        return None

    aws.injector.handlers.append(throttle)
    with runstream.Run("throttled", "r1", store=tmp_path, backend="sagemaker") as run:
        for step in range(100):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
        run.flush()  # the local write is not held back by the throttled sender
        for _ in range(5):  # the sender keeps meeting ThrottlingException...
            assert throttled.acquire(timeout=WAIT)
        for step in range(100, 200):  # ...while the loop goes on logging
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
        run.flush()
        # The fifth throttled answer has reached moto's side; let the sender count it.
        wait_until(
            lambda: run.stats.sync is not None and run.stats.sync.throttled >= 5,
            "the sender to count five throttled calls",
            WAIT,
        )
        during = run.stats
        throttling.clear()
    assert during.points_written == 400
    assert during.sync is not None
    assert during.sync.points_pending > 0
    assert during.sync.throttled >= 5

    after = run.stats.sync
    assert after is not None
    assert (after.state, after.points_sent, after.points_pending, after.points_rejected) == (
        "synced",
        400,
        0,
        0,
    )
    assert after.throttled >= 5
    assert after.points_retried > 0
    assert after.last_error is None
    delivered = Counter(aws.injector.delivered)
    assert set(delivered.values()) == {1}  # each (metric, step) reached moto once
    assert len(delivered) == 400
    found = summaries(aws, "throttled-r1")
    assert (found["loss"]["Count"], found["acc"]["Count"]) == (200, 200)
    assert found["loss"]["Last"] == pytest.approx(1 / 200)


def test_item_errors_retry_only_the_failed_items_and_report_invalid_ones(
    aws: Rig, tmp_path: Path
) -> None:
    failed_once: set[tuple[str, int]] = set()

    def item_errors(environ: Environ, body: bytes) -> Any:
        if not is_batch_put_metrics(environ):
            return None
        failed = {}
        for index, datum in enumerate(json.loads(body)["MetricData"]):
            key = (datum["MetricName"], datum["Step"])
            if datum["MetricName"] == "bad" and datum["Step"] == 13:
                failed[index] = "VALIDATION_ERROR"
            elif datum["Step"] % 7 == 3 and key not in failed_once:
                failed_once.add(key)
                failed[index] = "INTERNAL_ERROR" if datum["Step"] % 2 else "CONFLICT_ERROR"
        return Forward(failed) if failed else None

    aws.injector.handlers.append(item_errors)
    with runstream.Run("items", "r1", store=tmp_path, backend="sagemaker") as run:
        for step in range(50):
            run.log_metrics({"loss": float(step), "bad": -float(step)}, step=step)
    sync = run.stats.sync
    assert sync is not None
    assert (sync.state, sync.points_sent, sync.points_rejected) == ("synced", 99, 1)
    assert sync.points_retried == len(failed_once)

    requested = Counter((d["MetricName"], d["Step"]) for r in aws.injector.requested for d in r)
    assert {k for k, n in requested.items() if n == 2} == failed_once  # only they went again
    assert requested[("bad", 13)] == 1  # reported, never resent
    assert set(requested.values()) <= {1, 2}
    found = summaries(aws, "items-r1")
    assert (found["loss"]["Count"], found["bad"]["Count"]) == (50, 49)

    status = subprocess.run(
        [sys.executable, "-m", "runstream", "status", "--store", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (record,) = json.loads(status.stdout)
    assert (record["points_rejected"], record["points_pending"]) == (1, 0)


CHILD = textwrap.dedent(
    """
    import sys, time
    import runstream
    with runstream.Run("crash", "r1", store=sys.argv[1], backend="sagemaker") as run:
        for step in range(150):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        print("logged", flush=True)
        time.sleep(600)  # killed mid-sync, inside the run
    """
)


def test_an_agent_killed_mid_batch_is_resumed_and_sends_nothing_twice(
    aws: Rig, tmp_path: Path
) -> None:
    held, release = threading.Event(), threading.Event()
    calls = Counter[str]()

    def hold_the_third_call(environ: Environ, body: bytes) -> Any:
        if not is_batch_put_metrics(environ):
            return None
        calls["bpm"] += 1
        if calls["bpm"] != 3:
            return None
        held.set()  # the third call is in flight, not answered: now the process dies
        release.wait(WAIT)
        return ("500 Internal Server Error", [("Content-Type", "application/json")], b"{}")

    aws.injector.handlers.append(hold_the_third_call)
    store = tmp_path / "store"
    with python_child("-c", CHILD, str(store)) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "logged"
            assert held.wait(WAIT)
            os.kill(agent_pid(store), signal.SIGKILL)  # the agent dies mid-batch
            child.send_signal(signal.SIGKILL)  # and so does the training process
            child.wait(timeout=WAIT)
        finally:
            release.set()
    assert len(aws.injector.delivered) == 20  # two calls acknowledged before the crash

    done = subprocess.run(
        [sys.executable, "-m", "runstream", "sync", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (status,) = json.loads(done.stdout)
    assert (status["state"], status["points_sent"], status["points_pending"]) == (
        "synced",
        150,
        0,
    )
    delivered = Counter(aws.injector.delivered)
    assert sorted(int(step or 0) for _, step in delivered) == list(range(150))
    assert set(delivered.values()) == {1}
    assert summaries(aws, "crash-r1")["loss"]["Count"] == 150


def test_refused_credentials_fail_early_and_keep_the_data_locally(
    aws: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    with runstream.Run("offline", "r1", store=store) as run:  # trained without AWS
        for step in range(40):
            run.log_metric("loss", 1.0 / (step + 1), step=step)

    aws.require_auth(True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    with pytest.raises(runstream.BackendError, match=r"InvalidClientTokenId") as refused:
        runstream.Run("offline", "r2", store=store, backend="sagemaker").__enter__()
    assert "runstream sync" in str(refused.value)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runstream", *args, "--store", str(store), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=dict(os.environ),
        )

    refused_sync = cli("sync", "offline", "r1")
    assert refused_sync.returncode == 1
    assert "AWS refused the credentials" in refused_sync.stderr
    (pending,) = json.loads(cli("status", "offline", "r1").stdout)
    assert (pending["state"], pending["points_pending"], pending["points_sent"]) == (
        "pending",
        40,
        0,
    )
    assert runstream.load_run("r1", "offline", store=store).record().metrics["loss"].count == 40

    aws.require_auth(False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    synced = cli("sync", "offline", "r1")
    assert synced.returncode == 0, synced.stderr
    (status,) = json.loads(synced.stdout)
    assert (status["state"], status["points_sent"]) == ("synced", 40)
    assert summaries(aws, "offline-r1")["loss"]["Count"] == 40


WORKER = textwrap.dedent(
    """
    import sys
    import runstream
    first = int(sys.argv[2])
    with runstream.Run("workers", "r1", store=sys.argv[1], backend="sagemaker") as run:
        print("entered", flush=True)
        for step in range(first, first + 120):
            run.log_metric("loss", float(step), step=step)
            if step % 40 == 0:
                run.flush()
    """
)


def test_worker_processes_of_one_run_share_a_store_and_send_each_point_once(
    aws: Rig, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    workers = []
    for rank, first in enumerate((0, 1000)):
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store), str(first)],
            env={**os.environ, "RUNSTREAM_WORKER": f"rank-{rank}"},
            stdout=subprocess.PIPE,
            text=True,
        )
        workers.append(worker)
        # The second worker starts once the entities exist: it then loads them from the
        # store's record instead of creating them again (which moto, unlike SageMaker,
        # would treat as a reset of the trial component).
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "entered"
    for worker in workers:
        assert worker.wait(timeout=WAIT * 2) == 0
        assert worker.stdout is not None
        worker.stdout.close()
    leftover = subprocess.run(  # whatever a worker left to the other, now nobody holds it
        [sys.executable, "-m", "runstream", "sync", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (status,) = json.loads(leftover.stdout)
    assert (status["state"], status["points_sent"], status["points_pending"]) == (
        "synced",
        240,
        0,
    )
    delivered = Counter(aws.injector.delivered)
    assert set(delivered.values()) == {1}
    assert len(delivered) == 240
    found = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="workers-r1")
    assert found["Status"]["PrimaryStatus"] == "Completed"
    assert {m["MetricName"]: m["Count"] for m in found["Metrics"]} == {"loss": 240}

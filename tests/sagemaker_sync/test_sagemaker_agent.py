"""The sync agent: a process per store sends everything, the training process sends
nothing, every step arrives, and no agent outlives its work."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import runstream
from _support import agent_pid, pid_alive, python_child, wait_until
from runstream._backends import _journal
from runstream._store import LocalStore

from .moto_rig import THROTTLE, UNAVAILABLE, is_batch_put_metrics, wait_synced

if TYPE_CHECKING:
    from .moto_rig import Environ, Rig

WAIT = 60.0  # a bound on waiting for a background event, never an assertion on speed


@pytest.fixture
def agent(aws: Rig, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """The default close: it returns after the local write, the agent sends later."""
    monkeypatch.delenv("RUNSTREAM_CLOSE_WAIT")
    return aws


def counts(aws: Rig, tc: str) -> dict[str, int]:
    found = aws.boto3("sagemaker").describe_trial_component(TrialComponentName=tc)
    return {m["MetricName"]: m["Count"] for m in found["Metrics"]}


def wait_for_exit(store: Path) -> None:
    """The agent exits by itself once everything is sent and no process has a run open."""

    def exited() -> bool:
        state = _journal.agent_state(LocalStore(store))
        return state is None or not state.alive

    wait_until(exited, "the agent to exit", WAIT)


def test_every_step_of_a_fast_loop_arrives_without_sync(agent: Rig, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with runstream.Run("fast", "r1", store=store, backend="sagemaker") as run:
        for step in range(5000):
            run.log_metrics({"a": step, "b": -step, "c": 0.5, "d": 1.0}, step=step)
    assert run.stats.points_written == 20_000
    sync = wait_synced(run, WAIT)
    assert (sync.state, sync.points_sent, sync.data_sent, sync.max_stride) == (
        "synced",
        20_000,
        20_000,
        1,
    )
    assert counts(agent, "fast-r1") == {"a": 5000, "b": 5000, "c": 5000, "d": 5000}
    steps = Counter(step for _, step in agent.injector.delivered)
    assert set(steps.values()) == {4}  # every step once per metric
    wait_for_exit(store)


def test_a_lag_bound_groups_only_the_oldest_steps_and_full_never_does(
    agent: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_SAGEMAKER_RATE", "1")  # 10 data/s
    monkeypatch.setenv("RUNSTREAM_MAX_LAG", "10")  # 100 data of backlog at most
    store = tmp_path / "store"
    with runstream.Run("lag", "auto", store=store, backend="sagemaker") as run:
        for step in range(400):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    sync = wait_synced(run, WAIT)
    assert sync.state == "synced"
    assert sync.points_sent == 400
    assert 1 < sync.max_stride <= 4  # grouped to fit the bound
    assert sync.data_sent < 400

    # The budget is the agent's (read when it starts): another store, another agent.
    monkeypatch.setenv("RUNSTREAM_SAGEMAKER_RATE", "100")
    with runstream.Run(
        "lag", "full", store=tmp_path / "other", backend="sagemaker", resolution="full"
    ) as full:
        for step in range(400):
            full.log_metric("loss", 1.0 / (step + 1), step=step)
    done = wait_synced(full, WAIT)
    assert (done.state, done.data_sent, done.max_stride, done.resolution) == (
        "synced",
        400,
        1,
        "full",
    )


TRAIN = textwrap.dedent(
    """
    import sys, time
    import runstream
    with runstream.Run("crash", sys.argv[2], store=sys.argv[1], backend="sagemaker") as run:
        for step in range(int(sys.argv[3])):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        print("logged", flush=True)
        if sys.argv[4] == "hang":
            time.sleep(600)
    """
)


def train(
    store: Path, run: str, steps: int, mode: str
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    return python_child("-c", TRAIN, str(store), run, str(steps), mode)


def test_what_a_killed_training_process_made_durable_arrives_once(
    agent: Rig, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with train(store, "r1", 300, "hang") as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "logged"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT)
    wait_until(lambda: len(agent.injector.delivered) >= 300, "300 steps delivered", WAIT)
    assert sorted(step or 0 for _, step in agent.injector.delivered) == list(range(300))
    assert counts(agent, "crash-r1") == {"loss": 300}


def test_two_training_processes_share_one_agent(agent: Rig, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with train(store, "r1", 200, "hang") as first:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "logged"
        with train(store, "r2", 100, "exit") as second:  # closes first, leaves nothing behind
            assert second.wait(timeout=WAIT) == 0
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and len(agent.injector.delivered) < 300:
            time.sleep(0.1)
        registry = Path(os.environ["RUNSTREAM_AGENT_REGISTRY"])
        assert len(registry.read_text().split()) == 1  # one agent served both
    assert counts(agent, "crash-r1") == {"loss": 200}
    assert counts(agent, "crash-r2") == {"loss": 100}
    # Both runs log "loss" at steps 0..99: each (metric, step) once per run, no more.
    assert len(agent.injector.delivered) == 300
    assert set(Counter(agent.injector.delivered).values()) == {1, 2}


def test_an_agent_whose_store_is_made_anew_stops(agent: Rig, tmp_path: Path) -> None:
    """``rm -rf store`` and a new run there: run ids start over in the new database, so
    the old agent must not send the new run as the old one it knew: it stops."""
    store = tmp_path / "store"
    with train(store, "old", 50, "hang") as first:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "logged"
        old_agent = agent_pid(store)
        wait_until(lambda: counts(agent, "crash-old") == {"loss": 50}, "the old run sent", WAIT)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT)
    fresh = tmp_path / "fresh"
    LocalStore(fresh).close()  # a new, empty store, swapped in at once:
    shutil.rmtree(store)
    fresh.rename(store)
    with train(store, "new", 30, "exit") as second:
        assert second.wait(timeout=WAIT) == 0

    wait_until(lambda: not pid_alive(old_agent), "the old agent to stop", WAIT)
    wait_until(lambda: counts(agent, "crash-new") == {"loss": 30}, "the new run sent", WAIT)
    assert counts(agent, "crash-old") == {"loss": 50}  # nothing of the new run went there


def test_an_agent_keeps_its_lease_through_an_outage_longer_than_it(
    agent: Rig, tmp_path: Path
) -> None:
    """BatchPutMetrics fails for longer than the leases last: the agent must not sit in one
    call's retries (its store lease would expire, a second agent could start and send the
    same data); it ends the round, renews its lease while it backs off, and sends
    everything once the service is back."""
    outage = threading.Event()
    outage.set()
    first_failure: list[float] = []

    def unavailable(environ: Environ, body: bytes) -> Any:
        if outage.is_set() and is_batch_put_metrics(environ):
            first_failure[:] = first_failure or [time.time()]
            return UNAVAILABLE
        return None

    agent.injector.handlers.append(unavailable)
    store = tmp_path / "store"
    with runstream.Run("outage", "r1", store=store, backend="sagemaker") as run:
        for step in range(200):
            run.log_metric("loss", float(step), step=step)
    wait_until(lambda: first_failure, "the first refused call", WAIT)

    def renewed_during_the_outage() -> bool:
        state = _journal.agent_state(LocalStore(store))
        return state is not None and state.heartbeat > first_failure[0] + 12

    # Default leases last 30 s; a call failing for a third of that ends the round.
    wait_until(renewed_during_the_outage, "the agent lease renewed during the outage", WAIT)
    assert outage.is_set()
    outage.clear()
    sync = wait_synced(run, WAIT)
    assert (sync.state, sync.points_sent) == ("synced", 200)
    assert counts(agent, "outage-r1") == {"loss": 200}
    assert len(agent.injector.delivered) == 200  # each step once
    registry = Path(os.environ["RUNSTREAM_AGENT_REGISTRY"])
    assert len(registry.read_text().split()) == 1  # no second agent started


def test_a_throttling_storm_never_reaches_the_loop(agent: Rig, tmp_path: Path) -> None:
    storm_ends = time.monotonic() + 20.0  # a storm on BatchPutMetrics and S3

    def storm(environ: Environ, body: bytes) -> Any:
        if time.monotonic() > storm_ends:
            return None
        if is_batch_put_metrics(environ):
            return THROTTLE
        if environ["REQUEST_METHOD"] == "PUT" and "/sagemaker-" in environ["PATH_INFO"]:
            return (
                "503 Slow Down",
                [("Content-Type", "application/xml")],
                b"<Error><Code>SlowDown</Code><Message>reduce</Message></Error>",
            )
        return None

    agent.injector.handlers.append(storm)
    notes = tmp_path / "notes.txt"
    notes.write_text("a file for S3\n")
    store = tmp_path / "store"
    with runstream.Run("storm", "r1", store=store, backend="sagemaker") as run:
        for step in range(3000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 300 == 0:
                time.sleep(0.5)  # the loop runs through the storm
        run.log_file(str(notes))
    sync = wait_synced(run, WAIT + 30)
    assert (sync.state, sync.points_sent, sync.files_pending, sync.max_stride) == (
        "synced",
        3000,
        0,
        1,
    )
    assert sync.throttled > 0
    assert counts(agent, "storm-r1") == {"loss": 3000}
    found = agent.boto3("sagemaker").describe_trial_component(TrialComponentName="storm-r1")
    assert found["OutputArtifacts"]["notes.txt"]["Value"].startswith("s3://")

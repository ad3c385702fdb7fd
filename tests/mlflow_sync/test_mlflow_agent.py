"""The MLflow sink runs in the store's sync agent: the training process sends nothing
after its preflight, close does not wait for the network, and what a killed training
process made durable still arrives, once."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from _support import python_child, wait_until
from runstream import Run
from runstream._backends import _journal
from runstream._backends.mlflow import _client
from runstream._store import LocalStore

from ._support import history, mlflow_run, unique

exp = unique()
WAIT = 60.0  # a bound on waiting for a background event, never an assertion on speed


@pytest.fixture
def agent(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default close: it returns after the local write; the agent sends later."""
    monkeypatch.delenv("RUNSTREAM_CLOSE_WAIT")
    return mlflow_uri


def points_of(client: Any, experiment: str, run: str, metric: str) -> list[tuple[int, float]]:
    found = client.get_experiment_by_name(experiment)
    if found is None or not client.search_runs([found.experiment_id]):
        return []
    return [(s, v) for s, v, _ in history(client, mlflow_run(client, experiment, run), metric)]


def test_the_training_process_sends_nothing_and_close_does_not_wait(
    agent: str, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    with Run(exp("agent"), "quiet", backend="mlflow", store=store) as run:
        # The preflight (create-or-get of the MLflow run) is done: from here on, every
        # request this process made to the server would go through this method.
        made: list[str] = []
        original = _client.MLflowClient.request

        async def counted(self: Any, method: str, path: str, *args: Any, **kw: Any) -> Any:
            made.append(f"{method} {path}")
            return await original(self, method, path, *args, **kw)

        monkeypatch.setattr(_client.MLflowClient, "request", counted)
        run.log_parameter("lr", 0.1)
        for step in range(2000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    assert made == []
    expected = [(s, 1.0 / (s + 1)) for s in range(2000)]
    wait_until(
        lambda: points_of(client, exp("agent"), "quiet", "loss") == expected,
        "every step in MLflow",
        WAIT,
    )
    found = mlflow_run(client, exp("agent"), "quiet")
    wait_until(
        lambda: client.get_run(found.info.run_id).info.status == "FINISHED",
        "the run FINISHED",
        WAIT,
    )
    assert client.get_run(found.info.run_id).data.params == {"lr": "0.1"}

    def exited() -> bool:
        state = _journal.agent_state(LocalStore(store))
        return state is None or not state.alive

    wait_until(exited, "the agent to exit once everything is sent", WAIT)
    sync = run.stats.sync
    assert sync is not None
    assert (sync.state, sync.points_sent, sync.points_pending) == ("synced", 2000, 0)


TRAIN = textwrap.dedent(
    """
    import sys, time
    from runstream import Run
    store, experiment, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Run(experiment, "killed", backend="mlflow", store=store) as run:
        for step in range(steps):
            run.log_metric("loss", float(step), step=step)
        run.flush()
        print("logged", flush=True)
        time.sleep(600)  # killed here
    """
)


def test_what_a_killed_training_process_made_durable_arrives_once(
    agent: str, client: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with python_child("-c", TRAIN, str(store), exp("crash"), "300") as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "logged"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT)
    # Its worker stays InProgress in the store, but no live process has the run open: the
    # agent sends the last steps too (none would come after them).
    expected = [(s, float(s)) for s in range(300)]
    wait_until(
        lambda: points_of(client, exp("crash"), "killed", "loss") == expected,
        "the 300 durable steps in MLflow, each once",
        WAIT,
    )

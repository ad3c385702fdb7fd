"""``load_run()`` resolution (explicit names, the run in context, the environment) and
the context itself: one run per thread or task, exported to child processes."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import pytest

from _support import run_python
from runstream import Run, RunContinuedWarning, current_run, list_runs, load_run

NOT_FOUND = (
    "Failed to load a Run object. Please make sure a Run object has been initialized already."
)
IDENTITY = ("RUNSTREAM_EXPERIMENT_NAME", "RUNSTREAM_RUN_NAME", "RUNSTREAM_STORE")


def exported() -> dict[str, str]:
    return {k: os.environ[k] for k in IDENTITY if k in os.environ}


# -- input errors -------------------------------------------------------------------------


def test_run_name_without_experiment_name_raises_the_sdk_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"^Invalid input: experiment_name is missing when run_name is supplied\. ",
    ):
        load_run(run_name="run")


def test_nothing_to_load_raises_the_sdk_error() -> None:
    with pytest.raises(RuntimeError, match=f"^{re.escape(NOT_FOUND)}$"):
        load_run()


def test_experiment_name_alone_is_ignored_with_a_warning(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runstream"):
        with pytest.raises(RuntimeError, match=re.escape(NOT_FOUND)):
            load_run(experiment_name="exp")
        assert "experiment_name 'exp' is ignored" in caplog.text
        with Run("other", "run", store=store) as run:
            assert load_run(experiment_name="exp") is run


# -- resolution order ---------------------------------------------------------------------


def test_explicit_names_win_over_the_context_and_the_environment(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_EXPERIMENT_NAME", "env-exp")
    monkeypatch.setenv("RUNSTREAM_RUN_NAME", "env-run")
    with Run("exp", "in-context", store=store):
        explicit = load_run("Other", "Exp", store=store)
        assert (explicit.experiment_name, explicit.run_name) == ("exp", "other")
        assert explicit is not current_run()
        with pytest.raises(RuntimeError, match="nested 'with'"), explicit:
            pass  # a different run cannot be entered inside this one


def test_the_run_in_context_wins_over_the_environment(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Run("exp", "run", store=store) as run:
        monkeypatch.setenv("RUNSTREAM_RUN_NAME", "somebody-else")
        assert load_run() is run


def test_the_environment_names_a_run_in_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "exported-store"
    monkeypatch.setenv("RUNSTREAM_EXPERIMENT_NAME", "exp")
    monkeypatch.setenv("RUNSTREAM_RUN_NAME", "run")
    monkeypatch.setenv("RUNSTREAM_STORE", str(store))
    with load_run() as run:
        assert (run.experiment_name, run.run_name, run.store_path) == ("exp", "run", str(store))
        run.log_metric("loss", 1.0, step=0)
    assert [r.run_name for r in list_runs("exp", store=store)] == ["run"]
    # An explicit store argument still wins over the exported one.
    other = load_run(store=tmp_path / "elsewhere")
    assert other.store_path == str(tmp_path / "elsewhere")


def test_an_exported_unassigned_run(store: str) -> None:
    with Run(None, "loose", store=store):
        assert os.environ["RUNSTREAM_EXPERIMENT_NAME"] == ""
        result = run_python(
            "from runstream import load_run\n"
            "with load_run() as run:\n"
            "    print(run.experiment_name, run.run_name)\n"
        )
    assert result.stdout.split() == ["None", "loose"]


# -- the environment a run exports --------------------------------------------------------


def test_a_run_exports_its_identity_while_entered_and_restores_after(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert exported() == {}
    with Run("exp", "run", store=store):
        assert exported() == {
            "RUNSTREAM_EXPERIMENT_NAME": "exp",
            "RUNSTREAM_RUN_NAME": "run",
            "RUNSTREAM_STORE": str(Path(store).absolute()),
        }
    assert exported() == {}
    monkeypatch.setenv("RUNSTREAM_STORE", store)  # the user's own choice of store survives
    again = Run("exp", "run")
    with pytest.warns(RunContinuedWarning), again:
        pass
    assert exported() == {"RUNSTREAM_STORE": store}


def test_a_subprocess_logs_into_the_same_run_with_load_run(store: str) -> None:
    child = (
        "from runstream import load_run\n"
        "with load_run() as run:\n"
        "    run.log_parameter('child-pid', __import__('os').getpid())\n"
        "    for step in range(3):\n"
        "        run.log_metric('loss', 10.0 + step, step=step)\n"
        "    print(run.worker)\n"
    )
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
        child_worker = run_python(child).stdout.strip()
        assert child_worker != run.worker
        midway = run.record()
        # The child finished; the parent has not: the run is still in progress.
        assert {w.worker: w.status for w in midway.workers} == {
            run.worker: "InProgress",
            child_worker: "Completed",
        }
    record = run.record()
    assert record.status == "Completed"
    assert "child-pid" in record.parameters
    loss = run.series("loss")
    assert loss.step.tolist() == [0, 1, 2]
    assert loss.count.tolist() == [2, 1, 1]
    assert loss.mean.tolist() == [(1.0 + 10.0) / 2, 11.0, 12.0]
    assert run.series("loss", worker=child_worker).last.tolist() == [10.0, 11.0, 12.0]
    assert run.series("loss", worker=run.worker).last.tolist() == [1.0]


# -- one run per thread -------------------------------------------------------------------


def test_each_thread_holds_its_own_run(store: str) -> None:
    barrier = threading.Barrier(3)
    seen: dict[str, tuple[Run | None, Run]] = {}

    def train(name: str) -> None:
        with Run("exp", name, store=store) as run:
            barrier.wait(10)  # all three runs are entered at once
            seen[name] = (current_run(), load_run())
            for step in range(50):
                run.log_metric("loss", float(step), step=step)
            barrier.wait(10)

    threads = [threading.Thread(target=train, args=(n,)) for n in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert current_run() is None  # the main thread never had one
    for name, (in_context, loaded) in seen.items():
        assert in_context is loaded
        assert in_context is not None
        assert in_context.run_name == name
        assert in_context.record().metrics["loss"].count == 50


def test_runs_leaving_in_any_order_leave_the_environment_as_it_was(store: str) -> None:
    """Threads' runs overlap; the environment names a run that is still entered, and when
    none is, it is the caller's again."""
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    during: dict[str, dict[str, str]] = {}

    def first() -> None:
        with Run("exp", "a", store=store):
            a_entered.set()
            b_entered.wait(10)
        a_left.set()

    def second() -> None:
        a_entered.wait(10)
        with Run("exp", "b", store=store):
            b_entered.set()
            a_left.wait(10)
            during["after a left"] = exported()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert during["after a left"]["RUNSTREAM_RUN_NAME"] == "b"
    assert exported() == {}

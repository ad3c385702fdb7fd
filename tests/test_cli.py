"""The ``runstream`` command line: every command, ``--json`` field names, tables, errors.

(The seed workflow's numbers through the CLI, and ``python -m runstream``, are checked in
test_workflow.py.)
"""

from __future__ import annotations

import math

import pytest

from _support import cli, cli_json
from runstream import Run


@pytest.fixture
def filled(store: str) -> str:
    with Run("exp", "first", store=store, worker="w0") as run:
        run.log_parameter("lr", 0.1)
        for step in range(3):
            run.log_metric("loss", 2.0 - step * 0.5, step=step)
        run.log_artifact("data", "s3://b/data.csv", media_type="text/csv", is_output=False)
    with (  # noqa: PT012 (the run fails in its block)
        pytest.raises(RuntimeError),
        Run("exp", "second", store=store, worker="w0") as run,
    ):
        run.log_metric("loss", 9.0, step=0)
        raise RuntimeError("out of memory")
    with Run("exp", "second", store=store, worker="w1") as run:
        run.log_metric("loss", 7.0, step=0)
    with Run(None, "loose", store=store) as run, pytest.warns(RuntimeWarning):
        run.log_metric("diverged", math.nan, step=0)
    return store


def test_experiments(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    records = cli_json(capsys, "experiments", "--store", filled)
    assert [(r["experiment_name"], r["run_count"]) for r in records] == [("exp", 2)]
    assert set(records[0]) >= {"experiment_name", "display_name", "created", "run_count"}
    code, text, _ = cli(capsys, "experiments", "--store", filled)
    assert code == 0
    assert text.splitlines()[0].split() == ["experiment", "runs", "created"]
    assert text.splitlines()[2].split()[:2] == ["exp", "2"]


def test_runs_json_fields(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    runs = cli_json(capsys, "runs", "EXP", "--store", filled)
    assert [r["run_name"] for r in runs] == ["first", "second"]
    first, second = runs
    assert set(first) >= {
        "experiment_name",
        "run_name",
        "status",
        "parameters",
        "metrics",
        "artifacts",
    }
    assert first["status"] == "Completed"
    assert first["parameters"] == {"lr": 0.1}
    assert first["metrics"]["loss"] == {
        "min": 1.0,
        "max": 2.0,
        "avg": 1.5,
        "std": pytest.approx(math.sqrt(1 / 6)),
        "last": 1.0,
        "count": 3,
        "last_step": 2,
        "timestamp": first["metrics"]["loss"]["timestamp"],
    }
    assert first["artifacts"] == {
        "input": {"data": {"value": "s3://b/data.csv", "media_type": "text/csv"}},
        "output": {},
    }
    # One worker failed: the run failed, saying which worker and why.
    assert second["status"] == "Failed"
    assert second["message"] == "worker w0: out of memory"
    assert {w["worker"]: w["status"] for w in second["workers"]} == {
        "w0": "Failed",
        "w1": "Completed",
    }
    assert second["metrics"]["loss"]["count"] == 2


def test_runs_unassigned(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    runs = cli_json(capsys, "runs", "--unassigned", "--store", filled)
    assert [(r["experiment_name"], r["run_name"]) for r in runs] == [(None, "loose")]
    # JSON has no NaN: a NaN statistic is null.
    assert runs[0]["metrics"]["diverged"]["last"] is None
    assert runs[0]["metrics"]["diverged"]["count"] == 1
    code, text, _ = cli(capsys, "runs", "--unassigned", "--store", filled)
    assert code == 0
    assert "nan" in text.splitlines()[2]


def test_show(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    shown = cli_json(capsys, "show", "exp", "second", "--store", filled)
    assert shown["run_name"] == "second"
    assert shown == cli_json(capsys, "runs", "exp", "--store", filled)[1]
    assert cli_json(capsys, "show", "-", "loose", "--store", filled)["run_name"] == "loose"
    code, text, _ = cli(capsys, "show", "exp", "second", "--store", filled)
    assert code == 0
    assert "status      Failed: worker w0: out of memory" in text
    assert "w1" in text  # several workers: a table of them


def test_series(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    rows = cli_json(capsys, "series", "exp", "second", "loss", "--store", filled)
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("name", "step", "count", "mean", "min", "max", "last")} == {
        "name": "loss",
        "step": 0,
        "count": 2,
        "mean": 8.0,
        "min": 7.0,
        "max": 9.0,
        "last": 7.0,
    }
    assert isinstance(row["timestamp"], float)
    one = cli_json(capsys, "series", "exp", "second", "loss", "--worker", "w0", "--store", filled)
    assert [(r["count"], r["last"]) for r in one] == [(1, 9.0)]
    code, text, _ = cli(capsys, "series", "exp", "first", "loss", "--store", filled)
    assert code == 0
    header, _, *lines = text.splitlines()
    assert header.split() == ["step", "count", "mean", "min", "max", "std", "last", "time"]
    assert [line.split()[:2] for line in lines] == [["0", "1"], ["1", "1"], ["2", "1"]]
    # Numbers are right-aligned: each column's values end where its header ends.
    end = header.index("mean") + len("mean")
    assert [line[:end].split()[-1] for line in lines] == ["2", "1.5", "1"]


def test_delete(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    assert cli_json(capsys, "delete", "Exp", "--store", filled) == {
        "experiment_name": "exp",
        "deleted_runs": 2,
    }
    assert cli_json(capsys, "experiments", "--store", filled) == []
    # The unassigned run is no experiment's: it stays.
    assert len(cli_json(capsys, "runs", "--unassigned", "--store", filled)) == 1
    code, _text, _ = cli(capsys, "delete", "gone", "--store", filled)
    assert code == 1


def test_the_store_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_STORE", filled)
    assert [r["run_name"] for r in cli_json(capsys, "runs", "exp")] == ["first", "second"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "exp", "missing"], "no run named 'missing' in experiment 'exp'"),
        (["show", "nope", "first"], "no run named 'first' in experiment 'nope'"),
        (["runs", "nope"], "no experiment named 'nope'"),
        (["series", "exp", "first", "nope"], "has no metric named 'nope'"),
        (["delete", "nope"], "no experiment named 'nope'"),
    ],
)
def test_lookups_of_what_is_not_there_fail_with_a_message(
    capsys: pytest.CaptureFixture[str], filled: str, argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, *argv, "--store", filled)
    assert code == 1
    assert out == ""
    assert err.startswith(f"runstream {argv[0]}: ")
    assert message in err


def test_runs_needs_an_experiment_or_unassigned(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    with pytest.raises(SystemExit, match="name an EXPERIMENT or pass --unassigned"):
        cli(capsys, "runs", "--store", store)


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["show", "only-one"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(capsys, *argv)
    assert exited.value.code == 2
    assert "usage: runstream" in capsys.readouterr().err

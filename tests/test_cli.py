"""The ``runstream`` command line: every command, ``--json`` field names, tables, errors.

(The seed workflow's numbers through the CLI, and ``python -m runstream``, are checked in
test_workflow.py.)
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runstream
from _support import child_env, cli, cli_json, read_only
from runstream import Run
from runstream._core._exceptions import StoreError
from runstream._store import LocalStore


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
    # JSON has no NaN: a NaN statistic is the string "NaN" (null would mean no value).
    assert runs[0]["metrics"]["diverged"]["last"] == "NaN"
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
    with pytest.raises(SystemExit, match="pass --yes to confirm"):  # stdin is no terminal
        cli(capsys, "delete", "Exp", "--store", filled)
    assert len(cli_json(capsys, "experiments", "--store", filled)) == 1
    assert cli_json(capsys, "delete", "Exp", "--yes", "--store", filled) == {
        "experiment_name": "exp",
        "deleted_runs": 2,
    }
    assert cli_json(capsys, "experiments", "--store", filled) == []
    # The unassigned run is no experiment's: it stays.
    assert len(cli_json(capsys, "runs", "--unassigned", "--store", filled)) == 1
    code, _text, _ = cli(capsys, "delete", "gone", "--yes", "--store", filled)
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
        (["show", "nope", "first"], "no experiment named 'nope'"),
        (["show", "exp", "frist"], "did you mean 'first'?"),
        (["series", "exp", "first", "los"], "has no metric named 'los'; did you mean 'loss'?"),
        (["series", "exp", "first", "loss", "--worker", "w9"], "no worker 'w9' logged 'loss'"),
        (["best", "exp", "los"], "no run here has a metric named 'los'; did you mean 'loss'?"),
        (["compare", "exp", "--metric", "nope"], "no run here has a metric named 'nope'"),
        (["runs", "nope"], "no experiment named 'nope'"),
        (["series", "exp", "first", "nope"], "has no metric named 'nope'"),
        (["delete", "nope", "--yes"], "no experiment named 'nope'"),
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
    capsys: pytest.CaptureFixture[str], filled: str
) -> None:
    with pytest.raises(SystemExit, match="name an EXPERIMENT, or '-' for the unassigned runs"):
        cli(capsys, "runs", "--store", filled)


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["show", "only-one"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(capsys, *argv)
    assert exited.value.code == 2
    assert "usage: runstream" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "--version")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"runstream {runstream.__version__}"


@pytest.mark.parametrize(
    "argv",
    [["experiments"], ["runs", "exp"], ["show", "exp", "r"], ["compare", "exp"], ["status"]],
)
def test_reading_commands_never_create_a_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "store"
    code, out, err = cli(capsys, *argv, "--store", str(missing))
    assert code == 1
    assert out == ""
    assert f"no runstream store at {missing}" in err
    assert not (tmp_path / "nowhere").exists()


def test_reading_commands_open_the_store_read_only(
    capsys: pytest.CaptureFixture[str], filled: str
) -> None:
    with LocalStore(filled, read_only=True) as store:
        assert [r.experiment_name for r in store.list_experiments()] == ["exp"]
        with pytest.raises(StoreError):
            store.ensure_experiment("new")
    db = Path(filled) / "runstream.db"
    before = db.stat().st_mtime_ns
    assert cli_json(capsys, "runs", "exp", "--store", filled)
    assert db.stat().st_mtime_ns == before


def test_a_store_on_a_read_only_filesystem_can_be_read(
    capsys: pytest.CaptureFixture[str], filled: str
) -> None:
    with LocalStore(filled):  # checkpoint the WAL, then mount the store read-only
        pass
    with read_only(Path(filled)):
        found = cli_json(capsys, "runs", "exp", "--store", filled)
        assert [r["run_name"] for r in found] == ["first", "second"]
        shown = cli_json(capsys, "show", "exp", "first", "--store", filled)
        assert shown["run_name"] == "first"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_store_on_a_read_only_directory_can_be_read(
    capsys: pytest.CaptureFixture[str], filled: str
) -> None:
    with LocalStore(filled):  # checkpoint the WAL, then forbid writes
        pass
    for path in (Path(filled), *Path(filled).iterdir()):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert [r["run_name"] for r in cli_json(capsys, "runs", "exp", "--store", filled)] == [
            "first",
            "second",
        ]
    finally:
        for path in (Path(filled), *Path(filled).iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_dash_names_the_unassigned_runs(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    assert [r["run_name"] for r in cli_json(capsys, "runs", "-", "--store", filled)] == ["loose"]


def test_runs_columns(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    code, text, _ = cli(capsys, "runs", "exp", "--columns", "run,loss", "--store", filled)
    assert code == 0
    assert text.splitlines()[0].split() == ["run", "loss", "(last)"]
    with pytest.raises(SystemExit, match="no column 'los'; did you mean 'loss'"):
        cli(capsys, "runs", "exp", "--columns", "run,los", "--store", filled)


def test_delete_one_run_and_its_files(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    with Run("exp", "a", store=store) as run:
        run.log_file(str(model))
    with Run("exp", "b", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
    (record,) = [
        r for r in cli_json(capsys, "runs", "exp", "--store", store) if r["run_name"] == "a"
    ]
    artifact = record["artifacts"]["output"]["model.pt"]
    assert artifact["media_type"] == "application/octet-stream"
    stored = Path(store) / artifact["value"]
    assert stored.is_file()
    assert cli_json(capsys, "delete", "exp", "a", "--yes", "--store", store)["deleted_runs"] == 1
    assert not stored.exists()
    assert [r["run_name"] for r in cli_json(capsys, "runs", "exp", "--store", store)] == ["b"]


def test_stat_in_any_case(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    best = cli_json(capsys, "best", "exp", "loss", "--stat", "min", "--store", filled)
    assert best["stat"] == "Min"
    assert best["value"] == 1.0


def test_export_refuses_an_unknown_extension(
    capsys: pytest.CaptureFixture[str], filled: str, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match=r"cannot write \.xlsx files"):
        cli(capsys, "export", "exp", "-o", str(tmp_path / "x.xlsx"), "--store", filled)
    assert not (tmp_path / "x.xlsx").exists()


def test_a_closed_pipe_ends_quietly(filled: str) -> None:
    code = (
        "import sys, runstream._cli as c\n"
        "sys.exit(c.main(['runs', 'exp', '--json', '--store', sys.argv[1]]))"
    )
    proc = subprocess.run(
        f'"{sys.executable}" -c "{code}" "{filled}" | head -c 1',
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr

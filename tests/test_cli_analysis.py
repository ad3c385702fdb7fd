"""compare, best, export, report, demo and ui from the command line."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from dashboard_support import EXPERIMENT, KnownStore, build_known_store
from runstream import ExperimentAnalytics
from runstream._cli import main
from runstream._store import LocalStore


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownStore:
    return build_known_store(tmp_path_factory.mktemp("cli") / "store")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_table_marks_differing_parameters(
    known: KnownStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "compare", EXPERIMENT, "lr-small", "lr-mid", "--store", str(known.path)
    )
    assert code == 0
    header, _, *rows = out.splitlines()
    assert header.split()[-2:] == ["lr-small", "lr-mid"]
    assert any(r.startswith("learning_rate *") for r in rows)
    assert any(r.startswith("optimizer ") and "*" not in r.split()[1] for r in rows)
    loss_row = next(r for r in rows if r.startswith("loss (Last)"))
    assert f"{known.losses['lr-small'][-1]:.6g}" in loss_row


def test_compare_json_is_the_records(known: KnownStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "compare", EXPERIMENT, "--json", "--store", str(known.path))
    assert code == 0
    assert [r["run_name"] for r in json.loads(out)] == [
        "lr-small",
        "lr-mid",
        "lr-big",
        "two-workers",
    ]


def test_best(known: KnownStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "best", EXPERIMENT, "accuracy", "--maximize", "--json", "--store", str(known.path)
    )
    top = max(known.accuracy, key=lambda n: known.accuracy[n][-1])
    data = json.loads(out)
    assert code == 0
    assert data["run_name"] == top
    assert data["value"] == pytest.approx(known.accuracy[top][-1])
    code, _, err = run_cli(capsys, "best", EXPERIMENT, "nope", "--store", str(known.path))
    assert code == 1
    assert "nope" in err


def test_export_csv_has_the_analytics_columns(
    known: KnownStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "export", EXPERIMENT, "--store", str(known.path))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = ExperimentAnalytics(EXPERIMENT, store=known.path).records()
    assert [r["RunName"] for r in rows] == [r["RunName"] for r in expected]
    mid = next(r for r in rows if r["RunName"] == "lr-mid")
    assert float(mid["loss - Last"]) == pytest.approx(known.losses["lr-mid"][-1])
    assert json.loads(mid["Experiments"]) == [EXPERIMENT]


def test_export_series_as_json_lines(
    known: KnownStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "series.jsonl"
    code, out, _ = run_cli(
        capsys, "export", EXPERIMENT, "--series", "-o", str(target), "--store", str(known.path)
    )
    assert code == 0
    assert "rows" in out
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    mid = [r["mean"] for r in rows if r["RunName"] == "lr-mid" and r["MetricName"] == "loss"]
    assert mid == pytest.approx(known.losses["lr-mid"])
    big = [r["mean"] for r in rows if r["RunName"] == "lr-big" and r["MetricName"] == "loss"]
    assert big[-1] == "NaN"  # JSON has no NaN: the string, apart from null and "Infinity"


def test_export_parquet(
    known: KnownStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "runs.parquet"
    code, _, _ = run_cli(
        capsys, "export", EXPERIMENT, "-o", str(target), "--store", str(known.path)
    )
    assert code == 0
    table = parquet.read_table(target).to_pylist()
    big = next(r for r in table if r["RunName"] == "lr-big")
    assert math.isnan(big["loss - Last"])
    assert len(table) == 4


def test_export_parquet_without_pyarrow_says_so(
    known: KnownStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(SystemExit, match="pyarrow"):
        main(["export", EXPERIMENT, "-o", str(tmp_path / "x.parquet"), "--store", str(known.path)])


def test_report_is_one_self_contained_file(
    known: KnownStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "r.html"
    code, out, _ = run_cli(
        capsys,
        "report",
        EXPERIMENT,
        "-o",
        str(target),
        "--metric",
        "loss",
        "--store",
        str(known.path),
    )
    assert code == 0
    assert str(target) in out
    html = target.read_text()
    assert "<script src=" not in html
    assert "<link " not in html
    data = html.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    payload = json.loads(data)
    assert [c["metric"] for c in payload["charts"]] == ["loss"]
    assert {line["label"] for line in payload["charts"][0]["lines"]} == set(known.losses) | {
        "two-workers"
    }
    with pytest.raises(SystemExit, match="nope"):
        main(
            [
                "report",
                EXPERIMENT,
                "--metric",
                "nope",
                "-o",
                str(target),
                "--store",
                str(known.path),
            ]
        )


def test_demo_trains_a_sweep_and_says_where_to_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "demo"
    code, out, _ = run_cli(capsys, "demo", "--store", str(store))
    assert code == 0
    assert "runstream ui" in out
    assert str(store) in out
    with LocalStore(store) as local:
        (experiment,) = local.list_experiments()
        keys = local.run_keys(experiment.experiment_name)
        records = local.records([k for k, _ in keys])
        unassigned = local.records([k for k, _ in local.run_keys(None, unassigned=True)])
    statuses = {r.run_name: r.status for r in records}
    assert len(records) >= 4
    failed = [r for r in records if r.status == "Failed"]
    assert len(failed) == 1
    assert "NaN" in (failed[0].message or "")
    assert math.isnan(failed[0].metrics["train_loss"].last)
    assert any(len(r.workers) == 2 for r in records)
    assert list(statuses.values()).count("Completed") == len(records) - 1
    (evaluation,) = unassigned
    stored = evaluation.artifacts.output["confusion.csv"]
    assert (store / stored.value).read_text().startswith("actual,")
    assert len({r.parameters["learning_rate"] for r in records}) >= 4


def test_ui_command_serves_until_interrupted(known: KnownStore) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runstream", "ui", "--port", "0", "--store", str(known.path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/experiments", timeout=30) as response:
            assert json.load(response)["experiments"][0]["experiment_name"] == EXPERIMENT
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:  # never leave a stray server behind
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    assert code == 0


def test_ui_stops_on_sigint_when_started_in_the_background(known: KnownStore) -> None:
    """A shell starts background jobs with SIGINT ignored (nohup nox -s tests &); the
    dashboard still stops on SIGINT, and on SIGTERM."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-m", "runstream", "ui", "--port", "0", "--store", str(known.path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        try:
            assert proc.stdout is not None
            assert " at http://127.0.0.1:" in proc.stdout.readline()
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def test_ui_refuses_a_bad_port(known: KnownStore) -> None:
    with pytest.raises(SystemExit, match="--port"):
        main(["ui", "--port", "70000", "--store", str(known.path)])

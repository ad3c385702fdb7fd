"""The peer benchmark harness (benchmarks/peers): its pieces with fake trackers, and a smoke
run of the real harness on runstream with this interpreter (no environments built)."""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.peers import _harness, _report
from benchmarks.peers._timing import (
    Slowdown,
    percentile_us,
    time_calls,
    training_slowdown,
)
from benchmarks.peers._trackers import TrackerSpec, spec
from benchmarks.peers._trackers.wandb import records
from benchmarks.peers._workload import Workload, metric_names, metric_value

FAR = 2**62  # a deadline that never comes


# -- workload --------------------------------------------------------------------------------


def test_workload_is_the_same_every_time_and_has_every_point() -> None:
    a, b = Workload(50, 6), Workload(50, 6)
    assert a.rows == b.rows
    assert a.names == ("loss", "acc", "lr", "grad_norm", "m0004", "m0005")
    assert a.points() == 300
    assert a.points(7) == 42
    assert [dict(row) for row in a.rows] == a.dicts
    assert len({value for row in a.rows for _, value in row}) > 250  # not a constant
    assert a.rows[3][5] == ("m0005", metric_value(3, 5))


@pytest.mark.parametrize(("steps", "metrics"), [(0, 4), (10, 0)])
def test_workload_rejects_an_empty_workload(steps: int, metrics: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Workload(steps, metrics)


def test_metric_names_are_distinct() -> None:
    assert len(set(metric_names(1000))) == 1000


# -- timing ----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, *kwargs.values()))


@pytest.mark.parametrize("style", ["pos", "kw"])
def test_time_calls_makes_one_timed_call_per_point_in_order(style: Any) -> None:
    workload = Workload(30, 3)
    log = Recorder()
    times = time_calls(log, style, workload, FAR)
    expected = [(n, v, step) for step, row in enumerate(workload.rows) for n, v in row]
    assert log.calls == expected
    assert (times.steps, times.points, len(times.durations_ns)) == (30, 90, 90)
    assert all(d >= 0 for d in times.durations_ns)
    assert times.loop_ns >= sum(times.durations_ns)


def test_time_calls_passes_a_whole_step_to_a_dict_api() -> None:
    workload = Workload(10, 4)
    log = Recorder()
    times = time_calls(log, "dict", workload, FAR)
    assert log.calls == [(workload.dicts[i], i) for i in range(10)]
    assert (len(times.durations_ns), times.points) == (10, 40)


def test_time_calls_stops_at_the_deadline_after_a_whole_step() -> None:
    workload = Workload(100, 4)
    times = time_calls(Recorder(), "kw", workload, deadline_ns=0)
    assert (times.steps, times.points, len(times.durations_ns)) == (1, 4, 4)


def test_percentiles_are_in_microseconds() -> None:
    durations = [1000 * i for i in range(1, 101)]  # 1..100 µs
    assert percentile_us(durations, 50) == pytest.approx(50.5)
    assert percentile_us(durations, 99) == pytest.approx(99.01)
    with pytest.raises(ValueError, match="no durations"):
        percentile_us([], 50)


def test_slowdown_compares_with_the_mean_baseline() -> None:
    slowdown = Slowdown(steps=10, baseline_before=1.0, logged=1.65, baseline_after=1.2)
    assert slowdown.percent == pytest.approx(50.0)
    assert slowdown.noise_percent == pytest.approx(100 * 0.2 / 1.1)


def test_training_slowdown_logs_every_point_and_closes_once() -> None:
    workload = Workload(20, 2)
    log, closed, work = Recorder(), [], Recorder()
    slowdown, close_s = training_slowdown(
        log, "kw", workload, work, FAR, lambda: closed.append(True)
    )
    assert len(log.calls) == 40
    assert closed == [True]
    assert len(work.calls) == 60  # baseline, logged loop, baseline again
    assert slowdown.steps == 20
    assert close_s >= 0
    assert min(slowdown.baseline_before, slowdown.logged, slowdown.baseline_after) > 0


# -- the harness with fake trackers, each phase in a fresh process ---------------------------


def _args(tmp_path: Path, **overrides: Any) -> argparse.Namespace:
    args = _harness.parser().parse_args([f"--out={tmp_path}", "--steps=300", "--budget=5"])
    args.work_size = 16
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def _measure(tmp_path: Path, adapter: str, **overrides: Any) -> dict[str, Any]:
    # A top-level module from this folder: some packages install a ``tests`` package of
    # their own into site-packages, which would shadow ``tests.peers_fake``.
    tracker = TrackerSpec("fake", "runstream", f"peers_fake:{adapter}", "a fake")
    env = _harness.child_environment(tmp_path / "home", None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env["PYTHONPATH"]])
    return _harness.measure(tracker, sys.executable, _args(tmp_path, **overrides), tmp_path, env)


def test_a_tracker_that_keeps_everything_reads_back_complete(tmp_path: Path) -> None:
    row = _measure(tmp_path, "Fake")
    assert row["status"] == "ok"
    assert row["readback"]["counts"] == {"file": 1200}
    assert row["readback"]["expected"] == 1200
    assert row["readback"]["complete"] is True
    assert row["hot"]["calls"] == 1200
    assert row["train"]["steps"] == 300
    assert row["hot"]["p50_us"] <= row["hot"]["p99_us"]


def test_a_tracker_that_loses_points_is_counted_short(tmp_path: Path) -> None:
    row = _measure(tmp_path, "Lossy")
    assert row["readback"]["counts"] == {"file": 600}
    assert row["readback"]["complete"] is False
    assert "**600/1,200**" in _report.markdown(_report_of([row], tmp_path))


def test_a_tracker_cut_by_its_budget_expects_what_it_logged(tmp_path: Path) -> None:
    row = _measure(tmp_path, "Fake", budget=1e-9)
    assert row["hot"]["steps"] == 1
    assert row["readback"]["counts"] == {"file": 4}
    assert row["readback"]["complete"]


def test_a_tracker_that_cannot_run_is_skipped_with_its_reason(tmp_path: Path) -> None:
    row = _measure(tmp_path, "Offline")
    assert (row["status"], row["reason"]) == ("skipped", "needs a server")


def test_a_tracker_that_crashes_is_reported_failed_with_the_error(tmp_path: Path) -> None:
    row = _measure(tmp_path, "Crashing")
    assert row["status"] == "failed"
    assert "RuntimeError: tracker exploded" in row["reason"]


def test_the_least_noisy_training_try_is_kept() -> None:
    tries: list[dict[str, Any]] = [
        {"noise_pct": 9.0, "n": 1},
        {"error": "timed out"},
        {"noise_pct": 6.0, "n": 3},
    ]
    assert _harness.least_noisy(tries) == {"noise_pct": 6.0, "n": 3, "tries": 3}
    assert _harness.least_noisy([{"error": "x"}]) == {"error": "x", "tries": 1}


# -- the report ------------------------------------------------------------------------------


def _report_of(rows: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    return {
        "command": "python -m benchmarks.peers",
        "machine": _report.machine(),
        "workload": {"steps": 300, "metrics": 4, "budget_s": 5.0, "work_size": 16},
        "rows": rows,
        "scaling": None,
    }


def test_the_table_has_a_row_per_tracker_and_says_why_one_was_skipped(tmp_path: Path) -> None:
    rows = [
        _measure(tmp_path / "a", "Fake"),
        {"tracker": "x", "label": "X", "status": "skipped", "reason": "cannot install: nope"},
    ]
    text = _report.markdown(_report_of(rows, tmp_path))
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| tracker | call | steps | p50 µs/call | p99 µs/call")
    assert table[1].startswith("| a fake | per point | 300 |")
    assert "| 1,200/1,200 |" in table[1]
    assert table[2] == "| X | skipped | - | - | - | - | - | - | - | - | - |"
    assert "- X (`x`) skipped: cannot install: nope" in text
    assert "Machine: " in text
    assert "Command: `python -m benchmarks.peers`" in text


def test_numbers_and_read_back_cells() -> None:
    assert [_report.number(x) for x in (0.1234, 12.34, 1234.5, None)] == [
        "0.12",
        "12.3",
        "1,234",
        "-",
    ]
    assert _report.number(5, signed=True) == "+5.00"
    assert _report.readback_cell({"a": 5}, 10) == "5/10"
    assert _report.readback_cell({"store": 10, "sagemaker": 9}, 10) == (
        "store 10/10; sagemaker 9/10"
    )


def test_an_unknown_tracker_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown tracker 'nope'; known trackers: floor, "):
        spec("nope")


# -- wandb's offline file framing ------------------------------------------------------------


def _leveldb_log(payloads: list[bytes]) -> bytes:
    """Write records as wandb does: 32 KiB blocks, fragments across block ends, padding."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for payload in payloads:
        rest, first = payload, True
        while True:
            left = 32768 - len(out) % 32768
            if left < 7:
                out += b"\0" * left
                continue
            chunk, rest = rest[: left - 7], rest[left - 7 :]
            kind = (1 if first else 4) if not rest else (2 if first else 3)
            out += struct.pack("<IHB", 0, len(chunk), kind) + chunk
            first = False
            if not rest:
                break
    return bytes(out)


def test_the_wandb_reader_joins_fragments_across_blocks() -> None:
    payloads = [b"a" * 10, b"b" * 40_000, b"c" * 32_750, b"", b"d" * 70_000, b"e"]
    assert list(records(_leveldb_log(payloads))) == payloads


def test_the_wandb_reader_rejects_another_file() -> None:
    with pytest.raises(ValueError, match=r"not a \.wandb file"):
        list(records(b"PK\x03\x04 zip"))


# -- a smoke run of the real harness: runstream, this interpreter ----------------------------


@pytest.mark.slow
def test_smoke_run_of_the_harness_on_runstream(tmp_path: Path) -> None:
    argv = [
        "--here",
        "--trackers=floor,runstream,runstream-dict",
        "--steps=400",
        "--budget=10",
        "--work-size=32",
        "--scale-max=1e4",
        "--scale-width=1,10",
        "--scale-width-points=1e4",
        f"--out={tmp_path}",
    ]
    assert _harness.main(argv) == 0
    report = json.loads((tmp_path / "peers.json").read_text())
    assert [r["status"] for r in report["rows"]] == ["ok", "ok", "ok"]
    for row in report["rows"]:
        assert row["readback"]["complete"], row
        assert row["hot"]["steps"] == 400
        assert row["train"]["steps"] == 400
    scaling = report["scaling"]
    assert scaling["failures"] == []
    assert [r["points"] for r in scaling["growth"]] == [10_000]
    assert [(r["metrics"], r["style"]) for r in scaling["width"]] == [
        (1, "kw"),
        (1, "dict"),
        (10, "kw"),
        (10, "dict"),
    ]
    assert all(r["read_back"] == r["points"] for r in scaling["growth"] + scaling["width"])
    text = (tmp_path / "peers.md").read_text()
    assert "| runstream log_metric | per point | 400 |" in text
    assert not (tmp_path / "scratch").exists()

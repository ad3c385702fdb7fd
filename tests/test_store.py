"""The embedded store: a real SQLite file, written and read back through ``LocalStore``."""

from __future__ import annotations

import math
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _support import integrity
from runstream import RunNotFoundError, SchemaError, StoreError
from runstream._core import _aggregate
from runstream._core._batch import ArtifactWrite, Batch, ParameterWrite
from runstream._core._records import Artifact
from runstream._store import DB_NAME, SCHEMA_VERSION, LocalStore, resolve_store_path

if TYPE_CHECKING:
    from runstream._core._aggregate import StepStats

TS = 1_700_000_000.0


def stats(points: list[tuple[int, float, float]]) -> StepStats:
    steps = np.array([p[0] for p in points], dtype=np.int64)
    values = np.array([p[1] for p in points], dtype=np.float64)
    ts = np.array([p[2] for p in points], dtype=np.float64)
    _aggregate.time_keys(steps, ts)
    return _aggregate.from_points(steps, values, ts)


def count_rows(store: str, table: str) -> int:
    db = sqlite3.connect(Path(store) / DB_NAME)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


# -- where the store is -------------------------------------------------------------------


def test_location_argument_then_environment_then_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_store_path(None) == tmp_path / ".runstream"  # conftest chdir'd here
    monkeypatch.setenv("RUNSTREAM_STORE", str(tmp_path / "from-env"))
    assert resolve_store_path(None) == tmp_path / "from-env"
    assert resolve_store_path("explicit") == tmp_path / "explicit"
    with LocalStore() as local:
        local.ensure_run("exp", "run")
    assert (tmp_path / "from-env" / DB_NAME).is_file()
    assert not (tmp_path / ".runstream").exists()


def test_store_is_wal_and_versioned(store: str) -> None:
    LocalStore(store).close()
    db = sqlite3.connect(Path(store) / DB_NAME)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    finally:
        db.close()


def test_a_store_from_a_newer_runstream_is_refused(store: str) -> None:
    LocalStore(store).close()
    db = sqlite3.connect(Path(store) / DB_NAME)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.close()
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        LocalStore(store)


def test_an_unopenable_store_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the store at"):
        LocalStore(blocker / "store")


def test_a_corrupt_database_raises_store_error(store: str) -> None:
    Path(store).mkdir()
    (Path(store) / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        LocalStore(store)


# -- entities -----------------------------------------------------------------------------


def test_runs_are_created_once_and_loaded_after(store: str) -> None:
    with LocalStore(store) as local:
        first = local.ensure_run("exp", "run")
        assert local.ensure_run("exp", "run") == first
        other_experiment = local.ensure_run("exp2", "run")
        unassigned = local.ensure_run(None, "run")
        assert local.ensure_run(None, "run") == unassigned
        assert len({first.run_id, other_experiment.run_id, unassigned.run_id}) == 3
        assert local.find_run("exp", "run") == first
        assert local.find_run(None, "run") == unassigned
        assert [e.experiment_name for e in local.list_experiments()] == ["exp", "exp2"]
        assert [e.run_count for e in local.list_experiments()] == [1, 1]
        assert [k for k, _ in local.run_keys(None, unassigned=True)] == [unassigned]


@pytest.mark.parametrize(
    ("experiment", "run", "message"),
    [
        ("exp", "nope", "no run named 'nope' in experiment 'exp'"),
        ("nope", "run", "no experiment named 'nope'"),
        (None, "nope", "no run named 'nope' in the unassigned runs"),
    ],
)
def test_finding_a_missing_run_names_it(
    store: str, experiment: str | None, run: str, message: str
) -> None:
    with LocalStore(store) as local:
        local.ensure_run("exp", "run")
        with pytest.raises(RunNotFoundError, match=message):
            local.find_run(experiment, run)
        with pytest.raises(RunNotFoundError, match="no experiment named 'nope'"):
            local.experiment("nope")


def test_deleting_an_experiment_deletes_everything_of_its_runs(store: str) -> None:
    with LocalStore(store) as local:
        key = local.ensure_run("doomed", "run")
        kept = local.ensure_run("kept", "run")
        for run_id in (key.run_id, kept.run_id):
            local.set_worker_status(run_id, "w", "InProgress", started=TS)
            local.write(
                Batch(
                    run_id=run_id,
                    worker="w",
                    metrics={"loss": stats([(0, 1.0, TS)])},
                    parameters=[ParameterWrite("lr", 0.1, TS)],
                    artifacts=[ArtifactWrite("output", "model", Artifact(value="s3://b/k"), TS)],
                )
            )
        assert local.delete_experiment("doomed") == 1
        with pytest.raises(RunNotFoundError):
            local.delete_experiment("doomed")
        assert [e.experiment_name for e in local.list_experiments()] == ["kept"]
        assert local.records([kept])[0].metrics["loss"].count == 1
    for table in ("runs", "workers", "parameters", "artifacts", "metrics", "chunks", "summaries"):
        assert count_rows(store, table) == 1, table
    assert integrity(store) == "ok"


# -- writing and reading back -------------------------------------------------------------


def test_parameters_last_write_wins_and_keep_their_kind(store: str) -> None:
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        local.write(
            Batch(
                run_id=key.run_id,
                worker="a",
                parameters=[
                    ParameterWrite("lr", 0.1, TS),
                    ParameterWrite("epochs", 5, TS),
                    ParameterWrite("optimizer", "adam", TS),
                    ParameterWrite("lr", 0.2, TS + 1),  # same flush, later: wins
                    ParameterWrite("nan", math.nan, TS),
                    ParameterWrite("inf", -math.inf, TS),
                ],
            )
        )
        local.write(
            Batch(run_id=key.run_id, worker="a", parameters=[ParameterWrite("epochs", 7, TS + 2)])
        )
        # Another worker's later write wins the run-level view.
        local.write(
            Batch(run_id=key.run_id, worker="b", parameters=[ParameterWrite("lr", 0.3, TS + 3)])
        )
        params = local.records([key])[0].parameters
    assert params["lr"] == 0.3
    assert params["epochs"] == 7
    assert type(params["epochs"]) is int
    assert params["optimizer"] == "adam"
    assert isinstance(params["nan"], float)
    assert math.isnan(params["nan"])
    assert params["inf"] == -math.inf


def test_artifacts_are_replaced_by_name_per_direction(store: str) -> None:
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        local.write(
            Batch(
                run_id=key.run_id,
                worker="w",
                artifacts=[
                    ArtifactWrite("input", "data", Artifact(value="s3://b/in"), TS),
                    ArtifactWrite("output", "data", Artifact(value="s3://b/v1"), TS),
                    ArtifactWrite(
                        "output", "data", Artifact(value="s3://b/v2", media_type="text/csv"), TS
                    ),
                ],
            )
        )
        record = local.records([key])[0]
    assert record.artifacts.input == {"data": Artifact(value="s3://b/in")}
    assert record.artifacts.output == {"data": Artifact(value="s3://b/v2", media_type="text/csv")}


def test_each_flush_is_one_chunk_row_whatever_its_size(store: str) -> None:
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        n = 10_000
        steps = np.arange(n, dtype=np.int64)
        local.write(
            Batch(
                run_id=key.run_id,
                worker="w",
                metrics={
                    "loss": _aggregate.from_points(steps, steps * np.float64(0.5), np.full(n, TS)),
                    "acc": _aggregate.from_points(steps, steps * np.float64(0.25), np.full(n, TS)),
                },
            )
        )
        series = local.series(key.run_id, "loss")
        assert local.metric_names(key.run_id) == ["loss", "acc"]
    assert count_rows(store, "chunks") == 2
    assert series.step.tolist() == list(range(n))
    assert series.mean.tolist() == (np.arange(n) * 0.5).tolist()


# Points: (worker, step or -1, value, gap) — gaps make timestamps increase.
_points = st.lists(
    st.tuples(
        st.sampled_from(["w0", "w1", "w2"]),
        st.integers(-1, 4),
        st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        st.sampled_from([0.001, 0.4, 1.0]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=25, deadline=None)
@given(_points, st.data())
def test_series_and_summaries_merge_exactly_across_flushes_and_workers(
    points: list[tuple[str, int, float, float]], data: st.DataObject
) -> None:
    """What the store hands back equals the oracle over all points, per worker and merged."""
    ts, absolute = TS, []
    for worker, step, value, gap in points:
        ts += gap
        absolute.append((worker, step, value, ts))
    by_worker: dict[str, list[tuple[int, float, float]]] = {}
    for worker, step, value, t in absolute:
        by_worker.setdefault(worker, []).append((step, value, t))
    # Each worker flushes its points in chunks of its own size; writes interleave by time.
    writes = []
    for worker, own in by_worker.items():
        size = data.draw(st.integers(1, len(own)), label=f"flush size of {worker}")
        writes += [
            (own[i : i + size][-1][2], worker, own[i : i + size]) for i in range(0, len(own), size)
        ]
    writes.sort(key=lambda w: w[0])

    with tempfile.TemporaryDirectory() as directory, LocalStore(directory) as local:
        key = local.ensure_run("exp", "run")
        for _, worker, chunk in writes:
            local.write(Batch(run_id=key.run_id, worker=worker, metrics={"m": stats(chunk)}))
        merged = local.series(key.run_id, "m")
        per_worker = {w: local.series(key.run_id, "m", w) for w in by_worker}
        summary = local.records([key])[0].metrics["m"]
        assert local.workers_of_metric(key.run_id, "m") == sorted(by_worker)

    def check(
        series_steps: list[int],
        means: list[float],
        counts: list[int],
        pts: list[tuple[int, float, float]],
    ) -> None:
        groups: dict[int, list[float]] = {}
        for step, value, t in pts:
            # Timestamps differ by a millisecond or more: each step-less point is its own.
            groups.setdefault(step if step >= 0 else -(math.floor(t * 1e6) + 1), []).append(value)
        assert sorted(series_steps) == sorted(groups)
        order = sorted(groups, key=lambda k: (k >= 0, -k if k < 0 else k))
        assert series_steps == order  # step-less points first, oldest first

        assert counts == [len(groups[s]) for s in order]
        for mean, step in zip(means, order, strict=True):
            assert math.isclose(mean, math.fsum(groups[step]) / len(groups[step]), abs_tol=1e-9)

    check(
        merged.step.tolist(), merged.mean.tolist(), merged.count.tolist(), [p[1:] for p in absolute]
    )
    for worker, series in per_worker.items():
        check(series.step.tolist(), series.mean.tolist(), series.count.tolist(), by_worker[worker])

    values = [v for _, _, v, _ in absolute]
    mean = math.fsum(values) / len(values)
    assert summary.count == len(values)
    assert summary.min == min(values)
    assert summary.max == max(values)
    assert math.isclose(summary.avg, mean, abs_tol=1e-9)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    assert math.isclose(summary.std, std, rel_tol=1e-7, abs_tol=1e-9)
    assert summary.last == absolute[-1][2]  # the value logged last, by time
    assert summary.timestamp == absolute[-1][3]
    steps = [s for _, s, _, _ in absolute if s >= 0]
    assert summary.last_step == (max(steps) if steps else None)


def test_reading_a_missing_metric_names_it(store: str) -> None:
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        with pytest.raises(RunNotFoundError, match="has no metric named 'loss'"):
            local.series(key.run_id, "loss")


# -- failures -----------------------------------------------------------------------------


def test_a_failed_write_writes_nothing_and_a_retry_lands(store: str) -> None:
    """A full disk in the middle of a batch: nothing of it is visible, and the same batch
    written again once there is room lands whole (no stale state from the failed attempt).

    SQLite's ``max_page_count`` on the store's own connection is the way to fill the "disk"
    without root; it fails with the same SQLITE_FULL a full disk gives.
    """
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        pages = local._db.execute("PRAGMA page_count").fetchone()[0]
        local._db.execute(f"PRAGMA max_page_count = {pages}")
        n = 20_000
        steps = np.arange(n, dtype=np.int64)
        batch = Batch(
            run_id=key.run_id,
            worker="w",
            metrics={
                "new-metric": _aggregate.from_points(
                    steps, steps.astype(np.float64), np.full(n, TS)
                )
            },
            parameters=[ParameterWrite("lr", 0.1, TS)],
        )
        with pytest.raises(StoreError, match="database or disk is full"):
            local.write(batch)
        assert local.records([key])[0].parameters == {}
        assert local.metric_names(key.run_id) == []

        local._db.execute("PRAGMA max_page_count = 1073741823")
        local.write(batch)
        assert local.records([key])[0].parameters == {"lr": 0.1}
        assert local.series(key.run_id, "new-metric").step.tolist() == list(range(n))
    assert integrity(store) == "ok"


def test_many_connections_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new database to WAL can deadlock two openers; none may fail for it."""
    for attempt in range(10):
        folder = tmp_path / f"store-{attempt}"
        errors: list[BaseException] = []

        def open_and_write(
            name: str, folder: Path = folder, errors: list[BaseException] = errors
        ) -> None:
            try:
                with LocalStore(folder) as store:
                    store.ensure_run("exp", name)
            except BaseException as exc:  # collected: the assertion below names it
                errors.append(exc)

        threads = [threading.Thread(target=open_and_write, args=(f"r{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with LocalStore(folder) as store:
            assert len(store.run_keys("exp")) == 6


def test_a_version_2_store_gets_its_step_less_keys_in_microseconds(store: str) -> None:
    """Version 2 bucketed step-less points by second at -(second + 1); opening the store
    rewrites those keys as the microsecond they stand for, and the times read back."""
    second = int(TS)
    old = _aggregate.from_points(
        np.array([-(second + 1), 0], dtype=np.int64), np.array([4.0, 9.0]), np.array([TS, TS])
    )
    with LocalStore(store) as local:
        key = local.ensure_run("exp", "run")
        local.write(Batch(run_id=key.run_id, worker="w", metrics={"m": old}))
    db = sqlite3.connect(Path(store) / DB_NAME)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with LocalStore(store, read_only=True) as local:  # a reader upgrades it, once
        series = local.series(key.run_id, "m")
        assert series.step.tolist() == [-(second * 1_000_000 + 1), 0]
        assert _aggregate.key_time(series.step[:1]).tolist() == [float(second)]
        assert [r.step for r in series.rows()] == [None, 0]

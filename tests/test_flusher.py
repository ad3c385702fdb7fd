"""The background flusher when the store misbehaves: nothing reaches the training loop,
nothing is dropped silently, and the data lands once the store is writable again.

The store waits up to 10 s for SQLite's write lock (so that several writers never see
"database is locked"). To fail fast here, the tests shorten that wait: the module constant
``runstream._store._local._BUSY_TIMEOUT_MS`` is the seam, read when a store is opened.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from _support import integrity, wait_until
from runstream import FlushTimeoutError, Run
from runstream._flush import _files
from runstream._store import DB_NAME
from runstream._store import _local as store_module


@pytest.fixture
def fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 50)


@contextmanager
def locked(store: str) -> Iterator[None]:
    """Hold the store's write lock from another connection, as another process could."""
    blocker = sqlite3.connect(Path(store) / DB_NAME, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


@pytest.mark.usefixtures("fail_fast")
def test_a_locked_store_never_reaches_the_loop_and_the_data_lands_later(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Run("exp", "run", store=store, flush_interval=0.02, tick=0.01) as run:
        run.log_metric("loss", 0.0, step=0)
        run.flush()
        with locked(store):
            for step in range(1, 1001):  # none of these raises or waits for the store
                run.log_metric("loss", float(step), step=step)
            run.log_parameter("lr", 0.1)
            run.log_metric("new-metric", 1.0, step=0)
            with pytest.raises(FlushTimeoutError, match="1001 points and 0 files pending") as err:
                run.flush(timeout=0.5)
            assert err.value.pending_points == 1001
            stats = run.stats
            assert stats.write_errors >= 1
            assert stats.last_error is not None
            assert "database is locked" in stats.last_error
            assert (stats.points_logged, stats.points_pending) == (1002, 1001)
            assert stats.parameters_pending == 1
            assert stats.points_dropped == 0
        stats = run.flush().stats  # retried with back-off until the lock is gone
        assert (stats.points_written, stats.points_pending, stats.parameters_pending) == (
            1002,
            0,
            0,
        )
    assert "store write failed, will retry" in caplog.text
    loss = run.series("loss")
    assert loss.step.tolist() == list(range(1001))
    assert loss.count.tolist() == [1] * 1001  # retries wrote each point once
    assert loss.last.tolist() == [float(s) for s in range(1001)]
    record = run.record()
    assert record.parameters == {"lr": 0.1}
    assert record.metrics["new-metric"].count == 1
    assert record.status == "Completed"
    assert integrity(store) == "ok"


def test_a_full_disk_mid_write_is_retried_and_lands(store: str) -> None:
    """SQLITE_FULL in the middle of a batch with a new metric: the retry must not reuse
    anything from the rolled-back transaction. (``max_page_count`` on the run's own
    connection fills the "disk" without root.)"""
    with Run("exp", "run", store=store, flush_interval=0.02, tick=0.01) as run:
        assert run._store is not None
        db = run._store._db
        with run._store._lock:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
        for step in range(20_000):
            run.log_metric("fresh", float(step), step=step)
        wait_until(lambda: run.stats.write_errors >= 2, "two failed writes")
        assert "database or disk is full" in (run.stats.last_error or "")
        assert run.stats.points_pending == 20_000
        with run._store._lock:  # not in the middle of the flusher's own transaction
            db.execute("PRAGMA max_page_count = 1073741823")
        assert run.flush(timeout=30).stats.points_written == 20_000
    assert run.series("fresh").step.tolist() == list(range(20_000))
    assert run.record().status == "Completed"


@pytest.mark.usefixtures("fail_fast")
def test_closing_gives_up_after_the_timeout_spills_and_the_next_run_writes_it(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run("exp", "run", store=store, close_timeout=0.3, flush_interval=0.02, tick=0.01)
    # The lock outlives the block (the stack closes last): it is held while closing.
    with (  # noqa: PT031 (the warning comes from leaving the run)
        ExitStack() as stack,
        pytest.warns(RuntimeWarning, match=r"within 0\.3s: 100 points spilled") as caught,
        run,
    ):
        stack.enter_context(locked(store))
        for step in range(100):
            run.log_metric("loss", float(step), step=step)
        wait_until(lambda: run.stats.write_errors >= 1, "a failed write")
    assert "written by the next run that opens this store" in str(caught[0].message)
    assert "database is locked" in caplog.text  # the cause was reported as it happened
    stats = run.stats
    assert (stats.points_logged, stats.points_written, stats.points_spilled) == (100, 0, 100)
    assert (stats.points_pending, stats.points_dropped) == (0, 0)
    # The outcome could not be recorded either: the run is not marked Completed.
    assert run.record().status == "InProgress"
    assert "loss" not in run.record().metrics
    # The next run to open the store writes the spilled points in, once.
    with Run("exp", "next", store=store):
        pass
    assert run.series("loss").last.tolist() == [float(s) for s in range(100)]
    assert run.series("loss").count.tolist() == [1] * 100
    with Run("exp", "after", store=store):
        pass
    assert run.series("loss").count.tolist() == [1] * 100
    assert integrity(store) == "ok"


def test_the_high_water_mark_writes_before_the_interval(store: str) -> None:
    with Run("exp", "run", store=store, flush_interval=3600, capacity=100) as run:
        for step in range(1000):
            run.log_metric("loss", 1.0, step=step)
        wait_until(lambda: run.stats.flushes >= 1, "a write triggered by the high water mark")
        assert run.stats.points_written >= 50  # capacity // 2
    assert run.stats.points_written == 1000


def test_a_file_that_vanishes_before_its_copy_is_reported(
    store: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "gone.txt"
    source.write_text("x")
    real_store_file = _files.store_file

    def delete_then_copy(*args: Any) -> Any:
        source.unlink()  # gone between log_file's check and the background copy
        return real_store_file(*args)

    monkeypatch.setattr("runstream._flush._flusher.store_file", delete_then_copy)
    with (
        caplog.at_level(logging.WARNING, logger="runstream"),
        Run("exp", "run", store=store) as run,
    ):
        run.log_file(str(source))
        run.log_metric("loss", 1.0, step=0)
    assert run.stats.files_written == 0
    assert run.stats.files_pending == 0
    assert run.stats.last_error is not None
    assert "could not be copied" in run.stats.last_error
    assert "gone.txt" in caplog.text
    record = run.record()
    assert record.artifacts.output == {}
    assert record.metrics["loss"].count == 1
    assert record.status == "Completed"

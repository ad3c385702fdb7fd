"""Data the store refuses until a run closes is spilled beside it, then written in later."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import runstream
from _support import wait_until


def test_a_locked_store_spills_at_close_and_the_next_run_writes_it(tmp_path: Path) -> None:
    run = runstream.Run("spill", "locked", store=tmp_path, close_timeout=1.0)
    # Another connection holds the write lock for longer than the run may take to close.
    blocker = sqlite3.connect(tmp_path / "runstream.db", isolation_level=None)
    run._store._db.execute("PRAGMA busy_timeout = 50")  # type: ignore[union-attr]
    run.__enter__()
    run.log_parameter("lr", 0.5)
    for step in range(1000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.warns(RuntimeWarning, match="points spilled"):
        run.__exit__(None, None, None)
    stats = run.stats
    assert stats.points_written == 0
    assert stats.points_spilled == 1000
    assert stats.points_logged == stats.points_written + stats.points_pending + stats.points_spilled
    assert stats.write_errors >= 1
    spilled = list((tmp_path / "spill").glob("*.batch"))
    assert len(spilled) == 1
    blocker.execute("ROLLBACK")
    blocker.close()

    with runstream.Run("spill", "later", store=tmp_path) as other:
        other.log_metric("x", 1.0, step=0)
    assert not list((tmp_path / "spill").glob("*.batch"))
    record = runstream.list_runs("spill", store=tmp_path, sort_by=runstream.SortByType.NAME)[0]
    assert record.run_name == "locked"
    metrics = record.record()
    assert metrics.metrics["loss"].count == 1000
    assert metrics.metrics["loss"].max == 1.0
    assert metrics.parameters == {"lr": 0.5}
    assert not [t for t in threading.enumerate() if t.name.startswith("runstream-flusher")]


def test_a_long_outage_spills_to_disk_and_recovers_mid_run(tmp_path: Path) -> None:
    with runstream.Run("spill", "outage", store=tmp_path, tick=0.01, flush_interval=0.01) as run:
        assert run._background is not None
        run._background.flusher._spill_rows = 100  # hold at most 100 unwritten rows in memory
        run._store._db.execute("PRAGMA busy_timeout = 10")  # type: ignore[union-attr]
        blocker = sqlite3.connect(tmp_path / "runstream.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        for step in range(5000):
            run.log_metric("loss", float(step), step=step)
        wait_until(lambda: run.stats.points_spilled >= 5000, "5,000 points spilled", 60)
        during = run.stats
        assert during.points_spilled == 5000  # all of it on disk, none held in memory
        assert during.points_written == 0
        assert len(list((tmp_path / "spill").glob("*.batch"))) >= 1
        blocker.execute("ROLLBACK")
        blocker.close()
        after = run.flush().stats
    assert after.points_spilled == 0
    assert after.points_written == 5000
    assert not list((tmp_path / "spill").iterdir())
    series = run.series("loss")
    assert series.count.sum() == 5000
    assert series.mean.tolist() == [float(s) for s in range(5000)]


def test_a_batch_the_store_refuses_is_set_aside_and_later_data_still_lands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = runstream.Run("spill", "poison", store=tmp_path)
    # A real SQLite trigger refuses one parameter: an error retrying can never fix.
    db = sqlite3.connect(tmp_path / "runstream.db")
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON parameters WHEN NEW.name = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
    )
    db.commit()
    db.close()
    with run:
        run.log_parameter("poison", 1)
        for step in range(10):
            run.log_metric("loss", float(step), step=step)
        refused = run.flush().stats
        for step in range(10, 20):
            run.log_metric("loss", float(step), step=step)
        later = run.flush().stats
    # Only the refused item is set aside: the points of the same flush land.
    assert refused.points_rejected == 0
    assert refused.points_written == 10
    assert later.points_written == 20
    assert later.points_logged == 20
    assert later.points_pending == 0
    assert "refused parameter 'poison'" in caplog.text
    assert "refused by a trigger" in caplog.text
    assert len(list((tmp_path / "spill").glob("*.rejected"))) == 1
    assert run.series("loss").step.tolist() == list(range(20))
    assert "poison" not in run.record().parameters
    # The next run does not try to replay what the store refused.
    with runstream.Run("spill", "after", store=tmp_path) as other:
        other.log_metric("x", 1.0, step=0)
    assert len(list((tmp_path / "spill").glob("*.rejected"))) == 1

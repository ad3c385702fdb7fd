"""One lifecycle for ``with`` and ``async with``: the flusher serves in a thread of its own,
and an enter that fails leaves nothing behind.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _support import child_env
from runstream import Run, StoreError, current_run, load_run
from runstream._store import DB_NAME
from runstream._store import _local as store_module

FLUSH_INTERVAL = 1.0


def _points_seen_by_another_process(store: str, metric: str) -> int:
    """How many points of ``metric`` a fresh process reads from the store (its CLI)."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "runstream", "show", "exp", "busy", "--json", "--store", store],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    return int(metrics[metric]["count"]) if metric in metrics else 0


@pytest.mark.anyio
async def test_an_async_loop_that_never_awaits_still_has_its_points_written(store: str) -> None:
    # A training step that computes and never awaits: the caller's event loop never runs
    # while the block is busy, so a flusher living in that loop would write nothing.
    async with Run("exp", "busy", store=store, flush_interval=FLUSH_INTERVAL) as run:
        for step in range(50_000):
            run.log_metric("loss", float(step), step=step)
        logged_at = time.monotonic()
        while time.monotonic() - logged_at < 2 * FLUSH_INTERVAL:
            sum(range(1000))  # busy, no await
        seen = _points_seen_by_another_process(store, "loss")  # still inside, no await
    assert seen == 50_000


def _hold_the_write_lock(store: str) -> sqlite3.Connection:
    """Hold the store's write lock from another connection, as another process could."""
    blocker = sqlite3.connect(Path(store) / DB_NAME, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


def _nothing_left_open() -> None:
    assert current_run() is None
    assert not [t for t in threading.enumerate() if t.name.startswith("runstream-flusher")]
    with pytest.raises(RuntimeError, match="Failed to load a Run object"):
        load_run()


def _enter_a_name_the_environment_cannot_hold(store: str) -> None:
    # A NUL cannot be exported to child processes: refused at construction or at entry.
    with Run("exp", "a\x00b", store=store):
        pass


def _enter_while_the_store_is_locked(store: str) -> None:
    Run("exp", "locked", store=store).close()  # create it, then lock the store
    blocker = _hold_the_write_lock(store)
    try:
        with pytest.raises(StoreError), Run("exp", "locked", store=store):
            pass
    finally:
        blocker.rollback()
        blocker.close()
    raise ValueError("entered nothing")  # the same outcome as the other case, for the test


@pytest.mark.parametrize(
    "failing_enter",
    [_enter_a_name_the_environment_cannot_hold, _enter_while_the_store_is_locked],
    ids=["nul-in-name", "store-locked"],
)
def test_a_failed_enter_leaves_no_current_run_and_the_next_run_works(
    store: str, monkeypatch: pytest.MonkeyPatch, failing_enter: Callable[[str], None]
) -> None:
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 50)  # fail fast on the lock
    with pytest.raises(ValueError, match=r"environment cannot hold|entered nothing|NUL"):
        failing_enter(store)
    _nothing_left_open()
    with Run("exp", "next", store=store) as run:
        assert current_run() is run
        run.log_metric("loss", 1.0, step=0)
    assert run.record().metrics["loss"].count == 1
    assert run.record().status == "Completed"
    _nothing_left_open()


@pytest.mark.anyio
async def test_a_failed_async_enter_leaves_no_current_run(store: str) -> None:
    with pytest.raises(ValueError, match=r"environment cannot hold|NUL"):
        async with Run("exp", "a\x00b", store=store):
            pass
    _nothing_left_open()
    async with Run("exp", "next", store=store) as run:
        assert current_run() is run
    _nothing_left_open()


def test_entering_the_same_run_twice_is_refused_as_the_official_sdk_does(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        with pytest.raises(RuntimeError, match="nested 'with' statements on the Run"), run:
            pass
        assert current_run() is run
        with load_run() as loaded:
            assert loaded is run
            nested = "nested 'with' statements on the load_run"
            with pytest.raises(RuntimeError, match=nested), loaded:
                pass
        run.log_metric("loss", 1.0, step=0)  # the outer block goes on after the inner one
    assert run.record().metrics["loss"].count == 1
    _nothing_left_open()


def test_an_inner_load_run_block_completes_the_run_and_the_outer_block_goes_on(
    store: str,
) -> None:
    with Run("exp", "run", store=store) as run:
        with load_run() as loaded:
            loaded.log_metric("loss", 1.0, step=0)
        inner = run.record()
        assert inner.status == "Completed"
        assert inner.end_time is not None
        assert inner.metrics["loss"].count == 1  # flushed when the inner block ended
        run.log_metric("loss", 2.0, step=1)
    assert run.record().metrics["loss"].count == 2
    assert run.record().status == "Completed"

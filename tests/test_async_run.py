"""``async with Run(...)``: the flusher as a task of the caller's event loop."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from runstream import Flush, Run, RunStats, current_run, load_run
from runstream._flush import _files

pytestmark = pytest.mark.anyio


async def test_async_with_logs_and_flushes(store: str) -> None:
    async with Run("exp", "run", store=store, flush_interval=3600) as run:
        assert current_run() is run
        for step in range(100):
            run.log_metric("loss", step / 10, step=step)
        run.log_parameters({"lr": 0.1, "optimizer": "sgd"})
        pending = run.stats
        assert (pending.points_logged, pending.points_written) == (100, 0)
        stats = await run.flush()
        assert isinstance(stats, RunStats)
        assert (stats.points_logged, stats.points_written, stats.points_pending) == (100, 100, 0)
        assert stats.parameters_pending == 0
        # Visible in the store before the block ends.
        assert run.record().metrics["loss"].count == 100
        # run.flush() does not block the loop in async code: it returns an awaitable.
        run.log_metric("loss", 99.0, step=100)
        flush = run.flush()
        assert isinstance(flush, Flush)
        assert (await flush).points_written == 101
        assert flush.stats.points_pending == 0
    assert current_run() is None
    record = run.record()
    assert record.status == "Completed"
    assert record.parameters == {"lr": 0.1, "optimizer": "sgd"}
    assert run.series("loss").last.tolist() == [s / 10 for s in range(100)] + [99.0]


async def test_async_failure_marks_the_run_failed(store: str) -> None:
    with pytest.raises(ValueError, match="diverged"):  # noqa: PT012 (raised in the block)
        async with Run("exp", "run", store=store) as run:
            run.log_metric("loss", 1.0, step=0)
            raise ValueError("diverged")
    record = run.record()
    assert (record.status, record.message) == ("Failed", "diverged")
    assert record.metrics["loss"].count == 1


async def test_cancelling_the_block_still_lands_the_last_flush(store: str) -> None:
    with anyio.move_on_after(0.1) as scope:
        async with Run("exp", "run", store=store, flush_interval=3600) as run:
            for step in range(10):
                run.log_metric("loss", float(step), step=step)
            await anyio.sleep(30)
    assert scope.cancelled_caught
    assert run.series("loss").step.tolist() == list(range(10))
    assert run.record().status == "Stopped"  # cancelled: neither completed nor failed
    assert run.stats.points_pending == 0


async def test_each_task_holds_its_own_run(store: str) -> None:
    seen: dict[str, tuple[Run | None, Run]] = {}
    both_inside = anyio.Event()
    inside = 0

    async def train(name: str) -> None:
        nonlocal inside
        async with Run("exp", name, store=store) as run:
            inside += 1
            if inside == 2:
                both_inside.set()
            await both_inside.wait()  # both runs are entered at once
            seen[name] = (current_run(), load_run())
            for step in range(20):
                run.log_metric("loss", float(step), step=step)
                await anyio.sleep(0)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(train, "a")
        tasks.start_soon(train, "b")
    assert seen["a"][0] is seen["a"][1]
    assert seen["b"][0] is seen["b"][1]
    assert seen["a"][0] is not None
    assert seen["b"][0] is not None
    assert (seen["a"][0].run_name, seen["b"][0].run_name) == ("a", "b")
    assert current_run() is None
    for run, _ in seen.values():
        assert run is not None
        assert run.record().metrics["loss"].count == 20
        assert run.record().status == "Completed"


async def test_no_task_or_flusher_thread_outlives_the_run(store: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    tasks_before = {task.id for task in anyio.get_running_tasks()}
    async with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
        run.log_file(str(source))
        # The flusher serves in a thread of its own, never as a task of the caller's loop.
        assert {t.id for t in anyio.get_running_tasks()} == tasks_before
        assert [t for t in threading.enumerate() if t.name.startswith("runstream-flusher")]
    assert {task.id for task in anyio.get_running_tasks()} == tasks_before
    assert not [t for t in threading.enumerate() if t.name.startswith("runstream")]
    assert run.record().artifacts.output["f.txt"].size == 1


async def test_files_are_copied_in_a_worker_thread_not_on_the_loop(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "weights.txt"
    source.write_text("w" * 1000)
    copied_on: list[int] = []
    real_store_file = _files.store_file

    def spy(*args: Any) -> Any:
        copied_on.append(threading.get_ident())
        return real_store_file(*args)

    monkeypatch.setattr("runstream._flush._flusher.store_file", spy)
    async with Run("exp", "run", store=store) as run:
        run.log_file(str(source))
        stats = await run.flush()
        assert (stats.files_written, stats.files_pending) == (1, 0)
    assert copied_on
    assert threading.get_ident() not in copied_on
    assert run.record().artifacts.output["weights.txt"].size == 1000


async def test_nan_warns_once_in_async_code_too(store: str) -> None:
    async with Run("exp", "run", store=store) as run:
        with pytest.warns(RuntimeWarning, match="keeps NaN") as caught:  # noqa: PT031 (once)
            for step in range(5):
                run.log_metric("loss", math.nan, step=step)
        assert len(caught) == 1
    assert run.series("loss").count.tolist() == [1] * 5

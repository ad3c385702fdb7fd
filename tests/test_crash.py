"""A writer killed with SIGKILL in the middle of logging (and, as often as not, of a write)
never corrupts the store, loses nothing it had flushed, and does not look Completed."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from _support import integrity, log_until_killed, wait_until
from runstream import Run, list_runs

KILLS = 3


@pytest.mark.slow
def test_a_sigkilled_writer_never_corrupts_the_store(store: str) -> None:
    context = multiprocessing.get_context("spawn")
    flushed_at_kill = []
    for i in range(KILLS):
        flushed = context.Value("q", 0, lock=False)  # no lock: the child dies holding nothing
        child = context.Process(
            target=log_until_killed, args=(store, "crash", "run", f"loss-{i}", flushed)
        )
        child.start()
        # Different amounts of progress per kill, so the kill lands at different moments.
        target = 2000 * (i + 1)
        wait_until(
            lambda: flushed.value >= target or not child.is_alive(),  # noqa: B023
            f"{target} points flushed by the child",
            60,
        )
        assert child.is_alive(), "the child died before it was killed"
        flushed_at_kill.append(flushed.value)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        assert integrity(store) == "ok"

    run = list_runs("crash", store=store)[0]
    for i, flushed_points in enumerate(flushed_at_kill):
        series = run.series(f"loss-{i}")
        n = len(series)
        assert n >= flushed_points  # everything flushed before the kill survived it
        assert series.step.tolist() == list(range(n))  # a prefix: no hole in the middle
        assert series.count.tolist() == [1] * n  # and nothing written twice
        assert series.last.tolist() == [float(s) for s in range(n)]
    record = run.record()
    assert len(record.workers) == KILLS
    assert all(w.status == "InProgress" for w in record.workers)
    assert record.status == "InProgress"

    # The store stays usable: the run can be continued, and a killed worker keeps the run
    # from looking Completed.
    with Run("crash", "run", store=store) as again:
        again.log_metric("after", 1.0, step=0)
    record = again.record()
    assert record.metrics["after"].count == 1
    assert record.status == "InProgress"
    assert integrity(store) == "ok"

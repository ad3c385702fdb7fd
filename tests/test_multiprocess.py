"""Several real processes (spawned, as a launcher starts them) writing one run of one store
at once: nothing lost, nothing duplicated, no "database is locked"."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import msgspec
import pytest

from _support import integrity, log_into_shared_run, worker_value
from runstream import list_runs

WORKERS = 4
STEPS = 300


@pytest.mark.slow
def test_processes_writing_one_run_lose_and_duplicate_nothing(store: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    outputs = [tmp_path / f"worker-{i}.json" for i in range(WORKERS)]
    processes = [
        context.Process(
            target=log_into_shared_run,
            args=(store, "Shared", "run", i, STEPS, start, str(outputs[i])),
        )
        for i in range(WORKERS)
    ]
    for process in processes:
        process.start()
    start.set()  # all at once, on a store none of them has created yet
    for process in processes:
        process.join(120)
        assert process.exitcode == 0

    results = [msgspec.json.decode(out.read_bytes()) for out in outputs]
    for result in results:
        stats = result["stats"]
        assert stats["points_logged"] == stats["points_written"] == 3 * STEPS
        assert stats["points_pending"] == stats["points_dropped"] == 0
        assert stats["write_errors"] == 0, stats["last_error"]
        assert stats["flushes"] > 1  # the writers' transactions really interleaved
    worker_names = [r["worker"] for r in results]
    assert len(set(worker_names)) == WORKERS

    runs = list_runs("shared", store=store)
    assert len(runs) == 1  # everyone created-or-loaded the same run
    run = runs[0]
    record = run.record()
    assert record.status == "Completed"
    assert sorted(w.worker for w in record.workers) == sorted(worker_names)
    assert all(w.status == "Completed" for w in record.workers)
    assert record.parameters == {f"worker-{i}": i for i in range(WORKERS)}
    assert record.metrics["loss"].count == WORKERS * STEPS
    assert record.metrics["accuracy"].count == WORKERS * STEPS

    loss = run.series("loss")
    assert loss.step.tolist() == list(range(STEPS))
    assert loss.count.tolist() == [WORKERS] * STEPS
    assert loss.min.tolist() == [worker_value(0, s) for s in range(STEPS)]
    assert loss.max.tolist() == [worker_value(WORKERS - 1, s) for s in range(STEPS)]
    assert loss.mean.tolist() == pytest.approx(
        [sum(worker_value(w, s) for w in range(WORKERS)) / WORKERS for s in range(STEPS)]
    )
    for i, name in enumerate(worker_names):
        own = run.series("loss", worker=name)
        assert own.last.tolist() == [worker_value(i, s) for s in range(STEPS)]
        assert own.count.tolist() == [1] * STEPS
        assert run.series(f"own-{i}").last.tolist() == [float(s) for s in range(STEPS)]
    assert integrity(store) == "ok"

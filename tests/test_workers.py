"""Many workers, one run: real processes logging into one run of one store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import runstream
import runstream._cli as _cli

SRC = str(Path(runstream.__file__).resolve().parent.parent)

WORKER = textwrap.dedent(
    """
    import sys, time
    import runstream
    store, index, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with runstream.Run("fleet", "one-run", store=store, worker=f"w{index}") as run:
        run.log_parameter("batch_size", 64)
        run.log_parameter("seed", index)
        for step in range(steps):
            run.log_metric("loss", index * 1000.0 + step * 0.001, step=step)
            run.log_metric("step_time", 0.1 + (0.05 if index == 3 else 0.0), step=step)
        if len(sys.argv) > 4:  # hang around to be killed, with some data flushed
            run.flush()
            print("flushed", flush=True)
            time.sleep(600)
    """
)


def _spawn(store: Path, index: int, steps: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC, RUNSTREAM_WORLD_SIZE="")
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(store), str(index), str(steps), *extra],
        env=env,
        stdout=subprocess.PIPE if extra else None,
        text=True,
    )


@pytest.mark.slow
def test_eight_workers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    workers, steps = 8, 100_000  # 2 metrics: 200k points per worker
    procs = [_spawn(tmp_path, i, steps) for i in range(workers)]
    assert [p.wait(timeout=240) for p in procs] == [0] * workers

    run = runstream.list_runs("fleet", store=tmp_path)[0]
    record = run.record()
    assert record.status == "Completed"
    assert sorted(w.worker for w in record.workers) == [f"w{i}" for i in range(workers)]
    assert record.metrics["loss"].count == workers * steps
    assert record.metrics["step_time"].count == workers * steps

    merged = run.series("loss")
    step = np.arange(steps)
    values = np.arange(workers)[:, None] * 1000.0 + step[None, :] * 0.001  # worker x step
    np.testing.assert_array_equal(merged.step, step)
    np.testing.assert_array_equal(merged.count, np.full(steps, workers))
    np.testing.assert_allclose(merged.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.std, values.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(merged.min, values.min(axis=0))
    np.testing.assert_array_equal(merged.max, values.max(axis=0))
    assert record.metrics["loss"].avg == pytest.approx(values.mean(), rel=1e-12)
    assert record.metrics["loss"].std == pytest.approx(values.std(), rel=1e-9)

    per_worker = run.worker_series("loss")
    assert sorted(per_worker) == [f"w{i}" for i in range(workers)]
    for index, series in enumerate(per_worker.values()):
        np.testing.assert_array_equal(series.count, np.ones(steps))
        np.testing.assert_allclose(series.mean, values[index], rtol=1e-15)

    stragglers = run.stragglers("step_time")
    assert stragglers.slowest_counts()["w3"] == steps
    assert record.parameters["batch_size"] == 64
    assert set(record.parameter_conflicts) == {"seed"}
    assert record.parameter_conflicts["seed"] == {f"w{i}": i for i in range(workers)}


@pytest.mark.slow
def test_a_killed_worker_leaves_the_others_intact(tmp_path: Path) -> None:
    steps = 20_000
    victim = _spawn(tmp_path, 7, steps, "hang")
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "flushed"
    survivors = [_spawn(tmp_path, i, steps) for i in range(3)]
    assert [p.wait(timeout=120) for p in survivors] == [0, 0, 0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    victim.stdout.close()

    run = runstream.list_runs("fleet", store=tmp_path)[0]
    record = run.record()
    assert record.status == "InProgress"  # never Completed while a worker did not finish
    assert record.message is not None
    assert "worker w7 has not finished" in record.message
    by_worker = {w.worker: w.status for w in record.workers}
    assert by_worker == {
        "w0": "Completed",
        "w1": "Completed",
        "w2": "Completed",
        "w7": "InProgress",
    }
    per_worker = run.worker_series("loss")
    for index in range(3):
        assert int(per_worker[f"w{index}"].count.sum()) == steps
    # The victim flushed everything before it hung: nothing of it is lost either.
    assert int(per_worker["w7"].count.sum()) == steps


def test_world_size_keeps_a_run_open_until_every_worker_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_WORLD_SIZE", "2")
    with runstream.Run("fleet", "sized", store=tmp_path, worker="rank-0") as run:
        run.log_metric("loss", 1.0, step=0)
    record = run.record()
    assert record.status == "InProgress"
    assert record.message == "1 of 2 workers never started"
    with runstream.Run("fleet", "sized", store=tmp_path, worker="rank-1") as run:
        run.log_metric("loss", 3.0, step=0)
    record = run.record()
    assert record.status == "Completed"
    assert record.metrics["loss"].avg == 2.0


def test_one_failed_worker_fails_the_run_and_says_which(tmp_path: Path) -> None:
    with runstream.Run("fleet", "mixed", store=tmp_path, worker="a"):
        pass
    with (
        pytest.raises(ZeroDivisionError),
        runstream.Run("fleet", "mixed", store=tmp_path, worker="b"),
    ):
        _ = 1 / 0
    record = runstream.list_runs("fleet", store=tmp_path)[0].record()
    assert record.status == "Failed"
    assert record.message == "worker b: division by zero"


def test_parameter_conflicts_are_logged_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with runstream.Run("fleet", "params", store=tmp_path, worker="a") as run:
        run.log_parameter("lr", 0.1)
        run.log_parameter("same", "x")
    with runstream.Run("fleet", "params", store=tmp_path, worker="b") as run:
        run.log_parameter("lr", 0.2)
        run.log_parameter("same", "x")
    assert "parameter 'lr' differs between workers: a wrote 0.1, b wrote 0.2" in caplog.text
    record = run.record()
    assert record.parameters == {"lr": 0.2, "same": "x"}  # the last write wins
    assert record.parameter_conflicts == {"lr": {"a": 0.1, "b": 0.2}}


def test_cli_shows_both_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for worker, offset in (("a", 0.0), ("b", 1.0)):
        with runstream.Run("fleet", "views", store=tmp_path, worker=worker) as run:
            for step in range(3):
                run.log_metric("step_time", offset + step, step=step)
    base = ["--store", str(tmp_path), "--json"]
    assert _cli.main(["series", "fleet", "views", "step_time", "--by-worker", *base]) == 0
    views = json.loads(capsys.readouterr().out)
    assert sorted(views) == ["a", "b"]
    assert [r["mean"] for r in views["b"]] == [1.0, 2.0, 3.0]
    assert _cli.main(["series", "fleet", "views", "step_time", *base]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert [(r["count"], r["mean"], r["min"], r["max"]) for r in merged] == [
        (2, 0.5, 0.0, 1.0),
        (2, 1.5, 1.0, 2.0),
        (2, 2.5, 2.0, 3.0),
    ]
    assert _cli.main(["stragglers", "fleet", "views", "step_time", *base]) == 0
    stragglers = json.loads(capsys.readouterr().out)
    assert [r["worker"] for r in stragglers["rows"]] == ["b", "b", "b"]
    assert stragglers["slowest_counts"] == {"a": 0, "b": 3}
    assert _cli.main(["stragglers", "fleet", "views", "step_time", "--store", str(tmp_path)]) == 0
    assert "slowest worker" in capsys.readouterr().out


def test_worker_identity_from_launchers() -> None:
    from runstream._core._environment import worker_identity, world_size

    assert worker_identity(environ={"RANK": "3"}) == "rank-3"
    assert worker_identity(environ={"OMPI_COMM_WORLD_RANK": "5"}) == "rank-5"
    assert worker_identity(environ={"RANK": "1", "SM_CURRENT_HOST": "algo-2"}) == "algo-2-rank-1"
    assert worker_identity(environ={"SM_CURRENT_HOST": "algo-1"}) == "algo-1"
    assert worker_identity("explicit", environ={"RANK": "3"}) == "explicit"
    assert worker_identity(environ={"RUNSTREAM_WORKER": "mine", "RANK": "3"}) == "mine"
    assert worker_identity(environ={}).endswith(f"-{os.getpid()}")
    assert world_size({"WORLD_SIZE": "4"}) == 4
    assert world_size({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}) == 4  # this host's
    assert world_size({"SM_HOSTS": '["algo-1", "algo-2"]'}) is None  # a store per host
    assert world_size({}) is None


TORCH_RANK = textwrap.dedent(
    """
    import os, sys
    import torch
    import torch.distributed as dist
    import runstream
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    store = sys.argv[1]
    run = runstream.Run("ddp", "gloo-run", store=store) if rank == 0 else None
    if run is not None:
        run.__enter__()
    dist.barrier()
    # Rank 0's own run in context; the others find it through the job's c10d store.
    with runstream.load_run() as logged:
        for step in range(50):
            loss = torch.tensor([float(rank + step)])
            dist.all_reduce(loss)
            logged.log_metric("loss", float(loss) / dist.get_world_size(), step=step)
            logged.log_metric("rank_value", float(rank), step=step)
        logged.log_parameter("world_size", dist.get_world_size())
    dist.barrier()
    if run is not None:
        run.__exit__(None, None, None)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_torch_distributed_gloo_ranks_share_one_run(tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed")
    world = 4
    port = 29500 + os.getpid() % 1000
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            PYTHONPATH=SRC,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        procs.append(subprocess.Popen([sys.executable, "-c", TORCH_RANK, str(tmp_path)], env=env))
    assert [p.wait(timeout=240) for p in procs] == [0] * world
    run = runstream.list_runs("ddp", store=tmp_path)[0]
    record = run.record()
    assert record.status == "Completed"
    assert sorted(w.worker for w in record.workers) == [f"rank-{r}" for r in range(world)]
    assert record.metrics["rank_value"].count == world * 50
    assert record.metrics["rank_value"].avg == pytest.approx(1.5)
    merged = run.series("loss")
    # all_reduce made every rank log the same mean: 4 identical points per step.
    np.testing.assert_array_equal(merged.count, np.full(50, world))
    np.testing.assert_allclose(merged.mean, np.arange(50) + 1.5)
    np.testing.assert_allclose(merged.std, 0.0, atol=1e-12)
    assert record.parameters["world_size"] == world
    assert not record.parameter_conflicts


def test_published_run_is_found_through_the_job_store(tmp_path: Path) -> None:
    """Without torch, the rendezvous is simply absent: load_run still raises clearly."""
    if "torch.distributed" in sys.modules:
        pytest.skip("torch.distributed is loaded in this interpreter")
    from runstream._run._distributed import lookup_run, publish_run

    assert publish_run("e", "r", str(tmp_path)) is False
    assert lookup_run(0.1) is None
    env_keys = ("RUNSTREAM_RUN_NAME", "RUNSTREAM_EXPERIMENT_NAME")
    assert not any(os.environ.get(k) for k in env_keys)
    with pytest.raises(RuntimeError, match="Failed to load a Run object"):
        runstream.load_run()

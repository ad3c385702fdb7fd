"""Two worker processes log into one run: MLflow gets the merged series, every step once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ._support import history, mlflow_run, unique

exp = unique()

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from runstream import Run

    store, experiment, rank, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    late = float(sys.argv[5])
    here = Path(store)
    if rank == 1:
        while not (here / "ready-0").exists():
            time.sleep(0.01)
    with Run(experiment, "ddp", backend="mlflow", store=store, worker=f"rank-{rank}") as run:
        (here / f"ready-{rank}").touch()
        while not (here / f"ready-{1 - rank}").exists():  # both are in the run before logging
            time.sleep(0.01)
        if rank == 1:
            time.sleep(late)  # rank 0 logs, and flushes, before rank 1 writes anything
        for step in range(steps):
            run.log_metric("loss", float(rank), step=step)
            if step % 50 == 0:
                time.sleep(0.05 * (rank + 1))  # rank 1 lags behind
        run.log_parameter("rank_seen", rank)
    print(run.stats.sync)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("late", [0.0, 2.5])
def test_two_workers_send_the_merged_series(
    mlflow_uri: str, client: Any, tmp_path: Path, late: float
) -> None:
    """``late``: rank 1 is in the run but writes nothing for that many seconds while rank 0
    logs, flushes and closes: the steps wait for it and still merge both."""
    store = tmp_path / "store"
    store.mkdir()
    steps = 400
    name = exp(f"workers-{late}")
    env = {**os.environ, "RUNSTREAM_WORLD_SIZE": "2"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store), name, str(rank), str(steps), str(late)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
    found = mlflow_run(client, name, "ddp")
    points = history(client, found, "loss")
    # The merged series: at every step the mean of the two workers' values, once.
    assert [(s, v) for s, v, _ in points] == [(s, 0.5) for s in range(steps)]
    assert found.info.status == "FINISHED"
    assert sorted(found.data.tags["runstream.workers"].split(",")) == ["rank-0", "rank-1"]

"""The seed workflow into a real MLflow server, read back with MLflow's own client."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream import Run

from ._support import history, mlflow_run, unique

exp = unique()


def test_seed_workflow_lands_in_mlflow(mlflow_uri: str, client: Any, tmp_path: Path) -> None:
    weights = np.random.default_rng(7).standard_normal((64, 8)).astype(np.float32)
    npy = tmp_path / "weights.npy"
    np.save(npy, weights)
    with Run(exp("seed"), "baseline", backend="mlflow", store=tmp_path / "store") as run:
        run.log_parameters({"learning_rate": 0.01, "batch_size": 64, "optimizer": "adam"})
        for step in range(10):
            run.log_metric("train:loss", 1.0 / (step + 1), step=step)
        for step in range(2000):  # a burst: every point must arrive
            run.log_metric("burst", float(step) * 0.5, step=step)
        run.log_metric("Final Test Loss", 0.25)  # step-less, logged twice with one value
        run.log_metric("Final Test Loss", 0.25)
        with pytest.warns(RuntimeWarning, match="NaN"):
            run.log_metric("diverged", math.nan, step=0)
        run.log_metric("diverged", math.inf, step=1)
        run.log_artifact(
            "dataset", "s3://bucket/data/", media_type="text/uri-list", is_output=False
        )
        run.log_file(str(npy), name="weights.npy")
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "synced", sync
    assert sync.points_pending == 0
    assert sync.points_rejected == 0

    found = mlflow_run(client, exp("seed"), "baseline")
    assert found.info.status == "FINISHED"
    assert found.info.end_time is not None
    assert found.info.end_time >= found.info.start_time
    assert found.data.params == {"learning_rate": "0.01", "batch_size": "64", "optimizer": "adam"}
    assert found.data.tags["runstream.trial_component_name"] == f"{exp('seed')}-baseline"
    assert found.data.tags["runstream.input.dataset"] == "s3://bucket/data/"
    assert found.data.tags["runstream.input.dataset.media_type"] == "text/uri-list"
    assert found.data.tags["runstream.workers"] == run.worker

    loss = history(client, found, "train:loss")
    assert [(s, v) for s, v, _ in loss] == [(s, 1.0 / (s + 1)) for s in range(10)]
    burst = history(client, found, "burst")
    assert [(s, v) for s, v, _ in burst] == [(s, s * 0.5) for s in range(2000)]
    final = history(client, found, "Final Test Loss")
    assert [(s, v) for s, v, _ in final] == [(0, 0.25), (0, 0.25)]  # two points, in time
    assert final[0][2] < final[1][2]
    diverged = history(client, found, "diverged")
    assert math.isnan(diverged[0][1])
    assert diverged[1][1] == np.finfo(np.float64).max  # MLflow clamps infinities

    local = os.fspath(
        client.download_artifacts(found.info.run_id, "outputs/weights.npy", str(tmp_path))
    )
    assert Path(local).read_bytes() == npy.read_bytes()
    assert found.data.tags["runstream.output.weights.npy"].endswith("/outputs/weights.npy")


def test_run_that_raises_is_failed(mlflow_uri: str, client: Any, tmp_path: Path) -> None:
    def train() -> None:
        with Run(exp("outcomes"), "raises", backend="mlflow", store=tmp_path) as run:
            run.log_metric("loss", 1.0, step=0)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        train()
    found = mlflow_run(client, exp("outcomes"), "raises")
    assert found.info.status == "FAILED"
    assert [v for _, v, _ in history(client, found, "loss")] == [1.0]


def test_interrupted_run_is_killed(mlflow_uri: str, client: Any, tmp_path: Path) -> None:
    def train() -> None:
        with Run(exp("outcomes"), "interrupted", backend="mlflow", store=tmp_path) as run:
            run.log_metric("loss", 2.0, step=0)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train()
    found = mlflow_run(client, exp("outcomes"), "interrupted")
    assert found.info.status == "KILLED"


def test_changed_parameter_is_a_tag_and_never_fails(
    mlflow_uri: str, client: Any, tmp_path: Path
) -> None:
    with Run(exp("params"), "changed", backend="mlflow", store=tmp_path) as run:
        run.log_parameter("learning_rate", 0.1)
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        _wait_for_param(client, exp("params"), "changed", "learning_rate")
        run.log_parameter("learning_rate", 0.05)  # MLflow's parameters are write-once
        run.log_metric("loss", 0.5, step=1)
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "synced", sync
    assert sync.last_error is None
    found = mlflow_run(client, exp("params"), "changed")
    assert found.data.params["learning_rate"] == "0.1"
    assert found.data.tags["runstream.param.learning_rate"] == "0.05"
    assert [v for _, v, _ in history(client, found, "loss")] == [1.0, 0.5]


def test_metric_mlflow_refuses_is_reported_and_kept(
    mlflow_uri: str, client: Any, tmp_path: Path
) -> None:
    with Run(exp("refused"), "names", backend="mlflow", store=tmp_path) as run:
        for step in range(5):
            run.log_metric("good", float(step), step=step)
            run.log_metric("x/../y", float(step), step=step)  # MLflow: resolves to another name
    sync = run.stats.sync
    assert sync is not None
    assert sync.points_rejected == 5
    assert sync.points_pending == 0
    found = mlflow_run(client, exp("refused"), "names")
    assert [v for _, v, _ in history(client, found, "good")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert run.series("x/../y").mean.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # kept locally


def _wait_for_param(client: Any, experiment: str, run_name: str, key: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        runs = [] if found is None else client.search_runs([found.experiment_id])
        if runs and key in runs[0].data.params:
            return
        time.sleep(0.1)
    raise AssertionError(f"parameter {key!r} never reached MLflow")

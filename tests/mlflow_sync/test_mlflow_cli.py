"""``runstream runs|show|series --backend mlflow``: read back from the server, with the
same ``--json`` shapes as the local store; ``status`` and ``sync --backend mlflow``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runstream import Run

from ._support import unique

exp = unique()


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "runstream", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_read_back_has_the_local_shapes(mlflow_uri: str, tmp_path: Path) -> None:
    import os

    store = tmp_path / "store"
    with Run(exp("cli"), "first", backend="mlflow", store=store) as run:
        run.log_parameters({"lr": 0.1, "optimizer": "sgd"})
        for step in range(100):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        with pytest.warns(RuntimeWarning, match="nan"):
            run.log_metric("loss", math.nan, step=100)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}

    local_runs = _cli("runs", exp("cli"), "--store", str(store), env=env)
    remote_runs = _cli("runs", exp("cli"), "--backend", "mlflow", env=env)
    assert [r["run_name"] for r in remote_runs] == [r["run_name"] for r in local_runs]
    local, remote = local_runs[0], remote_runs[0]
    assert set(remote) == set(local)
    assert remote["status"] == local["status"] == "Completed"
    assert remote["parameters"] == local["parameters"] == {"lr": 0.1, "optimizer": "sgd"}
    assert set(remote["metrics"]["loss"]) == set(local["metrics"]["loss"])
    assert remote["metrics"]["loss"]["count"] == local["metrics"]["loss"]["count"] == 101
    assert remote["metrics"]["loss"]["last"] == "NaN"

    shown = _cli("show", exp("cli"), "first", "--backend", "mlflow", env=env)
    assert shown["trial_component_name"] == f"{exp('cli')}-first"
    assert [w["worker"] for w in shown["workers"]] == [run.worker]

    local_series = _cli("series", exp("cli"), "first", "loss", "--store", str(store), env=env)
    remote_series = _cli("series", exp("cli"), "first", "loss", "--backend", "mlflow", env=env)
    assert [set(r) for r in remote_series] == [set(r) for r in local_series]
    assert [(r["step"], r["mean"]) for r in remote_series] == [
        (r["step"], r["mean"]) for r in local_series
    ]

    [status] = _cli("status", "--store", str(store), env=env)
    assert status["backend"] == "mlflow"
    assert status["state"] == "synced"
    assert status["points_sent"] == 101


def test_sync_publishes_a_run_logged_locally(mlflow_uri: str, client: Any, tmp_path: Path) -> None:
    import os

    from ._support import history, mlflow_run

    store = tmp_path / "store"
    with Run(exp("publish"), "local-only", store=store) as run:
        for step in range(10):
            run.log_metric("acc", step / 10, step=step)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}
    [status] = _cli(
        "sync", exp("publish"), "local-only", "--backend", "mlflow", "--store", str(store), env=env
    )
    assert status["state"] == "synced"
    found = mlflow_run(client, exp("publish"), "local-only")
    assert [v for _, v, _ in history(client, found, "acc")] == [s / 10 for s in range(10)]
    assert found.info.status == "FINISHED"

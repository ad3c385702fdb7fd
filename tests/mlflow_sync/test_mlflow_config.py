"""Choosing the MLflow backend: the argument, the environment, a missing or wrong URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runstream import Run

from ._support import history, mlflow_run, unique

exp = unique()


def test_backend_without_a_tracking_uri_is_refused_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        Run(exp("config"), "no-uri", backend="mlflow", store=tmp_path)


def test_a_local_mlruns_uri_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    with pytest.raises(ValueError, match="tracking server"):
        Run(exp("config"), "mlruns", backend="mlflow", store=tmp_path)


def test_runstream_backend_environment_chooses_mlflow(
    mlflow_uri: str, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_BACKEND", "mlflow")
    with Run(exp("config"), "from-env", store=tmp_path) as run:
        run.log_metric("loss", 0.5, step=0)
    found = mlflow_run(client, exp("config"), "from-env")
    assert [(s, v) for s, v, _ in history(client, found, "loss")] == [(0, 0.5)]


def test_unassigned_run_lands_in_the_default_experiment(
    mlflow_uri: str, client: Any, tmp_path: Path
) -> None:
    name = exp("unassigned")
    with Run(None, name, backend="mlflow", store=tmp_path) as run:
        run.log_metric("acc", 0.9, step=1)
    [found] = client.search_runs(["0"], filter_string=f"attributes.run_name = '{name}'")
    assert [m.value for m in client.get_metric_history(found.info.run_id, "acc")] == [0.9]

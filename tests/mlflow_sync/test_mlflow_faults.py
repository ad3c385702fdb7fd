"""Failures between runstream and a real MLflow server: lost responses, throttling, 5xx,
refused credentials, the server killed and restarted mid-run. Everything arrives, once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runstream import BackendError, Run

from ._support import history, mlflow_run, unique
from .rig import FaultProxy, MLflowServer

exp = unique()


def test_lost_response_is_resent_without_doubling(
    mlflow_uri: str, proxy: FaultProxy, client: Any, tmp_path: Path
) -> None:
    # The server stores the batch; its answer never reaches runstream, which sends it again.
    dropped = proxy.add("drop", "runs/log-batch", times=2, method="POST")
    with Run(exp("lost"), "response", backend="mlflow", store=tmp_path) as run:
        for step in range(300):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    assert dropped.hits == 2
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "synced", sync
    assert sync.points_retried > 0
    points = history(client, mlflow_run(client, exp("lost"), "response"), "loss")
    assert [(s, v) for s, v, _ in points] == [(s, 1.0 / (s + 1)) for s in range(300)]


def test_throttling_and_server_errors_are_retried(
    mlflow_uri: str, proxy: FaultProxy, client: Any, tmp_path: Path
) -> None:
    throttled = proxy.add("status:429", "runs/log-batch", times=2)
    failing = proxy.add("status:503", "runs/log-batch", times=2)
    with Run(exp("retry"), "throttled", backend="mlflow", store=tmp_path) as run:
        for step in range(50):
            run.log_metric("acc", step / 50, step=step)
    assert throttled.hits == 2
    assert failing.hits == 2
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "synced", sync
    assert sync.throttled >= 2
    points = history(client, mlflow_run(client, exp("retry"), "throttled"), "acc")
    assert [s for s, _, _ in points] == list(range(50))


def test_refused_credentials_raise_at_construction(
    mlflow_uri: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add("status:401", "", times=100)
    with pytest.raises(BackendError, match="refused the credentials"):
        Run(exp("auth"), "refused", backend="mlflow", store=tmp_path)


def test_credentials_refused_mid_run_block_and_never_raise(
    mlflow_uri: str, proxy: FaultProxy, client: Any, tmp_path: Path
) -> None:
    with Run(exp("auth"), "later", backend="mlflow", store=tmp_path, close_timeout=3) as run:
        proxy.add("status:403", "", times=10_000)
        for step in range(20):
            run.log_metric("loss", float(step), step=step)
        run.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sync = run.stats.sync
            if sync is not None and sync.state == "blocked":
                break
            time.sleep(0.05)
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "blocked", sync
    assert sync.points_pending == 20
    assert "refused the credentials" in (sync.last_error or "")
    assert run.series("loss").mean.tolist() == [float(s) for s in range(20)]  # kept locally


def test_unreachable_server_at_start_logs_locally_and_syncs_later(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
    mlflow_server: MLflowServer,
    agents: None,
) -> None:
    from runstream._backends._agent import sync_store
    from runstream._store import LocalStore

    from .rig import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with Run(exp("offline"), "later", backend="mlflow", store=tmp_path, close_timeout=1) as run:
        run.log_metric("loss", 0.5, step=0)
    sync = run.stats.sync
    assert sync is not None
    assert sync.state == "pending"
    # The server comes back at another address: `runstream sync` after a re-registration.
    from runstream._backends.mlflow import _journal

    store = LocalStore(tmp_path)
    _journal.register(store, run._key.run_id, mlflow_server.url)
    [status] = sync_store(store, sinks=["mlflow"])
    assert status.state == "synced", status
    points = history(client, mlflow_run(client, exp("offline"), "later"), "loss")
    assert [(s, v) for s, v, _ in points] == [(0, 0.5)]


@pytest.mark.slow
def test_server_killed_and_restarted_mid_run_gets_everything_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agents: None
) -> None:
    import mlflow

    server = MLflowServer(tmp_path / "server")
    server.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("RUNSTREAM_SYNC_MAX_BACKOFF", "0.5")
        with Run(exp("restart"), "mid-run", backend="mlflow", store=tmp_path / "store",
                 close_timeout=300) as run:  # fmt: skip
            for step in range(200):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.flush()
            server.kill()  # SIGKILL: the server dies with whatever it was doing
            for step in range(200, 400):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.flush()
            time.sleep(1.0)  # the agent meets a dead server and backs off
            server.start()
            for step in range(400, 600):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
        sync = run.stats.sync
        assert sync is not None
        assert sync.state == "synced", sync
        client = mlflow.MlflowClient(tracking_uri=server.url)
        found = mlflow_run(client, exp("restart"), "mid-run")
        points = history(client, found, "loss")
        assert [(s, v) for s, v, _ in points] == [(s, 1.0 / (s + 1)) for s in range(600)]
        assert found.info.status == "FINISHED"
    finally:
        server.stop()

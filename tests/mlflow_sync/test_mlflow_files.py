"""``log_file`` into MLflow: streamed from the store's copy through the server's artifact
proxy, or straight to the run's S3 artifact location (moto's server over HTTP); a file the
server refuses is reported and kept, and never holds back the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream import Run

from ._support import mlflow_run, unique
from .rig import FaultProxy, MLflowServer

exp = unique()


def test_a_file_mlflow_refuses_is_reported_and_the_others_arrive(
    mlflow_uri: str, proxy: FaultProxy, client: Any, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "refused.bin"
    good.write_text("kept and sent\n")
    bad.write_bytes(b"\x00" * 4096)
    refused = proxy.add("status:400", "/refused.bin", times=100, method="PUT")
    with Run(exp("files"), "one-refused", backend="mlflow", store=tmp_path / "store") as run:
        run.log_file(str(bad))
        run.log_file(str(good))
        run.log_metric("loss", 0.5, step=0)
    assert refused.hits == 1  # refused once: reported, not sent again
    sync = run.stats.sync
    assert sync is not None
    assert (sync.state, sync.files_pending, sync.files_rejected) == ("synced", 0, 1)
    assert sync.files_uploaded == 1
    found = mlflow_run(client, exp("files"), "one-refused")
    assert found.info.status == "FINISHED"
    assert "runstream.output.refused.bin" not in found.data.tags
    local = client.download_artifacts(found.info.run_id, "outputs/good.txt", str(tmp_path))
    assert Path(local).read_text() == "kept and sent\n"
    copy = run.record().artifacts.output["refused.bin"]
    assert (tmp_path / "store" / copy.value).read_bytes() == bad.read_bytes()  # kept locally


@pytest.fixture
def s3(moto: Any) -> Any:
    """moto's server as S3, with a bucket for the artifacts."""
    moto.boto3("s3").create_bucket(Bucket="team-artifacts")
    return moto


@pytest.mark.slow
def test_an_s3_artifact_location_gets_the_file_directly(
    s3: Any, agents: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    server = MLflowServer(tmp_path / "server", artifact_root="s3://team-artifacts/mlflow")
    server.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        weights = tmp_path / "weights.npy"
        np.save(weights, np.arange(300_000, dtype=np.float32))  # 1.2 MB: streamed from disk
        with Run(exp("s3"), "direct", backend="mlflow", store=tmp_path / "store") as run:
            run.log_file(str(weights))
            run.log_metric("loss", 0.25, step=0)
        sync = run.stats.sync
        assert sync is not None
        assert (sync.state, sync.files_uploaded, sync.last_error) == ("synced", 1, None)
        found = mlflow_run(mlflow.MlflowClient(tracking_uri=server.url), exp("s3"), "direct")
        uri = found.data.tags["runstream.output.weights.npy"]
        assert uri == f"{found.info.artifact_uri}/outputs/weights.npy"
        assert uri.startswith("s3://team-artifacts/mlflow/")
        key = uri.removeprefix("s3://team-artifacts/")
        body = s3.boto3("s3").get_object(Bucket="team-artifacts", Key=key)["Body"].read()
        assert body == weights.read_bytes()
    finally:
        server.stop()

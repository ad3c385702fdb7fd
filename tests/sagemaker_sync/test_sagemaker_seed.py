"""The seed workflow synced to SageMaker (moto over HTTP): entities, parameters,
artifacts, S3 objects and metric summaries as the official SDK would leave them."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import runstream

if TYPE_CHECKING:
    from .moto_rig import Rig

ACCOUNT = "123456789012"
BUCKET = f"sagemaker-us-east-1-{ACCOUNT}"


def losses(steps: int) -> list[float]:
    return [1.0 / (step + 1) + 0.01 * math.sin(step) for step in range(steps)]


def seed_run(store: Path, tmp_path: Path, **kwargs: Any) -> tuple[runstream.Run, Path]:
    """The seed workflow: parameters, per-step metrics, an artifact and a file."""
    notes = tmp_path / "notes.txt"
    notes.write_text("lr sweep, first try\n")
    with runstream.Run(
        "churn-model", "baseline", store=store, backend="sagemaker", **kwargs
    ) as run:
        run.log_parameters({"learning_rate": 0.01, "optimizer": "adam", "epochs": 30})
        for step, loss in enumerate(losses(30)):
            run.log_metric("train:loss", loss, step=step)
            run.log_metrics({"val:acc": step / 30, "val:f1": step / 60}, step=step)
        run.log_artifact("dataset", "s3://data/churn.csv", media_type="text/csv", is_output=False)
        run.log_file(str(notes), is_output=True)
    return run, notes


def cli(store: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "runstream", *args, "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_seed_workflow_lands_as_the_official_sdk_would(aws: Rig, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run, notes = seed_run(store, tmp_path)

    sm = aws.boto3("sagemaker")
    assert [e["ExperimentName"] for e in sm.list_experiments()["ExperimentSummaries"]] == [
        "churn-model"
    ]
    assert sm.describe_trial(TrialName="Default-Run-Group-churn-model")["ExperimentName"] == (
        "churn-model"
    )
    members = sm.list_trial_components(TrialName="Default-Run-Group-churn-model")
    assert [t["TrialComponentName"] for t in members["TrialComponentSummaries"]] == [
        "churn-model-baseline"
    ]
    assert run.experiment_config == {
        "ExperimentName": "churn-model",
        "TrialName": "Default-Run-Group-churn-model",
        "RunName": "churn-model-baseline",
    }

    tc = sm.describe_trial_component(TrialComponentName="churn-model-baseline")
    assert tc["Status"]["PrimaryStatus"] == "Completed"
    assert tc["StartTime"] <= tc["EndTime"]
    assert tc["Parameters"] == {
        "learning_rate": {"NumberValue": 0.01},
        "optimizer": {"StringValue": "adam"},
        "epochs": {"NumberValue": 30.0},
    }
    assert tc["InputArtifacts"] == {
        "dataset": {"Value": "s3://data/churn.csv", "MediaType": "text/csv"}
    }
    key = "trial-component-artifacts/churn-model-baseline/notes.txt"
    assert tc["OutputArtifacts"] == {
        "notes.txt": {"Value": f"s3://{BUCKET}/{key}", "MediaType": "text/plain"}
    }

    obj = aws.boto3("s3").get_object(Bucket=BUCKET, Key=key)
    assert obj["Body"].read() == notes.read_bytes()
    assert obj["Metadata"]["sha256"] == hashlib.sha256(notes.read_bytes()).hexdigest()

    summaries = {m["MetricName"]: m for m in tc["Metrics"]}
    assert set(summaries) == {"train:loss", "val:acc", "val:f1"}
    expected = losses(30)
    loss = summaries["train:loss"]
    assert loss["Count"] == 30
    assert loss["Min"] == pytest.approx(min(expected))
    assert loss["Max"] == pytest.approx(max(expected))
    assert loss["Last"] == pytest.approx(expected[-1])
    assert summaries["val:acc"]["Last"] == pytest.approx(29 / 30)
    # The local record agrees with what SageMaker computed from what was sent.
    local = run.record().metrics["train:loss"]
    assert (local.count, local.min, local.max, local.last) == pytest.approx(
        (loss["Count"], loss["Min"], loss["Max"], loss["Last"])
    )

    sync = run.stats.sync
    assert sync is not None
    assert (sync.state, sync.points_pending, sync.points_sent, sync.points_rejected) == (
        "synced",
        0,
        90,
        0,
    )
    assert sync.data_sent == 90
    assert sync.files_uploaded == 1
    # Full batches: 90 data in 9 calls of 10.
    assert [len(r) for r in aws.injector.requested] == [10] * 9

    # The command line reads the run back from SageMaker in the store's JSON shape.
    remote = cli(store, "show", "churn-model", "baseline", "--backend", "sagemaker")
    mine = cli(store, "show", "churn-model", "baseline")
    assert set(remote) == set(mine)
    assert remote["parameters"] == {"learning_rate": 0.01, "optimizer": "adam", "epochs": 30.0}
    assert remote["status"] == "Completed"
    assert remote["metrics"]["train:loss"]["count"] == 30
    assert remote["artifacts"]["output"]["notes.txt"]["value"] == f"s3://{BUCKET}/{key}"
    runs = cli(store, "runs", "churn-model", "--backend", "sagemaker")
    assert [r["run_name"] for r in runs] == ["baseline"]
    status = cli(store, "status")
    assert [(s["run_name"], s["state"], s["points_sent"]) for s in status] == [
        ("baseline", "synced", 90)
    ]


def test_reentering_the_run_sends_only_what_changed(aws: Rig, tmp_path: Path) -> None:
    store = tmp_path / "store"
    seed_run(store, tmp_path)
    before = len(aws.injector.requested)
    s3_puts = []
    aws.injector.handlers.append(
        lambda environ, body: (
            s3_puts.append(environ["PATH_INFO"])
            if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].startswith(f"/{BUCKET}/")
            else None
        )
    )
    notes = tmp_path / "notes.txt"  # the same content, logged again
    with runstream.load_run("baseline", "churn-model", store=store, backend="sagemaker") as run:
        run.log_file(str(notes))
        for step in range(30, 35):
            run.log_metric("train:loss", 0.001 * step, step=step)
    assert s3_puts == []  # an unchanged file is not uploaded twice
    sent = [(d["MetricName"], d["Step"]) for r in aws.injector.requested[before:] for d in r]
    assert sent == [("train:loss", step) for step in range(30, 35)]
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="churn-model-baseline")
    assert {m["MetricName"]: m["Count"] for m in tc["Metrics"]}["train:loss"] == 35
    assert tc["Parameters"]["optimizer"] == {"StringValue": "adam"}  # maps re-sent whole


def test_large_file_goes_multipart_to_the_named_bucket(aws: Rig, tmp_path: Path) -> None:
    aws.boto3("s3").create_bucket(Bucket="team-artifacts")
    big = tmp_path / "weights.bin"
    big.write_bytes(bytes(range(256)) * (10 * 4096))  # 10 MiB: over the 8 MiB threshold
    parts: list[str] = []
    aws.injector.handlers.append(
        lambda environ, body: (
            parts.append(environ["QUERY_STRING"])
            if "partNumber=" in environ.get("QUERY_STRING", "")
            else None
        )
    )
    store = tmp_path / "store"
    with runstream.Run(
        "churn-model",
        "big",
        store=store,
        backend="sagemaker",
        artifact_bucket="team-artifacts",
        artifact_prefix="models",
    ) as run:
        run.log_file(str(big), name="weights")
    assert len(parts) == 2
    key = "models/churn-model-big/weights"
    head = aws.boto3("s3").head_object(Bucket="team-artifacts", Key=key)
    assert head["ContentLength"] == big.stat().st_size
    assert head["ETag"].endswith('-2"')  # a multipart ETag
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="churn-model-big")
    assert tc["OutputArtifacts"]["weights"]["Value"] == (
        "s3://team-artifacts/models/churn-model-big/weights"
    )


def test_names_sagemaker_refuses_fail_at_construction(aws: Rig, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'my_exp' is not a valid SageMaker name"):
        runstream.Run("my_exp", "r1", store=tmp_path, backend="sagemaker")
    with pytest.raises(ValueError, match=r"backend='s3' is not a backend"):
        runstream.Run("exp", "r1", store=tmp_path, backend="s3")


def test_environment_selects_the_backend(
    aws: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_BACKEND", "sagemaker")
    with runstream.Run("env-exp", "r1", store=tmp_path) as run:
        run.log_metric("loss", 0.5, step=0)
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="env-exp-r1")
    assert [m["Count"] for m in tc["Metrics"]] == [1]


def test_async_with_runs_the_sender_in_the_callers_event_loop(aws: Rig, tmp_path: Path) -> None:
    import anyio

    async def train() -> runstream.Run:
        async with runstream.Run("async-exp", "r1", store=tmp_path, backend="sagemaker") as run:
            for step in range(25):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
                await anyio.sleep(0)
            stats = await run.flush()
            assert stats.points_written == 25
        return run

    run = anyio.run(train)
    assert run.stats.sync is not None
    assert run.stats.sync.state == "synced"
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="async-exp-r1")
    assert tc["Status"]["PrimaryStatus"] == "Completed"
    assert [(m["MetricName"], m["Count"]) for m in tc["Metrics"]] == [("loss", 25)]

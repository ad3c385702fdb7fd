"""``load_run()`` inside SageMaker jobs, grouping under the API budget, and the official
SDK reading what runstream sent."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import runstream
from runstream._backends import _journal
from runstream._backends.sagemaker import _metrics
from runstream._core import _aggregate, _environment

if TYPE_CHECKING:
    from .moto_rig import Rig

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def start_training_job(aws: Rig, name: str, config: dict[str, str]) -> str:
    found = aws.boto3("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img:latest", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        ExperimentConfig=config,
    )
    return str(found["TrainingJobArn"])


def test_load_run_inside_a_training_job_logs_to_the_launching_run(
    aws: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with runstream.Run("jobs", "launcher", store=tmp_path / "laptop", backend="sagemaker") as run:
        config = run.experiment_config
        run.log_parameter("instance", "ml.m5.large")
    arn = start_training_job(aws, "train-1", config)

    monkeypatch.setenv("TRAINING_JOB_ARN", arn)
    monkeypatch.delenv("RUNSTREAM_CLOSE_WAIT")  # in a job, close waits for the agent anyway
    with runstream.load_run(store=tmp_path / "job") as job_run:  # a fresh store in the job
        assert (job_run.experiment_name, job_run.run_name) == ("jobs", "launcher")
        job_run.log_metric("loss", 0.25, step=0)
    assert job_run.stats.sync is not None  # the job's run syncs to SageMaker
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="jobs-launcher")
    assert [(m["MetricName"], m["Count"]) for m in tc["Metrics"]] == [("loss", 1)]


def test_load_run_inside_a_processing_job_reads_its_config_file(
    aws: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = start_training_job(aws, "not-this-one", {"ExperimentName": "jobs"})  # no RunName
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)
    with pytest.raises(RuntimeError, match="Not able to fetch RunName in ExperimentConfig"):
        runstream.load_run(store=tmp_path)
    monkeypatch.delenv("TRAINING_JOB_ARN")

    config_file = tmp_path / "processingjobconfig.json"
    config_file.write_text(json.dumps({"ProcessingJobArn": f"{arn[:-12]}processing-job/p1"}))
    monkeypatch.setattr(_environment, "PROCESSING_JOB_CONFIG_PATH", str(config_file))
    assert _environment.running_in_job({}) == ("processing", "p1")
    assert _environment.running_in_job({"TRANSFORM_JOB_ARN": "arn:x:transform-job/t1"}) == (
        "processing",
        "p1",
    )
    config_file.unlink()
    assert _environment.running_in_job({"TRANSFORM_JOB_ARN": "arn:x:transform-job/t1"}) == (
        "transform",
        "t1",
    )


def test_a_backlog_past_the_lag_bound_groups_only_its_oldest_steps() -> None:
    steps = np.arange(5000, dtype=np.int64)
    values = np.linspace(1.0, 0.0, 5000)
    stats = _aggregate.from_points(steps, values, np.full(5000, 1.7e9 + 0.5))
    cursor = _journal.Cursor(1, "loss", "w0", 0, 7, None, 7)
    grouping = _metrics.strides({cursor.key: 5000}, capacity=3000)
    stride, _ = grouping[cursor.key]
    assert stride == 2  # the smallest uniform stride that fits
    calls = _metrics.plan([(cursor, stats)], [], grouping, now=1.7e9 + 10)
    items = [item for call in calls for item in call.items]
    assert len(items) <= 3000
    assert all(len(call.items) <= _metrics.BATCH_SIZE for call in calls)
    assert sum(item.points for item in items) == 5000
    assert items[-1].step == 4999
    assert [item.step for item in items] == sorted(item.step for item in items)
    assert sum(item.value * item.points for item in items) == pytest.approx(values.sum())
    # The newest steps stay at full resolution; only the oldest are grouped.
    assert [i.step for i in items[-1000:]] == list(range(4000, 5000))
    assert items[0].points == 2
    assert calls[-1].advance == {(1, "w0"): (7, None)}  # the round is complete at the end
    assert calls[0].strides == {(1, "w0"): 2}

    assert _metrics.strides({cursor.key: 5000}, capacity=3000, resolution="full") == {
        cursor.key: (1, 0)
    }
    full = _metrics.plan([(cursor, stats)], [], None, now=1.7e9 + 10)
    assert [i.step for c in full for i in c.items] == list(range(5000))  # full resolution


def test_points_the_service_cannot_take_are_rejected_locally() -> None:
    now = 1.7e9
    stats = _aggregate.from_points(
        np.array([0, 1, 2], dtype=np.int64),
        np.array([1.0, float("nan"), 3.0]),
        np.array([now - 15 * 86400, now, now]),  # the first is older than two weeks
    )
    cursor = _journal.Cursor(1, "loss", "w0", 0, 3, None, 3)
    (call,) = _metrics.plan([(cursor, stats)], [], now=now)
    assert [i.step for i in call.items] == [2]
    assert sorted(code for _, code in call.local_rejects) == [
        "NON_FINITE_VALUE",
        "TIMESTAMP_OUT_OF_WINDOW",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("sagemaker") is None, reason="the official sagemaker SDK is absent"
)
def test_the_official_sdk_reads_what_runstream_sent(aws: Rig, tmp_path: Path) -> None:
    with runstream.Run("official", "r1", store=tmp_path, backend="sagemaker") as run:
        run.log_parameters({"lr": 0.5, "opt": "sgd"})
        for step in range(12):
            run.log_metric("loss", 10.0 - step, step=step)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK's own import-time deprecations
        import boto3
        import sagemaker
        from sagemaker.experiments import list_runs
        from sagemaker.experiments.experiment import Experiment
        from sagemaker.experiments.trial_component import _TrialComponent

        session = sagemaker.Session(
            boto_session=boto3.Session(region_name="us-east-1"),
            sagemaker_client=aws.boto3("sagemaker"),
        )
        assert Experiment.load("official", sagemaker_session=session).experiment_name == (
            "official"
        )
        tc = _TrialComponent.load("official-r1", sagemaker_session=session)
        assert tc.parameters == {"lr": 0.5, "opt": "sgd"}
        assert tc.status.primary_status == "Completed"
        (loss,) = tc.metrics
        assert (loss.metric_name, loss.count, loss.min, loss.max, loss.last) == (
            "loss",
            12,
            -1.0,
            10.0,
            -1.0,
        )
        # moto drops the tags of a create; the SDK finds runs by their run tag, so add it.
        aws.boto3("sagemaker").add_tags(
            ResourceArn=tc.trial_component_arn,
            Tags=[{"Key": "sagemaker:trial-component-source", "Value": "run"}],
        )
        # Last: list_runs re-creates each run it returns, which moto treats as a reset.
        runs = list_runs("official", sagemaker_session=session)
    assert [r.run_name for r in runs] == ["r1"]

"""The official SDK's tests that concern SageMaker itself (tests/unit/.../test_experiment.py,
test_run_context.py, and tests/integ/sagemaker/experiments/test_run.py and
test_experiment.py, v2.254.1), ported: ``backend="sagemaker"`` against moto over HTTP,
read back through boto3 (and the rig's record of what was sent, where the official unit
tests check their mocked client's calls)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from runstream import Experiment, Run, list_runs, load_run

if TYPE_CHECKING:
    from sagemaker_sync.moto_rig import Rig

    from .service_gaps import ServiceGaps

ACCOUNT = "123456789012"
DEFAULT_BUCKET = f"sagemaker-us-east-1-{ACCOUNT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
RUN_TC_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
TAGS = [{"Key": "some-key", "Value": "some-value"}]


def sm_run(store: Path, experiment: str = "exp", run: str | None = "run", **kw: Any) -> Run:
    return Run(experiment, run, store=store, backend="sagemaker", **kw)


# -- Experiment (unit test_experiment.py) ---------------------------------------------


def test_experiment_create(aws: Rig, gaps: ServiceGaps, session: Any, store: str) -> None:
    created = Experiment.create(
        experiment_name="name-value", sagemaker_session=session, store=store, backend="sagemaker"
    )
    assert created.experiment_name == "name-value"
    assert gaps.requests("CreateExperiment") == [{"ExperimentName": "name-value"}]


def test_experiment_create_with_tags(aws: Rig, gaps: ServiceGaps, session: Any, store: str) -> None:
    tags = [{"Key": "foo", "Value": "bar"}]
    created = Experiment.create(
        experiment_name="name-value",
        sagemaker_session=session,
        tags=tags,
        store=store,
        backend="sagemaker",
    )
    assert created.tags == tags
    assert gaps.requests("CreateExperiment") == [{"ExperimentName": "name-value", "Tags": tags}]
    assert Experiment.load("name-value", store=store, backend="local").tags == tags


def test_experiment_create_positional_session(
    aws: Rig, gaps: ServiceGaps, session: Any, store: str
) -> None:
    Experiment.create("name-value", None, "about", None, session, store=store, backend="sagemaker")
    assert gaps.requests("CreateExperiment") == [
        {"ExperimentName": "name-value", "Description": "about"}
    ]


def test_experiment_load(aws: Rig, gaps: ServiceGaps, session: Any, store: str) -> None:
    aws.boto3("sagemaker").create_experiment(
        ExperimentName="name-value", Description="description-value"
    )
    loaded = Experiment.load(
        experiment_name="name-value", sagemaker_session=session, store=store, backend="sagemaker"
    )
    assert loaded.experiment_name == "name-value"
    assert loaded.description == "description-value"
    assert gaps.requests("DescribeExperiment") == [{"ExperimentName": "name-value"}]


def test_experiment_save(aws: Rig, gaps: ServiceGaps, session: Any, store: str) -> None:
    aws.boto3("sagemaker").create_experiment(ExperimentName="foo")
    obj = Experiment(
        session, experiment_name="foo", description="bar", store=store, backend="sagemaker"
    )
    obj.save()
    assert gaps.requests("UpdateExperiment") == [{"ExperimentName": "foo", "Description": "bar"}]
    described = aws.boto3("sagemaker").describe_experiment(ExperimentName="foo")
    assert described["Description"] == "bar"


def test_experiment_delete(aws: Rig, gaps: ServiceGaps, session: Any, store: str) -> None:
    aws.boto3("sagemaker").create_experiment(ExperimentName="foo")
    Experiment(
        session, experiment_name="foo", description="bar", store=store, backend="sagemaker"
    ).delete()
    assert gaps.requests("DeleteExperiment") == [{"ExperimentName": "foo"}]
    names = [
        e["ExperimentName"]
        for e in aws.boto3("sagemaker").list_experiments()["ExperimentSummaries"]
    ]
    assert names == []


def test_experiment_list_trials_empty(aws: Rig, session: Any, store: str) -> None:
    aws.boto3("sagemaker").create_experiment(ExperimentName="foo")
    obj = Experiment(session, experiment_name="foo", store=store, backend="sagemaker")
    assert list(obj.list_trials()) == []


def test_experiment_list_trials(aws: Rig, session: Any, store: str) -> None:
    sm = aws.boto3("sagemaker")
    sm.create_experiment(ExperimentName="foo")
    for name in ("trial-foo-1", "trial-foo-2"):
        sm.create_trial(TrialName=name, ExperimentName="foo")
    obj = Experiment(session, experiment_name="foo", store=store, backend="sagemaker")
    assert sorted(t.trial_name for t in obj.list_trials()) == ["trial-foo-1", "trial-foo-2"]
    assert all(t.creation_time is not None for t in obj.list_trials())


def test_experiment_delete_all_with_incorrect_action_name(session: Any, store: str) -> None:
    obj = Experiment(session, experiment_name="foo", description="bar", store=store)
    with pytest.raises(ValueError, match="Must confirm with string '--force'"):
        obj._delete_all(action="abc")


def test_experiment_delete_all(aws: Rig, session: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for run in ("one", "two"):
        sm_run(store, "foo", run)
    Experiment.load("foo", session, store=store, backend="sagemaker")._delete_all("--force")
    sm = aws.boto3("sagemaker")
    assert sm.list_experiments()["ExperimentSummaries"] == []
    assert sm.list_trials()["TrialSummaries"] == []
    assert sm.list_trial_components()["TrialComponentSummaries"] == []


# -- entities at construction, tags (unit test_run.py) ---------------------------------


def test_run_init_creates_the_entities(aws: Rig, gaps: ServiceGaps, tmp_path: Path) -> None:
    run = sm_run(tmp_path / "store")  # constructed, never entered
    sm = aws.boto3("sagemaker")
    assert sm.describe_experiment(ExperimentName="exp")["ExperimentName"] == "exp"
    trial = sm.list_trial_components(TrialName=run.run_group_name)["TrialComponentSummaries"]
    assert [t["TrialComponentName"] for t in trial] == ["exp-run"]
    assert gaps.requests("CreateTrialComponent")[0]["Tags"] == [RUN_TC_TAG]


def test_run_tags_go_with_the_entities(aws: Rig, gaps: ServiceGaps, tmp_path: Path) -> None:
    sm_run(tmp_path / "store", tags=TAGS)
    assert gaps.requests("CreateExperiment")[0]["Tags"] == TAGS
    assert gaps.requests("CreateTrial")[0]["Tags"] == TAGS
    assert gaps.requests("CreateTrialComponent")[0]["Tags"] == [*TAGS, RUN_TC_TAG]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (None, [RUN_TC_TAG]),
        ([], [RUN_TC_TAG]),
        ([{"Key": "foo", "Value": "bar"}], [{"Key": "foo", "Value": "bar"}, RUN_TC_TAG]),
        ([RUN_TC_TAG], [RUN_TC_TAG]),
    ],
    ids=["none", "empty", "one", "the-run-tag"],
)
def test_append_run_tc_label_to_tags(
    aws: Rig, gaps: ServiceGaps, tmp_path: Path, tags: Any, expected: Any
) -> None:
    sm_run(tmp_path / "store", tags=tags)
    assert gaps.requests("CreateTrialComponent")[0]["Tags"] == expected


def test_constructing_an_existing_run_loads_it(aws: Rig, gaps: ServiceGaps, tmp_path: Path) -> None:
    with sm_run(tmp_path / "store") as run:
        run.log_parameter("p", 1.0)
    sm_run(tmp_path / "other-store")  # another machine: "already exists" means load
    tc = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="exp-run")
    assert tc["Parameters"] == {"p": {"NumberValue": 1.0}}


# -- jobs made inside the block (unit test_run_context.py) ----------------------------


def _estimator(session: Any) -> Any:
    from sagemaker.estimator import Estimator

    return Estimator(
        role=ROLE,
        image_uri="my-image",
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=session,
        output_path="s3://my-bucket",
    )


def _context_run() -> Any:
    from sagemaker.experiments._run_context import _RunContext

    return _RunContext.get_current_run()


def test_auto_pass_in_exp_config_to_train_job(aws: Rig, session: Any, tmp_path: Path) -> None:
    with sm_run(tmp_path / "store") as run:
        estimator = _estimator(session)
        estimator.fit(inputs="s3://my-bucket/data.csv", wait=False, job_name="my-job")
        assert _context_run() is run
    job = aws.boto3("sagemaker").describe_training_job(TrainingJobName="my-job")
    assert job["ExperimentConfig"] == run.experiment_config
    assert _context_run() is None


def test_auto_pass_in_exp_config_under_load_run(aws: Rig, session: Any, tmp_path: Path) -> None:
    created = sm_run(tmp_path / "store")
    with load_run(
        run_name="run", experiment_name="exp", store=tmp_path / "store", backend="sagemaker"
    ):
        _estimator(session).fit(inputs="s3://my-bucket/data.csv", wait=False, job_name="my-job")
        assert _context_run().experiment_config == created.experiment_config
    job = aws.boto3("sagemaker").describe_training_job(TrainingJobName="my-job")
    assert job["ExperimentConfig"] == created.experiment_config
    assert _context_run() is None


def test_auto_pass_in_exp_config_to_process_job(aws: Rig, session: Any, tmp_path: Path) -> None:
    from sagemaker import Processor

    with sm_run(tmp_path / "store") as run:
        processor = Processor(
            role=ROLE,
            image_uri="my-image",
            instance_count=1,
            instance_type="ml.m5.large",
            sagemaker_session=session,
        )
        processor.run(wait=False, logs=False, job_name="my-processing-job")
        assert _context_run() is run
    job = aws.boto3("sagemaker").describe_processing_job(ProcessingJobName="my-processing-job")
    assert job["ExperimentConfig"] == run.experiment_config
    assert _context_run() is None


def test_auto_pass_in_exp_config_to_transform_job(aws: Rig, session: Any, tmp_path: Path) -> None:
    from sagemaker.transformer import Transformer

    sm = aws.boto3("sagemaker")
    sm.create_model(
        ModelName="my-model",
        PrimaryContainer={"Image": "my-image"},
        ExecutionRoleArn=ROLE,
    )
    with sm_run(tmp_path / "store") as run:
        transformer = Transformer(
            model_name="my-model",
            instance_count=1,
            instance_type="ml.m5.large",
            output_path="s3://my-bucket/output",
            sagemaker_session=session,
        )
        transformer.transform(
            data="s3://my-bucket/data", wait=False, logs=False, job_name="my-transform-job"
        )
        assert _context_run() is run
    job = sm.describe_transform_job(TransformJobName="my-transform-job")
    assert job["ExperimentConfig"] == run.experiment_config
    assert _context_run() is None


def test_user_supply_exp_config_to_train_job(aws: Rig, session: Any, tmp_path: Path) -> None:
    supplied = {
        "ExperimentName": "my-supplied-exp-name",
        "TrialName": "my-supplied-run-group-name",
        "RunName": "my-supplied-run-name",
    }
    with sm_run(tmp_path / "store") as run:
        _estimator(session).fit(
            experiment_config=supplied,
            inputs="s3://my-bucket/data.csv",
            wait=False,
            job_name="my-job",
        )
        assert _context_run() is run
    job = aws.boto3("sagemaker").describe_training_job(TrainingJobName="my-job")
    assert job["ExperimentConfig"] == supplied


# -- the integration tests (integ test_run.py) -----------------------------------------


def test_local_run_with_load(aws: Rig, session: Any, tmp_path: Path) -> None:
    session._default_bucket_name_override = None
    session.default_bucket_prefix = "custom-prefix"  # CUSTOM_S3_OBJECT_KEY_PREFIX
    artifact = tmp_path / "artifact_file.txt"
    artifact.write_text("test artifact file")
    store = tmp_path / "store"
    with Run("my-local-exp", sagemaker_session=session, store=store, backend="sagemaker") as run1:
        run_name = run1.run_name
        assert "sagemaker-run" in run_name
        with load_run(sagemaker_session=session) as run:
            run.log_parameter("pa", 1.0)
            run.log_parameter("pb", "p2-value")
            run.log_parameters({"pc": 2.0, "pd": "p4-value"})
            run.log_file(file_path=str(artifact), name="File-Artifact")
            run.log_artifact(name="Test-Artifact", value="s3://Output")
            run.log_artifact(name="Test-Artifact", value="s3://Input", is_output=False)
            for i in range(10):
                run.log_metric(name="Test-Local-Init-Log-Metric", value=i, step=i)
    tc = aws.boto3("sagemaker").describe_trial_component(
        TrialComponentName=f"my-local-exp-{run_name}"
    )
    assert {k: next(iter(v.values())) for k, v in tc["Parameters"].items()} == {
        "pa": 1.0,
        "pb": "p2-value",
        "pc": 2.0,
        "pd": "p4-value",
    }
    prefix = f"s3://{DEFAULT_BUCKET}/custom-prefix/trial-component-artifacts"
    assert tc["OutputArtifacts"]["File-Artifact"]["Value"].startswith(prefix)
    assert tc["OutputArtifacts"]["File-Artifact"]["MediaType"] == "text/plain"
    assert tc["OutputArtifacts"]["Test-Artifact"] == {"Value": "s3://Output"}
    assert tc["InputArtifacts"]["Test-Artifact"] == {"Value": "s3://Input"}
    (summary,) = tc["Metrics"]
    assert (summary["MetricName"], summary["Max"], summary["Min"]) == (
        "Test-Local-Init-Log-Metric",
        9.0,
        0.0,
    )


def test_session_default_bucket_is_used(aws: Rig, session: Any, tmp_path: Path) -> None:
    aws.boto3("s3").create_bucket(Bucket="configured-bucket")
    session._default_bucket_name_override = "configured-bucket"
    session.default_bucket_prefix = "team"
    artifact = tmp_path / "notes.txt"
    artifact.write_text("notes")
    with sm_run(tmp_path / "store", sagemaker_session=session) as run:
        run.log_file(str(artifact))
    key = "team/trial-component-artifacts/exp-run/notes.txt"
    assert aws.boto3("s3").get_object(Bucket="configured-bucket", Key=key)["Body"].read() == (
        b"notes"
    )


def test_log_file_extra_args_go_with_the_upload(aws: Rig, tmp_path: Path) -> None:
    artifact = tmp_path / "table.csv"
    artifact.write_text("a,b\n1,2\n")
    with sm_run(tmp_path / "store") as run:
        run.log_file(
            str(artifact),
            extra_args={"ContentType": "text/csv", "Metadata": {"team": "ml"}, "Tagging": "k=v"},
        )
        with pytest.raises(ValueError, match=r"extra_args \['Bogus'\] are not S3 upload"):
            run.log_file(str(artifact), name="other", extra_args={"Bogus": 1})
    head = aws.boto3("s3").head_object(
        Bucket=DEFAULT_BUCKET, Key="trial-component-artifacts/exp-run/table.csv"
    )
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"]["team"] == "ml"


def test_two_local_run_init_with_same_run_name_and_different_exp_names(
    aws: Rig, tmp_path: Path
) -> None:
    with sm_run(tmp_path / "store", "my-two-local-exp1", "test-run") as run1:
        pass
    with sm_run(tmp_path / "store", "my-two-local-exp2", "test-run") as run2:
        pass
    assert run1.experiment_name != run2.experiment_name
    assert run1.run_name == run2.run_name
    assert run1._trial_component.trial_component_name == "my-two-local-exp1-test-run"
    assert run2._trial_component.trial_component_name == "my-two-local-exp2-test-run"
    sm = aws.boto3("sagemaker")
    for name in ("my-two-local-exp1-test-run", "my-two-local-exp2-test-run"):
        assert (
            sm.describe_trial_component(TrialComponentName=name)["Status"]["PrimaryStatus"]
            == "Completed"
        )


@pytest.mark.parametrize(
    ("exp_name", "run_name", "display_name"),
    [
        ("my-local-exp-x", "test-run", None),
        ("my-test-1", "my-test-1", None),
        ("my-test-3", "my-test-3-run", None),
        ("x" * 59, "test-run", None),
        ("test-exp", "y" * 59, None),
        ("e" * 59, "y" * 59, None),
        ("my-test4", "test-run", "run-display-name-test"),
    ],
)
def test_run_name_vs_trial_component_name_edge_cases(
    aws: Rig, tmp_path: Path, exp_name: str, run_name: str, display_name: str | None
) -> None:
    store = tmp_path / "store"
    with sm_run(store, exp_name, run_name, run_display_name=display_name):
        pass
    sm = aws.boto3("sagemaker")
    tc_name = f"{exp_name}-{run_name}"
    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={
            "Filters": [{"Name": "TrialComponentName", "Operator": "Equals", "Value": tc_name}]
        },
    )["Results"]
    assert len(found) == 1
    with load_run(
        experiment_name=exp_name, run_name=run_name, store=store, backend="sagemaker"
    ) as run2:
        assert (run2.experiment_name, run2.run_name) == (exp_name, run_name)
        assert run2._trial_component.trial_component_name == tc_name
    described = sm.describe_trial_component(TrialComponentName=tc_name)
    assert described.get("DisplayName", tc_name) in (display_name, tc_name, run_name)


def test_list(aws: Rig, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_obj = sm_run(store, "my-exp", "my-run")
    sm = aws.boto3("sagemaker")
    for name, tags in (("non-run-tc1", None), ("non-run-tc2", TAGS)):
        sm.create_trial_component(TrialComponentName=name, **({"Tags": tags} if tags else {}))
        sm.associate_trial_component(TrialComponentName=name, TrialName=run_obj.run_group_name)
    for _ in range(2):  # the official test_list_twice: listing creates nothing
        runs = list_runs(experiment_name="My-Exp", store=store)
        assert [(r.experiment_name, r.run_name) for r in runs] == [("my-exp", "my-run")]
        assert runs[0].experiment_config == run_obj.experiment_config


# -- graphs on SageMaker ---------------------------------------------------------------


def test_graphs_are_uploaded_and_recorded_as_lineage(
    aws: Rig, gaps: ServiceGaps, tmp_path: Path
) -> None:
    with sm_run(tmp_path / "store") as run:
        run.log_precision_recall(
            [0, 0, 1, 1],
            [0.1, 0.4, 0.35, 0.8],
            0,
            title="TestPrecisionRecall",
            no_skill=0.1,
            is_output=False,
        )
        run.log_confusion_matrix(
            [2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], title="TestConfusionMatrix"
        )
        with pytest.raises(ValueError, match="is not a valid SageMaker name"):
            run.log_roc_curve([0, 1], [0.1, 0.9], title="has spaces")
    s3 = aws.boto3("s3")
    tc_arn = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="exp-run")[
        "TrialComponentArn"
    ]
    created = {a["ArtifactName"]: (arn, a) for arn, a in gaps.artifacts.items()}
    for graph in run.graphs():
        key = f"trial-component-artifacts/exp-run/{graph.title}.json"
        body = s3.get_object(Bucket=DEFAULT_BUCKET, Key=key)["Body"].read()
        assert body == json.dumps(graph.document).encode()
        arn, artifact = created[graph.title]
        etag = s3.head_object(Bucket=DEFAULT_BUCKET, Key=key)["ETag"]
        assert artifact == {
            "ArtifactName": graph.title,
            "ArtifactType": graph.type,
            "Source": {
                "SourceUri": f"s3://{DEFAULT_BUCKET}/{key}",
                "SourceTypes": [{"SourceIdType": "S3ETag", "Value": etag}],
            },
        }
        expected = (
            {"SourceArn": tc_arn, "DestinationArn": arn, "AssociationType": "Produced"}
            if graph.is_output
            else {"SourceArn": arn, "DestinationArn": tc_arn, "AssociationType": "ContributedTo"}
        )
        assert expected in gaps.associations
    assert len(gaps.associations) == 2
    assert run.stats.sync is not None
    assert run.stats.sync.state == "synced"


def test_experiment_is_refused_where_it_exists(
    aws: Rig, gaps: ServiceGaps, session: Any, store: str
) -> None:
    Experiment.create("foo", sagemaker_session=session, store=store, backend="sagemaker")
    with pytest.raises(ClientError, match="already exists"):
        Experiment.create("foo", sagemaker_session=session, store=store, backend="sagemaker")

"""The public API: small, sorted, and everything in it says it is ``runstream``'s."""

from __future__ import annotations
import __future__

import inspect
import types

import runstream


def test_all_is_sorted_and_unique() -> None:
    assert list(runstream.__all__) == sorted(runstream.__all__)
    assert len(set(runstream.__all__)) == len(runstream.__all__)


def test_all_is_exactly_what_the_package_defines() -> None:
    public = {
        name
        for name, value in vars(runstream).items()
        if not name.startswith("_")
        and not isinstance(
            value, types.ModuleType | __future__._Feature
        )  # from __future__ import annotations
    }
    assert public == set(runstream.__all__)


def test_names_are_reexported_under_runstream() -> None:
    for name in runstream.__all__:
        value = getattr(runstream, name)
        if isinstance(value, types.UnionType):  # a type alias has no module of its own
            continue
        assert value.__module__ == "runstream", name


def test_the_types_of_public_signatures_are_exported() -> None:
    # Run.log_parameter takes a ParameterValue; Run.stragglers returns Stragglers.
    assert runstream.ParameterValue == str | int | float
    assert inspect.signature(runstream.Run.stragglers).return_annotation in (
        "Stragglers",
        runstream.Stragglers,
    )


def test_the_sagemaker_entry_points_are_there_with_their_signatures() -> None:
    for name in ("Run", "load_run", "list_runs", "Experiment", "SortByType", "SortOrderType"):
        assert name in runstream.__all__
    run = inspect.signature(runstream.Run)
    assert list(run.parameters)[:8] == [
        "experiment_name",
        "run_name",
        "experiment_display_name",
        "run_display_name",
        "tags",
        "sagemaker_session",
        "artifact_bucket",
        "artifact_prefix",
    ]
    load = inspect.signature(runstream.load_run)
    assert list(load.parameters)[:6] == [
        "run_name",
        "experiment_name",
        "sagemaker_session",
        "artifact_bucket",
        "artifact_prefix",
        "tags",
    ]
    assert list(inspect.signature(runstream.Run.log_metric).parameters) == [
        "self",
        "name",
        "value",
        "timestamp",
        "step",
    ]
    assert list(inspect.signature(runstream.Run.log_file).parameters)[:5] == [
        "self",
        "file_path",
        "name",
        "media_type",
        "is_output",
    ]
    assert runstream.SortByType.CREATION_TIME.value == "CreationTime"
    assert runstream.SortOrderType.DESCENDING.value == "Descending"


def test_version() -> None:
    assert runstream.__version__.count(".") == 2

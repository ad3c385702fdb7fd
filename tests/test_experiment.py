"""``Experiment`` and ``list_runs``, as ``sagemaker.experiments`` has them."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from runstream import Experiment, Run, RunNotFoundError, SortByType, SortOrderType, list_runs


def test_create_load_list_delete(store: str) -> None:
    created = Experiment.create("My-Exp", display_name="Mine", description="about", store=store)
    assert (created.experiment_name, created.display_name, created.description) == (
        "my-exp",
        "Mine",
        "about",
    )
    assert created.creation_time is not None
    loaded = Experiment.load("MY-EXP", store=store)
    assert (loaded.experiment_name, loaded.display_name) == ("my-exp", "Mine")
    with pytest.raises(ValueError, match="experiment 'my-exp' already exists"):
        Experiment.create("my-exp", store=store)
    with Run("my-exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
    Run("other", "run", store=store)
    assert [e.experiment_name for e in Experiment.list(store=store)] == ["my-exp", "other"]
    assert [r.run_name for r in loaded.list_runs()] == ["run"]
    loaded.delete()
    assert [e.experiment_name for e in Experiment.list(store=store)] == ["other"]
    with pytest.raises(RunNotFoundError, match="no experiment named 'my-exp'"):
        Experiment.load("my-exp", store=store)


def test_experiment_names_follow_the_run_rules(store: str) -> None:
    message = "The experiment_name (length: 60) must have length less than or equal to 59"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Experiment.create("e" * 60, store=store)
    with pytest.raises(ValueError, match="experiment_name must be a non-empty string, got ''"):
        Experiment.create("", store=store)


def test_list_runs_sorts_filters_and_caps(store: str) -> None:
    for name in ("b", "c", "a"):
        Run("exp", name, store=store)
    assert [r.run_name for r in list_runs("exp", store=store)] == ["a", "c", "b"]
    ascending = list_runs("exp", sort_order=SortOrderType.ASCENDING, store=store)
    assert [r.run_name for r in ascending] == ["b", "c", "a"]
    by_name = list_runs(
        "exp", sort_by=SortByType.NAME, sort_order=SortOrderType.ASCENDING, store=store
    )
    assert [r.run_name for r in by_name] == ["a", "b", "c"]
    assert [r.run_name for r in list_runs("exp", max_results=2, store=store)] == ["a", "c"]
    b, c, a = (r.record().created for r in ascending)
    between_b_and_c = datetime.fromtimestamp((b + c) / 2)
    between_c_and_a = datetime.fromtimestamp((c + a) / 2)
    before = list_runs("exp", created_before=between_b_and_c, store=store)
    assert [r.run_name for r in before] == ["b"]
    after = list_runs("exp", created_after=between_c_and_a, store=store)
    assert [r.run_name for r in after] == ["a"]
    window = list_runs(
        "exp", created_after=between_b_and_c, created_before=between_c_and_a, store=store
    )
    assert [r.run_name for r in window] == ["c"]


def test_listed_runs_are_read_only_until_entered(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_parameter("lr", 0.1)
    listed = list_runs("exp", store=store)[0]
    assert listed.record().parameters == {"lr": 0.1}
    assert listed._trial_component.trial_component_name == "exp-run"
    with pytest.raises(RuntimeError, match="inside context of 'with' statement"):
        listed.log_metric("loss", 1.0)


def test_list_runs_errors(store: str) -> None:
    Run(None, "loose", store=store)
    with pytest.raises(RunNotFoundError, match="no experiment named 'nope'"):
        list_runs("nope", store=store)
    with pytest.raises(ValueError, match="list_runs needs an experiment_name, or unassigned=True"):
        list_runs(None, store=store)
    assert [r.run_name for r in list_runs(None, unassigned=True, store=store)] == ["loose"]

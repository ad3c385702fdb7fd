"""ExperimentAnalytics, best_run and series against runs whose values the test logged."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from dashboard_support import EXPERIMENT, KnownStore, build_known_store
from runstream import ExperimentAnalytics, RunNotFoundError, best_run


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownStore:
    return build_known_store(tmp_path_factory.mktemp("analytics") / "store")


def _rows(known: KnownStore) -> dict[str, dict[str, object]]:
    records = ExperimentAnalytics(EXPERIMENT, store=known.path).records()
    return {str(r["RunName"]): r for r in records}


def test_rows_have_the_official_columns_with_the_logged_statistics(known: KnownStore) -> None:
    rows = _rows(known)
    assert set(rows) == {"lr-small", "lr-mid", "lr-big", "two-workers"}
    row = rows["lr-mid"]
    losses = np.array(known.losses["lr-mid"])
    assert row["TrialComponentName"] == f"{EXPERIMENT}-lr-mid"
    assert row["DisplayName"] == "lr-mid"
    assert row["learning_rate"] == known.learning_rates["lr-mid"]
    assert row["loss - Min"] == pytest.approx(losses.min())
    assert row["loss - Max"] == pytest.approx(losses.max())
    assert row["loss - Avg"] == pytest.approx(losses.mean())
    assert row["loss - StdDev"] == pytest.approx(losses.std())
    assert row["loss - Last"] == pytest.approx(losses[-1])
    assert row["loss - Count"] == len(losses)
    assert row["Trials"] == [f"Default-Run-Group-{EXPERIMENT}"]
    assert row["Experiments"] == [EXPERIMENT]
    assert row["Status"] == "Completed"


def test_artifacts_and_failure_are_columns(known: KnownStore) -> None:
    rows = _rows(known)
    assert rows["lr-small"]["dataset - Value"] == "s3://bucket/data.csv"
    assert str(rows["lr-small"]["weights.bin - Value"]).startswith("artifacts/sha256/")
    assert rows["lr-big"]["Status"] == "Failed"
    assert math.isnan(float(rows["lr-big"]["loss - Last"]))  # type: ignore[arg-type]


def test_metric_and_parameter_names_select_columns(known: KnownStore) -> None:
    table = ExperimentAnalytics(
        EXPERIMENT, metric_names=["accuracy"], parameter_names=[], store=known.path
    ).records()
    columns = set(table[0])
    assert "accuracy - Last" in columns
    assert not any(c.startswith("loss - ") for c in columns)
    assert "learning_rate" not in columns


def test_dataframe_with_pandas(known: KnownStore) -> None:
    pandas = pytest.importorskip("pandas")
    frame = ExperimentAnalytics(EXPERIMENT, store=known.path).dataframe()
    assert isinstance(frame, pandas.DataFrame)
    mid = frame[frame["RunName"] == "lr-mid"].iloc[0]
    assert mid["loss - Last"] == pytest.approx(known.losses["lr-mid"][-1])
    assert len(frame) == 4


def test_dataframe_without_pandas_is_the_records(
    known: KnownStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    analytics = ExperimentAnalytics(EXPERIMENT, store=known.path)
    table = analytics.dataframe()
    assert isinstance(table, list)
    assert [r["RunName"] for r in table] == [r["RunName"] for r in analytics.records()]


def test_sort_by_a_metric_puts_nan_last(known: KnownStore) -> None:
    rows = ExperimentAnalytics(
        EXPERIMENT, sort_by="Metrics.loss.Last", sort_order="Ascending", store=known.path
    ).records()
    lasts = {name: values[-1] for name, values in known.losses.items()}
    lasts["two-workers"] = float(np.mean([v[-1] for v in known.workers.values()]))
    expected = sorted((n for n in lasts if not math.isnan(lasts[n])), key=lasts.__getitem__)
    assert [r["RunName"] for r in rows] == [*expected, "lr-big"]


def test_unassigned_runs(known: KnownStore) -> None:
    rows = ExperimentAnalytics(unassigned=True, store=known.path).records()
    assert [r["RunName"] for r in rows] == ["evaluation"]
    assert rows[0]["Experiments"] == []


def test_series_are_numpy_arrays(known: KnownStore) -> None:
    series = ExperimentAnalytics(EXPERIMENT, store=known.path).series("lr-mid", "loss")
    assert isinstance(series.mean, np.ndarray)
    np.testing.assert_allclose(series.mean, known.losses["lr-mid"])
    np.testing.assert_array_equal(series.step, np.arange(40))
    one = ExperimentAnalytics(EXPERIMENT, store=known.path).series("two-workers", "loss", "w1")
    np.testing.assert_allclose(one.mean, known.workers["w1"])


def test_best_run_minimizes_and_maximizes(known: KnownStore) -> None:
    lasts = {n: v[-1] for n, v in known.losses.items() if not math.isnan(v[-1])}
    lasts["two-workers"] = float(np.mean([v[-1] for v in known.workers.values()]))
    assert best_run(EXPERIMENT, "loss", store=known.path).run_name == min(lasts, key=lasts.get)  # type: ignore[arg-type]
    top = max(known.accuracy, key=lambda n: known.accuracy[n][-1])
    assert best_run(EXPERIMENT, "accuracy", maximize=True, store=known.path).run_name == top
    lows = {n: min(v) for n, v in known.accuracy.items()}
    by_min = best_run(EXPERIMENT, "accuracy", stat="Min", store=known.path).run_name
    assert lows[by_min] == min(lows.values())


def test_best_run_ignores_a_diverged_run(known: KnownStore) -> None:
    # lr-big has the highest loss "Max" only through NaN; NaN never wins, either way.
    for maximize in (False, True):
        record = best_run(EXPERIMENT, "loss", maximize=maximize, stat="Last", store=known.path)
        assert record.run_name != "lr-big"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"experiment_name": EXPERIMENT, "metric_name": "no-such-metric"}, RunNotFoundError),
        ({"experiment_name": "no-such-experiment", "metric_name": "loss"}, RunNotFoundError),
        ({"experiment_name": EXPERIMENT, "metric_name": "loss", "stat": "median"}, ValueError),
    ],
)
def test_best_run_errors(known: KnownStore, kwargs: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        best_run(store=known.path, **kwargs)  # type: ignore[arg-type]


def test_bad_arguments_are_refused_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="search_expression"):
        ExperimentAnalytics("x", search_expression={"Filters": []}, store=tmp_path)
    with pytest.raises(ValueError, match="experiment_name"):
        ExperimentAnalytics(store=tmp_path)
    with pytest.raises(ValueError, match="sort_order"):
        ExperimentAnalytics("x", sort_order="Up", store=tmp_path)

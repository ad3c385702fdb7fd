"""Names and validation: the official SDK's rules and messages (research §1.3, §2.1, §3)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import numpy as np
import pytest

from runstream import Run
from runstream._core import _names

# -- run and experiment names -------------------------------------------------------------


def test_names_are_lowercased_and_make_the_trial_component_name(store: str) -> None:
    run = Run("My-Experiment", "Run-ONE", store=store)
    assert run.experiment_name == "my-experiment"
    assert run.run_name == "run-one"
    assert run._trial_component.trial_component_name == "my-experiment-run-one"
    assert run.run_group_name == "Default-Run-Group-my-experiment"
    assert run.experiment_config == {
        "ExperimentName": "my-experiment",
        "TrialName": "Default-Run-Group-my-experiment",
        # RunName is the trial-component name, not the user's run name (as the SDK).
        "RunName": "my-experiment-run-one",
    }


def test_generated_run_name_has_the_sdk_pattern(store: str) -> None:
    before = int(time.time())
    run = Run("exp", store=store)
    after = int(time.time())
    match = re.fullmatch(r"sagemaker-run-(\d+)-([0-9a-f]{4})", run.run_name)
    assert match is not None, run.run_name
    assert before <= int(match.group(1)) <= after
    assert len(run.run_name) <= _names.MAX_NAME_LEN


def test_generated_run_names_differ() -> None:
    names = {_names.generate_run_name() for _ in range(50)}
    assert len(names) > 1  # 4 random hex digits: 50 draws collide to one with p ~ 0


@pytest.mark.parametrize("length", [1, 58, 59])
def test_names_up_to_59_characters_are_accepted(length: int) -> None:
    name = "a" * length
    assert _names.validate_names(name, name) == (name, name)


@pytest.mark.parametrize(
    ("experiment", "run", "message"),
    [
        (
            "e" * 60,
            "run",
            "The experiment_name (length: 60) must have length less than or equal to 59",
        ),
        ("exp", "r" * 60, "The run_name (length: 60) must have length less than or equal to 59"),
        ("exp", "R" * 75, "The run_name (length: 75) must have length less than or equal to 59"),
    ],
)
def test_names_over_59_characters_raise_the_sdk_message(
    store: str, experiment: str, run: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Run(experiment, run, store=store)


@pytest.mark.parametrize(
    ("experiment", "run", "pattern"),
    [
        ("", "run", "experiment_name must be a non-empty string, got ''"),
        (42, "run", "experiment_name must be a non-empty string, got 42"),
        ("exp", "", "run_name must be a non-empty string or None, got ''"),
        ("exp", 7, "run_name must be a non-empty string or None, got 7"),
    ],
)
def test_bad_names_are_named_in_the_error(
    store: str, experiment: object, run: object, pattern: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(pattern)):
        Run(experiment, run, store=store)  # type: ignore[arg-type]


def test_unassigned_run_needs_a_name(store: str) -> None:
    with pytest.raises(
        ValueError, match=r"unassigned run \(experiment_name=None\) needs a run_name"
    ):
        Run(None, store=store)
    run = Run(None, "Loose-Run", store=store)
    assert run.experiment_name is None
    assert run.run_name == "loose-run"
    assert run._trial_component.trial_component_name == "loose-run"


def test_run_group_name_keeps_100_characters_of_the_experiment() -> None:
    # 120 - len("Default-Run-Group-{}") = 100, as the SDK's _generate_trial_name.
    assert _names.run_group_name("x" * 150) == "Default-Run-Group-" + "x" * 100


# -- metric values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (2.5, 2.5),
        (True, 1.0),  # float(True), as the SDK's float(value)
        (np.float32(0.5), 0.5),
        (np.float16(0.25), 0.25),
        (np.int64(7), 7.0),
        (np.uint8(200), 200.0),
        (np.bool_(True), 1.0),
        (np.array(3.5), 3.5),
        (np.array([4.5]), 4.5),
        (Fraction(1, 4), 0.25),
    ],
)
def test_numbers_and_numpy_scalars_are_metric_values(value: object, expected: float) -> None:
    result = _names.coerce_metric_value(value)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize(
    ("value", "error", "pattern"),
    [
        ("1.5", ValueError, r"metric value '1\.5' \(str\) is not a number"),
        ("loss", ValueError, r"metric value 'loss' \(str\) is not a number"),
        (None, TypeError, r"metric value None \(NoneType\) is not a number"),
        (b"1", TypeError, r"metric value b'1' \(bytes\) is not a number"),
        ([1.0, 2.0], TypeError, r"metric value \[1\.0, 2\.0\] \(list\) is not a number"),
        (1 + 2j, TypeError, r"\(complex\) is not a number"),
        (np.array([1.0, 2.0]), TypeError, "only one-element arrays can be logged"),
    ],
)
def test_non_numbers_are_rejected_naming_the_value(
    value: object, error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        _names.coerce_metric_value(value)


# -- steps --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 2**31 - 1, np.int32(5), np.int64(6), np.uint16(7)])
def test_non_negative_ints_are_steps(step: object) -> None:
    assert _names.check_step(step) == int(step)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("step", "pattern"),
    [
        (-1, "step must be a non-negative int no larger than 2147483647 .*got -1"),
        (2**31, "step must be a non-negative int no larger than 2147483647 .*got 2147483648"),
        (1.0, r"step must be int, got 1\.0 \(float\)"),
        ("3", r"step must be int, got '3' \(str\)"),
        (np.float64(2), r"step must be int, got np\.float64\(2\.0\) \(float64\)"),
        # The official SDK accepts a bool (isinstance(True, int)); runstream deliberately
        # does not: a bool step is always a bug (step=is_last, step=epoch > 0, ...).
        (True, r"step must be int, got True \(bool\)"),
    ],
)
def test_bad_steps_raise_naming_the_value_and_rule(step: object, pattern: str) -> None:
    # "step must be int" is the start of the official message ("step must be int.").
    with pytest.raises(ValueError, match=pattern):
        _names.check_step(step)


# -- timestamps ---------------------------------------------------------------------------

_WINDOW_MESSAGE = "is invalid. Timestamps must be between two weeks before and two hours from now."
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (NOW, NOW),
        (int(NOW), NOW),
        (str(NOW), NOW),  # the SDK's float(timestamp) takes numeric strings too
        (NOW - 1_209_600, NOW - 1_209_600),  # both ends of the window are inside it
        (NOW + 7_200, NOW + 7_200),
        (datetime.fromtimestamp(NOW, tz=UTC), NOW),
        (datetime.fromtimestamp(NOW, tz=timezone(timedelta(hours=-5))), NOW),
    ],
)
def test_timestamps_in_the_window(timestamp: object, expected: float) -> None:
    assert _names.coerce_timestamp(timestamp, now=NOW) == expected


def test_naive_datetimes_are_local_time() -> None:
    local = datetime.fromtimestamp(NOW)  # naive, local wall clock
    assert local.tzinfo is None
    assert _names.coerce_timestamp(local, now=NOW) == NOW


@pytest.mark.parametrize(
    "timestamp",
    [NOW - 1_209_600 - 1, NOW + 7_200 + 1, 0.0, float("nan"), float("inf")],
)
def test_timestamps_outside_the_window_raise_the_sdk_message(timestamp: float) -> None:
    with pytest.raises(ValueError, match=f"^Supplied timestamp .* {re.escape(_WINDOW_MESSAGE)}$"):
        _names.coerce_timestamp(timestamp, now=NOW)


@pytest.mark.parametrize("timestamp", ["yesterday", object(), [NOW]])
def test_timestamps_of_the_wrong_kind_are_named(timestamp: object) -> None:
    with pytest.raises(ValueError, match="is neither a datetime nor epoch seconds"):
        _names.coerce_timestamp(timestamp, now=NOW)

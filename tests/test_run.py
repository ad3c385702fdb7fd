"""``Run`` under ``with``: the SageMaker-compatible API, its errors, and what lands in the store."""

from __future__ import annotations

import hashlib
import itertools
import math
import pickle
import re
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from runstream import FlushTimeoutError, Run, RunStats, current_run, load_run
from runstream._flush import _files

OUTSIDE = "This method should be called inside context of 'with' statement."
NESTED = "It is not allowed to use nested 'with' statements on the Run."

# -- the context rules --------------------------------------------------------------------

LOGGING_CALLS: dict[str, Callable[[Run], object]] = {
    "log_metric": lambda r: r.log_metric("loss", 1.0, step=0),
    "log_metric-used-name": lambda r: r.log_metric("used", 1.0),
    "log_metrics": lambda r: r.log_metrics({"loss": 1.0}, step=0),
    "log_parameter": lambda r: r.log_parameter("lr", 0.1),
    "log_parameters": lambda r: r.log_parameters({"lr": 0.1}),
    "log_artifact": lambda r: r.log_artifact("data", "s3://bucket/key"),
    "log_file": lambda r: r.log_file(__file__),
    "flush": lambda r: r.flush(),
}


@pytest.mark.parametrize("call", LOGGING_CALLS.values(), ids=LOGGING_CALLS.keys())
def test_logging_outside_with_raises_the_sdk_error(
    store: str, call: Callable[[Run], object]
) -> None:
    run = Run("exp", "run", store=store)
    with pytest.raises(RuntimeError, match=f"^{re.escape(OUTSIDE)}$"):
        call(run)
    with run:
        run.log_metric("used", 1.0)  # a name the hot path knows while inside...
    with pytest.raises(RuntimeError, match=f"^{re.escape(OUTSIDE)}$"):
        call(run)  # ...is no way around the rule after the block
    assert run.record().metrics["used"].count == 1


def test_nested_with_of_another_run_raises_the_sdk_error(store: str) -> None:
    with Run("exp", "outer", store=store) as outer:
        inner = Run("exp", "inner", store=store)
        with pytest.raises(RuntimeError, match=f"^{re.escape(NESTED)}$"), inner:
            pass
        outer.log_metric("still-fine", 1.0, step=0)
        assert current_run() is outer
    assert outer.record().metrics["still-fine"].count == 1
    assert inner.record().workers == []  # never entered


def test_load_run_inside_the_run_is_the_same_run_and_logging_continues(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        with load_run() as loaded:
            assert loaded is run
            loaded.log_metric("loss", 1.0, step=0)
        run.log_metric("loss", 2.0, step=1)  # the inner exit did not close the outer run
        assert run.stats.points_logged == 2
    assert run.series("loss").last.tolist() == [1.0, 2.0]
    assert run.record().status == "Completed"


def test_runs_cannot_be_pickled(store: str) -> None:
    run = Run("exp", "run", store=store)
    with pytest.raises(
        NotImplementedError, match=r"^Instance of Run type is not allowed to be pickled\.$"
    ):
        pickle.dumps(run)


def test_repr_and_identity(store: str) -> None:
    run = Run("Exp", "Run", store=store)
    assert repr(run) == "Run(experiment_name='exp', run_name='run')"
    assert run.store_path == str(Path(store).absolute())
    assert type(run).__module__ == "runstream"


def test_close_is_for_runs_outside_a_block(store: str) -> None:
    with (
        Run("exp", "run", store=store) as run,
        pytest.raises(RuntimeError, match="leaving its 'with' block"),
    ):
        run.close()
    run.close()
    assert run.record().status == "Completed"  # reopens the store to read


@pytest.mark.parametrize(
    ("option", "value", "pattern"),
    [
        ("flush_interval", 0, "flush_interval must be a positive number of seconds, got 0"),
        ("close_timeout", -1.0, "close_timeout must be a positive number of seconds, got -1.0"),
        ("tick", 0.0, "tick must be a positive number of seconds, got 0.0"),
        ("capacity", 1, "capacity must be an int of at least 2 points, got 1"),
        ("capacity", 10.5, "capacity must be an int of at least 2 points, got 10.5"),
    ],
)
def test_bad_engine_options_are_named(store: str, option: str, value: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(pattern)):
        Run("exp", "run", store=store, **{option: value})  # type: ignore[arg-type]


# -- status -------------------------------------------------------------------------------


def test_status_completed_on_a_clean_exit(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        assert run.record().status == "InProgress"
    record = run.record()
    assert record.status == "Completed"
    assert record.message is None
    assert record.start_time is not None
    assert record.end_time is not None
    assert record.start_time <= record.end_time
    assert [w.worker for w in record.workers] == [run.worker]


def test_status_failed_with_the_message_and_the_exception_propagates(store: str) -> None:
    with (  # noqa: PT012 (the run fails in its block)
        pytest.raises(ZeroDivisionError, match="division by zero"),
        Run("exp", "run", store=store) as run,
    ):
        run.log_metric("loss", 0.5, step=0)
        _ = 1 / 0
    record = run.record()
    assert record.status == "Failed"
    assert record.message == "division by zero"
    assert record.metrics["loss"].last == 0.5  # what was logged before the failure is kept


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        # Truncated to the service's 1024 characters.
        (ValueError("x" * 5000), "Failed", "x" * 1024),
        # An interruption stops the run rather than failing it; no text: the type's name.
        (KeyboardInterrupt(), "Stopped", "KeyboardInterrupt"),
    ],
)
def test_failure_message_is_bounded_and_never_empty(
    store: str, error: BaseException, status: str, message: str
) -> None:
    with pytest.raises(type(error)), Run("exp", "run", store=store) as run:
        raise error
    assert run.record().status == status
    assert run.record().message == message


# -- parameters ---------------------------------------------------------------------------


def test_parameters_last_write_wins_and_keep_their_types(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_parameter("lr", 0.1)
        run.log_parameters({"epochs": 10, "optimizer": "adam", "lr": 0.01})
        run.log_parameter("flag", True)
        run.log_parameter("np_float", np.float32(0.5))  # type: ignore[arg-type]
        run.log_parameter("np_int", np.int64(3))  # type: ignore[arg-type]
        run.log_parameter("layers", [64, 32])  # type: ignore[arg-type]  # str(), as the SDK
        run.log_parameter("none", None)  # type: ignore[arg-type]
    params = run.record().parameters
    assert params == {
        "lr": 0.01,
        "epochs": 10,
        "optimizer": "adam",
        "flag": 1,
        "np_float": 0.5,
        "np_int": 3,
        "layers": "[64, 32]",
        "none": "None",
    }
    assert type(params["epochs"]) is int
    assert type(params["np_float"]) is float


def test_a_nan_parameter_is_kept_with_a_warning(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        with pytest.warns(
            RuntimeWarning, match="parameter 'lr' is nan; runstream keeps it"
        ) as caught:
            run.log_parameter("lr", math.nan)
        assert caught[0].filename == __file__
    value = run.record().parameters["lr"]
    assert isinstance(value, float)
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("", 1, "parameter name '' must be a string of 1 to 320 characters"),
        ("p" * 321, 1, r"parameter name 'p+' must be a string of 1 to 320 characters"),
        (5, 1, "parameter name 5 must be a string of 1 to 320 characters"),
        (
            "long",
            "v" * 2501,
            "parameter 'long' is 2501 characters long; a string parameter holds at most 2500",
        ),
    ],
)
def test_bad_parameters_are_named(store: str, name: object, value: object, pattern: str) -> None:
    with Run("exp", "run", store=store) as run:
        with pytest.raises(ValueError, match=pattern):
            run.log_parameter(name, value)  # type: ignore[arg-type]
        run.log_parameter("ok", 1)
    assert run.record().parameters == {"ok": 1}


def test_a_run_holds_at_most_300_parameters(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_parameters({f"p{i}": i for i in range(300)})
        run.log_parameter("p0", -1)  # overwriting is always allowed
        with pytest.raises(
            ValueError, match="cannot log parameter 'p300': a run holds at most 300"
        ):
            run.log_parameter("p300", 300)
    params = run.record().parameters
    assert len(params) == 300
    assert params["p0"] == -1


# -- artifacts ----------------------------------------------------------------------------


@pytest.mark.parametrize("is_output", [True, False])
def test_artifacts_are_capped_at_30_per_direction_with_the_sdk_message(
    store: str, is_output: bool
) -> None:
    direction = "output" if is_output else "input"
    other = "input" if is_output else "output"
    with Run("exp", "run", store=store) as run:
        for i in range(30):
            run.log_artifact(f"a{i}", f"s3://b/{i}", is_output=is_output)
        message = f"^Cannot add more than 30 {direction}_artifacts under run$"
        with pytest.raises(ValueError, match=message):
            run.log_artifact("a30", "s3://b/30", is_output=is_output)
        with pytest.raises(ValueError, match=message):  # even to overwrite, as the SDK
            run.log_artifact("a0", "s3://b/again", is_output=is_output)
        with pytest.raises(ValueError, match=message):  # files count against the same cap
            run.log_file(__file__, is_output=is_output)
        run.log_artifact("other-way", "s3://b/x", is_output=not is_output)
    record = run.record()
    assert len(getattr(record.artifacts, direction)) == 30
    assert getattr(record.artifacts, direction)["a0"].value == "s3://b/0"
    assert list(getattr(record.artifacts, other)) == ["other-way"]
    # The cap holds for the run, not for this Run object: continuing it keeps counting.
    with load_run("run", "exp", store=store) as again, pytest.raises(ValueError, match=message):
        again.log_artifact("a31", "s3://b/31", is_output=is_output)


def test_artifact_values_are_recorded(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_artifact("data", "s3://bucket/train.csv", media_type="text/csv", is_output=False)
        run.log_artifact("model", "s3://bucket/model.tar.gz")
        with pytest.raises(TypeError, match="artifact value must be a string, got 42"):
            run.log_artifact("bad", 42)  # type: ignore[arg-type]
    artifacts = run.record().artifacts
    assert artifacts.input["data"].value == "s3://bucket/train.csv"
    assert artifacts.input["data"].media_type == "text/csv"
    assert artifacts.output["model"].value == "s3://bucket/model.tar.gz"
    assert artifacts.output["model"].media_type is None  # none given, none stored (as the SDK)


BAD_ARTIFACT_NAMES: list[tuple[str, object]] = [
    ("log_artifact", None),
    ("log_artifact", ""),
    ("log_artifact", "a" * 129),
    ("log_artifact", 42),
    ("log_file", "a" * 129),  # log_file falls back to the file's name when given none
    ("log_file", 42),
]


@pytest.mark.parametrize(("method", "name"), BAD_ARTIFACT_NAMES)
def test_bad_artifact_names_are_refused_at_the_call(
    store: str, method: str, name: Any, tmp_path: Path
) -> None:
    """A name the store cannot hold must fail the call, not every later write of the run."""
    source = tmp_path / "f.txt"
    source.write_text("x")
    with Run("exp", "run", store=store) as run:
        calls: dict[str, Callable[[], object]] = {
            "log_artifact": lambda: run.log_artifact(name, "s3://b/k"),
            "log_file": lambda: run.log_file(str(source), name=name),
        }
        with pytest.raises(ValueError, match="must be a string of 1 to 128 characters"):
            calls[method]()
        run.log_metric("loss", 1.0, step=0)
        assert run.flush(timeout=30).stats.points_pending == 0
    assert run.record().metrics["loss"].count == 1
    assert run.record().artifacts.output == {}


# -- files --------------------------------------------------------------------------------


def test_log_file_stores_content_addressed_copies(store: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello runstream\n")
    twin = tmp_path / "twin.txt"
    twin.write_text("hello runstream\n")  # same content, another name
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 4096)  # 1 MiB: more than one copy chunk
    with Run("exp", "run", store=store) as run:
        run.log_file(str(notes))
        run.log_file(str(twin), name="copy", is_output=False)
        run.log_file(str(weights), media_type="application/x-weights")
    record = run.record()
    stored = record.artifacts.output["notes.txt"]
    assert stored.sha256 == hashlib.sha256(b"hello runstream\n").hexdigest()
    assert stored.size == len(b"hello runstream\n")
    assert stored.media_type == "text/plain"  # guessed as the SDK guesses
    assert stored.value == f"artifacts/sha256/{stored.sha256[:2]}/{stored.sha256}"
    assert (Path(store) / stored.value).read_bytes() == b"hello runstream\n"
    assert record.artifacts.input["copy"].value == stored.value  # same content: same object
    big = record.artifacts.output["weights.bin"]
    assert big.media_type == "application/x-weights"
    assert big.size == 256 * 4096
    assert (Path(store) / big.value).read_bytes() == weights.read_bytes()
    objects = [p for p in (Path(store) / "artifacts" / "sha256").rglob("*") if p.is_file()]
    assert len(objects) == 2  # two distinct contents, three artifacts
    assert run.stats.files_written == 3
    assert not any((Path(store) / "artifacts" / "tmp").iterdir())  # no partial copies left


def test_log_file_copies_off_the_training_thread_and_close_waits(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy runs in the flusher (log_file returns at once), and leaving the block waits
    for it. The real copy is wrapped to hold it until the test lets it go."""
    source = tmp_path / "model.txt"
    source.write_text("weights")
    entered, release = threading.Event(), threading.Event()
    copied_on: list[int] = []
    real_store_file = _files.store_file

    def held_store_file(*args: Any) -> Any:
        copied_on.append(threading.get_ident())
        entered.set()
        release.wait(30)
        return real_store_file(*args)

    monkeypatch.setattr("runstream._flush._flusher.store_file", held_store_file)
    with Run("exp", "run", store=store) as run:
        run.log_file(str(source))
        assert entered.wait(30)
        assert run.stats.files_pending == 1
        with pytest.raises(FlushTimeoutError, match="1 files pending") as timed_out:
            run.flush(timeout=0.05)
        assert timed_out.value.pending_files == 1
        assert run.record().artifacts.output == {}
        threading.Timer(0.2, release.set).start()
    assert copied_on != [threading.get_ident()]
    assert run.stats.files_pending == 0
    assert run.record().artifacts.output["model.txt"].size == len("weights")


def test_log_file_of_a_missing_file_raises_the_sdk_error(store: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with Run("exp", "run", store=store) as run:
        with pytest.raises(
            ValueError,
            match=f"^{re.escape(str(missing))} "
            + re.escape("does not exist or is not a file. Please supply a file path.")
            + "$",
        ):
            run.log_file(str(missing))
        with pytest.raises(ValueError, match="does not exist or is not a file"):
            run.log_file(str(tmp_path))  # a directory is not a file either
    assert run.record().artifacts.output == {}


# -- metrics ------------------------------------------------------------------------------


def test_metrics_are_read_back_exactly(store: str) -> None:
    before = time.time()
    with Run("exp", "run", store=store) as run:
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.log_metrics({"acc": step / 10, "lr": np.float32(0.5)}, step=step)
        run.log_metric("loss", 0.1, step=4)  # a second point at step 4
        run.log_metric("np-step", 2.0, step=np.int64(7))  # type: ignore[arg-type]
    after = time.time()
    loss = run.series("loss")
    assert loss.step.tolist() == [0, 1, 2, 3, 4]
    assert loss.count.tolist() == [1, 1, 1, 1, 2]
    assert loss.mean.tolist() == [1.0, 0.5, 1 / 3, 0.25, (0.2 + 0.1) / 2]
    assert loss.min.tolist()[-1] == 0.1
    assert loss.max.tolist()[-1] == 0.2
    assert loss.last.tolist()[-1] == 0.1
    assert loss.std.tolist()[-1] == pytest.approx(0.05)
    assert all(before <= t <= after for t in loss.timestamp.tolist())
    assert run.series("acc").last.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert run.series("np-step").step.tolist() == [7]
    summary = run.record().metrics["loss"]
    values = [1.0, 0.5, 1 / 3, 0.25, 0.2, 0.1]
    mean = sum(values) / len(values)
    assert summary.count == 6
    assert summary.min == 0.1
    assert summary.max == 1.0
    assert summary.avg == pytest.approx(mean)
    assert summary.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 6))
    assert summary.last == 0.1
    assert summary.last_step == 4
    rows = loss.rows()
    assert rows[0] == runstream.SeriesRow(
        name="loss",
        step=0,
        count=1,
        mean=1.0,
        min=1.0,
        max=1.0,
        last=1.0,
        std=0.0,
        timestamp=rows[0].timestamp,
    )


def test_each_point_without_a_step_is_a_point_in_time_in_order(store: str) -> None:
    before = time.time()
    with Run("exp", "run", store=store) as run:
        run.log_metric("Final Test Loss", 0.3)  # the seed logs it twice, without a step
        run.log_metric("Final Test Loss", 0.25)
        run.flush()
        run.log_metric("Final Test Loss", 0.2)
    after = time.time()
    rows = run.series("Final Test Loss").rows()
    assert [(row.step, row.count, row.mean) for row in rows] == [
        (None, 1, 0.3),
        (None, 1, 0.25),
        (None, 1, 0.2),
    ]  # each call its own point, oldest first: no average, no made-up step
    assert all(before <= row.timestamp <= after for row in rows)
    assert [r.timestamp for r in rows] == sorted(r.timestamp for r in rows)
    summary = run.record().metrics["Final Test Loss"]
    assert (summary.last_step, summary.count, summary.last) == (None, 3, 0.2)


def test_explicit_timestamps_are_kept(store: str) -> None:
    an_hour_ago = datetime.now() - timedelta(hours=1)
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 0.5, timestamp=an_hour_ago, step=3)
        run.log_metric("loss", 0.7, timestamp=an_hour_ago.timestamp() + 1)
    series = run.series("loss")
    micro = math.floor((an_hour_ago.timestamp() + 1) * 1e6)
    assert series.step.tolist() == [-(micro + 1), 3]
    assert series.timestamp.tolist() == [an_hour_ago.timestamp() + 1, an_hour_ago.timestamp()]
    assert series.rows()[0].step is None


# ``Any``: these calls break the annotations on purpose.
BAD_METRIC_CALLS: dict[str, tuple[Callable[[Any], object], type[Exception], str]] = {
    "empty name": (
        lambda r: r.log_metric("", 1.0),
        ValueError,
        "metric name '' must be a string of 1 to 255",
    ),
    "long name": (
        lambda r: r.log_metric("m" * 256, 1.0),
        ValueError,
        "must be a string of 1 to 255 characters",
    ),
    "None name": (
        lambda r: r.log_metric(None, 1.0),
        ValueError,
        "metric name None must be a string",
    ),
    "unhashable name": (
        lambda r: r.log_metric(["loss"], 1.0),
        ValueError,
        r"metric name \['loss'\] must be a string",
    ),
    "str value": (
        lambda r: r.log_metric("m", "0.5"),
        ValueError,
        r"metric value '0\.5' \(str\) is not a number",
    ),
    "None value": (
        lambda r: r.log_metric("m", None),
        TypeError,
        r"metric value None \(NoneType\) is not a number",
    ),
    "array value": (
        lambda r: r.log_metric("m", np.ones(3)),
        TypeError,
        "only one-element arrays can be logged",
    ),
    "negative step": (
        lambda r: r.log_metric("m", 1.0, step=-1),
        ValueError,
        "step must be a non-negative int .* got -1",
    ),
    "float step": (
        lambda r: r.log_metric("m", 1.0, step=1.5),
        ValueError,
        r"step must be int, got 1\.5 \(float\)",
    ),
    "bool step": (
        lambda r: r.log_metric("m", 1.0, step=True),
        ValueError,
        r"step must be int, got True \(bool\)",
    ),
    "huge step": (
        lambda r: r.log_metric("m", 1.0, step=2**31),
        ValueError,
        "no larger than 2147483647",
    ),
    "old timestamp": (
        lambda r: r.log_metric("m", 1.0, timestamp=datetime.now() - timedelta(days=15)),
        ValueError,
        "Timestamps must be between two weeks before and two hours from now.",
    ),
    "future timestamp": (
        lambda r: r.log_metric("m", 1.0, timestamp=time.time() + 3 * 3600),
        ValueError,
        "Timestamps must be between two weeks before and two hours from now.",
    ),
    "metrics bad step": (lambda r: r.log_metrics({"m": 1.0}, step=-5), ValueError, "got -5"),
    "metrics bad value": (
        lambda r: r.log_metrics({"m": "x"}, step=0),
        ValueError,
        r"metric value 'x' \(str\)",
    ),
    "metrics bad name": (lambda r: r.log_metrics({"": 1.0}), ValueError, "metric name '' must be"),
    "metrics not a mapping": (
        lambda r: r.log_metrics([("m", 1.0)]),
        TypeError,
        r"log_metrics takes a mapping of metric names to values, got \[\('m', 1\.0\)\]",
    ),
}


@pytest.mark.parametrize(
    ("call", "error", "pattern"), BAD_METRIC_CALLS.values(), ids=BAD_METRIC_CALLS.keys()
)
def test_bad_metric_input_raises_a_clear_error_and_stores_nothing(
    store: str, call: Callable[[Any], object], error: type[Exception], pattern: str
) -> None:
    with Run("exp", "run", store=store) as run:
        with pytest.raises(error, match=pattern):
            call(run)
        run.log_metric("good", 1.0, step=0)  # the run goes on
        assert run.flush().stats.points_logged == 1
    record = run.record()
    assert {name: m.count for name, m in record.metrics.items()} == {"good": 1}


def test_nan_and_infinities_are_kept_with_one_warning_per_run(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        with pytest.warns(  # noqa: PT031 (one warning for all of these)
            RuntimeWarning, match="runstream keeps NaN and infinite values"
        ) as caught:
            run.log_metric("loss", math.nan, step=0)
            run.log_metric("loss", math.inf, step=1)
            run.log_metrics({"grad": -math.inf, "loss": np.float32("nan")}, step=2)
            run.log_metric("loss", 1.0, step=3)
        assert len(caught) == 1
        assert caught[0].filename == __file__  # points at the user's call
        assert "metric 'loss' got nan" in str(caught[0].message)
    loss = run.series("loss")
    assert loss.step.tolist() == [0, 1, 2, 3]
    assert math.isnan(loss.last[0])
    assert loss.last[1] == math.inf
    assert math.isnan(loss.last[2])
    assert run.series("grad").last.tolist() == [-math.inf]
    summary = run.record().metrics["loss"]
    assert summary.count == 4
    assert math.isnan(summary.avg)
    assert summary.last == 1.0
    # Another run warns again: once per run, not once per process.
    with Run("exp", "other", store=store) as other, pytest.warns(RuntimeWarning):
        other.log_metric("loss", math.nan)


# -- continuing a run ---------------------------------------------------------------------


def test_a_run_with_existing_names_continues(store: str) -> None:
    with Run("Exp", "Run", store=store) as first:
        first.log_parameters({"lr": 0.1, "epochs": 3})
        first.log_metric("loss", 3.0, step=0)
        first.log_metric("loss", 2.0, step=1)
        first.log_artifact("data", "s3://b/one")
    started = first.record().start_time
    second = Run("exp", "run", store=store)
    with pytest.warns(runstream.RunContinuedWarning):
        second.__enter__()
    try:
        second.log_parameter("lr", 0.05)
        second.log_metric("loss", 1.0, step=2)
        second.flush()
        second.log_metric("loss", 1.5, step=1)  # merges with step 1; logged last
        second.log_artifact("more", "s3://b/two")
    finally:
        second.__exit__(None, None, None)
    record = second.record()
    assert record.parameters == {"lr": 0.05, "epochs": 3}
    assert record.metrics["loss"].count == 4
    assert record.metrics["loss"].last == 1.5
    series = second.series("loss")
    assert series.step.tolist() == [0, 1, 2]
    assert series.count.tolist() == [1, 2, 1]
    assert series.mean.tolist() == [3.0, 1.75, 1.0]
    assert sorted(record.artifacts.output) == ["data", "more"]
    assert record.start_time == started  # the start is the first start, as the SDK
    assert runstream.list_runs("exp", store=store)[0].run_name == "run"
    assert len(runstream.list_runs("exp", store=store)) == 1


# -- the engine: stats, compaction, threads -----------------------------------------------


def test_stats_account_for_every_point(store: str) -> None:
    # A long interval and a high water mark out of reach: nothing is written until asked.
    with Run("exp", "run", store=store, flush_interval=3600) as run:
        assert run.stats == RunStats(points_logged=0, points_written=0, points_pending=0)
        for step in range(1000):
            run.log_metric("loss", float(step), step=step)
        run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
        run.log_metric("stamped", 1.0, timestamp=time.time())
        run.log_parameter("lr", 0.1)
        stats = run.stats
        assert (stats.points_logged, stats.points_written, stats.points_pending) == (1003, 0, 1003)
        assert stats.parameters_pending == 1
        flushed = run.flush().stats
        assert (flushed.points_logged, flushed.points_written, flushed.points_pending) == (
            1003,
            1003,
            0,
        )
        assert flushed.parameters_pending == 0
        assert flushed.flushes == 1
        run.log_metric("loss", 0.0, step=1000)
    stats = run.stats
    assert (stats.points_logged, stats.points_written, stats.points_pending) == (1004, 1004, 0)
    assert stats.points_dropped == 0
    assert stats.write_errors == 0
    assert stats.last_error is None
    assert sum(m.count for m in run.record().metrics.values()) == 1004


def test_a_tiny_capacity_compacts_and_loses_nothing(store: str) -> None:
    with Run("exp", "run", store=store, capacity=8, flush_interval=3600) as run:
        for i in range(5000):
            run.log_metric("same-step", float(i), step=0)
            run.log_metric("steps", float(i), step=i % 100)
        assert run.stats.compactions > 0
        assert run.stats.points_logged == 10_000
    assert run.stats.points_written == 10_000
    assert run.stats.points_dropped == 0
    same = run.series("same-step")
    assert same.count.tolist() == [5000]
    assert same.mean.tolist() == [sum(range(5000)) / 5000]
    assert (same.min[0], same.max[0], same.last[0]) == (0.0, 4999.0, 4999.0)
    steps = run.series("steps")
    assert steps.step.tolist() == list(range(100))
    assert steps.count.tolist() == [50] * 100
    assert steps.last.tolist() == [float(4900 + s) for s in range(100)]


def test_threads_logging_into_one_run_lose_nothing(store: str) -> None:
    """The hot path takes no lock: appends from several threads race the flusher's drains."""
    per_thread, threads = 20_000, 4
    with Run("exp", "run", store=store, flush_interval=0.01, tick=0.002) as run:

        def log(worker: int) -> None:
            for i in range(per_thread):
                run.log_metric("shared", float(worker), step=worker * per_thread + i)

        pool = [threading.Thread(target=log, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    series = run.series("shared")
    assert series.step.tolist() == list(range(threads * per_thread))
    assert series.count.tolist() == [1] * (threads * per_thread)
    assert series.last.tolist() == [float(s // per_thread) for s in range(threads * per_thread)]
    assert run.stats.points_written == threads * per_thread


def test_points_logged_never_goes_backwards_while_the_flusher_works(store: str) -> None:
    """Counters read mid-flight must not undercount what was already logged."""
    seen: list[int] = []
    with Run("exp", "run", store=store, flush_interval=0.001, tick=0.001) as run:
        for i in range(60_000):
            run.log_metric("loss", 1.0, step=i)
            if i % 20 == 0:
                seen.append(run.stats.points_logged)
                assert seen[-1] <= i + 1
    dips = [(a, b) for a, b in itertools.pairwise(seen) if b < a]
    assert dips == []
    assert run.stats.points_logged == 60_000


def test_no_thread_outlives_the_run(store: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    before = set(threading.enumerate())
    for i in range(3):
        with Run("exp", f"run-{i}", store=store) as run:
            run.log_metric("loss", 1.0, step=0)
            run.log_file(str(source))
            assert len(set(threading.enumerate()) - before) >= 1  # the flusher
    assert set(threading.enumerate()) == before


def test_continuing_an_ended_run_warns_once_naming_it(store: str) -> None:
    with Run("quick", "baseline", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Run("quick", "baseline", store=store)  # constructing it to read says nothing
        assert again.record().status == "Completed"
    with pytest.warns(runstream.RunContinuedWarning) as caught:
        again.__enter__()
    again.log_metric("loss", 3.0, step=0)
    again.__exit__(None, None, None)
    assert len(caught) == 1  # once, when entered
    message = str(caught[0].message)
    assert "run 'baseline' of experiment 'quick' already ended (Completed" in message
    assert "Run('quick', 'baseline-2')" in message
    assert "load_run('baseline', 'quick')" in message
    # On purpose: load_run continues without a word, and so does a run still in progress.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with runstream.load_run("baseline", "quick", store=store):
            pass
        with Run("quick", "fresh", store=store):
            Run("quick", "fresh", store=store)  # another worker joining a live run

"""The seed workflow end to end: the Keras-style loop of the SageMaker docs, in plain numpy,
read back through ``list_runs``, ``Run.record()``, ``Run.series`` and the command line.

The loop is the docs' MNIST example shape: parameters first, the training data logged as
an input file, a callback logging every metric of an epoch with ``step=epoch``, then the
final test scores without a step and the model as an output file.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from _support import child_env, cli, cli_json
from runstream import Experiment, Run, SortByType, SortOrderType, list_runs

EPOCHS = 5
BATCH_SIZE = 32


class ExperimentCallback:
    """The docs' Keras callback: every metric of an epoch, logged at ``step=epoch``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            self.run.log_metric(name=key, value=value, step=epoch)


@dataclass
class LogisticModel:
    """A tiny Keras-like model: logistic regression trained by mini-batch SGD."""

    learning_rate: float
    weights: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))

    def _predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        logits: NDArray[np.float64] = x @ self.weights[:2] + self.weights[2]
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def evaluate(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float]:
        p = np.clip(self._predict(x), 1e-12, 1 - 1e-12)
        loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return loss, float(np.mean((p > 0.5) == y))

    def fit(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        epochs: int,
        callbacks: list[ExperimentCallback],
    ) -> list[dict[str, float]]:
        split = int(len(x) * 0.9)  # validation_split=0.1
        (xt, yt), (xv, yv) = (x[:split], y[:split]), (x[split:], y[split:])
        history = []
        for epoch in range(epochs):
            for start in range(0, len(xt), BATCH_SIZE):
                xb, yb = xt[start : start + BATCH_SIZE], yt[start : start + BATCH_SIZE]
                error = self._predict(xb) - yb
                gradient = np.append(xb.T @ error, error.sum()) / len(xb)
                self.weights = self.weights - self.learning_rate * gradient
            loss, accuracy = self.evaluate(xt, yt)
            val_loss, val_accuracy = self.evaluate(xv, yv)
            logs = {
                "loss": loss,
                "accuracy": accuracy,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            }
            history.append(logs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
        return history


def dataset(n: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float64)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1.0, 1.0, -1.0)
    return x, y


@dataclass
class Trained:
    run_name: str
    learning_rate: float
    history: list[dict[str, float]]
    score: tuple[float, float]
    train_file: Path
    model_file: Path


def train(store: str, workdir: Path, run_name: str, learning_rate: float) -> Trained:
    """The docs' script, with numpy for Keras."""
    x_train, y_train = dataset(640, seed=0)
    x_test, y_test = dataset(200, seed=1)
    train_file = workdir / "input_train.npy"
    np.save(train_file, x_train)
    model_file = workdir / f"model-{run_name}.npy"
    with Run(experiment_name="Keras-MNIST", run_name=run_name, store=store) as run:
        run.log_parameter("batch_size", BATCH_SIZE)
        run.log_parameter("epochs", EPOCHS)
        run.log_parameters({"learning_rate": learning_rate, "optimizer": "sgd"})
        run.log_file(str(train_file), is_output=False)
        model = LogisticModel(learning_rate)
        history = model.fit(x_train, y_train, EPOCHS, callbacks=[ExperimentCallback(run)])
        score = model.evaluate(x_test, y_test)
        run.log_metric(name="Final Test Loss", value=score[0])
        run.log_metric(name="Final Test Accuracy", value=score[1])
        np.save(model_file, model.weights)
        run.log_file(str(model_file), name="model")
        run.log_artifact("model-uri", f"s3://models/{run_name}/model.tar.gz")
    return Trained(run_name, learning_rate, history, score, train_file, model_file)


@pytest.fixture
def trained(store: str, tmp_path: Path) -> list[Trained]:
    return [train(store, tmp_path, f"lr-{lr}", lr) for lr in (0.5, 0.05)]


def test_the_runs_read_back_exactly(store: str, trained: list[Trained]) -> None:
    runs = list_runs("keras-mnist", store=store)  # names are lowercased, as the SDK
    assert [r.run_name for r in runs] == ["lr-0.05", "lr-0.5"]  # newest first by default
    by_name = {r.run_name: r for r in runs}
    for t in trained:
        run = by_name[t.run_name]
        record = run.record()
        assert record.status == "Completed"
        assert record.experiment_name == "keras-mnist"
        assert record.trial_component_name == f"keras-mnist-{t.run_name}"
        assert record.parameters == {
            "batch_size": BATCH_SIZE,
            "epochs": EPOCHS,
            "learning_rate": t.learning_rate,
            "optimizer": "sgd",
        }
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            values = [epoch[key] for epoch in t.history]
            summary = record.metrics[key]
            assert summary.count == EPOCHS
            assert (summary.min, summary.max, summary.last) == (
                min(values),
                max(values),
                values[-1],
            )
            assert summary.avg == pytest.approx(sum(values) / EPOCHS, rel=1e-12)
            mean = sum(values) / EPOCHS
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / EPOCHS)
            assert summary.std == pytest.approx(std, rel=1e-9, abs=1e-15)
            assert summary.last_step == EPOCHS - 1
            series = run.series(key)
            assert series.step.tolist() == list(range(EPOCHS))
            assert series.last.tolist() == values  # exactly what was logged
            assert series.count.tolist() == [1] * EPOCHS
        final = record.metrics["Final Test Loss"]
        assert (final.count, final.last, final.last_step) == (1, t.score[0], None)
        assert record.metrics["Final Test Accuracy"].last == t.score[1]
        train_input = record.artifacts.input["input_train.npy"]
        assert train_input.sha256 == hashlib.sha256(t.train_file.read_bytes()).hexdigest()
        assert train_input.size == t.train_file.stat().st_size
        model = record.artifacts.output["model"]
        assert (Path(store) / model.value).read_bytes() == t.model_file.read_bytes()
        assert (
            record.artifacts.output["model-uri"].value == f"s3://models/{t.run_name}/model.tar.gz"
        )
    # The model learned: the loss went down (the loop is real, not a fixture of numbers).
    assert trained[0].history[-1]["loss"] < trained[0].history[0]["loss"]
    names = [
        r.run_name
        for r in list_runs(
            "keras-mnist", sort_by=SortByType.NAME, sort_order=SortOrderType.ASCENDING, store=store
        )
    ]
    assert names == ["lr-0.05", "lr-0.5"]
    assert [e.experiment_name for e in Experiment.list(store=store)] == ["keras-mnist"]


def test_the_command_line_prints_the_same_numbers(
    store: str, trained: list[Trained], capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = cli_json(capsys, "experiments", "--store", store)
    assert [(e["experiment_name"], e["run_count"]) for e in experiments] == [("keras-mnist", 2)]

    runs = cli_json(capsys, "runs", "Keras-MNIST", "--store", store)
    by_name = {r["run_name"]: r for r in runs}
    for t in trained:
        row = by_name[t.run_name]
        assert row["experiment_name"] == "keras-mnist"
        assert row["status"] == "Completed"
        assert row["parameters"]["learning_rate"] == t.learning_rate
        loss = row["metrics"]["loss"]
        values = [epoch["loss"] for epoch in t.history]
        assert {k: loss[k] for k in ("min", "max", "last", "count")} == {
            "min": min(values),
            "max": max(values),
            "last": values[-1],
            "count": EPOCHS,
        }
        assert set(loss) >= {"min", "max", "avg", "std", "last", "count"}
        assert set(row["artifacts"]) == {"input", "output"}
        assert set(row["artifacts"]["output"]) == {"model", "model-uri"}

    t = trained[0]
    shown = cli_json(capsys, "show", "keras-mnist", t.run_name, "--store", store)
    assert shown == by_name[t.run_name]

    rows = cli_json(capsys, "series", "keras-mnist", t.run_name, "val_accuracy", "--store", store)
    assert [r["step"] for r in rows] == list(range(EPOCHS))
    assert [r["last"] for r in rows] == [epoch["val_accuracy"] for epoch in t.history]
    for row in rows:
        assert set(row) >= {"name", "step", "count", "mean", "min", "max", "last", "timestamp"}
        assert row["name"] == "val_accuracy"
        assert row["count"] == 1
        assert row["mean"] == row["min"] == row["max"] == row["last"]

    # People get tables: one line per run, the parameter and each metric's last value.
    code, text, _ = cli(capsys, "runs", "keras-mnist", "--store", store)
    assert code == 0
    header, rule, *lines = text.splitlines()
    assert header.split()[:3] == ["run", "status", "started"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(lines) == 2
    status_at = header.index("status")
    assert all(line[status_at:].startswith("Completed") for line in lines)
    assert f"{t.history[-1]['loss']:.6g}" in text


def test_python_dash_m_runstream_prints_the_same_json(
    store: str, trained: list[Trained], capsys: pytest.CaptureFixture[str]
) -> None:
    t = trained[1]
    for argv in (
        ["show", "keras-mnist", t.run_name],
        ["series", "keras-mnist", t.run_name, "loss"],
        ["runs", "keras-mnist"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "runstream", *argv, "--store", store, "--json"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == cli_json(capsys, *argv, "--store", store)

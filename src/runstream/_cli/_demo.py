"""``runstream demo``: a small real training, logged the way a user would log theirs.

A two-layer numpy network learns a synthetic two-moons problem (nothing is downloaded):

* a learning-rate sweep, one run per rate, in one experiment;
* one rate too large: the loss overflows to NaN, the run stops and is marked Failed, and
  the NaN stays in the store (the dashboard marks where it starts);
* one data-parallel run: two worker threads train on halves of the data, average their
  gradients and log into the same run (per-worker and merged views);
* an unassigned run that evaluates the best model on fresh data and logs a CSV file.
"""

from __future__ import annotations

import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._run._analytics import best_run
from .._run._run import Run

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = (
    "Data",
    "DemoResult",
    "Model",
    "moons",
    "run_demo",
)

SWEEP = (0.02, 0.05, 0.1, 0.2)
DIVERGING = 3.0
EPOCHS = 300
HIDDEN = 16


@dataclass(frozen=True, slots=True)
class DemoResult:
    experiment_name: str
    run_names: list[str]
    diverged_run: str
    diverged_at: int
    parallel_run: str
    unassigned_run: str
    best_run: str
    best_accuracy: float
    seconds: float


def moons(n: int, rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two interleaved half circles with noise; labels are -1 and +1."""
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    points = np.column_stack([x, y]) + rng.normal(0, 0.15, (n, 2))
    return points, np.where(upper, 1.0, -1.0)


class Model:
    """``tanh(x W1 + b1) w2 + b2``, trained on the squared error against the ±1 label."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.w1 = rng.normal(0, 1.0, (2, HIDDEN))
        self.b1 = np.zeros(HIDDEN)
        self.w2 = rng.normal(0, 1.0 / np.sqrt(HIDDEN), HIDDEN)
        self.b2 = 0.0

    def forward(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        hidden = np.tanh(x @ self.w1 + self.b1)
        return hidden, hidden @ self.w2 + self.b2

    def loss(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float]:
        """Mean squared error and accuracy."""
        _, out = self.forward(x)
        return float(np.mean((out - y) ** 2)), float(np.mean(np.sign(out) == y))

    def gradients(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> list[object]:
        hidden, out = self.forward(x)
        d_out = 2 * (out - y) / len(y)
        d_hidden = np.outer(d_out, self.w2) * (1 - hidden**2)
        return [x.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_out, float(d_out.sum())]

    def step(self, grads: list[object], lr: float) -> None:
        g1, gb1, g2, gb2 = grads
        self.w1 = self.w1 - lr * g1  # type: ignore[operator]
        self.b1 = self.b1 - lr * gb1  # type: ignore[operator]
        self.w2 = self.w2 - lr * g2  # type: ignore[operator]
        self.b2 = self.b2 - lr * gb2  # type: ignore[operator]

    def save(self, path: Path) -> None:
        np.savez(path, w1=self.w1, b1=self.b1, w2=self.w2, b2=np.array(self.b2))


@dataclass(frozen=True, slots=True)
class Data:
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    x_val: NDArray[np.float64]
    y_val: NDArray[np.float64]


def _log_setup(run: Run, lr: float, workers: int) -> None:
    run.log_parameters(
        {"learning_rate": lr, "hidden_units": HIDDEN, "epochs": EPOCHS, "workers": workers}
    )
    run.log_parameter("optimizer", "sgd")
    run.log_artifact("dataset", "synthetic://two-moons?n=800&seed=0", is_output=False)


def _train(run: Run, data: Data, lr: float, files: Path) -> int | None:
    """Train and log; returns the step where the loss stopped being finite, if it did."""
    model = Model(np.random.default_rng(1))
    _log_setup(run, lr, 1)
    for epoch in range(EPOCHS):
        with np.errstate(all="ignore"):
            model.step(model.gradients(data.x, data.y), lr)
            loss, accuracy = model.loss(data.x, data.y)
        run.log_metrics({"train_loss": loss, "train_accuracy": accuracy}, step=epoch)
        if np.isnan(loss):  # inf first, then NaN once inf - inf appears
            return epoch
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            val_loss, val_accuracy = model.loss(data.x_val, data.y_val)
            run.log_metrics({"val_loss": val_loss, "val_accuracy": val_accuracy}, step=epoch)
    path = files / f"{run.run_name}.npz"
    model.save(path)
    run.log_file(str(path), name="model.npz", media_type="application/octet-stream")
    return None


def _train_parallel(experiment: str, name: str, data: Data, lr: float, store: Path) -> None:
    """Two workers, one shard each, averaging gradients every step (a data-parallel run)."""
    model = Model(np.random.default_rng(1))
    shards = np.array_split(np.arange(len(data.y)), 2)
    grads: list[list[object]] = [[], []]

    def average() -> None:  # runs once per step, after both workers computed theirs
        model.step([(a + b) / 2 for a, b in zip(*grads, strict=True)], lr)

    barrier = threading.Barrier(2, action=average)

    def worker(rank: int) -> None:
        x, y = data.x[shards[rank]], data.y[shards[rank]]
        with Run(experiment, name, store=store, worker=f"rank-{rank}") as run:
            if rank == 0:
                _log_setup(run, lr, 2)
            for epoch in range(EPOCHS):
                grads[rank] = model.gradients(x, y)
                loss, accuracy = model.loss(x, y)
                run.log_metrics({"train_loss": loss, "train_accuracy": accuracy}, step=epoch)
                barrier.wait()  # the model is updated when both workers are here
                if rank == 0 and (epoch % 10 == 9 or epoch == EPOCHS - 1):
                    val_loss, val_accuracy = model.loss(data.x_val, data.y_val)
                    run.log_metrics(
                        {"val_loss": val_loss, "val_accuracy": val_accuracy}, step=epoch
                    )

    threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_demo(store: Path, *, stamp: str | None = None) -> DemoResult:
    """Run the demo into ``store``; each call makes a new experiment ``demo-<time>``."""
    started = time.perf_counter()
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    experiment = f"demo-{stamp}"
    rng = np.random.default_rng(0)
    x, y = moons(800, rng)
    data = Data(x[:600], y[:600], x[600:], y[600:])
    names: list[str] = []
    diverged_at = -1
    with tempfile.TemporaryDirectory(prefix="runstream-demo-") as tmp:
        files = Path(tmp)
        for lr in (*SWEEP, DIVERGING):
            name = f"lr-{lr:g}".replace(".", "-")
            names.append(name)
            bad = None
            try:
                with Run(experiment, name, store=store) as run, warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # the NaN is the point
                    bad = _train(run, data, lr, files)
                    if bad is not None:
                        raise FloatingPointError(f"train_loss is NaN at step {bad}: diverged")
            except FloatingPointError:
                diverged_at = -1 if bad is None else bad
        parallel = "lr-0-1-data-parallel"
        _train_parallel(experiment, parallel, data, 0.1, store)
        names.append(parallel)
        best = best_run(experiment, "val_accuracy", maximize=True, store=store)
        unassigned = f"{experiment}-eval"
        accuracy = _evaluate(best.run_name, experiment, unassigned, store, files)
    return DemoResult(
        experiment_name=experiment,
        run_names=names,
        diverged_run=names[len(SWEEP)],
        diverged_at=diverged_at,
        parallel_run=parallel,
        unassigned_run=unassigned,
        best_run=best.run_name,
        best_accuracy=accuracy,
        seconds=time.perf_counter() - started,
    )


def _evaluate(source: str, experiment: str, name: str, store: Path, files: Path) -> float:
    """An unassigned run: the best model on fresh data, with a confusion matrix file."""
    model = Model(np.random.default_rng(1))
    weights = np.load(files / f"{source}.npz")
    model.w1, model.b1, model.w2 = weights["w1"], weights["b1"], weights["w2"]
    model.b2 = float(weights["b2"])
    x, y = moons(400, np.random.default_rng(7))
    loss, accuracy = model.loss(x, y)
    predicted = np.sign(model.forward(x)[1])
    matrix = [[int(np.sum((y == t) & (predicted == p))) for p in (-1, 1)] for t in (-1, 1)]
    csv = files / "confusion.csv"
    csv.write_text(
        "actual,predicted_lower,predicted_upper\n"
        f"lower,{matrix[0][0]},{matrix[0][1]}\nupper,{matrix[1][0]},{matrix[1][1]}\n"
    )
    with Run(None, name, store=store) as run:
        run.log_parameters({"source_experiment": experiment, "source_run": source})
        run.log_metrics({"test_loss": loss, "test_accuracy": accuracy}, step=0)
        run.log_file(str(csv), name="confusion.csv", media_type="text/csv")
    return accuracy

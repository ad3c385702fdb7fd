"""The Keras 3 callback in real (short) trainings, on the torch backend."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from runstream import Run  # noqa: E402
from runstream.integrations.keras import RunstreamCallback  # noqa: E402

# Keras 3.15's own code, under numpy 2: not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

EPOCHS, BATCH, SAMPLES = 3, 16, 48  # 36 training samples after the 25% split: 3 batches


def compiled_model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES, 4), dtype=np.float32)
    return x, x.sum(axis=1)


def test_fit_logs_hyperparameters_epochs_and_batches(tmp_path: Path) -> None:
    model = compiled_model()
    x, y = data()
    with Run("keras", "fit", store=tmp_path) as run:
        history = model.fit(
            x,
            y,
            epochs=EPOCHS,
            batch_size=BATCH,
            validation_split=0.25,
            verbose=0,
            callbacks=[RunstreamCallback(run, hyperparameters={"data": "synthetic"})],
        )
        run.flush()
        assert run.stats.points_pending == 0  # the run is still the caller's: still open
    record = run.record()
    assert record.status == "Completed"
    steps_per_epoch = 3
    assert record.parameters["epochs"] == EPOCHS
    assert record.parameters["steps"] == steps_per_epoch
    assert record.parameters["optimizer"] == "Adam"
    assert record.parameters["optimizer/learning_rate"] == pytest.approx(0.01)
    assert record.parameters["model/parameters"] == model.count_params()
    assert record.parameters["data"] == "synthetic"
    # Epoch metrics: SageMaker's example (name as in logs, step=epoch), equal to History.
    for name in ("loss", "mae", "val_loss", "val_mae"):
        series = run.series(name)
        assert series.step.tolist() == list(range(EPOCHS))
        np.testing.assert_allclose(series.last, history.history[name], rtol=1e-6)
    # Batch metrics: at the global step, counting from 1.
    batch_loss = run.series("batch_loss")
    assert batch_loss.step.tolist() == list(range(1, EPOCHS * steps_per_epoch + 1))
    # The last batch of an epoch reports the epoch's running mean: the epoch's loss.
    last_of_epochs = batch_loss.last[steps_per_epoch - 1 :: steps_per_epoch]
    np.testing.assert_allclose(last_of_epochs, history.history["loss"], rtol=1e-6)


def test_a_callback_with_names_makes_and_closes_its_run(tmp_path: Path) -> None:
    x, y = data()
    callback = RunstreamCallback(
        experiment_name="keras", run_name="own", store=tmp_path, log_every_n_steps=2
    )
    compiled_model().fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[callback])
    run = Run("keras", "own", store=tmp_path)
    record = run.record()
    assert record.status == "Completed"
    assert run.series("batch_loss").step.tolist() == [2, 4, 6]  # 3 batches an epoch, every 2
    assert run.series("loss").step.tolist() == [0, 1]


def test_bad_arguments_are_refused_early() -> None:
    with pytest.raises(ValueError, match="log_every_n_steps"):
        RunstreamCallback(experiment_name="keras", log_every_n_steps=-1)
    with pytest.raises(ValueError, match="needs an experiment_name"):
        RunstreamCallback(run_name="orphan")


@pytest.mark.slow
def test_several_workers_log_into_one_run(
    tmp_path: Path, run_script: Any, parameter_workers: Any
) -> None:
    run_script("keras_fit.py", str(tmp_path), envs=[{"RANK": "0"}, {"RANK": "1"}])
    run = Run("keras", "workers", store=tmp_path)
    record = run.record()
    assert sorted(worker.worker for worker in record.workers) == ["rank-0", "rank-1"]
    assert all(worker.status == "Completed" for worker in record.workers)
    assert parameter_workers(tmp_path) == {"rank-0"}  # hyperparameters: the first worker's
    for worker in ("rank-0", "rank-1"):
        assert run.series("batch_loss", worker=worker).step.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert run.series("loss").count.tolist() == [2, 2]  # merged over the two workers

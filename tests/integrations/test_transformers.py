"""The transformers ``TrainerCallback`` in real (short) trainings on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
from transformers import Trainer, TrainingArguments

from runstream import Run, RunNotFoundError
from runstream.integrations.transformers import RunstreamCallback

SAMPLES, BATCH, EPOCHS = 32, 8, 2  # 4 steps an epoch


class Regression(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
        out = self.net(x).squeeze(-1)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def data() -> list[dict[str, Any]]:
    torch.manual_seed(0)
    return [{"x": torch.rand(4), "labels": torch.tensor(1.0)} for _ in range(SAMPLES)]


def arguments(root: Path) -> Any:
    return TrainingArguments(
        str(root / "out"),
        report_to="none",
        logging_steps=1,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH,
        learning_rate=0.01,
        eval_strategy="epoch",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )


def test_training_logs_arguments_steps_and_epoch_evaluations(tmp_path: Path) -> None:
    callback = RunstreamCallback(experiment_name="transformers", run_name="fit", store=tmp_path)
    trainer = Trainer(
        Regression(),
        arguments(tmp_path),
        train_dataset=data(),
        eval_dataset=data()[:8],
        callbacks=[callback],
    )
    trainer.train()
    run = Run("transformers", "fit", store=tmp_path)
    record = run.record()
    assert record.status == "Completed"
    assert record.parameters["learning_rate"] == 0.01
    assert record.parameters["num_train_epochs"] == EPOCHS
    assert record.parameters["model/parameters"] == 5
    history = trainer.state.log_history
    train_logs = [entry for entry in history if "loss" in entry]
    loss = run.series("loss")
    assert loss.step.tolist() == [entry["step"] for entry in train_logs] == list(range(1, 9))
    np.testing.assert_allclose(loss.last, [entry["loss"] for entry in train_logs])
    # One evaluation per epoch, at the step that ended the epoch, with its epoch.
    assert run.series("eval_loss").step.tolist() == [4, 8]
    epoch = run.series("epoch")
    assert epoch.last[np.isin(epoch.step, [4, 8])].tolist() == [1.0, 2.0]
    assert run.series("train_runtime").step.tolist() == [8]


def test_evaluate_after_training_is_written_and_the_run_left(tmp_path: Path) -> None:
    with Run("transformers", "given", store=tmp_path) as run:
        trainer = Trainer(
            Regression(),
            arguments(tmp_path),
            train_dataset=data(),
            eval_dataset=data()[:8],
            callbacks=[RunstreamCallback(run)],
        )
        trainer.train()
        trainer.evaluate()
        run.flush()
        assert run.series("eval_loss").count.tolist() == [1, 2]  # step 8: epoch end + ours
    assert run.record().status == "Completed"


@pytest.mark.slow
def test_under_torchrun_each_rank_is_a_worker_and_the_main_one_logs(
    tmp_path: Path, run_script: Any, parameter_workers: Any
) -> None:
    run_script("transformers_ddp.py", str(tmp_path), envs=[{}])
    run = Run("transformers", "ddp", store=tmp_path)
    record = run.record()
    assert sorted(worker.worker for worker in record.workers) == ["rank-0", "rank-1"]
    assert all(worker.status == "Completed" for worker in record.workers)
    assert parameter_workers(tmp_path) == {"rank-0"}
    # 32 samples over 2 ranks, 4 a batch: 4 steps an epoch, 2 epochs; the loss is averaged
    # over the ranks before it is logged, so only the main process logs it.
    assert run.series("loss", worker="rank-0").step.tolist() == list(range(1, 9))
    with pytest.raises(RunNotFoundError, match="no metric named 'loss'"):
        run.series("loss", worker="rank-1")

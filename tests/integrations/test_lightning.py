"""The PyTorch Lightning logger in real (short) fits on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from lightning.pytorch import LightningModule, Trainer  # noqa: E402

from runstream import Run  # noqa: E402
from runstream.integrations.lightning import RunstreamLogger  # noqa: E402

# Lightning 2.6's own code, under torch 2.13: not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated",
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LitLogger:UserWarning",
)

EPOCHS, BATCHES = 3, 4


class Regression(LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )
        self.logged: list[tuple[int, float]] = []

    def training_step(self, batch: Any, index: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("diverged")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.logged.append((self.global_step, loss.item()))
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> Any:
    torch.manual_seed(0)
    x = torch.rand(BATCHES * 8, 4)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1)), 8)


def trainer(logger: RunstreamLogger, root: Path) -> Any:
    return Trainer(
        logger=logger,
        max_epochs=EPOCHS,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=root,
    )


def test_fit_logs_hyperparameters_and_metrics_at_lightnings_steps(tmp_path: Path) -> None:
    model = Regression()
    trainer(RunstreamLogger("lightning", "fit", store=tmp_path), tmp_path).fit(
        model, loader(), loader()
    )
    run = Run("lightning", "fit", store=tmp_path)
    record = run.record()
    assert record.status == "Completed"
    assert record.parameters == {"lr": 0.05, "hidden": 8, "fail_at": -1}
    step_loss = run.series("train_loss_step")
    assert step_loss.step.tolist() == [step for step, _ in model.logged]
    assert step_loss.last.tolist() == pytest.approx([loss for _, loss in model.logged])
    # Epoch-end values at the step Lightning gives them: the last step of each epoch.
    epoch_ends = [BATCHES * (epoch + 1) - 1 for epoch in range(EPOCHS)]
    assert run.series("train_loss_epoch").step.tolist() == epoch_ends
    assert run.series("val_loss").step.tolist() == epoch_ends
    epochs = run.series("epoch")
    assert epochs.last[epochs.step == epoch_ends[-1]].tolist() == [EPOCHS - 1]


def test_a_failed_fit_marks_the_run_failed(tmp_path: Path) -> None:
    logger = RunstreamLogger("lightning", "failed", store=tmp_path)
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(logger, tmp_path).fit(Regression(fail_at=5), loader(), loader())
    run = Run("lightning", "failed", store=tmp_path)
    assert run.record().status == "Failed"
    assert run.series("train_loss_step").step.tolist() == [0, 1, 2, 3, 4]


def test_a_run_entered_by_the_caller_stays_open(tmp_path: Path) -> None:
    with Run("lightning", "given", store=tmp_path) as run:
        logger = RunstreamLogger(run=run)
        assert (logger.name, logger.version) == ("lightning", "given")
        trainer(logger, tmp_path).fit(Regression(), loader(), loader())
        run.log_metric("test_score", 0.5)  # still entered after the fit
    assert run.record().status == "Completed"
    assert run.series("test_score").count.tolist() == [1]


@pytest.mark.slow
def test_ddp_ranks_log_as_workers_of_one_run(
    tmp_path: Path, run_script: Any, parameter_workers: Any
) -> None:
    run_script("lightning_ddp.py", str(tmp_path), envs=[{}])
    run = Run("lightning", "ddp", store=tmp_path)
    record = run.record()
    assert sorted(worker.worker for worker in record.workers) == ["rank-0", "rank-1"]
    assert all(worker.status == "Completed" for worker in record.workers)
    assert parameter_workers(tmp_path) == {"rank-0"}
    # 64 samples, 2 ranks, batches of 8: 4 steps an epoch on each rank, 2 epochs.
    for worker in ("rank-0", "rank-1"):
        assert run.series("train_loss", worker=worker).step.tolist() == list(range(8))

"""A two-process DDP fit on the CPU; Lightning's launcher starts the second process by
running this script again."""

from __future__ import annotations

import sys
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from runstream.integrations.lightning import RunstreamLogger


class Regression(LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, index: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def main(store: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1)), 8)
    trainer = Trainer(
        logger=RunstreamLogger("lightning", "ddp", store=store),
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=store,
    )
    trainer.fit(Regression(), loader)


if __name__ == "__main__":
    main(sys.argv[1])

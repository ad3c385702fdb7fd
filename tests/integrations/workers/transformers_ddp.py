"""A two-process ``Trainer`` run under torchrun, on the CPU (gloo): this script launches
torchrun on itself, which sets ``RANK`` and ``LOCAL_RANK`` for each process."""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from runstream.integrations.transformers import RunstreamCallback


class Regression(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
        out = self.net(x).squeeze(-1)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def main(store: str) -> None:
    torch.manual_seed(0)
    data = [{"x": torch.rand(4), "labels": torch.tensor(1.0)} for _ in range(32)]
    args = TrainingArguments(
        os.path.join(store, "out"),
        report_to="none",
        logging_steps=1,
        num_train_epochs=2,
        per_device_train_batch_size=4,
        save_strategy="no",
        use_cpu=True,
        ddp_backend="gloo",
        disable_tqdm=True,
    )
    callback = RunstreamCallback(experiment_name="transformers", run_name="ddp", store=store)
    Trainer(Regression(), args, train_dataset=data, callbacks=[callback]).train()


if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ:
        main(sys.argv[1])
    else:
        from torch.distributed.run import main as torchrun

        torchrun(["--standalone", "--nproc-per-node=2", __file__, *sys.argv[1:]])

"""TensorBoard: ``torch.utils.tensorboard.SummaryWriter`` with its defaults."""

from __future__ import annotations

from collections.abc import Callable

from .base import Adapter, module

__all__ = ("TensorBoard",)


class TensorBoard(Adapter):
    style = "pos"  # add_scalar(tag, scalar_value, global_step)
    distributions = ("torch", "tensorboard", "numpy")

    @property
    def _logdir(self) -> str:
        return str(self.context.workdir / "tensorboard")

    def open(self) -> Callable[..., object]:
        self.writer = module("torch.utils.tensorboard").SummaryWriter(log_dir=self._logdir)
        return self.writer.add_scalar  # type: ignore[no-any-return]

    def close(self) -> None:
        self.writer.close()

    def read_back(self) -> dict[str, int]:
        accumulators = module("tensorboard.backend.event_processing.event_accumulator")
        reader = accumulators.EventAccumulator(self._logdir, size_guidance={"scalars": 0})
        reader.Reload()
        tags = set(reader.Tags()["scalars"])
        count = sum(len(reader.Scalars(n)) for n in self.context.names if n in tags)
        return {"event files": count}

"""A PyTorch Lightning logger that writes to a runstream run::

    from lightning.pytorch import Trainer
    from runstream.integrations.lightning import RunstreamLogger

    trainer = Trainer(logger=RunstreamLogger("mnist", "baseline"), max_epochs=5)

- ``log_hyperparams``: the ``save_hyperparameters()`` values, nested ones flattened as
  ``outer/inner``, from global rank 0 only;
- ``log_metrics``: every ``self.log`` value at Lightning's step (the optimizer steps done,
  which it also uses for metrics logged at the end of an epoch, alongside an ``epoch``
  metric); ``on_step`` and ``on_epoch`` values get Lightning's ``_step``/``_epoch`` suffixes.
- ``finalize``: closes the run (``Completed``, or ``Failed`` when the fit failed or was
  interrupted); a run you passed in and entered yourself stays open.

With DDP every rank logs into the same run under its worker name: the launcher's ``RANK``
when there is one, else ``rank-<global rank>`` (Lightning's own launcher exports none).
Works with the ``lightning`` package, or ``pytorch_lightning`` when that is the one installed.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

try:
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the older package name
    from pytorch_lightning.loggers.logger import Logger
    from pytorch_lightning.utilities import rank_zero_only

from ._common import RunHolder, log_hyperparameters, worker_for_rank

if TYPE_CHECKING:
    from .._run._run import Run

__all__ = ("RunstreamLogger",)


class RunstreamLogger(Logger):  # type: ignore[misc]
    """Log a Lightning ``Trainer`` into a run.

    :param experiment_name: the experiment (with ``run_name``, the run); without names and
        without ``run``, :func:`runstream.load_run`'s run (in context, or the environment's)
    :param run: a run to log into instead
    :param run_options: passed to :class:`runstream.Run` when the logger makes the run
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        run_name: str | None = None,
        *,
        run: Run | None = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        self._holder = RunHolder(run, experiment_name, run_name, run_options)
        # What Lightning names checkpoint folders after (<root>/<name>/<version>/).
        self._name = run.experiment_name if run is not None else experiment_name
        self._version = run.run_name if run is not None else run_name

    @property
    def name(self) -> str:
        return self._name or "runstream"

    @property
    def version(self) -> str:
        return self._version or "run"

    @property
    def experiment(self) -> Run:
        """The run, entered on first use (by every rank: each logs as its own worker)."""
        rank = int(getattr(rank_zero_only, "rank", 0) or 0)
        world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)  # Lightning's launcher sets it
        return self._holder.open(worker=worker_for_rank(rank, world_size))

    @rank_zero_only  # type: ignore[untyped-decorator]
    def log_hyperparams(
        self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        log_hyperparameters(self.experiment, params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.experiment.log_metrics(metrics, step=step)

    def finalize(self, status: str) -> None:
        if self._holder.is_open:
            self._holder.close(None if status == "success" else RuntimeError(f"fit {status}"))

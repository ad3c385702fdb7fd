"""A Keras 3 callback that logs a ``fit`` into a runstream run.

The SageMaker documentation's own example logs ``logs`` at ``on_epoch_end`` with
``step=epoch``; this callback does that, and also logs the training batches::

    from runstream import Run
    from runstream.integrations.keras import RunstreamCallback

    with Run("mnist", "baseline") as run:
        model.fit(x, y, epochs=5, callbacks=[RunstreamCallback(run)])

- at the start, the hyperparameters (first worker only): ``epochs``, ``steps`` per epoch, the
  optimizer's class and scalar settings (``optimizer/learning_rate``...), the model's
  parameter count, and whatever you pass as ``hyperparameters``;
- after each epoch, every metric in ``logs`` under its own name (``loss``, ``val_loss``...)
  at ``step=epoch``;
- every ``log_every_n_steps`` training batches, the batch ``logs`` as ``batch_<name>`` at the
  global step (batches done since ``fit`` began, counting from 1). Keras reports them as
  averages over the epoch so far.

The callback declares itself ``async_safe``: Keras then runs its batch hook in a worker
thread, so converting the batch ``logs`` to numbers never stalls the training loop.
Several workers (torchrun, SageMaker hosts): each process logs into the same run under its
worker name, from ``RANK`` and the like.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from ._common import RunHolder, env_rank, log_hyperparameters, scalars

if TYPE_CHECKING:
    from .._run._run import Run

__all__ = ("RunstreamCallback",)


class RunstreamCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Log a Keras ``fit`` into a run.

    :param run: the run to log into; default: one named by ``experiment_name`` and
        ``run_name``, else :func:`runstream.load_run`'s (the run in context or the
        environment's). A run you entered yourself stays open after ``fit``.
    :param log_every_n_steps: log the batch metrics every this many batches (0: never)
    :param hyperparameters: more parameters to log with Keras's own
    :param run_options: passed to :class:`runstream.Run` when the callback makes the run
    """

    async_safe = True  # Keras may dispatch the batch hook to a thread (see module docs)

    def __init__(
        self,
        run: Run | None = None,
        *,
        experiment_name: str | None = None,
        run_name: str | None = None,
        log_every_n_steps: int = 1,
        hyperparameters: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        if not isinstance(log_every_n_steps, int) or log_every_n_steps < 0:
            raise ValueError(f"log_every_n_steps must be an int >= 0, got {log_every_n_steps!r}")
        self._holder = RunHolder(run, experiment_name, run_name, run_options)
        self._every = log_every_n_steps
        self._extra = dict(hyperparameters or {})
        self._lock = threading.Lock()
        self._run: Run | None = None  # while fit runs
        self._steps_before_epoch = 0  # training batches of the epochs already ended
        self._batches_in_epoch = 0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._run = run = self._holder.open()
        self._steps_before_epoch = self._batches_in_epoch = 0
        if env_rank() == 0:
            log_hyperparameters(run, {**self._hyperparameters(), **self._extra})

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # May run in Keras's worker threads, in any order: the step comes from the batch
        # index, not from a counter of calls.
        with self._lock:
            self._batches_in_epoch = max(self._batches_in_epoch, batch + 1)
        step = self._steps_before_epoch + batch + 1
        if self._run is not None and self._every and step % self._every == 0:
            self._run.log_metrics(scalars(logs, prefix="batch_"), step=step)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # Keras has waited for every batch hook of the epoch before calling this.
        with self._lock:
            self._steps_before_epoch += self._batches_in_epoch
            self._batches_in_epoch = 0
        if self._run is not None:
            self._run.log_metrics(scalars(logs), step=epoch)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._run = None
        self._holder.close()

    def _hyperparameters(self) -> dict[str, Any]:
        fit = self.params or {}
        params: dict[str, Any] = {"epochs": fit.get("epochs"), "steps": fit.get("steps")}
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            config = optimizer.get_config()
            params["optimizer/learning_rate"] = _learning_rate(optimizer)
            params.update(
                {
                    f"optimizer/{name}": value
                    for name, value in config.items()
                    if isinstance(value, int | float | str) and name != "learning_rate"
                }
            )
        if model is not None and getattr(model, "built", False):
            params["model/parameters"] = int(model.count_params())
        return params


def _learning_rate(optimizer: Any) -> Any:
    """The learning rate as a number, or a schedule's name."""
    rate = optimizer.learning_rate
    try:
        return float(keras.ops.convert_to_numpy(rate))
    except (TypeError, ValueError):
        return type(rate).__name__

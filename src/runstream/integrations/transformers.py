"""A Hugging Face ``transformers`` ``TrainerCallback`` that logs a ``Trainer`` into a run::

    from transformers import Trainer, TrainingArguments
    from runstream.integrations.transformers import RunstreamCallback

    args = TrainingArguments("out", report_to="none", logging_steps=10)
    trainer = Trainer(model, args, train_dataset=data,
                      callbacks=[RunstreamCallback(experiment_name="bert", run_name="lr-3e-5")])

- at the start of training, from the main process only: the ``TrainingArguments``
  (``to_sanitized_dict()``), the model's ``config`` as ``model/<name>``, and its number of
  parameters;
- every time the ``Trainer`` logs (each ``logging_steps``, each evaluation, the final
  summary): every number in ``logs`` at ``state.global_step``. ``logs`` carries ``epoch``, so
  per-epoch evaluations (``eval_strategy="epoch"``) keep the epoch they belong to.

The ``Trainer`` averages the loss over all processes before it logs, so by default only the
main process logs metrics; ``all_workers=True`` makes every process log its own ``logs`` into
the run under its worker name (``RANK`` under torchrun, else ``rank-<process index>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from ._common import RunHolder, log_hyperparameters, scalars, worker_for_rank

if TYPE_CHECKING:
    from .._run._run import Run

__all__ = ("RunstreamCallback",)


class RunstreamCallback(TrainerCallback):  # type: ignore[misc]
    """Log a ``transformers.Trainer`` into a run.

    :param run: the run to log into; default: one named by ``experiment_name`` and
        ``run_name``, else :func:`runstream.load_run`'s (in context, or the environment's)
    :param all_workers: log metrics from every process, not just the main one
    :param run_options: passed to :class:`runstream.Run` when the callback makes the run
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        experiment_name: str | None = None,
        run_name: str | None = None,
        all_workers: bool = False,
        **run_options: Any,
    ) -> None:
        self._holder = RunHolder(run, experiment_name, run_name, run_options)
        self._all_workers = all_workers
        self._training = False

    def _open(self, args: Any) -> Run:
        return self._holder.open(worker=worker_for_rank(args.process_index, args.world_size))

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        run = self._open(args)
        self._training = True
        if not state.is_world_process_zero:
            return
        params: dict[str, Any] = dict(args.to_sanitized_dict())
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            params["model"] = config.to_dict()
        if model is not None and hasattr(model, "parameters"):
            params["model/parameters"] = sum(p.numel() for p in model.parameters())
        log_hyperparameters(run, params)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not (state.is_world_process_zero or self._all_workers):
            return
        self._open(args).log_metrics(scalars(logs), step=state.global_step)
        if not self._training:  # evaluate() outside train(): write it now, leave the run
            self._holder.close()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        self._holder.close()

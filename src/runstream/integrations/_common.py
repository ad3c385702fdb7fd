"""What the integrations share: the run they log into, this worker's name, hyperparameters."""

from __future__ import annotations

import argparse
import logging
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

from .._core._environment import ENV_WORKER, RANK_VARIABLES, worker_identity
from .._run._load import load_run
from .._run._run import Run, is_entered

__all__ = (
    "RunHolder",
    "env_rank",
    "flatten",
    "log_hyperparameters",
    "scalars",
    "worker_for_rank",
)

_log = logging.getLogger("runstream")
_MAX_STRING = 2500  # the service's limit on a string parameter


def worker_for_rank(rank: int, world_size: int) -> str | None:
    """The worker name for a framework's global rank, when the environment has none.

    torchrun and MPI export ``RANK``-like variables, which name the worker on their own;
    Lightning's own launcher does not, so its rank is turned into the same name here.
    """
    if world_size <= 1 or os.environ.get(ENV_WORKER):
        return None
    if any(os.environ.get(variable) for variable in RANK_VARIABLES):
        return None
    return worker_identity(environ={**os.environ, "RANK": str(rank)})


def env_rank() -> int:
    """This process's global rank from the launcher's variables (0 without a launcher)."""
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 0


class RunHolder:
    """The run an integration logs into, entered for the length of a training.

    The run is the one given, else one made from ``experiment_name``/``run_name``, else
    :func:`~runstream.load_run` (the run in context, or one a parent process exported). It is
    entered when training starts; a run the caller already entered is left to the caller's
    ``with`` block (entering it again is refused, as the official SDK refuses it): the
    training only flushes it at the end.
    """

    def __init__(
        self,
        run: Run | None,
        experiment_name: str | None,
        run_name: str | None,
        run_options: Mapping[str, Any],
    ) -> None:
        if run is not None and (experiment_name or run_name):
            raise ValueError("pass either run= or experiment_name=/run_name=, not both")
        if run_name and not experiment_name:
            raise ValueError(f"run_name={run_name!r} needs an experiment_name")
        self._run = run
        self._names = (experiment_name, run_name)
        self._options = dict(run_options)
        self._entered = False
        self._callers = False  # the run was entered by the caller, who will close it

    @property
    def is_open(self) -> bool:
        return self._entered

    def open(self, worker: str | None = None) -> Run:
        """The run, entered (once) so that it accepts metrics."""
        if self._run is None:
            experiment_name, run_name = self._names
            options = dict(self._options)
            if worker is not None:
                options.setdefault("worker", worker)
            if experiment_name:
                self._run = Run(experiment_name, run_name, **options)
            else:
                self._run = load_run(**options)
        if not self._entered:
            self._callers = is_entered(self._run)
            if not self._callers:
                self._run.__enter__()
            self._entered = True
        return self._run

    def close(self, error: BaseException | None = None) -> None:
        """Leave the run: the last flush, and the worker's status (Failed with ``error``);
        a run the caller entered is only flushed, its block records how it ends."""
        if self._entered:
            self._entered = False
            assert self._run is not None
            if self._callers:
                self._run.flush()
            else:
                self._run.__exit__(type(error) if error else None, error, None)


def flatten(params: Mapping[str, Any] | argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as one level, ``outer/inner`` names, ``None`` left out."""
    if isinstance(params, argparse.Namespace):
        params = vars(params)
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, argparse.Namespace):
            flat.update(flatten(vars(value), f"{name}/"))
        elif value is not None:
            flat[name] = value
    return flat


def log_hyperparameters(run: Run, params: Mapping[str, Any] | argparse.Namespace) -> None:
    """Log what a framework calls hyperparameters, shaped to the service's rules.

    Numbers stay numbers, anything else becomes a string cut to 2,500 characters; past the
    run's 300 parameters the rest are left out with one warning, never an error that would
    stop the training.
    """
    for name, value in flatten(params).items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # a parameter, unlike a metric, is a setting: keep it readable
        elif not isinstance(value, int | float):
            value = str(value)[:_MAX_STRING]
        try:
            run.log_parameter(name[:320], value)
        except ValueError as exc:
            _log.warning("runstream: hyperparameters not all logged: %s", exc)
            return


def scalars(logs: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """The entries of a framework's ``logs`` that are metrics: numbers and one-element
    tensors (left on their device); strings, lists and the like are not."""
    if not logs:
        return {}
    return {f"{prefix}{name}": value for name, value in logs.items() if _is_scalar(value)}


def _is_scalar(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    if not hasattr(type(value), "__float__"):
        return False
    numel = getattr(value, "numel", None)
    size = numel() if callable(numel) else getattr(value, "size", None)
    return size == 1

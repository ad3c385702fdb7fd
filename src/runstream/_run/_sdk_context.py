"""Jobs launched inside ``with Run(...)`` carry the run, as with the official SDK.

The official SDK's Estimator, Processor, Transformer and ``@remote`` ask
``sagemaker.experiments._run_context._RunContext.get_current_run()`` for the run whose
``experiment_config`` a new job gets (``sagemaker.utils.check_and_get_run_experiment_config``;
an ``experiment_config`` passed by hand still wins). runstream wraps that classmethod: it
answers the official run entered, if any, else the runstream run entered in this thread or
task (runstream's current run is a ``ContextVar``; a run without an experiment has no
experiment config and is not offered).

Nothing is imported for it: if the official SDK is already imported the class is patched
now, otherwise an import hook patches it when (if ever) it is imported. The logging calls
never see any of this.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ("install",)

_TARGET = "sagemaker.experiments._run_context"
_MARK = "_runstream_patched"
_lock = threading.Lock()
_state: dict[str, Any] = {"installed": False, "current": None}


def install(current: Callable[[], Any]) -> None:
    """Offer ``current()``'s run to the official SDK's jobs (idempotent, thread-safe)."""
    with _lock:
        if _state["installed"]:
            return
        _state["installed"] = True
        _state["current"] = current
        module = sys.modules.get(_TARGET)
        if module is not None:
            _patch(module)
        else:
            sys.meta_path.insert(0, _Finder())


def _offered() -> Any:
    current = _state["current"]
    run = current() if current is not None else None
    if run is None or getattr(run, "experiment_name", None) is None:
        return None
    return run


def _patch(module: ModuleType) -> None:
    context = getattr(module, "_RunContext", None)
    if context is None or getattr(context, _MARK, False):
        return

    def get_current_run(cls: Any) -> Any:
        official = cls._context_run
        return official if official is not None else _offered()

    context.get_current_run = classmethod(get_current_run)
    setattr(context, _MARK, True)


class _Loader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader) -> None:
        self._wrapped = wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._wrapped.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing but the official run-context module, and patches it once loaded."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec.loader = _Loader(spec.loader)
        return spec

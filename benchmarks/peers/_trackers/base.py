"""What an adapter is: open a run and hand back its logging call, close it, count it back.

An adapter runs inside its tracker's environment, in a process of its own; ``read_back``
runs in yet another, fresh process, so it counts only what the tracker made durable.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .._timing import CallStyle

__all__ = ("Adapter", "Context", "Unavailable", "load_adapter", "module")


class Unavailable(Exception):
    """The tracker cannot run here (say why); the harness skips it and prints the reason."""


@dataclass(frozen=True)
class Context:
    """Where and under which names a run logs.

    :ivar workdir: the run's scratch folder (its store, logs and files go here)
    :ivar endpoint: the moto server's URL, for the trackers that talk to AWS
    """

    workdir: Path
    experiment: str
    run: str
    names: tuple[str, ...]
    endpoint: str | None = None


class Adapter:
    """Subclass per tracker (and mode). Third-party modules come through :func:`module`."""

    style: ClassVar[CallStyle] = "kw"
    distributions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: Context) -> None:
        self.context = context

    def open(self) -> Callable[..., object]:
        """Start a run; return the call the loop makes (see :data:`CallStyle`)."""
        raise NotImplementedError

    def close(self) -> None:
        """End the run; return when the tracker says its data is written."""
        raise NotImplementedError

    def read_back(self) -> dict[str, int]:
        """Count the points of this run through the tracker's own API, per place read."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """How this tracker was driven, for the table's notes."""
        return []

    def versions(self) -> dict[str, str]:
        found = {}
        for name in self.distributions:
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                found[name] = "not installed"
        return found


def module(name: str) -> Any:
    """Import a tracker's module, typed ``Any``: the harness type-checks without them."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise Unavailable(f"cannot import {name}: {error}") from error


def load_adapter(path: str, context: Context) -> Adapter:
    """The adapter ``module:Class``."""
    module_name, _, class_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    adapter = cls(context)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"{path} is not an Adapter")
    return adapter

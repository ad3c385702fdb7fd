"""The sink interface: what a remote backend gives the sync agent so the agent can drive it.

A *sink* is a remote copy of the store (SageMaker Experiments and S3; an MLflow tracking
server). The *agent* (:mod:`._agent`; the same engine runs in ``runstream sync``) owns
everything that is the same for every sink: one process per store and its lease, when to
start and when to exit (idle, linger), which runs to serve, a round for each in turn, the
progress shown, and the reports (``runstream status``, ``Run.stats.sync``). A sink says

- **what it sends**: :meth:`Connection.sender` returns a :class:`RunSender` for one run,
  whose :meth:`~RunSender.round` sends what is pending now (its own planning: SageMaker
  sends each worker's series in BatchPutMetrics calls of 10 data, MLflow the merged series
  in ``runs/log-batch`` calls of 1,000 points);
- **how a call is acknowledged**: a round records every acknowledged call in the store's
  journal before it sends the next one, so an agent killed mid-batch resumes after the last
  acknowledged call and sends nothing twice; a sink's :meth:`Sink.status` reads that back;
- **its budget**: :meth:`Sink.data_per_second` (the lag the status shows is measured in it);
  a sink paces its own calls within it.

Failures are classified the same way everywhere (:class:`Failure`): throttling and
transient errors are retried with back-off, refused items reported and kept locally,
refused credentials *block* a run (nothing sent, everything kept). Nothing a sink does
ever raises into a training loop: the agent is another process.

:data:`SINKS` maps a backend name (``Run(..., backend=NAME)``) to ``"module:attribute"``
of its :class:`Sink`, imported only when that backend is used, so a process imports a
sink's SDK only if it needs it.
"""

from __future__ import annotations

import enum
import importlib
import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._core._records import SyncStatus
    from .._store import LocalStore

__all__ = (
    "ENV_MAX_LAG",
    "SINKS",
    "Connection",
    "Failure",
    "Outcome",
    "RunSender",
    "Sink",
    "SyncConfig",
    "available_sinks",
    "sink_named",
)


# -- what a failed call means --------------------------------------------------------------


class Failure(enum.Enum):
    """What to do about a failed call (each sink classifies its service's errors)."""

    THROTTLED = "throttled"  # slow down, then send the same again
    TRANSIENT = "transient"  # network or 5xx: back off, then send the same again
    AUTH = "auth"  # credentials refused: block the run until they change, keep everything
    REJECTED = "rejected"  # the request itself is wrong: report it, never resend it
    EXISTS = "exists"  # create-or-load: the entity is there already (success)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A classified failure: what to do, and the service's code and message."""

    failure: Failure
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


# -- how the agent paces every sink --------------------------------------------------------

ENV_MAX_LAG = "RUNSTREAM_MAX_LAG"


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """How the agent paces its rounds (a sink's per-API rates are its own).

    :param interval: seconds between rounds while nothing is pending
    :param horizon: a round sends at most this many seconds of a sink's budget, then other
        runs get a turn (the journal's cursors say where it resumes)
    :param max_lag: the lag bound: a backlog that would take longer than this many seconds
        of the budget to send has its oldest steps grouped (``RUNSTREAM_MAX_LAG``; a sink
        without grouping, such as MLflow, sends everything and reports the lag)
    :param max_chunks: chunks one series reads per round (bounds memory)
    :param lease_ttl: seconds a sender's claim on a run lasts without renewal
    :param blocked_retry: seconds between attempts while credentials are refused
    :param max_backoff: the longest wait after a failure
    :param file_concurrency: uploads in flight per run
    :param hosts_recheck: seconds between reads of the other hosts' status while this host
        is done and the run is not (SageMaker: one trial component for several hosts)
    :param hosts_watch: how long a sender keeps reading them, at most, after this host is
        done; then the host that finishes last decides
    """

    interval: float = 1.0
    horizon: float = 2.0
    max_lag: float = 600.0
    max_chunks: int = 512
    lease_ttl: float = 30.0
    blocked_retry: float = 60.0
    max_backoff: float = 30.0
    file_concurrency: int = 4
    hosts_recheck: float = 5.0
    hosts_watch: float = 30.0

    @classmethod
    def from_environment(cls) -> SyncConfig:
        """``RUNSTREAM_MAX_LAG``, and (for tests) ``RUNSTREAM_SYNC_INTERVAL`` and
        ``RUNSTREAM_SYNC_MAX_BACKOFF``, over the defaults."""
        found = cls()
        for field_name, variable in (
            ("max_lag", ENV_MAX_LAG),
            ("interval", "RUNSTREAM_SYNC_INTERVAL"),
            ("max_backoff", "RUNSTREAM_SYNC_MAX_BACKOFF"),
        ):
            text = os.environ.get(variable)
            if text:
                try:
                    value = float(text)
                except ValueError:
                    value = -1.0
                if not value > 0:
                    raise ValueError(f"{variable}={text!r}: must be a positive number of seconds")
                found = replace(found, **{field_name: value})  # type: ignore[arg-type]
        return found


# -- what a sink gives the agent -----------------------------------------------------------


class RunSender(Protocol):
    """One run's sync to one sink, a round at a time, in the agent's event loop."""

    #: why the run cannot be sent now (credentials refused), else None
    blocked: str | None
    #: another live process holds the run's lease (a ``runstream sync``): let it send
    elsewhere: bool

    @property
    def ready(self) -> bool:
        """False while backing off after a failure."""

    async def round(self) -> bool:
        """Send what is pending now, recording each acknowledged call before the next.
        True when everything known was acknowledged. Never raises: a failure is recorded
        in the journal (and backs off)."""

    async def release(self) -> None:
        """Give up the run's lease (the agent stops serving it)."""


class Connection(Protocol):
    """A sink's open clients in the agent (one per agent, shared by the sink's runs)."""

    def sender(self, run_id: int) -> RunSender:
        """The sender of one registered run."""


class Sink(Protocol):
    """A remote backend, by name: its runs, its budget, how to connect, what is left."""

    #: the backend name: ``Run(..., backend=name)``, the key of its runs in the journal
    name: str

    def run_ids(self, store: LocalStore, run_ids: Sequence[int] | None = None) -> list[int]:
        """The store's runs registered for this sink (of ``run_ids``, if given)."""

    def data_per_second(self) -> float | None:
        """The budget: metric data per second the service takes (from the environment);
        None when the service publishes none."""

    def status(self, store: LocalStore, run_id: int) -> SyncStatus:
        """A run's sync state from the journal alone (no network)."""

    async def check(self, store: LocalStore, run_ids: Sequence[int]) -> Outcome | None:
        """One cheap call proving the credentials work for these runs; the failure, if any
        (``runstream sync`` refuses to start on refused credentials)."""

    def credentials_message(self, outcome: Outcome, store: LocalStore) -> str:
        """What to tell the user when the service refuses the credentials."""

    def connect(
        self, store: LocalStore, owner: str, config: SyncConfig
    ) -> AbstractAsyncContextManager[Connection]:
        """Open the clients (no network I/O needed yet); closed with the block."""


# -- registration --------------------------------------------------------------------------

#: Backend name -> ``"module:attribute"`` of its :class:`Sink`.
SINKS: dict[str, str] = {
    "sagemaker": "runstream._backends.sagemaker._sink:SINK",
    "mlflow": "runstream._backends.mlflow._sink:SINK",
}


def sink_named(name: str) -> Sink:
    """The sink of backend ``name`` (imported on first use).

    :raises KeyError: no sink has that name
    :raises ImportError: the sink's extra is not installed
    """
    module, _, attribute = SINKS[name].partition(":")
    found: Sink = getattr(importlib.import_module(module), attribute)
    return found


def available_sinks(names: Sequence[str] | None = None) -> list[Sink]:
    """The sinks whose extras are installed (of ``names``, if given): a store can only hold
    runs registered for those (registering needs the sink's preflight)."""
    found = []
    for name in SINKS if names is None else names:
        try:
            found.append(sink_named(name))
        except ImportError:
            continue
    return found

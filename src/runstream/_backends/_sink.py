"""The sink interface: what a remote backend declares so the sync agent can drive it.

A *sink* is a remote copy of the store (SageMaker Experiments and S3; MLflow). It knows
how to talk to its service and nothing else: the *agent* (:mod:`._agent`, the same engine
in ``runstream sync``) owns everything around the calls. The agent

- reads what is pending from the store's sync journal (:class:`Journal`, per sink),
- plans metric data at full resolution (one datum per step per series), grouping the
  oldest unsent steps with the smallest uniform stride only when the backlog would exceed
  the lag bound (``RUNSTREAM_MAX_LAG`` seconds of the sink's :class:`Budget`; never with
  ``resolution="full"``),
- paces calls with one token bucket per (sink, API) sized by the budget, halved on
  throttling and regained on success,
- retries what :meth:`Connection.classify` calls throttled or transient, with back-off,
  retries per-item ``retry`` answers alone, reports ``rejected`` ones, and blocks a run whose
  credentials are refused (nothing sent, everything kept),
- records every acknowledged call in the journal *before* the next call, so an agent
  killed mid-batch resumes after the last acknowledged call and sends nothing twice.

A sink never writes the journal's cursors or counters itself; it only answers calls. The
one exception is :meth:`Connection.extras` (objects only one sink has, such as SageMaker's
lineage artifacts for graphs), which records its own progress through the journal it is
given.

Registration: a sink is known by its backend name (``Run(..., backend=NAME)``,
``RUNSTREAM_BACKEND=NAME``). :data:`SINKS` maps each name to ``"module:attribute"``, a
:class:`Sink` factory imported only when the name is used (so the training process never
imports a sink's SDK unless it uses it); :func:`register_sink` adds one at run time (tests,
plugins).
"""

from __future__ import annotations

import enum
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._core._records import RunRecord
    from .._store import LocalStore
    from ._journal import Item, Journal, Target

__all__ = (
    "SINKS",
    "Ack",
    "Budget",
    "Connection",
    "Failure",
    "FileAck",
    "FileToSend",
    "Outcome",
    "RunState",
    "Sink",
    "SinkError",
    "register_sink",
    "sink_named",
)


# -- what a failed call means --------------------------------------------------------------


class Failure(enum.Enum):
    """What the agent does about a failed call (the sink's :meth:`Connection.classify`)."""

    THROTTLED = "throttled"  # slow the bucket down, then send the same again
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


class SinkError(Exception):
    """A sink's own refusal, already classified (raised from :class:`Connection` methods
    where no service exception exists to classify, e.g. an entity of another experiment)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


# -- what a sink declares ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """How fast a sink may send metric data: the agent sizes rounds, the lag bound and its
    token bucket from this.

    :param data_per_call: the most data one :meth:`Connection.send` takes (SageMaker's
        BatchPutMetrics: 10)
    :param calls_per_second: the sustained rate of metric calls (per store: the agent is
        the only sender of a store)
    :param burst: calls that may go at once after an idle spell
    :param control_per_second: the rate of every other call (entities, run updates)
    :param files_concurrency: uploads in flight per run
    """

    data_per_call: int
    calls_per_second: float
    burst: float
    control_per_second: float = 10.0
    files_concurrency: int = 4

    @property
    def data_per_second(self) -> float:
        return self.data_per_call * self.calls_per_second


@dataclass(frozen=True, slots=True)
class Ack:
    """How a :meth:`Connection.send` call was acknowledged, by index into its data.

    Indices in neither map were acknowledged. ``retry``: refused for now (the agent sends
    that datum again, alone, up to a bound); ``rejected``: refused for good (reported,
    kept locally, never resent). A call refused *as a whole* raises instead, and
    :meth:`Connection.classify` says what to do.
    """

    retry: Mapping[int, str] = field(default_factory=dict)
    rejected: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileToSend:
    """A ``log_file`` copy in the store that the sink has not acknowledged as it is now."""

    direction: str  # "input" or "output"
    name: str  # the artifact name
    path: Path  # the content-addressed copy in the store
    sha256: str
    media_type: str | None
    #: ``log_file(extra_args=...)``, kept in the journal by the training process
    extra_args: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class FileAck:
    """Where an uploaded file is now. ``transferred`` is False when the service already
    held these bytes (nothing went over the wire)."""

    uri: str
    etag: str | None
    transferred: bool = True


@dataclass(frozen=True, slots=True)
class RunState:
    """A run as this host's store holds it, for :meth:`Connection.update_run`.

    ``record`` has the run's parameters, artifacts, times, and the status of *this host's*
    workers (``record.status``: Completed when all of them completed, Failed when one
    failed). ``files`` maps (direction, name) of acknowledged files to their URIs (an
    artifact whose file is not uploaded yet is left out until it is). ``host`` names this
    host; a sink that holds one run for several hosts records each host's status under its
    name and computes the run's status from all of them (Completed only when every host
    completed, Failed as soon as one failed, naming it, InProgress otherwise).
    """

    record: RunRecord
    files: Mapping[tuple[str, str], str]
    host: str
    expected_hosts: Sequence[str] = ()


@runtime_checkable
class Connection(Protocol):
    """A sink's open clients, in the agent's event loop (one per agent, shared by runs)."""

    async def check(self) -> None:
        """Prove the credentials work (one cheap call). Raise on failure."""

    async def ensure_run(self, target: Target) -> None:
        """Create or load the run's entities (idempotent: "already exists" is success).
        Called once per run until the journal records them."""

    async def send(self, target: Target, data: Sequence[Item]) -> Ack:
        """Send one metric call of at most ``Budget.data_per_call`` data, in step order per
        series. ``Item.step < 0`` means logged without a step (send no step); ``Item.value``
        is the mean of the datum's points, ``Item.ts`` its last timestamp (epoch seconds).
        Raise when the call fails as a whole."""

    async def put_file(self, target: Target, file: FileToSend) -> FileAck:
        """Upload one file (bounded by ``Budget.files_concurrency`` per run). Raise on
        failure; the agent retries with back-off."""

    def run_fingerprint(self, state: RunState) -> str:
        """A digest of what :meth:`update_run` would send for ``state``: the agent calls
        :meth:`update_run` only when it differs from the last acknowledged one."""

    async def update_run(self, target: Target, state: RunState) -> None:
        """Bring the run's parameters, artifacts (with ``state.files``' URIs), status and
        times up to date. Idempotent (the whole state each time). Raise on failure."""

    async def extras(self, target: Target, journal: Journal) -> bool:
        """Anything else this sink sends (SageMaker: graph documents and their lineage),
        recording its own progress in ``journal``. True when nothing is left."""

    def classify(self, exc: BaseException) -> Outcome:
        """What a failure of any method above means."""


class Sink(Protocol):
    """A remote backend, by name: its budget and how to connect."""

    #: the backend name: ``Run(..., backend=name)``, the journal's key for this sink
    name: str

    def budget(self) -> Budget:
        """The budget now (read from the environment, e.g. ``RUNSTREAM_SAGEMAKER_RATE``)."""

    def connect(self, store: LocalStore) -> AbstractAsyncContextManager[Connection]:
        """Open the clients (no network I/O needed yet); closed with the block."""


# -- registration --------------------------------------------------------------------------

#: Backend name -> ``"module:attribute"`` of a zero-argument callable returning the Sink.
#: SageMaker is not listed yet: its engine (``sagemaker._sender.RunSync``, driven by
#: ``sagemaker._sender.serve_sagemaker``) predates this interface and is what the agent runs
#: for ``backend="sagemaker"``; porting it onto :class:`Connection` is the next step.
SINKS: dict[str, str] = {}
_made: dict[str, Sink] = {}
_lock = threading.Lock()


def register_sink(name: str, factory: str | Callable[[], Sink]) -> None:
    """Make ``backend=name`` a sink: ``factory`` is a callable or ``"module:attribute"``."""
    with _lock:
        _made.pop(name, None)
        if isinstance(factory, str):
            SINKS[name] = factory
        else:
            SINKS[name] = f"<registered>:{name}"
            _made[name] = factory()


def sink_named(name: str) -> Sink:
    """The sink of backend ``name`` (imported on first use).

    :raises KeyError: no sink has that name
    :raises ImportError: the sink's extra is not installed
    """
    with _lock:
        found = _made.get(name)
        if found is not None:
            return found
        module, _, attribute = SINKS[name].partition(":")
        factory: Callable[[], Sink] = getattr(importlib.import_module(module), attribute)
        made = _made[name] = factory()
        return made

"""``Run``: the object a training loop logs into, compatible with ``sagemaker.experiments``.

The current run lives in a :class:`contextvars.ContextVar`, so each thread or asyncio task
can hold its own (the official SDK has one per process). Logging methods never wait and
never do I/O (``log_file`` checks that the file exists, as the official SDK does, and copies
it in the background): they validate and append to :class:`~runstream._ingest.Ingest`.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import time
import warnings
from collections.abc import Generator, Mapping
from contextlib import AsyncExitStack
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, SupportsFloat

import anyio
import msgspec

from .._backends import Sender, job_run, open_senders, resolve_backend
from .._core import _names
from .._core._environment import (
    default_worker,
    exported_identity,
    run_from_environment,
    worker_identity,
    world_size,
)
from .._core._exceptions import FlushTimeoutError, RunContinuedWarning, StoreError
from .._core._ingest import Ingest, PendingFile
from .._core._records import Artifact, ParameterValue, RunRecord, RunStats, Series, Stragglers
from .._flush._flusher import Flusher
from .._flush._spill import replay_spills
from .._store import LocalStore, resolve_store_path
from ._distributed import lookup_run, publish_run

if TYPE_CHECKING:
    from .._core._batch import RunKey

__all__ = ("Flush", "Run", "current_run", "load_run")

_log = logging.getLogger("runstream")
_current: ContextVar[Run | None] = ContextVar("runstream_current_run", default=None)

# Set while load_run constructs the Run it returns: loading a run continues it on purpose.
_loading: ContextVar[bool] = ContextVar("runstream_loading_run", default=False)

_OUTSIDE_CONTEXT = "This method should be called inside context of 'with' statement."
_MAX_PARAMETERS = 300
_MAX_PARAMETER_NAME_LEN = 320
_MAX_STRING_PARAMETER_LEN = 2500
_MAX_ARTIFACT_NAME_LEN = 128


class _TrialComponent:
    """Keeps ``run._trial_component.trial_component_name``, which SDK users read."""

    __slots__ = ("trial_component_name",)

    def __init__(self, name: str) -> None:
        self.trial_component_name = name


class Flush:
    """What :meth:`Run.flush` returns: awaitable in async code, already done in sync code.

    ``await run.flush()`` waits without blocking the event loop; ``run.flush()`` in a run
    entered with ``with`` has already waited when it returns.
    """

    __slots__ = ("_generation", "_run", "_timeout")

    def __init__(self, run: Run, generation: int, timeout: float | None) -> None:
        self._run = run
        self._generation = generation
        self._timeout = timeout

    def __await__(self) -> Generator[Any, None, RunStats]:
        return self._run._await_flush(self._generation, self._timeout).__await__()

    @property
    def stats(self) -> RunStats:
        return self._run.stats


class Run:
    """A run: parameters, metrics by step, artifacts and files, in an experiment.

    The signature is ``sagemaker.experiments.Run``'s; the keyword-only arguments after it are
    runstream's. Names are lowercased and limited to 59 characters each, as the official SDK
    does. Constructing a run creates it in the store, or loads it if it exists.

    :param experiment_name: the experiment; ``None`` makes an *unassigned* run
    :param store: the store directory (default: ``$RUNSTREAM_STORE``, else ``./.runstream``)
    :param worker: this process's name within the run (default: from the environment)
    :param flush_interval: seconds between writes to the store
    :param capacity: points a metric buffers before it is compacted in memory
    :param close_timeout: seconds closing waits for the last flush and file copies
    :param tick: seconds between buffer drains, the timestamp resolution of points logged
        without a timestamp
    :param backend: ``"local"`` (the store only) or ``"sagemaker"`` (the store, synced to
        SageMaker Experiments and S3 in the background); default ``$RUNSTREAM_BACKEND``
    """

    def __init__(
        self,
        experiment_name: str | None,
        run_name: str | None = None,
        experiment_display_name: str | None = None,
        run_display_name: str | None = None,
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        sagemaker_session: object | None = None,
        artifact_bucket: str | None = None,
        artifact_prefix: str | None = None,
        *,
        store: str | os.PathLike[str] | None = None,
        worker: str | None = None,
        flush_interval: float = 1.0,
        capacity: int = 1_000_000,
        close_timeout: float = 60.0,
        tick: float = 0.2,
        backend: str | None = None,
    ) -> None:
        if experiment_name is None:
            if run_name is None:
                raise ValueError("an unassigned run (experiment_name=None) needs a run_name")
            _, run = _names.validate_names("unassigned", run_name)
            experiment = None
        else:
            experiment, run = _names.validate_names(experiment_name, run_name)
        for label, value in (
            ("flush_interval", flush_interval),
            ("close_timeout", close_timeout),
            ("tick", tick),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        if not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"capacity must be an int of at least 2 points, got {capacity!r}")
        self.experiment_name = experiment
        self.run_name = run
        self.run_group_name = _names.run_group_name(experiment) if experiment else None
        tc_name = _names.trial_component_name(experiment, run) if experiment else run
        self._trial_component = _TrialComponent(tc_name)
        self._backend = resolve_backend(backend, experiment, tc_name)
        self.sagemaker_session = sagemaker_session
        self.artifact_bucket = artifact_bucket
        self.artifact_prefix = artifact_prefix
        self.worker = worker_identity(worker)
        self._store_path = resolve_store_path(store)
        self._flush_interval = flush_interval
        self._close_timeout = close_timeout
        self._tick = tick
        self._capacity = capacity
        self._store: LocalStore | None = LocalStore(self._store_path)
        self._key = self._store.ensure_run(
            experiment,
            run,
            display_name=run_display_name,
            tags=tags,
            experiment_display_name=experiment_display_name,
        )
        if not _loading.get():
            _warn_if_continued(self._store, self._key, self.worker, named=worker is not None)
        self._init_logging_state()
        self._in_load = False

    @classmethod
    def _from_store(cls, store: LocalStore, key: RunKey) -> Run:
        """A run read back from a store (by ``list_runs``): readable, not in a context."""
        self = cls.__new__(cls)
        self.experiment_name = key.experiment_name
        self.run_name = key.run_name
        exp = key.experiment_name
        self.run_group_name = _names.run_group_name(exp) if exp else None
        self._trial_component = _TrialComponent(
            _names.trial_component_name(exp, key.run_name) if exp else key.run_name
        )
        self.sagemaker_session = None
        self.artifact_bucket = self.artifact_prefix = None
        self.worker = worker_identity()
        self._store_path = store.path
        self._flush_interval, self._close_timeout, self._tick = 1.0, 60.0, 0.2
        self._capacity = 1_000_000
        self._store = store
        self._key = key
        self._backend = "local"
        self._init_logging_state()
        self._in_load = False
        return self

    def _init_logging_state(self) -> None:
        self._ingest = Ingest(capacity=self._capacity)
        # The hot path looks metrics up here; it is swapped for an empty dict outside the
        # context, so a stale name misses and the slow path raises RuntimeError.
        self._lists: dict[str, list[float]] = {}
        self._capacity2 = 2 * self._capacity
        self._flusher: Flusher | None = None
        self._thread: threading.Thread | None = None
        self._exit_stack: AsyncExitStack | None = None
        self._depth = 0
        self._token: Token[Run | None] | None = None
        self._env: Any = None
        self._parameter_names: set[str] = set()
        self._artifact_names: dict[str, set[str]] = {"input": set(), "output": set()}
        self._senders: list[Sender] = []

    # -- identity, as the official SDK ----------------------------------------------------

    @property
    def experiment_config(self) -> dict[str, str]:
        """The ``ExperimentConfig`` a SageMaker job launched inside this run would carry."""
        return {
            "ExperimentName": self.experiment_name or "",
            "TrialName": self.run_group_name or "",
            "RunName": self._trial_component.trial_component_name,
        }

    @property
    def store_path(self) -> str:
        return str(self._store_path)

    def __repr__(self) -> str:
        return f"Run(experiment_name={self.experiment_name!r}, run_name={self.run_name!r})"

    def __getstate__(self) -> None:
        raise NotImplementedError("Instance of Run type is not allowed to be pickled.")

    # -- the hot path ---------------------------------------------------------------------

    def log_metric(
        self,
        name: str,
        value: SupportsFloat,
        timestamp: Any | None = None,
        step: int | None = None,
    ) -> None:
        """Record a metric value at a step. Never blocks and never does I/O.

        :param value: a number (NaN and infinities are kept, with one warning per run), or a
            0-d/one-element PyTorch, JAX or CuPy tensor: one on a GPU stays there and is
            copied off asynchronously, without syncing the device (see ``_tensors``)
        :param timestamp: a ``datetime`` or epoch seconds within the service's window
            (two weeks back, two hours ahead); default: now, to within ``tick``
        :param step: a non-negative ``int``; points without a step are bucketed per second
        :raises RuntimeError: outside a ``with`` block
        """
        try:
            buf = self._lists.get(name)
        except TypeError:  # an unhashable name: let the slow path say what is wrong
            buf = None
        if buf is None:
            buf = self._new_metric(name)
        if type(value) is not float:
            number = self._ingest.metric_value(name, value, step, timestamp)
            if number is None:  # a device tensor: it reaches the buffer once copied
                return
            value = number
        if value - value:  # NaN or infinite: finite values give 0.0
            self._ingest.warn_nonfinite(name, value)
        if step is None:
            step = -1
        elif type(step) is not int or step < 0 or step > 2147483647:  # _names.MAX_STEP
            step = _names.check_step(step)
        if timestamp is not None:
            self._ingest.stamped.append((name, value, step, _names.coerce_timestamp(timestamp)))
            return
        buf += (step, value)
        if len(buf) > self._capacity2:
            self._ingest.compact(name)

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int | None = None) -> None:
        """Record several metrics at one step; the same rules as :meth:`log_metric`."""
        if step is None:
            step = -1
        elif type(step) is not int or step < 0 or step > _names.MAX_STEP:
            step = _names.check_step(step)
        lists = self._lists
        try:
            items = metrics.items()
        except AttributeError:
            raise TypeError(
                f"log_metrics takes a mapping of metric names to values, got {metrics!r}"
            ) from None
        for name, value in items:
            try:
                buf = lists.get(name)
            except TypeError:  # an unhashable name: let the slow path say what is wrong
                buf = None
            if buf is None:
                buf = self._new_metric(name)
            if type(value) is not float:
                number = self._ingest.metric_value(name, value, None if step < 0 else step, None)
                if number is None:  # a device tensor: it reaches the buffer once copied
                    continue
                value = number
            if value - value:
                self._ingest.warn_nonfinite(name, value)
            buf += (step, value)
            if len(buf) > self._capacity2:
                self._ingest.compact(name)

    def _new_metric(self, name: str) -> list[float]:
        self._check_context()
        buf = self._ingest.register(name)
        self._lists[name] = buf
        return buf

    def _check_context(self) -> None:
        if self._depth == 0:
            raise RuntimeError(_OUTSIDE_CONTEXT)

    # -- parameters, artifacts, files -----------------------------------------------------

    def log_parameter(self, name: str, value: str | int | float) -> None:
        """Record a parameter; the last write wins. Never blocks."""
        self._check_context()
        if not isinstance(name, str) or not 1 <= len(name) <= _MAX_PARAMETER_NAME_LEN:
            raise ValueError(
                f"parameter name {name!r} must be a string of 1 to {_MAX_PARAMETER_NAME_LEN} "
                "characters"
            )
        stored = _parameter_value(name, value)
        if name not in self._parameter_names:
            if len(self._parameter_names) >= _MAX_PARAMETERS:
                raise ValueError(
                    f"cannot log parameter {name!r}: a run holds at most {_MAX_PARAMETERS} "
                    "parameters (the service's limit)"
                )
            self._parameter_names.add(name)
        self._ingest.parameters.append((name, stored, time.time()))

    def log_parameters(self, parameters: Mapping[str, str | int | float]) -> None:
        """Record several parameters; the last write wins."""
        for name, value in parameters.items():
            self.log_parameter(name, value)

    def log_artifact(
        self, name: str, value: str, media_type: str | None = None, is_output: bool = True
    ) -> None:
        """Record an artifact: a name and a value (usually a URI), as the official SDK."""
        self._check_context()
        if not isinstance(value, str):
            raise TypeError(f"artifact value must be a string, got {value!r}")
        direction = self._claim_artifact(name, is_output)
        self._ingest.artifacts.append(
            (direction, name, Artifact(value=value, media_type=media_type), time.time())
        )

    def log_file(
        self,
        file_path: str,
        name: str | None = None,
        media_type: str | None = None,
        is_output: bool | None = True,
        extra_args: dict[str, Any] | None = None,
    ) -> None:
        """Store a file in the background and record it as an artifact.

        The file is copied (content-addressed, sha256) off the training thread; closing the
        run waits for it. Only the existence check happens here, as in the official SDK.
        """
        self._check_context()
        path = os.path.expanduser(file_path)
        if not os.path.isfile(path):
            raise ValueError(f"{path} does not exist or is not a file. Please supply a file path.")
        from .._flush._files import guess_media_type

        artifact_name = name or os.path.basename(path)
        direction = self._claim_artifact(artifact_name, bool(is_output))
        self._ingest.files.append(
            PendingFile(
                path=os.path.abspath(path),
                name=artifact_name,
                media_type=media_type or guess_media_type(path),
                direction=direction,
            )
        )

    def _claim_artifact(self, name: str, is_output: bool) -> str:
        # Checked here: a name the store refuses would fail every later write of the run.
        if not isinstance(name, str) or not 1 <= len(name) <= _MAX_ARTIFACT_NAME_LEN:
            raise ValueError(
                f"artifact name {name!r} must be a string of 1 to {_MAX_ARTIFACT_NAME_LEN} "
                "characters (the service's limit)"
            )
        direction = "output" if is_output else "input"
        names = self._artifact_names[direction]
        if len(names) >= _names.MAX_ARTIFACTS:
            raise ValueError(
                f"Cannot add more than {_names.MAX_ARTIFACTS} {direction}_artifacts under run"
            )
        names.add(name)
        return direction

    # -- context management ---------------------------------------------------------------

    def __enter__(self) -> Run:
        if self._enter_nested():
            return self
        store = self._store_or_open()
        self._senders = self._open_senders(store)
        self._open(store)
        self._flusher = self._make_flusher()
        flusher = self._flusher
        senders = self._senders
        ready = threading.Event()

        def serve_in_thread() -> None:
            async def main() -> None:
                ready.set()
                async with anyio.create_task_group() as tasks:
                    for sender in senders:  # a backend's sender, beside the flusher
                        tasks.start_soon(sender.run, _run_inline)
                    await flusher.serve(_run_inline)

            try:
                anyio.run(main)
            finally:
                flusher.mark_stopped()

        self._thread = threading.Thread(
            target=serve_in_thread, name=f"runstream-flusher[{self.run_name}]", daemon=True
        )
        self._thread.start()
        ready.wait()
        return self

    async def __aenter__(self) -> Run:
        if self._enter_nested():
            return self
        store = await anyio.to_thread.run_sync(self._store_or_open)
        self._senders = await anyio.to_thread.run_sync(self._open_senders, store)
        await anyio.to_thread.run_sync(self._mark_started, store)
        self._flusher = self._make_flusher()
        limiter = anyio.CapacityLimiter(1)

        async def run_in_worker(fn: Any) -> Any:
            return await anyio.to_thread.run_sync(fn, limiter=limiter)

        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        await task_group.start(self._flusher.serve, run_in_worker)
        for sender in self._senders:
            task_group.start_soon(sender.run, run_in_worker)
        self._exit_stack = stack
        self._activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._exit_nested():
            return
        assert self._flusher is not None
        assert self._thread is not None
        self._deactivate()
        generation = self._flusher.request_close()
        if not self._flusher.wait_sync(generation, self._close_timeout):
            self._flusher.abandon()
        self._record_outcome(exc)  # before the senders' last round: they send it too
        self._close_senders()
        # The last attempt is bounded by the store's busy timeout, then it spills.
        self._thread.join(timeout=self._close_timeout)
        self._report_leftovers()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._exit_nested():
            return
        assert self._flusher is not None
        assert self._exit_stack is not None
        self._deactivate()
        # Shielded: a cancelled task still gets its data written (bounded by close_timeout).
        # The task group is left outside the shield, in the scope it was entered in.
        generation = self._flusher.request_close()
        try:
            with anyio.CancelScope(shield=True):
                if not await self._flusher.wait_async(generation, self._close_timeout):
                    self._flusher.abandon()
                # Before the senders' last round, so they send the outcome too.
                await anyio.to_thread.run_sync(self._record_outcome, exc)
        finally:
            self._close_senders()
            # Outside the shield: the task group was entered before it, and cancel scopes
            # must exit in reverse order. The flusher's last write is shielded on its own.
            await self._exit_stack.aclose()
            self._report_leftovers()

    def _enter_nested(self) -> bool:
        """Re-entering the same run (``with load_run()`` inside its ``with Run()``) nests."""
        if self._depth:
            self._depth += 1
            return True
        current = _current.get()
        if current is not None and current is not self:
            raise RuntimeError("It is not allowed to use nested 'with' statements on the Run.")
        return False

    def _exit_nested(self) -> bool:
        if self._depth > 1:
            self._depth -= 1
            if self._flusher is not None:
                self._flusher.request_flush()
            return True
        return False

    def _store_or_open(self) -> LocalStore:
        if self._store is None:
            self._store = LocalStore(self._store_path)
        return self._store

    def _open_senders(self, store: LocalStore) -> list[Sender]:
        return open_senders(
            self._backend,
            store,
            self._key.run_id,
            artifact_bucket=self.artifact_bucket,
            artifact_prefix=self.artifact_prefix,
            sagemaker_session=self.sagemaker_session,
            close_timeout=self._close_timeout,
        )

    def _close_senders(self) -> None:
        for sender in self._senders:
            sender.close()

    def _open(self, store: LocalStore) -> None:
        self._mark_started(store)
        self._activate()

    def _mark_started(self, store: LocalStore) -> None:
        try:
            replay_spills(store)
        except StoreError as exc:  # the store is busy: the files wait for the next run
            _log.warning("runstream: spilled batches not replayed yet: %s", exc)
        params, inputs, outputs = store.existing_names(self._key.run_id)
        self._parameter_names = params
        self._artifact_names = {"input": inputs, "output": outputs}
        store.set_worker_status(
            self._key.run_id,
            self.worker,
            "InProgress",
            started=time.time(),
            world_size=world_size(),
        )

    def _activate(self) -> None:
        self._lists = {}
        self._depth = 1
        self._token = _current.set(self)
        self._env = exported_identity(self.experiment_name, self.run_name, self.store_path)
        self._env.__enter__()
        publish_run(self.experiment_name, self.run_name, self.store_path)

    def _make_flusher(self) -> Flusher:
        assert self._store is not None
        return Flusher(
            self._ingest,
            self._store,
            run_id=self._key.run_id,
            worker=self.worker,
            tick=self._tick,
            flush_interval=self._flush_interval,
            high_water=max(1, self._capacity // 2),
            final_timeout=self._close_timeout,
        )

    def _deactivate(self) -> None:
        self._depth = 0
        self._lists = {}
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context than entered: clear it there
                _current.set(None)
            self._token = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def _record_outcome(self, exc: BaseException | None) -> None:
        """Record how the block ended, after the last flush: Completed means the data is in."""
        assert self._store is not None
        status, message = "Completed", None
        if exc is not None:
            # An error fails the run; an interruption (Ctrl-C, cancellation, exit) stops it.
            status = "Failed" if isinstance(exc, Exception) else "Stopped"
            message = str(exc)[: _names.MAX_STATUS_MESSAGE_LEN] or type(exc).__name__
        try:
            self._store.set_worker_status(
                self._key.run_id, self.worker, status, message=message, ended=time.time()
            )
        except Exception:
            _log.exception("runstream: could not record the status of run %r", self.run_name)

    def _report_leftovers(self) -> None:
        """Once the flusher has stopped: say what the store did not take, and where it is."""
        flusher = self._flusher
        assert flusher is not None
        if flusher.pending_points or flusher.files_pending or flusher.points_spilled:
            stats = self.stats
            warnings.warn(
                f"runstream: closing run {self.run_name!r}: the store did not take everything "
                f"within {self._close_timeout}s: {stats.points_spilled} points spilled to "
                f"{self._store_path / 'spill'} (written by the next run), "
                f"{stats.points_pending} points and {stats.files_pending} files not written; "
                f"last error: {stats.last_error}",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- flushing and counters ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> Flush:
        """Write everything logged so far to the store (and finish pending file copies).

        In a run entered with ``with`` this blocks until done; with ``async with``, await the
        result. :raises FlushTimeoutError: if ``timeout`` seconds pass first.
        """
        self._check_context()
        assert self._flusher is not None
        generation = self._flusher.request_flush()
        if self._thread is not None and not self._flusher.wait_sync(generation, timeout):
            raise self._timeout_error(timeout)
        return Flush(self, generation, timeout)

    async def _await_flush(self, generation: int, timeout: float | None) -> RunStats:
        assert self._flusher is not None
        if not await self._flusher.wait_async(generation, timeout):
            raise self._timeout_error(timeout)
        return self.stats

    def _timeout_error(self, timeout: float | None) -> FlushTimeoutError:
        stats = self.stats
        return FlushTimeoutError(
            f"flush timed out after {timeout}s with {stats.points_pending} points and "
            f"{stats.files_pending} files pending; last error: {stats.last_error}",
            pending_points=stats.points_pending,
            pending_files=stats.files_pending,
        )

    @property
    def stats(self) -> RunStats:
        """Counters: points logged, written and pending, files, errors. Cheap to read."""
        flusher = self._flusher
        ingest = self._ingest
        if flusher is None:
            buffered = ingest.buffered_points()
            return RunStats(
                points_logged=buffered + ingest.pending_points,
                points_written=0,
                points_pending=buffered + ingest.pending_points,
            )
        # Written and spilled first, then logged (consistent with drains): pending is never
        # negative, and a batch being written still counts as pending, never as nothing.
        written = flusher.points_written
        spilled = flusher.points_spilled + flusher.points_rejected
        dropped = ingest.device_lost  # device values no copy nor read could recover
        logged = ingest.logged_points()
        sync = next((c.status for c in self._senders if c.status is not None), None)
        if sync is not None:  # plus what is not even in the store yet
            pending = logged - written - spilled - dropped
            sync = msgspec.structs.replace(sync, points_pending=sync.points_pending + pending)
        return RunStats(
            points_logged=logged,
            points_written=written,
            points_pending=logged - written - spilled - dropped,
            points_spilled=flusher.points_spilled,
            points_rejected=flusher.points_rejected,
            points_dropped=dropped,
            parameters_pending=len(ingest.parameters) + flusher.unwritten_parameters,
            files_pending=flusher.files_pending + len(ingest.files),
            files_written=flusher.files_written,
            flushes=flusher.flushes,
            write_errors=flusher.write_errors,
            compactions=ingest.compactions,
            last_error=flusher.last_error,
            sync=sync,
        )

    # -- the read side --------------------------------------------------------------------

    def record(self) -> RunRecord:
        """The run as stored now: status, parameters, metric summaries, artifacts, workers."""
        return self._store_or_open().records([self._key])[0]

    def series(self, metric_name: str, worker: str | None = None) -> Series:
        """A metric's series by step, merged over workers unless ``worker`` names one."""
        return self._store_or_open().series(self._key.run_id, metric_name, worker)

    def worker_series(self, metric_name: str) -> dict[str, Series]:
        """The metric's series for each worker that logged it (the per-worker view)."""
        return self._store_or_open().worker_series(self._key.run_id, metric_name)

    def stragglers(self, metric_name: str) -> Stragglers:
        """Per step, the worker with the largest value (the slowest, for a step time)."""
        return self._store_or_open().stragglers(self._key.run_id, metric_name)

    def close(self) -> None:
        """Release the store connection of a run that is not in a ``with`` block."""
        if self._depth:
            raise RuntimeError("close() a run by leaving its 'with' block")
        if self._store is not None:
            self._store.close()
            self._store = None


async def _run_inline(fn: Any) -> Any:
    """The flusher's own thread has nothing else to do: run blocking work right there."""
    return fn()


def _parameter_value(name: str, value: object) -> ParameterValue:
    """Numbers stay numbers (NaN/inf kept, with a warning); anything else becomes ``str``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            warnings.warn(
                f"parameter {name!r} is {number}; runstream keeps it (the official SDK drops it)",
                RuntimeWarning,
                stacklevel=3,
            )
        return number
    text = value if isinstance(value, str) else str(value)
    if len(text) > _MAX_STRING_PARAMETER_LEN:
        raise ValueError(
            f"parameter {name!r} is {len(text)} characters long; a string parameter holds at "
            f"most {_MAX_STRING_PARAMETER_LEN} (the service's limit)"
        )
    return text


def current_run() -> Run | None:
    """The run entered in this thread or task, if any."""
    return _current.get()


def _warn_if_continued(store: LocalStore, key: RunKey, worker: str, *, named: bool) -> None:
    """``Run(...)`` of a run that already ended says so, once, and how to start anew.

    A script started again (a new process, so a new ``<host>-<pid>`` worker) or a worker
    that ended there before continues the run; a new worker with a name of its own (a rank,
    ``worker=``) joins it, as a launcher's workers do, and says nothing.
    """
    ended = store.ended(key.run_id)
    if ended is None:
        return
    status, end, workers = ended
    named = named or worker != default_worker()
    if named and worker not in workers:
        return
    when = "" if end is None else time.strftime(" on %Y-%m-%d at %H:%M:%S", time.localtime(end))
    where = f"of experiment {key.experiment_name!r}" if key.experiment_name else "(unassigned)"
    fresh = store.free_run_name(key.experiment_name, key.run_name)
    experiment = repr(key.experiment_name) if key.experiment_name else "None"
    warnings.warn(
        f"run {key.run_name!r} {where} already ended ({status}{when}); this Run continues "
        "it, and what it logs merges with the earlier points (a step logged again is "
        f"averaged with the old value). To start a new run, give it a new name, such as "
        f"Run({experiment}, {fresh!r}), or run_name=None for a generated one; to continue "
        f"it on purpose, use load_run({key.run_name!r}, {experiment}), which does not warn.",
        RunContinuedWarning,
        stacklevel=3,
    )


def load_run(
    run_name: str | None = None,
    experiment_name: str | None = None,
    sagemaker_session: object | None = None,
    artifact_bucket: str | None = None,
    artifact_prefix: str | None = None,
    tags: list[dict[str, str]] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    worker: str | None = None,
    backend: str | None = None,
    wait: float = 60.0,
) -> Run:
    """Find the run to log into: explicit names, then the run in context, then the
    environment a parent run exported (see :mod:`runstream._environment`), then the
    ExperimentConfig of the SageMaker job this process runs in (which selects
    ``backend="sagemaker"`` unless ``backend`` says otherwise), then, in a
    ``torch.distributed`` job, the run another rank entered (waiting up to ``wait`` seconds
    for it).

    :raises ValueError: ``run_name`` without ``experiment_name``
    :raises RuntimeError: no run could be found
    """
    if run_name and not experiment_name:
        raise ValueError(
            "Invalid input: experiment_name is missing when run_name is supplied. "
            "Please supply a valid experiment_name when the run_name is not None."
        )
    if experiment_name and not run_name:
        _log.warning(
            "run_name is None and experiment_name %r is ignored: loading the run in context "
            "or from the environment",
            experiment_name,
        )
    token = _loading.set(True)  # loading continues a run on purpose: no warning
    try:
        if run_name:
            run = Run(
                experiment_name,
                run_name,
                tags=tags,
                sagemaker_session=sagemaker_session,
                artifact_bucket=artifact_bucket,
                artifact_prefix=artifact_prefix,
                store=store,
                worker=worker,
                backend=backend,
            )
        elif (current := _current.get()) is not None:
            run = current
        elif (exported := run_from_environment()) is not None:
            run = _announced_run(exported, sagemaker_session, store, worker, backend)
        elif (job := job_run(sagemaker_session)) is not None:
            run = Run(
                *job,
                tags=tags,
                sagemaker_session=sagemaker_session,
                artifact_bucket=artifact_bucket,
                artifact_prefix=artifact_prefix,
                store=store,
                worker=worker,
                backend=backend or "sagemaker",
            )
        elif (published := lookup_run(wait)) is not None:  # last: it may wait for rank 0
            run = _announced_run(published, sagemaker_session, store, worker, backend)
        else:
            raise RuntimeError(
                "Failed to load a Run object. Please make sure a Run object has been "
                "initialized already."
            )
    finally:
        _loading.reset(token)
    run._in_load = True
    return run


def _announced_run(
    identity: tuple[str | None, str, str | None],
    sagemaker_session: object | None,
    store: str | os.PathLike[str] | None,
    worker: str | None,
    backend: str | None,
) -> Run:
    """The run another process announced (its environment, or the job's c10d store)."""
    experiment, name, announced_store = identity
    return Run(
        experiment,
        name,
        sagemaker_session=sagemaker_session,
        store=store or announced_store,
        worker=worker,
        backend=backend,
    )

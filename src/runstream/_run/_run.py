"""``Run``: the object a training loop logs into, compatible with ``sagemaker.experiments``.

The current run lives in a :class:`contextvars.ContextVar`, so each thread or asyncio task
can hold its own (the official SDK has one per process). Logging methods never wait and
never do I/O (``log_file`` checks that the file exists, as the official SDK does, and copies
it in the background): they validate and append to :class:`~runstream._core._ingest.Ingest`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, SupportsFloat

import anyio

from .._backends import (
    Sender,
    create_entities,
    open_senders,
    resolve_backend,
    resolve_resolution,
)
from .._core import _names
from .._core._environment import default_worker, exported_identity, worker_identity, world_size
from .._core._exceptions import FlushTimeoutError, RunContinuedWarning
from .._core._ingest import Ingest, PendingFile
from .._core._records import Artifact, RunRecord, RunStats, Series, Stragglers
from .._flush._flusher import Flusher
from .._flush._spill import fallback_dir, replay_spills
from .._flush._stats import run_stats
from .._store import Graph, LocalStore, resolve_store_path, run_graphs
from . import _graphs, _validate
from ._distributed import publish_run
from ._lifecycle import Background
from ._sdk_context import install as _offer_to_official_jobs

if TYPE_CHECKING:
    from .._core._batch import RunKey

__all__ = (
    "Flush",
    "Run",
    "current_run",
    "is_entered",
    "loading",
)

_log = logging.getLogger("runstream")
_current: ContextVar[Run | None] = ContextVar("runstream_current_run", default=None)

# Set while load_run constructs the Run it returns: loading a run continues it on purpose.
_loading: ContextVar[bool] = ContextVar("runstream_loading_run", default=False)

_OUTSIDE_CONTEXT = "This method should be called inside context of 'with' statement."
_NESTED = "It is not allowed to use nested 'with' statements on the {}."


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
        SageMaker Experiments and S3 in the background, by the store's sync agent);
        default ``$RUNSTREAM_BACKEND``
    :param resolution: what a remote backend gets: ``"auto"`` (every step, unless the
        backlog passes ``RUNSTREAM_MAX_LAG``: then the oldest unsent steps are grouped) or
        ``"full"`` (every step, never grouped); default ``$RUNSTREAM_RESOLUTION``
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
        resolution: str | None = None,
    ) -> None:
        args = _validate.check_run_arguments(
            experiment_name,
            run_name,
            experiment_display_name=experiment_display_name,
            run_display_name=run_display_name,
            tags=tags,
            store=store,
            worker=worker,
            flush_interval=flush_interval,
            capacity=capacity,
            close_timeout=close_timeout,
            tick=tick,
            backend=backend,
        )
        experiment, run = args.experiment_name, args.run_name
        _validate.check_optional_text(resolution, "resolution")
        self.experiment_name = experiment
        self.run_name = run
        self.run_group_name = _names.run_group_name(experiment) if experiment else None
        tc_name = _names.trial_component_name(experiment, run)
        self._trial_component = _TrialComponent(tc_name)
        self._backend = resolve_backend(backend, experiment, tc_name)
        self._resolution = resolve_resolution(resolution)
        self.sagemaker_session = sagemaker_session
        self.artifact_bucket = artifact_bucket
        self.artifact_prefix = artifact_prefix
        self.worker = worker_identity(args.worker)
        self._store_path = resolve_store_path(store)
        self._flush_interval = args.flush_interval
        self._close_timeout = args.close_timeout
        self._tick = args.tick
        self._capacity = args.capacity
        self._store: LocalStore | None = LocalStore(self._store_path)
        self._key = self._store.ensure_run(
            experiment,
            run,
            display_name=args.run_display_name,
            tags=args.tags,
            experiment_display_name=args.experiment_display_name,
        )
        # Said when it is entered: constructing a run to read it continues nothing.
        self._continues_on_purpose = _loading.get()
        self._worker_named = args.worker is not None
        # As the official constructor: the backend's entities exist before the block.
        create_entities(
            self._backend,
            self._store,
            self._key.run_id,
            artifact_bucket=artifact_bucket,
            artifact_prefix=artifact_prefix,
            sagemaker_session=sagemaker_session,
        )
        self._init_logging_state()

    @classmethod
    def _from_store(cls, store: LocalStore, key: RunKey) -> Run:
        """A run read back from a store (by ``list_runs``): readable, not in a context."""
        self = cls.__new__(cls)
        self.experiment_name = key.experiment_name
        self.run_name = key.run_name
        exp = key.experiment_name
        self.run_group_name = _names.run_group_name(exp) if exp else None
        self._trial_component = _TrialComponent(_names.trial_component_name(exp, key.run_name))
        self.sagemaker_session = None
        self.artifact_bucket = self.artifact_prefix = None
        self.worker = worker_identity()
        self._store_path = store.path
        self._flush_interval, self._close_timeout, self._tick = 1.0, 60.0, 0.2
        self._capacity = 1_000_000
        self._store = store
        self._key = key
        self._backend = "local"
        self._continues_on_purpose = True  # picked from list_runs(): read, or continued
        self._worker_named = False
        self._resolution = "auto"
        self._init_logging_state()
        return self

    def _init_logging_state(self) -> None:
        self._ingest = Ingest(capacity=self._capacity)
        # The hot path looks metrics up here; it is swapped for an empty dict outside the
        # context, so a stale name misses and the slow path raises RuntimeError.
        self._lists: dict[str, list[float]] = {}
        self._capacity2 = 2 * self._capacity
        self._background: Background | None = None  # since entered (its counters stay)
        self._entered_async = False
        # Which ``with`` blocks are open, as the official SDK tracks them (see __enter__).
        self._in_load = False  # handed out by load_run(): its next ``with`` is a load block
        self._inside_init = False
        self._inside_load = False
        self._token: Token[Run | None] | None = None
        self._env: Any = None
        self._parameter_names: set[str] = set()
        self._artifact_names: dict[str, set[str]] = {"input": set(), "output": set()}
        self._spills_quarantined = 0

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
        :param step: a non-negative ``int``; without one, each call is a point in time of its own
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
        # All or nothing: known names with float values go straight in; anything else is
        # checked, every item, before any is logged.
        try:
            for name, value in items:
                if type(value) is not float or name not in lists:
                    break
            else:
                floats: Any = items  # every value is a float: checked just above
                for name, value in floats:
                    buf = lists[name]
                    if value - value:
                        self._ingest.warn_nonfinite(name, value)
                    buf += (step, value)
                    if len(buf) > self._capacity2:
                        self._ingest.compact(name)
                return
        except TypeError:  # an unhashable name: the checked path says what is wrong
            pass
        self._log_checked_metrics(items, step)

    def _log_checked_metrics(self, items: Any, step: int) -> None:
        """``log_metrics``' slow path: check every name and value, then log them all."""
        self._check_context()
        prepared = [
            (_validate.check_metric_name(name), self._ingest.prepare_value(value))
            for name, value in items
        ]
        for name, value in prepared:
            buf = self._lists.get(name)
            if buf is None:
                buf = self._new_metric(name)
            if not isinstance(value, float):  # a device tensor: buffered once copied
                self._ingest.defer(name, value, None if step < 0 else step, None)
                continue
            if value - value:
                self._ingest.warn_nonfinite(name, value)
            buf += (step, value)
            if len(buf) > self._capacity2:
                self._ingest.compact(name)

    def _new_metric(self, name: str) -> list[float]:
        self._check_context()
        buf = self._ingest.register(_validate.check_metric_name(name))
        self._lists[name] = buf
        return buf

    def _check_context(self) -> None:
        if not (self._inside_init or self._inside_load):
            raise RuntimeError(_OUTSIDE_CONTEXT)

    # -- parameters, artifacts, files -----------------------------------------------------

    def log_parameter(self, name: str, value: str | int | float) -> None:
        """Record a parameter; the last write wins. Never blocks."""
        self._check_context()
        name = _validate.check_parameter_name(name)
        stored = _validate.parameter_value(name, value)
        if name not in self._parameter_names:
            if len(self._parameter_names) >= _validate.MAX_PARAMETERS:
                raise ValueError(
                    f"cannot log parameter {name!r}: a run holds at most "
                    f"{_validate.MAX_PARAMETERS} parameters (the service's limit)"
                )
            self._parameter_names.add(name)
        self._ingest.parameters.append((name, stored, time.time()))

    def log_parameters(self, parameters: Mapping[str, str | int | float]) -> None:
        """Record several parameters; the last write wins. Every name and value is checked
        before any is logged."""
        self._check_context()
        checked = _validate.check_parameters(parameters, self._parameter_names)
        now = time.time()
        for name, stored in checked:
            self._parameter_names.add(name)
            self._ingest.parameters.append((name, stored, now))

    def log_artifact(
        self, name: str, value: str, media_type: str | None = None, is_output: bool = True
    ) -> None:
        """Record an artifact: a name and a value (usually a URI), as the official SDK."""
        self._check_context()
        value = _validate.check_artifact_value(value)
        media_type = _validate.check_media_type(media_type)
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
        media_type = _validate.check_media_type(media_type)
        path = os.path.expanduser(file_path)
        if not os.path.isfile(path):
            raise ValueError(f"{path} does not exist or is not a file. Please supply a file path.")
        from .._flush._files import guess_media_type

        artifact_name = name or os.path.basename(path)
        if extra_args is not None:
            extra_args = _validate.check_extra_args(extra_args)
        direction = self._claim_artifact(artifact_name, bool(is_output))
        if extra_args:
            assert self._background is not None
            for sender in self._background.senders:  # before the copy: in place for its upload
                sender.file_options(direction, artifact_name, extra_args)
        self._ingest.files.append(
            PendingFile(
                path=os.path.abspath(path),
                name=artifact_name,
                media_type=media_type or guess_media_type(path),
                direction=direction,
            )
        )

    # -- graphs: the official SDK's documents, stored with the run, drawn by the dashboard

    def log_precision_recall(
        self,
        y_true: Any,
        predicted_probabilities: Any,
        positive_label: str | int | None = None,
        title: str | None = None,
        is_output: bool = True,
        no_skill: float | None = None,
    ) -> None:
        """Log a precision-recall curve (binary labels; ``positive_label`` unless they are
        {0, 1} or {-1, 1}) and its average precision, as the official SDK's document.

        :raises ValueError: lengths differ, or the labels are not binary
        """
        self._check_context()
        build = _graphs.precision_recall(y_true, predicted_probabilities, positive_label, no_skill)
        self._log_graph("PrecisionRecallCurve", title, is_output, build)

    def log_roc_curve(
        self, y_true: Any, y_score: Any, title: str | None = None, is_output: bool = True
    ) -> None:
        """Log a ROC curve (labels {0, 1} or {-1, 1}) and its area under the curve."""
        self._check_context()
        build = _graphs.roc_curve(y_true, y_score)
        self._log_graph("ROCCurve", title, is_output, build)

    def log_confusion_matrix(
        self, y_true: Any, y_pred: Any, title: str | None = None, is_output: bool = True
    ) -> None:
        """Log a confusion matrix over the sorted labels found in ``y_true`` and ``y_pred``."""
        self._check_context()
        build = _graphs.confusion_matrix(y_true, y_pred)
        self._log_graph("ConfusionMatrix", title, is_output, build)

    def _claim_artifact(self, name: str, is_output: bool) -> str:
        _validate.check_artifact_name(name)
        direction = "output" if is_output else "input"
        names = self._artifact_names[direction]
        if len(names) >= _names.MAX_ARTIFACTS:
            raise ValueError(
                f"Cannot add more than {_names.MAX_ARTIFACTS} {direction}_artifacts under run"
            )
        names.add(name)
        return direction

    # -- context management ---------------------------------------------------------------
    #
    # As the official SDK: a run entered with ``with Run(...)`` refuses any other ``with``
    # while it is current; a ``with load_run()`` of that same run inside its block marks it
    # Completed (or Failed) and flushes when it ends, while the outer block goes on logging.

    def __enter__(self) -> Run:
        if self._enter_context():
            self._entered_async = False
            self._say_if_continued(self._continued())
            self._open()
            self._activate_or_close()
        return self

    async def __aenter__(self) -> Run:
        if self._enter_context():
            self._entered_async = True
            self._say_if_continued(await anyio.to_thread.run_sync(self._continued))
            await anyio.to_thread.run_sync(self._open)
            try:
                self._activate()
            except BaseException as exc:
                self._deactivate()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._close, exc)
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._leave_context(exc):
            self._deactivate()
            self._close(exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._leave_context(exc):
            self._deactivate()
            # Shielded: a cancelled task still gets its data written, bounded by
            # close_timeout; the cancellation is delivered once the run is closed.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._close, exc)

    def _enter_context(self) -> bool:
        """Check that this ``with`` may begin; True when it opens the run (False: a
        ``with load_run()`` inside this run's own block, which is open already)."""
        current = _current.get()
        if self._in_load:
            if self._inside_load:
                raise RuntimeError(_NESTED.format("load_run"))
            if current is not None and current is not self:
                raise RuntimeError(_NESTED.format("Run"))  # one run per context
            self._inside_load = True
            return not self._inside_init
        if current is not None or self._inside_init:
            raise RuntimeError(_NESTED.format("Run"))
        self._inside_init = True
        return True

    def _leave_context(self, exc: BaseException | None) -> bool:
        """Leave the innermost ``with``; True when that closes the run."""
        self._in_load = False
        if self._inside_load:
            self._inside_load = False
            if self._inside_init:  # the run's own block goes on: flush, record, keep open
                with contextlib.suppress(FlushTimeoutError):  # counted; close retries it
                    self._flush_now(self._close_timeout)
                self._record_outcome(exc)
                return False
        self._inside_init = False
        return True

    def _continued(self) -> str | None:
        """What to say when this object's first ``with`` continues a run that had ended
        (blocking: it asks the store); None when there is nothing to say."""
        if self._continues_on_purpose:
            return None
        self._continues_on_purpose = True  # said once; entering it again is on purpose
        try:
            return _continued_message(
                self._store_or_open(), self._key, self.worker, named=self._worker_named
            )
        except BaseException:
            self._inside_init = self._inside_load = False
            raise

    def _open(self) -> None:
        """Everything a run needs before its first point (blocking): the store, the
        backends' credentials check, this worker's status, the flusher's thread. On failure
        it undoes what it did: nothing is left half-open."""
        try:
            with contextlib.ExitStack() as undo:
                store = self._store_or_open()
                senders = self._open_senders(store)
                for sender in senders:
                    undo.callback(sender.close)
                self._mark_started(store)
                background = Background(
                    self._make_flusher(), senders, name=f"runstream-flusher[{self.run_name}]"
                )
                background.start()
                undo.pop_all()
        except BaseException:
            self._inside_init = self._inside_load = False
            raise
        self._background = background

    def _say_if_continued(self, message: str | None) -> None:
        """Warn from the caller's thread, at the caller's line, before anything is opened
        (a warning filter may turn it into an error)."""
        if message is not None:
            try:
                warnings.warn(message, RunContinuedWarning, stacklevel=3)
            except BaseException:
                self._inside_init = self._inside_load = False
                raise

    def _activate_or_close(self) -> None:
        try:
            self._activate()
        except BaseException as exc:
            self._deactivate()
            self._close(exc)
            raise

    def _activate(self) -> None:
        """Make this the current run and export its identity (in the caller's context)."""
        self._lists = {}
        self._token = _current.set(self)
        self._env = exported_identity(self.experiment_name, self.run_name, self.store_path)
        self._env.__enter__()
        publish_run(self.experiment_name, self.run_name, self.store_path)

    def _deactivate(self) -> None:
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

    def _close(self, exc: BaseException | None) -> None:
        """Write what is left (bounded by ``close_timeout``), record how the block ended,
        let the senders send that, and stop (blocking)."""
        background = self._background
        assert background is not None
        self._inside_init = self._inside_load = False
        try:
            background.drain(self._close_timeout)
            self._record_outcome(exc)  # after the last write: Completed means it is in
        finally:
            background.stop(self._close_timeout)
            self._report_leftovers(background.flusher)

    def _store_or_open(self) -> LocalStore:
        if self._store is None:
            self._store = LocalStore(self._store_path)
        return self._store

    def _open_senders(self, store: LocalStore) -> list[Sender]:
        return open_senders(
            self._backend,
            store,
            self._key.run_id,
            self.run_name,
            artifact_bucket=self.artifact_bucket,
            artifact_prefix=self.artifact_prefix,
            sagemaker_session=self.sagemaker_session,
            close_timeout=self._close_timeout,
            resolution=self._resolution,
        )

    def _mark_started(self, store: LocalStore) -> None:
        try:
            self._spills_quarantined = replay_spills(store).quarantined
        except Exception as exc:  # the store is busy: the files wait for the next run
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
            defer=True,  # a full or read-only store: written with the first batch it takes
        )

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
            spills_quarantined=self._spills_quarantined,
        )

    def _record_outcome(self, exc: BaseException | None) -> None:
        """Record how the block ended: Completed, Failed on an error, Stopped when
        interrupted (Ctrl-C, cancellation, exit)."""
        assert self._store is not None
        status, message = "Completed", None
        if exc is not None:
            status = "Failed" if isinstance(exc, Exception) else "Stopped"
            message = str(exc)[: _names.MAX_STATUS_MESSAGE_LEN] or type(exc).__name__
        try:
            self._store.set_worker_status(
                self._key.run_id, self.worker, status, message=message, ended=time.time()
            )
        except Exception:
            _log.exception("runstream: could not record the status of run %r", self.run_name)

    def _report_leftovers(self, flusher: Flusher) -> None:
        """Once the flusher has stopped: say what the store did not take, and where it is."""
        if (
            flusher.pending_points
            or flusher.files_pending
            or flusher.points_spilled
            or flusher.points_lost
        ):
            stats = self.stats
            warnings.warn(
                f"runstream: closing run {self.run_name!r}: the store did not take everything "
                f"within {self._close_timeout}s: {stats.points_spilled} points spilled to "
                f"{self._store_path / 'spill'} or, where that disk would not take them, "
                f"{fallback_dir(self._store_path)} (written by the next run), "
                f"{stats.points_pending} points and {stats.files_pending} files not written, "
                f"{stats.points_lost} points lost; "
                f"last error: {stats.last_error}",
                RuntimeWarning,
                stacklevel=4,
            )

    # -- flushing and counters ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> Flush:
        """Write everything logged so far to the store (and finish pending file copies).

        In a run entered with ``with`` this blocks until done; with ``async with``, await the
        result. :raises FlushTimeoutError: if ``timeout`` seconds pass first.
        """
        self._check_context()
        if self._entered_async:
            assert self._background is not None
            return Flush(self, self._background.flusher.request_flush(), timeout)
        return Flush(self, self._flush_now(timeout), timeout)

    def _flush_now(self, timeout: float | None) -> int:
        assert self._background is not None
        flusher = self._background.flusher
        generation = flusher.request_flush()
        if not flusher.wait_sync(generation, timeout):
            raise self._timeout_error(timeout)
        return generation

    async def _await_flush(self, generation: int, timeout: float | None) -> RunStats:
        assert self._background is not None
        flusher = self._background.flusher
        if not await anyio.to_thread.run_sync(
            flusher.wait_sync, generation, timeout, abandon_on_cancel=True
        ):
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
        background = self._background
        if background is None:
            return run_stats(self._ingest, None, None)
        sync = next((s.status for s in background.senders if s.status is not None), None)
        return run_stats(self._ingest, background.flusher, sync)

    # -- the read side --------------------------------------------------------------------

    def record(self) -> RunRecord:
        """The run as stored now: status, parameters, metric summaries, artifacts, workers."""
        return self._store_or_open().records([self._key])[0]

    def series(self, metric_name: str, worker: str | None = None) -> Series:
        """A metric's series by step, merged over workers unless ``worker`` names one."""
        return self._store_or_open().series(self._key.run_id, metric_name, worker)

    def _log_graph(
        self,
        graph_type: str,
        title: str | None,
        is_output: bool,
        build: Callable[[str], dict[str, Any]],
    ) -> None:
        _graphs.log_graph(
            self._store_or_open(),
            self._key.run_id,
            worker=self.worker,
            backend=self._backend,
            graph_type=graph_type,
            title=title,
            is_output=is_output,
            build=build,
        )

    def graphs(self) -> list[Graph]:
        """The run's graphs (``log_precision_recall`` and the like), as stored."""
        return run_graphs(self._store_or_open(), self._key.run_id)

    def worker_series(self, metric_name: str) -> dict[str, Series]:
        """The metric's series for each worker that logged it (the per-worker view)."""
        return self._store_or_open().worker_series(self._key.run_id, metric_name)

    def stragglers(self, metric_name: str) -> Stragglers:
        """Per step, the worker with the largest value (the slowest, for a step time)."""
        return self._store_or_open().stragglers(self._key.run_id, metric_name)

    def close(self) -> None:
        """Release the store connection of a run that is not in a ``with`` block."""
        if self._inside_init or self._inside_load:
            raise RuntimeError("close() a run by leaving its 'with' block")
        if self._store is not None:
            self._store.close()
            self._store = None


def current_run() -> Run | None:
    """The run entered in this thread or task, if any."""
    return _current.get()


def is_entered(run: Run) -> bool:
    """Whether ``run`` is inside a ``with`` block now (integrations then leave it to it)."""
    return run._inside_init or run._inside_load


def _continued_message(store: LocalStore, key: RunKey, worker: str, *, named: bool) -> str | None:
    """Entering a run that already ended says so, once, and how to start anew.

    A script started again (a new process, so a new ``<host>-<pid>`` worker) or a worker
    that ended there before continues the run; a new worker with a name of its own (a rank,
    ``worker=``) joins it, as a launcher's workers do, and says nothing.
    """
    ended = store.ended(key.run_id)
    if ended is None:
        return None
    status, end, workers = ended
    named = named or worker != default_worker()
    if named and worker not in workers:
        return None
    when = "" if end is None else time.strftime(" on %Y-%m-%d at %H:%M:%S", time.localtime(end))
    where = f"of experiment {key.experiment_name!r}" if key.experiment_name else "(unassigned)"
    fresh = store.free_run_name(key.experiment_name, key.run_name)
    experiment = repr(key.experiment_name) if key.experiment_name else "None"
    return (
        f"run {key.run_name!r} {where} already ended ({status}{when}); this Run continues "
        "it, and what it logs merges with the earlier points (a step logged again is "
        f"averaged with the old value). To start a new run, give it a new name, such as "
        f"Run({experiment}, {fresh!r}), or run_name=None for a generated one; to continue "
        f"it on purpose, use load_run({key.run_name!r}, {experiment}), which does not warn."
    )


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Runs constructed in this block continue a run on purpose (``load_run``): no
    warning that it had ended."""
    token = _loading.set(True)
    try:
        yield
    finally:
        _loading.reset(token)


# Estimators, Processors and Transformers of the official SDK made inside ``with Run(...)``
# get the run's experiment_config (patched only if that SDK is, or gets, imported).
_offer_to_official_jobs(current_run)

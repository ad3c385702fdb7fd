"""The background flusher: drains a run's buffers, aggregates, writes, copies files.

One flusher per entered run, always in a thread and event loop of its own (see
:mod:`runstream._run._lifecycle`), for ``with`` and ``async with`` alike: the training
thread only ever appends to lists, and a training loop that never awaits still has its
points written. Store writes run inline in that loop (it has nothing else to do); file
copies run in a small pool of threads the flusher owns (and joins when it stops), so a
large file never holds up the drains.

Every ``tick`` it drains the buffers (which also timestamps the points); every
``flush_interval``, when ``high_water`` points are pending, or when asked, it writes one
batch to the store. A failed write is kept, merged with later data, and retried with
back-off: nothing is dropped, and the counters say what is pending.

A write the store refuses outright (a permanent error: a type, an overflow, a constraint)
never blocks other data: the batch is written again item by item, only the items the
store refuses are set aside (``.rejected`` spill files, counted in ``points_rejected``), and
everything else lands. What cannot be kept anywhere (the store's database vanished after
points were written to it; no disk would take a spill) is counted in ``points_lost``. A
file copy that fails is retried with back-off and, past the last try, counted in
``files_failed``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from .._core._batch import Batch
from .._store import is_transient
from ._backoff import Backoff
from ._files import store_file
from ._spill import replay_spills, spill_batch

if TYPE_CHECKING:
    from .._core._batch import ArtifactWrite, ParameterWrite
    from .._core._ingest import Ingest, PendingFile
    from .._store import LocalStore

__all__ = ("Flusher",)

_MAX_BACKOFF = 30.0
_FILE_ATTEMPTS = 6  # a failed copy is retried after 1, 2, 4, 8 and 16 ticks (Backoff)
_log = logging.getLogger("runstream")


class Flusher:
    """Moves one run's data from :class:`Ingest` to the store.

    :param tick: seconds between drains (and the timestamp resolution of unstamped points)
    :param flush_interval: seconds between store writes
    :param high_water: pending points that trigger a write before the interval
    :param final_timeout: seconds the last write may take once the loop has ended
    :param spill_rows: step rows an unwritten batch may hold in memory before it is spilled
    :param max_concurrent_files: file copies in flight at once
    """

    def __init__(
        self,
        ingest: Ingest,
        store: LocalStore,
        *,
        run_id: int,
        worker: str,
        tick: float,
        flush_interval: float,
        high_water: int,
        final_timeout: float = 60.0,
        spill_rows: int = 4_000_000,
        max_concurrent_files: int = 4,
        spills_quarantined: int = 0,
    ) -> None:
        self._ingest = ingest
        self._store = store
        self._run_id = run_id
        self._worker = worker
        self._tick = tick
        self._interval = flush_interval
        self._high_water = high_water
        self._files_limiter = max_concurrent_files
        self._final_timeout = final_timeout
        self._unwritten: Batch | None = None
        self._closing = False
        self._requested = 0  # generation asked for by flush()
        self._completed = 0  # generation whose data is in the store
        self._cond = threading.Condition()
        self._backoff = Backoff(base=tick, cap=_MAX_BACKOFF)
        # This worker's parameters and artifacts as written (latest values): what a
        # database deleted mid-run gets back (see _write).
        self._written_parameters: dict[str, ParameterWrite] = {}
        self._written_artifacts: dict[tuple[str, str], ArtifactWrite] = {}
        self._restore_pending = False
        self.points_written = 0
        self.points_spilled = 0
        self.points_rejected = 0
        self.points_lost = 0  # written to a database that vanished, or kept nowhere
        self.spills_quarantined = spills_quarantined  # spill files not readable back
        self._spilled: dict[Path, int] = {}  # spilled during the run, replayed on recovery
        self._spill_rows = spill_rows
        self.flushes = 0
        self.write_errors = 0
        self.files_pending = 0
        self.files_written = 0
        self.files_failed = 0
        self.last_error: str | None = None
        self._abandoned = False
        # The loop sleeps a tick between drains; requests wake it early through this pair.
        self._woken, self._waker = socket.socketpair()
        self._woken.setblocking(False)
        self._waker.setblocking(False)

    # -- requests from the training side (any thread) -------------------------------------

    def request_flush(self) -> int:
        """Ask for a write now; returns the generation to wait for."""
        with self._cond:
            self._requested += 1
            generation = self._requested
        self._poke()
        return generation

    def request_close(self) -> int:
        with self._cond:
            self._closing = True
            self._requested += 1
            generation = self._requested
        self._poke()
        return generation

    def _poke(self) -> None:
        """Wake the loop before its tick ends: a flush or a close is waiting. One byte on a
        socket pair: non-blocking, from any thread, whatever the loop is busy with."""
        with contextlib.suppress(OSError):  # already woken (buffer full), or closed
            self._waker.send(b"\0")

    def wait_sync(self, generation: int, timeout: float | None) -> bool:
        """Block until ``generation`` is flushed (and files copied); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._completed < generation:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def abandon(self) -> None:
        """Stop retrying: closing timed out. What is unwritten stays in the counters."""
        self._abandoned = True

    def mark_stopped(self) -> None:
        """The serving loop ended (normally or not): release every waiter."""
        self._complete(self._requested)

    @property
    def pending_points(self) -> int:
        unwritten = 0 if self._unwritten is None else self._unwritten.points
        return unwritten + self._ingest.pending_points + self._ingest.buffered_points()

    # -- the loop -------------------------------------------------------------------------

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until :meth:`request_close`, then write everything and return.

        File copies run in a pool of threads this flusher owns and joins when it stops, so
        no thread of the run outlives it.
        """
        pool = ThreadPoolExecutor(self._files_limiter, thread_name_prefix="runstream-files")
        try:
            async with anyio.create_task_group() as files:
                task_status.started()
                await self._loop(files, pool)
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self._final_timeout):
                    # Files finished copying after the last write: their artifacts are pending.
                    self._ingest.drain()
                    self._write_pending()
                self._spill_unwritten()
            pool.shutdown(wait=True)
            self.mark_stopped()
            self._woken.close()
            self._waker.close()

    async def _loop(self, files: anyio.abc.TaskGroup, pool: ThreadPoolExecutor) -> None:
        last_write = time.monotonic()
        while True:
            with anyio.move_on_after(self._tick):
                await anyio.wait_readable(self._woken)
            self._clear_wakeups()
            closing = self._closing
            requested = self._requested
            self._ingest.drain()
            for pending in self._ingest.take_files():
                self.files_pending += 1
                files.start_soon(self._copy_file, pending, pool)
            due = (
                requested > self._completed
                or time.monotonic() - last_write >= self._interval
                or self._ingest.pending_points >= self._high_water
            )
            if due and self._backoff.ready:
                last_write = time.monotonic()
                written = self._write_pending()
                # Device tensors still being copied count as unwritten (see _tensors).
                if written and not self.files_pending and not self._ingest.device_pending:
                    self._complete(requested)
            if closing and (
                self._abandoned
                or (
                    self._unwritten is None
                    and not self.files_pending
                    and not self._ingest.device_pending
                )
            ):
                return

    def _clear_wakeups(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: nothing left to read
            while self._woken.recv(4096):
                pass

    def _complete(self, generation: int) -> None:
        with self._cond:
            self._completed = max(self._completed, generation)
            self._cond.notify_all()

    async def _copy_file(self, pending: PendingFile, pool: ThreadPoolExecutor) -> None:
        retry = Backoff(base=self._tick, jitter=False)  # 1, 2, 4, 8 and 16 ticks
        while True:
            copy = pool.submit(
                store_file, pending.path, self._store.artifact_dir, pending.media_type
            )
            while not copy.done():  # the loop goes on draining meanwhile
                await anyio.sleep(self._tick / 4)
            try:
                artifact = copy.result()
                break
            except OSError as exc:
                error = exc
            # A vanished source never comes back; a full, read-only or refusing disk may.
            final = (
                isinstance(error, FileNotFoundError | IsADirectoryError)
                or retry.failures + 1 >= _FILE_ATTEMPTS
                or self._abandoned
            )
            attempts = retry.failures + 1
            if final:
                self._record_error(
                    f"log_file({pending.path!r}) could not be copied after {attempts} "
                    f"attempt{'s' if attempts > 1 else ''}: {error}"
                )
                self.files_pending -= 1
                self.files_failed += 1
                self._poke()
                return
            delay = retry.failed()
            self._record_error(
                f"log_file({pending.path!r}) could not be copied, retrying in {delay:.1f}s: {error}"
            )
            await retry.wait()
        self._ingest.artifacts.append((pending.direction, pending.name, artifact, time.time()))
        self.files_pending -= 1
        self.files_written += 1
        self._poke()  # a flush may be waiting for this file

    def _spill_unwritten(self) -> None:
        """The store would not take the last batch: keep it in a file beside the store."""
        self._ingest.drain()
        batch = self._take_batch()
        if batch.is_empty():
            return
        path = self._spill_or_lose(
            batch, why=f"the store did not take {batch.points} points before closing"
        )
        if path is None:
            return
        self.points_spilled += batch.points
        self._record_error(
            f"the store did not take {batch.points} points before closing; kept in {path} "
            "and written by the next run that opens this store"
        )

    def _take_batch(self) -> Batch:
        """Everything not yet in the store: a failed batch held for retry, then what is new."""
        batch = self._ingest.take_batch(self._run_id, self._worker)
        if self._unwritten is not None:
            self._unwritten.absorb(batch)
            batch, self._unwritten = self._unwritten, None
        return batch

    def _write_pending(self) -> bool:
        """Write what is pending (blocking). True when nothing is left unwritten."""
        self._restore()
        batch = self._take_batch()
        if batch.is_empty():
            return self._replay_spilled()
        try:
            self._write(batch)
        except Exception as exc:  # never let the store crash or block training
            self.write_errors += 1
            if not is_transient(exc):
                leftover = self._isolate(batch)
                if leftover is None:
                    return self._replay_spilled()
                batch, exc = leftover
            self._backoff.failed()
            self._record_error(f"store write failed, will retry: {exc}")
            self._keep_unwritten(batch)
            return False
        self._backoff.succeeded()
        self.points_written += batch.points
        self._ingest.settle_parameters(len(batch.parameters))
        self.flushes += 1
        return self._replay_spilled()

    def _write(self, batch: Batch) -> None:
        """One store write. A store that found its database gone and made it anew has lost
        what this run wrote before: those points move from written to lost, and this
        worker's parameters and artifacts (their latest values, kept here) are written
        into the new database."""
        generation = self._store.generation
        self._store.write(batch)
        if self._store.generation != generation:
            if self.points_written:
                self.points_lost += self.points_written
                self._record_error(
                    f"the store's database was replaced or deleted: {self.points_written} "
                    "points written before are lost; what was pending is written anew"
                )
                self.points_written = 0
            self._restore_pending = bool(self._written_parameters or self._written_artifacts)
            self._restore()
        for parameter in batch.parameters:
            self._written_parameters[parameter.name] = parameter
        for artifact in batch.artifacts:
            self._written_artifacts[(artifact.direction, artifact.name)] = artifact

    def _restore(self) -> None:
        """Write this worker's parameters and artifacts into a database made anew (retried
        before each later write until it succeeds)."""
        if not self._restore_pending:
            return
        restored = Batch(
            run_id=self._run_id,
            worker=self._worker,
            parameters=sorted(self._written_parameters.values(), key=lambda p: p.ts),
            artifacts=list(self._written_artifacts.values()),
        )
        try:
            self._store.write(restored)
        except Exception as exc:  # the batch itself is written: never retry it for this
            self._record_error(f"parameters and artifacts not restored yet, will retry: {exc}")
            return
        self._restore_pending = False

    def _isolate(self, batch: Batch) -> tuple[Batch, Exception] | None:
        """The store refused the batch outright: write its items one by one, set aside only
        those it refuses. Returns what is left to retry (and why) if the store starts
        failing transiently meanwhile, else None."""
        items = batch.split()
        for index, item in enumerate(items):
            try:
                self._write(item)
            except Exception as exc:
                if is_transient(exc):
                    rest = items[index]
                    for later in items[index + 1 :]:
                        rest.absorb(later)
                    return rest, exc
                self._reject(item, exc)
                continue
            self.points_written += item.points
            self._ingest.settle_parameters(len(item.parameters))
        self._backoff.succeeded()
        self.flushes += 1
        return None

    def _reject(self, batch: Batch, exc: Exception) -> None:
        """The store refuses this item outright: set it aside on disk, keep going."""
        what = batch.describe()
        path = self._spill_or_lose(
            batch, why=f"the store refused {what}: {type(exc).__name__}: {exc}", rejected=True
        )
        if path is None:
            return
        self.points_rejected += batch.points
        self._record_error(
            f"the store refused {what}: {type(exc).__name__}: {exc}; set aside in {path}"
        )

    def _spill_or_lose(self, batch: Batch, *, why: str, rejected: bool = False) -> Path | None:
        """Keep ``batch`` on disk (the store's spill folder, else the fallback); when no disk
        takes it, it is lost, counted and said so. Either way its parameters are settled."""
        self._ingest.settle_parameters(len(batch.parameters))
        try:
            return spill_batch(batch, self._store.path, rejected=rejected)
        except OSError as exc:
            self.points_lost += batch.points
            self._record_error(f"{why}; no disk could keep them either ({exc}): lost")
            return None

    def _keep_unwritten(self, batch: Batch) -> None:
        """Hold a failed batch for the retry; past ``spill_rows`` rows, hold it on disk
        instead, so a long outage cannot grow memory without bound."""
        rows = sum(len(stats) for stats in batch.metrics.values())
        if rows <= self._spill_rows:
            self._unwritten = batch
            return
        try:
            self._spilled[spill_batch(batch, self._store.path)] = batch.points
        except OSError as exc:  # neither the store's disk nor the fallback takes it
            if rows <= 2 * self._spill_rows:
                self._unwritten = batch
                self._record_error(f"could not spill {batch.points} unwritten points: {exc}")
                return
            # Memory stays bounded: past twice the bound, the oldest data goes, counted.
            self.points_lost += batch.points
            self._ingest.settle_parameters(len(batch.parameters))
            self._record_error(
                f"{batch.points} unwritten points are lost: memory is at its bound "
                f"({self._spill_rows} rows) and no spill folder can take them ({exc})"
            )
            return
        self.points_spilled += batch.points
        self._ingest.settle_parameters(len(batch.parameters))

    def _replay_spilled(self) -> bool:
        """The store is back: write in what this run spilled during the outage. True when
        nothing spilled is left."""
        for path, points in list(self._spilled.items()):
            try:
                replayed = replay_spills(self._store, only=[path])
            except Exception as exc:  # the store failed again: the file stays for later
                self._record_error(f"replaying spilled points failed, will retry: {exc}")
                return False
            del self._spilled[path]
            self.points_spilled -= points
            if replayed.elsewhere:  # another process's replay claimed it: written there
                self.points_written += points
                continue
            self.points_written += replayed.points
            self.points_rejected += replayed.rejected
            self.points_spilled += replayed.respilled  # in a new file, for the next run
            self.points_lost += points - replayed.points - replayed.rejected - replayed.respilled
            self.spills_quarantined += replayed.quarantined
        return True

    def _record_error(self, message: str) -> None:
        # The training thread never sees this exception: it is logged and kept in the stats.
        self.last_error = message
        _log.warning("runstream: %s (training continues; see Run.stats)", message)

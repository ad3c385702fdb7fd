"""The embedded store: SQLite in WAL mode, artifacts content-addressed beside it.

Layout of a store directory::

    <store>/runstream.db          the database (schema version in ``meta``)
    <store>/artifacts/sha256/ab/abcdef...   files logged with log_file, by content hash

Metrics are written as *chunks*: one row per metric per flush holding that flush's step
statistics as a compact numpy blob (see :mod:`runstream._core._aggregate`), plus one running
summary per (metric, worker). A flush therefore costs a handful of rows whatever the number
of points, and a reader merges chunks exactly. Every write is one ``BEGIN IMMEDIATE``
transaction, so several processes can write the same run: SQLite serializes them, the
busy timeout waits instead of failing with "database is locked", and a killed writer
leaves the last committed flush intact.

The store notices when its database file is deleted or replaced while open (its file
identity, device and inode, changes): it warns, creates the database anew, puts back the
experiments, runs and workers this connection knows, and bumps :attr:`LocalStore.generation`
so that a flusher knows what it wrote before is gone (``points_lost``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .._core import _aggregate, _names
from .._core._batch import Batch, RunKey
from .._core._environment import HOST
from .._core._exceptions import RunNotFoundError, SchemaError, StoreError
from .._core._names import did_you_mean
from .._core._records import (
    Artifact,
    Artifacts,
    ExperimentRecord,
    MetricSummary,
    ParameterValue,
    RunRecord,
    Series,
    Stragglers,
    WorkerRecord,
)
from ._schema import DB_NAME, SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from .._core._aggregate import StepStats

__all__ = ("LocalStore", "RunOverview", "default_store_path", "is_transient", "resolve_store_path")

_log = logging.getLogger("runstream")

# A write transaction holds the lock for milliseconds; a writer that waits 10 s is facing
# a stuck lock. The flusher then keeps its batch and retries later (nothing is lost), and
# closing a run stays bounded.
_BUSY_TIMEOUT_MS = 10_000
#: SQLite page size of a new store, and the WAL policy (see benchmarks/bench_store_pages.py).
PAGE_SIZE = 4096
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default: a checkpoint per ~4 MiB of WAL
WAL_SIZE_LIMIT = 4 << 20  # bytes the WAL file is truncated to after a checkpoint


def is_transient(exc: BaseException) -> bool:
    """Will retrying help? A locked or busy database, a full, read-only or failing disk
    (SQLite's OperationalError, an OSError): yes. Anything else is about the data (a
    constraint, a type or an integer SQLite cannot bind, text it cannot encode): no,
    retrying it would block every later write, so the flusher isolates and sets it aside."""
    cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ else exc
    return isinstance(cause, sqlite3.OperationalError | OSError)


def default_store_path() -> Path:
    """``$RUNSTREAM_STORE`` if set, else ``./.runstream`` in the working directory."""
    return Path(os.environ.get("RUNSTREAM_STORE") or Path.cwd() / ".runstream")


def resolve_store_path(store: str | os.PathLike[str] | None) -> Path:
    """An explicit argument wins, then the environment, then the default."""
    return Path(store).expanduser().absolute() if store is not None else default_store_path()


class LocalStore:
    """A connection to one store directory. Thread-safe by a lock; each process opens its own.

    :param path: the store directory; created if missing (unless ``read_only``).
    :param read_only: open an existing store for reading only: nothing is created, a
        missing store raises :class:`StoreError`, and a store on a read-only filesystem
        can be read.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False
    ) -> None:
        self.path = resolve_store_path(path)
        self.artifact_dir = self.path / "artifacts"
        self.read_only = read_only
        self._lock = threading.RLock()
        self._metric_ids: dict[tuple[int, str], int] = {}
        self._conflicts_warned: set[tuple[int, str]] = set()
        #: Incremented each time the database had vanished and was created anew.
        self.generation = 0
        #: Damaged chunks and summaries readers skipped (each with a warning).
        self.damaged_chunks = 0
        # What this connection created or loaded, to put back into a recreated database.
        self._known_runs: dict[int, tuple[Any, ...]] = {}
        self._known_workers: dict[tuple[int, str], tuple[Any, ...]] = {}
        self._deferred_status: dict[tuple[int, str], tuple[Any, ...]] = {}
        if read_only:
            self._db = _open_read_only(self.path)
            self._identity = self._file_identity()
            return
        self._connect()

    def _connect(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path / DB_NAME,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN IMMEDIATE ourselves
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        with self._errors("open"):
            # Page size and checkpoint policy were chosen by measurement (see
            # benchmarks/bench_store_pages.py): a flush rewrites a few small pages (summaries,
            # b-tree nodes) and appends its chunk blobs, so small pages keep the WAL bytes per
            # flush near the data's size. The page size only takes effect when the database
            # is created; the WAL is truncated back to a bounded size after checkpoints.
            self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            self._enable_wal()
            self._db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # NORMAL in WAL mode: a committed flush survives a process crash; only an OS
            # crash can lose the last transactions, and never corrupts the database.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        self._identity = self._file_identity()

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path / DB_NAME)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _check_identity(self) -> None:
        """Before each write: is the database still the file this connection opened? A
        deleted (or replaced) one would swallow every later write without an error."""
        if self._file_identity() == self._identity:
            return
        _log.warning(
            "runstream: the store's database %s was deleted or replaced while in use; "
            "creating it anew from what is still pending (data written before is lost)",
            self.path / DB_NAME,
        )
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._metric_ids.clear()
        self._connect()
        self.generation += 1
        with self._errors("restore runs"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._restore(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _restore(self, db: sqlite3.Connection) -> None:
        """Put back the runs (with their ids: batches carry them) and workers known here."""
        for run_id, (experiment, exp_display, name, display, tags, created) in list(
            self._known_runs.items()
        ):
            experiment_id = None
            if experiment is not None:
                db.execute(
                    "INSERT OR IGNORE INTO experiments(name, display_name, tags, created) "
                    "VALUES (?, ?, NULL, ?)",
                    (experiment, exp_display or experiment, created),
                )
                experiment_id = db.execute(
                    "SELECT id FROM experiments WHERE name = ?", (experiment,)
                ).fetchone()[0]
            db.execute(
                "INSERT OR IGNORE INTO runs(id, experiment_id, name, display_name, tags, "
                "created) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, experiment_id, name, display, tags, created),
            )
        for row in self._known_workers.values():
            db.execute(_UPSERT_WORKER, row)

    # -- plumbing -------------------------------------------------------------------------

    def _enable_wal(self) -> None:
        """Switch a new database to WAL. Several processes opening a new store at once can
        deadlock on the switch (each holds a shared lock and waits for an exclusive one), so
        each try gives up at once and lets go of its lock; retrying then makes progress."""
        self._db.execute("PRAGMA busy_timeout = 20")
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + random.random() * 0.05)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {action} failed at {self.path / DB_NAME}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front (no upgrade deadlocks).

        With :meth:`query`, the package-internal API of the store: the sync journal of the
        remote backends keeps its tables in the same database through these two."""
        with self._lock, self._errors(action):
            self._check_identity()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # Metric ids cached in this transaction are rolled back with it. SQLite has
                # already rolled back by itself on some errors (a full disk): a second
                # ROLLBACK would replace the real error with "no transaction is active".
                self._metric_ids.clear()
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        # Read first: a store at the current version needs no write to open (a full or
        # read-only disk must not stop a run from starting).
        with contextlib.suppress(sqlite3.OperationalError):  # no meta table yet
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0] == str(SCHEMA_VERSION):
                return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                migrate(self._db, self.path)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __del__(self) -> None:
        # Runs read back by list_runs() share a store nobody closes explicitly.
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entities -------------------------------------------------------------------------

    def ensure_experiment(
        self,
        name: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        tags: Sequence[dict[str, str]] | dict[str, str] | None = None,
    ) -> int:
        """Create the experiment if missing (display name and tags only apply then)."""
        with self.transaction("create experiment") as db:
            db.execute(
                "INSERT OR IGNORE INTO experiments(name, display_name, description, tags, "
                "created) VALUES (?, ?, ?, ?, ?)",
                (name, display_name or name, description, _tags(tags), time.time()),
            )
            row = db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def ensure_run(
        self,
        experiment_name: str | None,
        run_name: str,
        *,
        display_name: str | None = None,
        tags: Sequence[dict[str, str]] | dict[str, str] | None = None,
        experiment_display_name: str | None = None,
    ) -> RunKey:
        """Create-or-load a run, as the official SDK's ``_load_or_create`` (race-free)."""
        experiment_id = (
            None
            if experiment_name is None
            else self.ensure_experiment(experiment_name, display_name=experiment_display_name)
        )
        with self.transaction("create run") as db:
            db.execute(
                "INSERT OR IGNORE INTO runs(experiment_id, name, display_name, tags, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (experiment_id, run_name, display_name or run_name, _tags(tags), time.time()),
            )
            row = db.execute(
                "SELECT id, display_name, tags, created FROM runs "
                "WHERE name = ? AND experiment_id IS ?",
                (run_name, experiment_id),
            ).fetchone()
        self._known_runs[int(row[0])] = (
            experiment_name,
            experiment_display_name,
            run_name,
            row[1],
            row[2],
            row[3],
        )
        return RunKey(int(row[0]), experiment_name, run_name)

    def ended(self, run_id: int) -> tuple[str, float | None, set[str]] | None:
        """``(status, end time, workers)`` if the run has workers and every one of them
        ended (Completed, Failed or Stopped); ``None`` for a new or running run."""
        rows = self.query("SELECT status, ended, worker FROM workers WHERE run_id = ?", (run_id,))
        statuses = {str(row[0]) for row in rows}
        if not rows or "InProgress" in statuses:
            return None
        status = next((s for s in ("Failed", "Stopped") if s in statuses), "Completed")
        ends = [float(row[1]) for row in rows if row[1] is not None]
        return status, max(ends) if ends else None, {str(row[2]) for row in rows}

    def free_run_name(self, experiment_name: str | None, run_name: str) -> str:
        """``run_name-2`` (or -3, ...): a name no run of the experiment has yet."""
        taken = {
            k.run_name
            for k, _ in self.run_keys(experiment_name, unassigned=experiment_name is None)
        }
        n = 2
        while f"{run_name}-{n}" in taken:
            n += 1
        return f"{run_name}-{n}"

    def find_run(self, experiment_name: str | None, run_name: str) -> RunKey:
        with self._lock, self._errors("find run"):
            row = self._db.execute(
                "SELECT r.id FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id "
                "WHERE r.name = ? AND e.name IS ?",
                (run_name, experiment_name),
            ).fetchone()
        if row is None:
            if experiment_name is not None:
                self.experiment(experiment_name)  # a missing experiment says so
            where = f"experiment {experiment_name!r}" if experiment_name else "the unassigned runs"
            names = [
                k.run_name
                for k, _ in self.run_keys(experiment_name, unassigned=experiment_name is None)
            ]
            raise RunNotFoundError(
                f"no run named {run_name!r} in {where} at {self.path}"
                + did_you_mean(run_name, names)
            )
        return RunKey(int(row[0]), experiment_name, run_name)

    def set_worker_status(
        self,
        run_id: int,
        worker: str,
        status: str,
        *,
        message: str | None = None,
        started: float | None = None,
        ended: float | None = None,
        world_size: int | None = None,
        defer: bool = False,
    ) -> None:
        """Record a worker's status; ``started`` keeps its first value, as the SDK's start.

        With ``defer``, a store that cannot be written now (full, read-only, locked) keeps
        the status and writes it with the next batch instead of raising: a run starts on a
        full disk, and its data waits in memory or in spills."""
        now = time.time()
        row = (run_id, worker, status, message, started, ended, now, HOST, os.getpid(), world_size)
        try:
            with self.transaction("set status") as db:
                db.execute(_UPSERT_WORKER, row)
        except StoreError as exc:
            if not (defer and is_transient(exc)):
                raise
            _log.warning(
                "runstream: worker status %r not written yet (%s); kept for later", status, exc
            )
            self._deferred_status[(run_id, worker)] = row
        known = self._known_workers.get((run_id, worker))
        if known is not None and started is None:  # keep the first start, as the store does
            row = (*row[:4], known[4], *row[5:])
        self._known_workers[(run_id, worker)] = row

    def existing_names(self, run_id: int) -> tuple[set[str], set[str], set[str]]:
        """Parameter names and input/output artifact names already in a run."""
        with self._lock, self._errors("read names"):
            params = {
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT name FROM parameters WHERE run_id = ?", (run_id,)
                )
            }
            arts = self._db.execute(
                "SELECT direction, name FROM artifacts WHERE run_id = ?", (run_id,)
            ).fetchall()
        return (
            params,
            {n for d, n in arts if d == "input"},
            {n for d, n in arts if d == "output"},
        )

    # -- the write path -------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Write one flush atomically: all of it or, on error, none of it."""
        now = time.time()
        with self.transaction("write batch") as db:
            deferred = self._deferred_status.get((batch.run_id, batch.worker))
            if deferred is not None:
                db.execute(_UPSERT_WORKER, deferred)
            db.execute(
                "UPDATE workers SET heartbeat = ? WHERE run_id = ? AND worker = ?",
                (now, batch.run_id, batch.worker),
            )
            if batch.parameters:
                self._warn_conflicts(db, batch)
                db.executemany(
                    "INSERT INTO parameters(run_id, name, worker, kind, value, ts) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, name, worker) DO UPDATE SET "
                    "kind = excluded.kind, value = excluded.value, ts = excluded.ts",
                    [
                        (batch.run_id, p.name, batch.worker, *_encode_param(p.value), p.ts)
                        for p in batch.parameters
                    ],
                )
            if batch.artifacts:
                db.executemany(
                    "INSERT OR REPLACE INTO artifacts(run_id, direction, name, value, "
                    "media_type, sha256, size, worker, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            batch.run_id,
                            a.direction,
                            a.name,
                            a.artifact.value,
                            a.artifact.media_type,
                            a.artifact.sha256,
                            a.artifact.size,
                            batch.worker,
                            a.ts,
                        )
                        for a in batch.artifacts
                    ],
                )
            if batch.metrics:
                self._write_metrics(db, batch, now)
        self._deferred_status.pop((batch.run_id, batch.worker), None)

    def _warn_conflicts(self, db: sqlite3.Connection, batch: Batch) -> None:
        """Two workers giving one parameter different values is reported, never hidden."""
        latest = {p.name: p.value for p in batch.parameters}
        marks = ",".join("?" * len(latest))
        for name, other, kind, value in db.execute(
            f"SELECT name, worker, kind, value FROM parameters WHERE run_id = ? AND "
            f"worker != ? AND name IN ({marks})",
            (batch.run_id, batch.worker, *latest),
        ):
            theirs = _decode_param(kind, value)
            if _param_identity(theirs) != _param_identity(latest[name]):
                _log.warning(
                    "runstream: parameter %r differs between workers: %s wrote %r, %s wrote %r "
                    "(kept per worker; the last write wins in the run's view)",
                    name,
                    other,
                    theirs,
                    batch.worker,
                    latest[name],
                )

    def _write_metrics(self, db: sqlite3.Connection, batch: Batch, now: float) -> None:
        ids = {name: self._metric_id(db, batch.run_id, name) for name in batch.metrics}
        chunks = []
        for name, stats in batch.metrics.items():
            blob = _aggregate.encode(stats)
            first, last = int(stats.step[0]), int(stats.step[-1])
            chunks.append(
                (ids[name], batch.worker, stats.points, first, last, blob, now, _crc(blob))
            )
        db.executemany(
            "INSERT INTO chunks(metric_id, worker, points, first_step, last_step, data, "
            "created, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            chunks,
        )
        marks = ",".join("?" * len(ids))
        names = {metric_id: name for name, metric_id in ids.items()}
        old: dict[int, StepStats | None] = {}
        for metric_id, blob, checksum in db.execute(
            "SELECT metric_id, data, checksum FROM summaries WHERE worker = ? "
            f"AND metric_id IN ({marks})",
            (batch.worker, *ids.values()),
        ):
            try:
                old[metric_id] = self._decode(
                    blob,
                    checksum,
                    f"the summary of worker {batch.worker!r}",
                    batch.run_id,
                    names[metric_id],
                )
            except StoreError as exc:  # rebuilt below from the chunks that are intact
                _log.warning("runstream: %s; rebuilding it from the metric's chunks", exc)
                old[metric_id] = None
        rows = []
        for name, stats in batch.metrics.items():
            if ids[name] in old and old[ids[name]] is None:
                summary = self._rebuild_summary(db, batch.run_id, name, ids[name], batch.worker)
            else:
                summary = _aggregate.summarize(stats)
                previous = old.get(ids[name])
                if previous is not None:
                    summary = _summarize_pair(previous, summary)
            blob = _aggregate.encode(summary)
            rows.append((ids[name], batch.worker, blob, _crc(blob)))
        db.executemany(
            "INSERT OR REPLACE INTO summaries(metric_id, worker, data, checksum) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )

    def _rebuild_summary(
        self, db: sqlite3.Connection, run_id: int, name: str, metric_id: int, worker: str
    ) -> StepStats:
        rows = db.execute(
            "SELECT id, data, checksum FROM chunks WHERE metric_id = ? AND worker = ? ORDER BY id",
            (metric_id, worker),
        ).fetchall()
        return _aggregate.summarize(_aggregate.combine(self._decode_chunks(rows, run_id, name)))

    # -- damaged blobs ----------------------------------------------------------------------

    def _decode(
        self, blob: bytes, checksum: int | None, what: str, run_id: int, name: str
    ) -> StepStats:
        """A stored blob decoded, or a StoreError naming the run and the metric: its
        checksum does not match (a flipped bit), or it cannot be decoded at all."""
        problem = None
        if checksum is not None and _crc(blob) != checksum:
            problem = "its checksum does not match (the data was changed on disk)"
        else:
            try:
                return _aggregate.decode(blob)
            except Exception as exc:  # a damaged format byte or length
                problem = f"it cannot be decoded ({exc})"
        raise StoreError(
            f"damaged data in the store at {self.path / DB_NAME}: {what} of metric {name!r} "
            f"in {self._run_label(run_id)}: {problem}"
        )

    def _run_label(self, run_id: int) -> str:
        row = self._db.execute(
            "SELECT e.name, r.name FROM runs r LEFT JOIN experiments e "
            "ON e.id = r.experiment_id WHERE r.id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return f"run id {run_id}"
        return f"run {row[1]!r} of experiment {row[0]!r}" if row[0] else f"run {row[1]!r}"

    def _decode_chunks(self, rows: Sequence[Any], run_id: int, name: str) -> list[StepStats]:
        """Decode ``(id, data, checksum)`` rows, skipping damaged chunks with a warning."""
        decoded = []
        for chunk_id, blob, checksum in rows:
            try:
                decoded.append(self._decode(blob, checksum, f"chunk {chunk_id}", run_id, name))
            except StoreError as exc:
                _log.warning("runstream: %s; skipped (the other chunks are read)", exc)
                self.damaged_chunks += 1
        if rows and not decoded:
            raise StoreError(
                f"every chunk of metric {name!r} in {self._run_label(run_id)} is damaged "
                f"(see the warnings); the store is at {self.path / DB_NAME}"
            )
        return decoded

    def _metric_id(self, db: sqlite3.Connection, run_id: int, name: str) -> int:
        key = (run_id, name)
        cached = self._metric_ids.get(key)
        if cached is not None:
            return cached
        db.execute("INSERT OR IGNORE INTO metrics(run_id, name) VALUES (?, ?)", key)
        row = db.execute("SELECT id FROM metrics WHERE run_id = ? AND name = ?", key).fetchone()
        self._metric_ids[key] = int(row[0])
        return int(row[0])

    # -- the read side --------------------------------------------------------------------

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        with self._lock, self._errors("read"):
            return self._db.execute(sql, args).fetchall()

    def list_experiments(self) -> list[ExperimentRecord]:
        rows = self.query(
            "SELECT e.name, e.display_name, e.description, e.created, count(r.id) "
            "FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id "
            "GROUP BY e.id ORDER BY e.created"
        )
        return [
            ExperimentRecord(
                experiment_name=str(name),
                display_name=_opt_str(display),
                description=_opt_str(description),
                created=float(created),
                run_count=int(count),
            )
            for name, display, description, created, count in rows
        ]

    def experiment(self, name: str) -> ExperimentRecord:
        for record in self.list_experiments():
            if record.experiment_name == name:
                return record
        names = [r.experiment_name for r in self.list_experiments()]
        raise RunNotFoundError(
            f"no experiment named {name!r} at {self.path}" + did_you_mean(name, names)
        )

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and all its runs, with the files only they referenced;
        returns the number of runs deleted."""
        with self.transaction("delete experiment") as db:
            row = db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                self.experiment(name)  # raises, with a suggestion
            ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE experiment_id = ?", row)]
            shas = self._delete_runs(db, ids)
            db.execute("DELETE FROM experiments WHERE id = ?", (row[0],))
        self._metric_ids.clear()
        self._remove_files(shas)
        return len(ids)

    def delete_run(self, key: RunKey) -> None:
        """Delete one run, with the files only it referenced."""
        with self.transaction("delete run") as db:
            shas = self._delete_runs(db, [key.run_id])
        self._metric_ids.clear()
        self._remove_files(shas)

    def _delete_runs(self, db: sqlite3.Connection, ids: list[int]) -> set[str]:
        """Delete runs (in the caller's transaction); the hashes nothing references now."""
        marks = ",".join("?" * len(ids))
        shas = {
            str(r[0])
            for r in db.execute(
                f"SELECT sha256 FROM artifacts WHERE run_id IN ({marks}) AND sha256 IS NOT NULL",
                ids,
            )
        }
        db.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
        still = {str(r[0]) for r in db.execute("SELECT DISTINCT sha256 FROM artifacts")}
        return shas - still

    def _remove_files(self, shas: set[str]) -> None:
        for sha in shas:
            if len(sha) == 64 and sha.isalnum():
                with contextlib.suppress(OSError):
                    (self.artifact_dir / "sha256" / sha[:2] / sha).unlink()

    def run_keys(
        self, experiment_name: str | None, *, unassigned: bool = False
    ) -> list[tuple[RunKey, float]]:
        """Runs of an experiment (or the unassigned ones), oldest first, with creation time."""
        if unassigned:
            rows = self.query(
                "SELECT id, name, created FROM runs WHERE experiment_id IS NULL ORDER BY created"
            )
        else:
            rows = self.query(
                "SELECT r.id, r.name, r.created FROM runs r JOIN experiments e "
                "ON e.id = r.experiment_id WHERE e.name = ? ORDER BY r.created",
                (experiment_name,),
            )
        name = None if unassigned else experiment_name
        return [(RunKey(int(i), name, str(n)), float(c)) for i, n, c in rows]

    def records(self, keys: Sequence[RunKey]) -> list[RunRecord]:
        """Read whole runs back, a few queries for any number of runs."""
        if not keys:
            return []
        ids = [k.run_id for k in keys]
        temp = ",".join(str(i) for i in ids)  # integers from our own rows: safe to inline
        created = dict(self.query(f"SELECT id, created FROM runs WHERE id IN ({temp})"))
        params = self._group(
            f"SELECT run_id, name, kind, value, ts, worker FROM parameters "
            f"WHERE run_id IN ({temp}) ORDER BY ts"
        )
        artifacts = self._group(
            "SELECT run_id, direction, name, value, media_type, sha256, size FROM artifacts "
            f"WHERE run_id IN ({temp}) ORDER BY ts"
        )
        workers = self._group(
            "SELECT run_id, worker, status, message, started, ended, host, pid, world_size "
            "FROM workers "
            f"WHERE run_id IN ({temp}) ORDER BY started"
        )
        summaries = self._group(
            "SELECT m.run_id, m.name, s.data, s.checksum, s.worker FROM summaries s "
            f"JOIN metrics m ON m.id = s.metric_id WHERE m.run_id IN ({temp}) ORDER BY m.id"
        )
        with self._lock:
            decoded = {
                run_id: self._decode_summaries(run_id, rows) for run_id, rows in summaries.items()
            }
        return [
            _build_record(
                key,
                float(created[key.run_id]),
                params.get(key.run_id, []),
                artifacts.get(key.run_id, []),
                workers.get(key.run_id, []),
                decoded.get(key.run_id, []),
            )
            for key in keys
        ]

    # -- light reads for tables of thousands of runs (the dashboard's paged run list) ----

    def run_overview(
        self, experiment_name: str | None, *, unassigned: bool = False
    ) -> list[RunOverview]:
        """Each run's key, creation time, status, start time and parameters, oldest first:
        what a table of many runs sorts and filters on, without building whole records
        (no metric summaries, no artifacts)."""
        keys = self.run_keys(experiment_name, unassigned=unassigned)
        if not keys:
            return []
        temp = ",".join(str(k.run_id) for k, _ in keys)  # integers from our own rows
        params = self._group(
            f"SELECT run_id, name, kind, value FROM parameters WHERE run_id IN ({temp}) ORDER BY ts"
        )
        workers = self._group(
            "SELECT run_id, worker, status, message, started, world_size FROM workers "
            f"WHERE run_id IN ({temp}) ORDER BY started"
        )
        overview = []
        for key, created in keys:
            parameters: dict[str, ParameterValue] = {}
            for name, kind, value in params.get(key.run_id, []):
                parameters[str(name)] = _decode_param(kind, value)
            rows = workers.get(key.run_id, [])
            records = [
                WorkerRecord(worker=str(w), status=str(st), message=_opt_str(msg))
                for w, st, msg, _started, _size in rows
            ]
            sizes = [int(r[-1]) for r in rows if r[-1] is not None]
            status, _ = _derive_status(records, max(sizes) if sizes else None)
            starts = [float(r[3]) for r in rows if r[3] is not None]
            overview.append(
                RunOverview(key, created, status, min(starts) if starts else None, parameters)
            )
        return overview

    def metric_names_of(self, run_ids: Sequence[int]) -> list[str]:
        """The metrics any of these runs logged, sorted."""
        if not run_ids:
            return []
        temp = ",".join(str(int(i)) for i in run_ids)
        rows = self.query(f"SELECT DISTINCT name FROM metrics WHERE run_id IN ({temp})")
        return sorted(str(r[0]) for r in rows)

    def parameter_names_of(self, run_ids: Sequence[int]) -> list[str]:
        """The parameters any of these runs logged, sorted."""
        if not run_ids:
            return []
        temp = ",".join(str(int(i)) for i in run_ids)
        rows = self.query(f"SELECT DISTINCT name FROM parameters WHERE run_id IN ({temp})")
        return sorted(str(r[0]) for r in rows)

    def metric_summaries(self, run_ids: Sequence[int], name: str) -> dict[int, MetricSummary]:
        """One metric's summary (merged over workers) for each of these runs that logged it."""
        if not run_ids:
            return {}
        temp = ",".join(str(int(i)) for i in run_ids)
        grouped = self._group_args(
            "SELECT m.run_id, m.name, s.data, s.checksum, s.worker FROM summaries s "
            f"JOIN metrics m ON m.id = s.metric_id WHERE m.name = ? AND m.run_id IN ({temp})",
            (name,),
        )
        found = {}
        with self._lock:
            for run_id, rows in grouped.items():
                decoded = [s for _, s in self._decode_summaries(run_id, rows)]
                if not decoded:
                    continue
                merged = decoded[0]
                for other in decoded[1:]:
                    merged = _summarize_pair(merged, other)
                found[run_id] = _summary_record(merged)
        return found

    def step_stats_of(self, run_ids: Sequence[int], name: str) -> dict[int, StepStats]:
        """One metric's step statistics (merged over chunks and workers) for each of these
        runs that logged it: one query for all of them."""
        if not run_ids:
            return {}
        temp = ",".join(str(int(i)) for i in run_ids)
        grouped = self._group_args(
            "SELECT m.run_id, c.id, c.data, c.checksum FROM chunks c "
            f"JOIN metrics m ON m.id = c.metric_id WHERE m.name = ? AND m.run_id IN ({temp}) "
            "ORDER BY c.id",
            (name,),
        )
        with self._lock:
            return {
                run_id: _aggregate.combine(self._decode_chunks(rows, run_id, name))
                for run_id, rows in grouped.items()
            }

    def _group_args(self, sql: str, args: Sequence[object]) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = {}
        for row in self.query(sql, args):
            grouped.setdefault(int(row[0]), []).append(row[1:])
        return grouped

    def _decode_summaries(self, run_id: int, rows: list[Any]) -> list[tuple[str, StepStats]]:
        """A run's metric summaries; a damaged one is left out of the record, with a
        warning naming the run and the metric."""
        decoded = []
        for name, blob, checksum, worker in rows:
            try:
                summary = self._decode(
                    blob, checksum, f"the summary of worker {worker!r}", run_id, str(name)
                )
            except StoreError as exc:
                _log.warning("runstream: %s; left out of the run's record", exc)
                self.damaged_chunks += 1
                continue
            decoded.append((str(name), summary))
        return decoded

    def _group(self, sql: str) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = {}
        for row in self.query(sql):
            grouped.setdefault(int(row[0]), []).append(row[1:])
        return grouped

    def metric_names(self, run_id: int) -> list[str]:
        return [
            str(r[0])
            for r in self.query("SELECT name FROM metrics WHERE run_id = ? ORDER BY id", (run_id,))
        ]

    def workers_of_metric(self, run_id: int, name: str) -> list[str]:
        return [
            str(r[0])
            for r in self.query(
                "SELECT DISTINCT c.worker FROM chunks c JOIN metrics m ON m.id = c.metric_id "
                "WHERE m.run_id = ? AND m.name = ? ORDER BY c.worker",
                (run_id, name),
            )
        ]

    def _chunks_query(
        self, columns: str, run_id: int, name: str, worker: str | None
    ) -> tuple[str, list[object]]:
        """A query over one metric's chunks (one worker's, when ``worker`` names one)."""
        sql = (
            f"SELECT {columns} FROM chunks c JOIN metrics m ON m.id = c.metric_id "
            "WHERE m.run_id = ? AND m.name = ?"
        )
        args: list[object] = [run_id, name]
        if worker is not None:
            sql += " AND c.worker = ?"
            args.append(worker)
        return sql, args

    def metric_version(self, run_id: int, name: str, worker: str | None = None) -> int:
        """The newest chunk id of a metric (0 if none): it changes whenever data is added,
        so readers can cache what they computed from :meth:`step_stats`."""
        sql, args = self._chunks_query("coalesce(max(c.id), 0)", run_id, name, worker)
        (version,) = self.query(sql, args)[0]
        return int(version)

    def step_stats(self, run_id: int, name: str, worker: str | None = None) -> StepStats:
        """A metric's step statistics merged over chunks (and workers, unless one is named)."""
        sql, args = self._chunks_query("c.id, c.data, c.checksum", run_id, name, worker)
        rows = self.query(sql + " ORDER BY c.id", args)
        if not rows:
            raise RunNotFoundError(f"run {run_id} has no metric named {name!r}")
        with self._lock:
            return _aggregate.combine(self._decode_chunks(rows, run_id, name))

    def series(self, run_id: int, name: str, worker: str | None = None) -> Series:
        return Series(name, self.step_stats(run_id, name, worker))

    def worker_series(self, run_id: int, name: str) -> dict[str, Series]:
        """A metric's series for each worker that logged it (the per-worker view)."""
        rows = self.query(
            "SELECT c.worker, c.id, c.data, c.checksum FROM chunks c "
            "JOIN metrics m ON m.id = c.metric_id "
            "WHERE m.run_id = ? AND m.name = ? ORDER BY c.id",
            (run_id, name),
        )
        if not rows:
            raise RunNotFoundError(f"run {run_id} has no metric named {name!r}")
        by_worker: dict[str, list[Any]] = {}
        for worker, *chunk in rows:
            by_worker.setdefault(str(worker), []).append(chunk)
        with self._lock:
            parts = {w: self._decode_chunks(c, run_id, name) for w, c in by_worker.items()}
        return {w: Series(name, _aggregate.combine(p)) for w, p in sorted(parts.items())}

    def stragglers(self, run_id: int, name: str) -> Stragglers:
        """For each step, the worker with the largest mean (the slowest, for a step time)."""
        return Stragglers.from_series(name, self.worker_series(run_id, name))


@dataclasses.dataclass(frozen=True, slots=True)
class RunOverview:
    """A run as a table of many runs needs it (see :meth:`LocalStore.run_overview`)."""

    key: RunKey
    created: float
    status: str | None
    start_time: float | None
    parameters: dict[str, ParameterValue]


def _crc(blob: bytes) -> int:
    """The checksum stored beside each metric blob (CRC-32: every flipped bit shows)."""
    return zlib.crc32(blob)


_UPSERT_WORKER = (
    "INSERT INTO workers(run_id, worker, status, message, started, ended, "
    "heartbeat, host, pid, world_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(run_id, worker) DO UPDATE SET status = excluded.status, "
    "message = excluded.message, started = coalesce(started, excluded.started), "
    "ended = excluded.ended, heartbeat = excluded.heartbeat, "
    "host = excluded.host, pid = excluded.pid, "
    "world_size = coalesce(excluded.world_size, world_size)"
)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing store, or a :class:`StoreError` saying why.

    A WAL database needs its ``-shm`` file even to read; on a read-only filesystem that
    cannot be created, and the database is then read as immutable (no writer can be
    running there anyway). A store older than this runstream is upgraded first, once,
    when it can be written; one that cannot is refused with what to do.
    """
    db_path = path / DB_NAME
    if not db_path.is_file():
        raise StoreError(
            f"no runstream store at {path} ({DB_NAME} not found); pass --store DIR or set "
            "RUNSTREAM_STORE to the directory a run wrote to"
        )
    uri = db_path.as_uri()
    try:
        db = _connect_read_only(f"{uri}?mode=ro")
    except sqlite3.Error:
        try:
            db = _connect_read_only(f"{uri}?mode=ro&immutable=1")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store at {path}: {exc}") from exc
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        db.close()
        raise StoreError(f"cannot read the store at {path}: {exc}") from exc
    version = 0 if row is None else int(row[0])
    if version > SCHEMA_VERSION:
        db.close()
        raise SchemaError(
            f"the store at {path} has schema version {version}, newer than this "
            f"runstream understands ({SCHEMA_VERSION}); upgrade runstream"
        )
    if version < SCHEMA_VERSION:
        db.close()
        if not os.access(db_path, os.W_OK) or not os.access(path, os.W_OK):
            raise StoreError(
                f"the store at {path} has schema version {version}, older than this "
                f"runstream's ({SCHEMA_VERSION}), and cannot be upgraded here (read-only); "
                "open it once where it can be written"
            )
        LocalStore(path).close()  # upgrades the schema
        db = _connect_read_only(f"{uri}?mode=ro")
    return db


def _connect_read_only(uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(
        uri,
        uri=True,
        timeout=_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error:
        db.close()
        raise
    return db


def _tags(tags: Sequence[dict[str, str]] | dict[str, str] | None) -> bytes | None:
    if tags is None:
        return None
    if isinstance(tags, dict):
        tags = [{"Key": k, "Value": v} for k, v in tags.items()]
    return msgspec.json.encode(list(tags))


def _encode_param(value: ParameterValue) -> tuple[str, object]:
    if isinstance(value, str):
        return "s", value
    if isinstance(value, float) and math.isnan(value):
        return "n", "NaN"  # SQLite would store NaN as NULL
    return "n", value


def _decode_param(kind: object, value: Any) -> ParameterValue:
    if kind == "s":
        return str(value)
    if value == "NaN":
        return math.nan
    return value  # type: ignore[no-any-return]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _summarize_pair(a: StepStats, b: StepStats) -> StepStats:
    """Merge two one-row summaries (the result keeps the later last step)."""
    return _aggregate.summarize(_aggregate.concatenate([a, b]))


def _summary_record(row: StepStats) -> MetricSummary:
    count = int(row.count[0])
    total, m2 = float(row.sum[0]), float(row.m2[0])
    step = int(row.step[0])
    return MetricSummary(
        min=float(row.min[0]),
        max=float(row.max[0]),
        avg=total / count,
        std=math.sqrt(m2 / count) if count and not math.isnan(m2) and m2 >= 0 else math.nan,
        last=float(row.last[0]),
        count=count,
        last_step=step if step >= 0 else None,
        timestamp=float(row.last_ts[0]),
    )


def _derive_status(
    workers: list[WorkerRecord], world_size: int | None
) -> tuple[str | None, str | None]:
    """The run's status from its workers': Failed if any failed (else Stopped if any was
    interrupted); Completed only when every worker completed (all ``world_size`` of them,
    when the launcher said how many)."""
    if not workers:  # constructed, never entered
        return None, None
    for ending in ("Failed", "Stopped"):
        ended = [w for w in workers if w.status == ending]
        if ended:
            if len(workers) == 1:
                return ending, ended[0].message
            return ending, "; ".join(f"worker {w.worker}: {w.message}" for w in ended)
    unfinished = [w.worker for w in workers if w.status != "Completed"]
    missing = max(0, (world_size or 0) - len(workers))
    if not unfinished and not missing:
        return "Completed", None
    if len(workers) == 1 and not missing:
        return "InProgress", None
    waiting = [f"worker {w} has not finished" for w in unfinished]
    if missing:
        waiting.append(f"{missing} of {world_size} workers never started")
    return "InProgress", "; ".join(waiting)


def _build_record(
    key: RunKey,
    created: float,
    params: list[Any],
    artifacts: list[Any],
    workers: list[Any],
    summaries: list[Any],
) -> RunRecord:
    # Rows come ordered by time: the last write wins across workers, as within one.
    parameters: dict[str, ParameterValue] = {}
    by_worker: dict[str, dict[str, ParameterValue]] = {}
    for name, kind, value, _ts, writer in params:
        decoded = _decode_param(kind, value)
        parameters[str(name)] = decoded
        by_worker.setdefault(str(name), {})[str(writer)] = decoded
    conflicts = {
        name: values
        for name, values in by_worker.items()
        if len({_param_identity(v) for v in values.values()}) > 1
    }
    arts: dict[str, dict[str, Artifact]] = {"input": {}, "output": {}}
    for direction, name, value, media_type, sha, size in artifacts:
        arts[str(direction)][str(name)] = Artifact(
            value=str(value),
            media_type=_opt_str(media_type),
            sha256=_opt_str(sha),
            size=None if size is None else int(size),
        )
    worker_records = [
        WorkerRecord(
            worker=str(w),
            status=str(status),
            message=_opt_str(message),
            start_time=started,
            end_time=ended,
            host=_opt_str(host),
            pid=pid,
        )
        for w, status, message, started, ended, host, pid, _size in workers
    ]
    sizes = [int(row[-1]) for row in workers if row[-1] is not None]
    world_size = max(sizes) if sizes else None
    by_metric: dict[str, list[StepStats]] = {}
    for name, summary in summaries:
        by_metric.setdefault(name, []).append(summary)
    metrics = {}
    for name, rows in by_metric.items():
        merged = rows[0]
        for other in rows[1:]:
            merged = _summarize_pair(merged, other)
        metrics[name] = _summary_record(merged)
    status, message = _derive_status(worker_records, world_size)
    starts = [w.start_time for w in worker_records if w.start_time is not None]
    ends = [w.end_time for w in worker_records if w.end_time is not None]
    return RunRecord(
        experiment_name=key.experiment_name,
        run_name=key.run_name,
        trial_component_name=(_names.trial_component_name(key.experiment_name, key.run_name)),
        status=status,
        message=message,
        created=created,
        start_time=min(starts) if starts else None,
        end_time=max(ends) if ends and status != "InProgress" else None,
        parameters=parameters,
        metrics=metrics,
        artifacts=Artifacts(input=arts["input"], output=arts["output"]),
        workers=worker_records,
        parameter_conflicts=conflicts,
    )


def _param_identity(value: ParameterValue) -> object:
    """NaN never equals itself; two NaNs written by two workers are no conflict."""
    return "NaN" if isinstance(value, float) and math.isnan(value) else value

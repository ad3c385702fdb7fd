"""The embedded store: SQLite in WAL mode, artifacts content-addressed beside it.

Layout of a store directory::

    <store>/runstream.db          the database (schema version in ``meta``)
    <store>/artifacts/sha256/ab/abcdef...   files logged with log_file, by content hash

Metrics are written as *chunks*: one row per metric per flush holding that flush's step
statistics as a compact numpy blob (see :mod:`runstream._aggregate`), plus one running
summary per (metric, worker). A flush therefore costs a handful of rows whatever the number
of points, and a reader merges chunks exactly. Every write is one ``BEGIN IMMEDIATE``
transaction, so several processes can write the same run: SQLite serializes them, the
busy timeout waits instead of failing with "database is locked", and a killed writer
leaves the last committed flush intact.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .._core import _aggregate
from .._core._batch import Batch, RunKey
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

__all__ = ("LocalStore", "default_store_path", "is_transient", "resolve_store_path")

_log = logging.getLogger("runstream")

# A write transaction holds the lock for milliseconds; a writer that waits 10 s is facing
# a stuck lock. The flusher then keeps its batch and retries later (nothing is lost), and
# closing a run stays bounded.
_BUSY_TIMEOUT_MS = 10_000


def is_transient(exc: BaseException) -> bool:
    """Will retrying help? A locked, busy, full or failing disk: yes. A batch the schema
    refuses (a constraint, a value SQLite cannot bind): no, retrying it would block every
    later write."""
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    return not isinstance(
        cause, sqlite3.IntegrityError | sqlite3.InterfaceError | sqlite3.ProgrammingError
    )


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
        if read_only:
            self._db = _open_read_only(self.path)
            return
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
            # Chunks are blobs of up to megabytes: large pages mean far fewer overflow pages
            # to chain and copy. Only takes effect when the database is created.
            self._db.execute("PRAGMA page_size = 65536")
            self._enable_wal()
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # NORMAL in WAL mode: a committed flush survives a process crash; only an OS
            # crash can lose the last transactions, and never corrupts the database.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()

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
        with self.transaction("create schema") as db:
            migrate(db, self.path)

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
                "SELECT id FROM runs WHERE name = ? AND experiment_id IS ?",
                (run_name, experiment_id),
            ).fetchone()
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
    ) -> None:
        """Record a worker's status; ``started`` keeps its first value, as the SDK's start."""
        now = time.time()
        with self.transaction("set status") as db:
            db.execute(
                "INSERT INTO workers(run_id, worker, status, message, started, ended, "
                "heartbeat, host, pid, world_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id, worker) DO UPDATE SET status = excluded.status, "
                "message = excluded.message, started = coalesce(started, excluded.started), "
                "ended = excluded.ended, heartbeat = excluded.heartbeat, "
                "host = excluded.host, pid = excluded.pid, "
                "world_size = coalesce(excluded.world_size, world_size)",
                (
                    run_id,
                    worker,
                    status,
                    message,
                    started,
                    ended,
                    now,
                    _HOST,
                    os.getpid(),
                    world_size,
                ),
            )

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
        db.executemany(
            "INSERT INTO chunks(metric_id, worker, points, first_step, last_step, data, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    ids[name],
                    batch.worker,
                    stats.points,
                    int(stats.step[0]),
                    int(stats.step[-1]),
                    _aggregate.encode(stats),
                    now,
                )
                for name, stats in batch.metrics.items()
            ],
        )
        marks = ",".join("?" * len(ids))
        old = {
            metric_id: _aggregate.decode(blob)
            for metric_id, blob in db.execute(
                "SELECT metric_id, data FROM summaries WHERE worker = ? "
                f"AND metric_id IN ({marks})",
                (batch.worker, *ids.values()),
            )
        }
        rows = []
        for name, stats in batch.metrics.items():
            summary = _aggregate.summarize(stats)
            previous = old.get(ids[name])
            if previous is not None:
                summary = _summarize_pair(previous, summary)
            rows.append((ids[name], batch.worker, _aggregate.encode(summary)))
        db.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)", rows)

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
            "SELECT m.run_id, m.name, s.data FROM summaries s JOIN metrics m "
            f"ON m.id = s.metric_id WHERE m.run_id IN ({temp}) ORDER BY m.id"
        )
        return [
            _build_record(
                key,
                float(created[key.run_id]),
                params.get(key.run_id, []),
                artifacts.get(key.run_id, []),
                workers.get(key.run_id, []),
                summaries.get(key.run_id, []),
            )
            for key in keys
        ]

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
        sql, args = self._chunks_query("c.data", run_id, name, worker)
        blobs = self.query(sql + " ORDER BY c.id", args)
        if not blobs:
            raise RunNotFoundError(f"run {run_id} has no metric named {name!r}")
        return _aggregate.combine([_aggregate.decode(b[0]) for b in blobs])

    def series(self, run_id: int, name: str, worker: str | None = None) -> Series:
        return Series(name, self.step_stats(run_id, name, worker))

    def worker_series(self, run_id: int, name: str) -> dict[str, Series]:
        """A metric's series for each worker that logged it (the per-worker view)."""
        rows = self.query(
            "SELECT c.worker, c.data FROM chunks c JOIN metrics m ON m.id = c.metric_id "
            "WHERE m.run_id = ? AND m.name = ? ORDER BY c.id",
            (run_id, name),
        )
        if not rows:
            raise RunNotFoundError(f"run {run_id} has no metric named {name!r}")
        parts: dict[str, list[StepStats]] = {}
        for worker, blob in rows:
            parts.setdefault(str(worker), []).append(_aggregate.decode(blob))
        return {w: Series(name, _aggregate.combine(p)) for w, p in sorted(parts.items())}

    def stragglers(self, run_id: int, name: str) -> Stragglers:
        """For each step, the worker with the largest mean (the slowest, for a step time)."""
        return Stragglers.from_series(name, self.worker_series(run_id, name))


_HOST = os.uname().nodename if hasattr(os, "uname") else "localhost"


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


def _derive_status(workers: list[WorkerRecord], world_size: int | None) -> tuple[str, str | None]:
    """The run's status from its workers': Failed if any failed (else Stopped if any was
    interrupted); Completed only when every worker completed (all ``world_size`` of them,
    when the launcher said how many)."""
    if not workers:
        return "InProgress", None
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
    for name, blob in summaries:
        by_metric.setdefault(str(name), []).append(_aggregate.decode(blob))
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
        trial_component_name=(
            f"{key.experiment_name}-{key.run_name}" if key.experiment_name else key.run_name
        ),
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

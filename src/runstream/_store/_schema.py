"""The store's schema, versioned as one: the data tables and the sync tables.

``SCHEMA_VERSION`` counts changes; :func:`migrate` brings any older store up to it in one
transaction, and refuses a store written by a newer runstream. Every statement is
idempotent (``IF NOT EXISTS``), so a store half-created by a killed process is completed.

Versions: 1, the data tables; 2, the sync tables (until then created by the SageMaker
backend on first use, outside the version); 3, the graphs of ``log_precision_recall`` and
the like, and their sync state; 4, a CRC-32 ``checksum`` of each metric blob
(``chunks.data``, ``summaries.data``): blobs written before version 4 have a NULL checksum
and are read as before, a blob whose checksum does not match is reported as damaged; 5,
points logged without a step keyed by microsecond, one per call, instead of bucketed by
second (see :mod:`runstream._core._aggregate`): the stored keys are rewritten (and their
checksums with them), nothing else changes; 6, the sync tables keyed by sink
(``backend``), so several sinks (SageMaker, MLflow) sync one run each at its own pace, with
the stride of the data sent, ``log_file(extra_args=)`` kept for the agent (``sync_files``),
the store's agent lease (``sync_agent``) and the training processes it serves
(``sync_clients``); 7, the MLflow backend's sync state (``sync_mlflow_*``); 8, the hosts of a
run's sync registration (``sync_runs.hosts``, ``job_hosts``), so the agent (another process,
or ``runstream sync`` on another machine) knows which host's status this store reports.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._core import _aggregate
from .._core._exceptions import SchemaError

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = ("DB_NAME", "SCHEMA_VERSION", "migrate")

DB_NAME = "runstream.db"
SCHEMA_VERSION = 9

_DATA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT,
    description TEXT,
    tags BLOB,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    display_name TEXT,
    tags BLOB,
    created REAL NOT NULL,
    UNIQUE (experiment_id, name)
);
-- Unassigned runs (no experiment) are unique by name too: NULLs are distinct in UNIQUE.
CREATE UNIQUE INDEX IF NOT EXISTS runs_unassigned ON runs(name) WHERE experiment_id IS NULL;
CREATE TABLE IF NOT EXISTS workers (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    worker TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    started REAL,
    ended REAL,
    heartbeat REAL,
    host TEXT,
    pid INTEGER,
    world_size INTEGER,          -- workers the launcher started (RANK/WORLD_SIZE), if known
    PRIMARY KEY (run_id, worker)
);
CREATE TABLE IF NOT EXISTS parameters (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    worker TEXT NOT NULL,
    kind TEXT NOT NULL,          -- 'n' number (NaN stored as text), 's' string
    value,
    ts REAL NOT NULL,
    PRIMARY KEY (run_id, name, worker)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,     -- 'input' or 'output'
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    media_type TEXT,
    sha256 TEXT,
    size INTEGER,
    worker TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (run_id, direction, name)
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (run_id, name)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    metric_id INTEGER NOT NULL REFERENCES metrics(id) ON DELETE CASCADE,
    worker TEXT NOT NULL,
    points INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    last_step INTEGER NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_metric ON chunks(metric_id, worker);
CREATE TABLE IF NOT EXISTS summaries (
    metric_id INTEGER NOT NULL REFERENCES metrics(id) ON DELETE CASCADE,
    worker TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (metric_id, worker)
);
"""

# The sync state of the remote backends (see runstream._backends.sagemaker._journal).
_SYNC = """
CREATE TABLE IF NOT EXISTS sync_runs (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    backend TEXT NOT NULL,
    bucket TEXT,
    prefix TEXT,
    entities INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT,
    points_sent INTEGER NOT NULL DEFAULT 0,
    points_retried INTEGER NOT NULL DEFAULT 0,
    points_rejected INTEGER NOT NULL DEFAULT 0,
    data_sent INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    files_uploaded INTEGER NOT NULL DEFAULT 0,
    blocked TEXT,
    last_error TEXT,
    last_sync REAL,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE TABLE IF NOT EXISTS sync_cursors (
    metric_id INTEGER NOT NULL REFERENCES metrics(id) ON DELETE CASCADE,
    worker TEXT NOT NULL,
    done_chunk INTEGER NOT NULL DEFAULT 0,
    round_chunk INTEGER NOT NULL DEFAULT 0,
    round_step INTEGER,
    PRIMARY KEY (metric_id, worker)
);
CREATE TABLE IF NOT EXISTS sync_items (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    ts REAL NOT NULL,
    points INTEGER NOT NULL,
    state TEXT NOT NULL,
    code TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS sync_items_run ON sync_items(run_id, state);
CREATE TABLE IF NOT EXISTS sync_uploads (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uri TEXT NOT NULL,
    etag TEXT,
    PRIMARY KEY (run_id, direction, name)
)
"""

# The graph documents (runstream._core._graphs), one per title per run, and what the
# SageMaker backend did with each: uploaded (digest, uri, etag), its lineage artifact.
_GRAPHS = """
CREATE TABLE IF NOT EXISTS graphs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    type TEXT NOT NULL,
    direction TEXT NOT NULL,     -- 'input' or 'output'
    document BLOB NOT NULL,      -- the JSON the official SDK uploads
    worker TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (run_id, title)
);
CREATE TABLE IF NOT EXISTS sync_graphs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    digest TEXT NOT NULL,
    uri TEXT NOT NULL,
    etag TEXT,
    artifact_arn TEXT,
    PRIMARY KEY (run_id, title)
)
"""

# Version 4: checksums of the metric blobs. ALTER TABLE has no IF NOT EXISTS: each column
# is added only where it is missing.
_CHECKSUMS = {"chunks": "checksum INTEGER", "summaries": "checksum INTEGER"}


def _create(tables: str) -> Callable[[sqlite3.Connection], None]:
    def create(db: sqlite3.Connection) -> None:
        for statement in tables.split(";"):
            if statement.strip():
                db.execute(statement)

    return create


def _add_columns(columns: dict[str, str]) -> Callable[[sqlite3.Connection], None]:
    def add(db: sqlite3.Connection) -> None:
        for table, column in columns.items():
            name = column.split()[0]
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    return add


def _upgrade_step_keys(db: sqlite3.Connection) -> None:
    """Version 5: step-less keys from ``-(second + 1)`` to ``-(microsecond + 1)``, in the
    chunks and summaries that hold any (with their checksums), and in the sync journal's
    positions. A new store has no rows: nothing to rewrite."""
    for table, key in (("chunks", "id"), ("summaries", "rowid")):
        where = "first_step < 0" if table == "chunks" else "1"
        rows = db.execute(f"SELECT {key}, data FROM {table} WHERE {where}").fetchall()
        for rowid, blob in rows:
            stats = _aggregate.decode(blob)
            if not len(stats) or int(stats.step[0]) >= 0:
                continue
            new = _aggregate.upgrade_v2_keys(stats)
            data = _aggregate.encode(new)
            db.execute(
                f"UPDATE {table} SET data = ?, checksum = ? WHERE {key} = ?",
                (data, zlib.crc32(data), rowid),
            )
            if table == "chunks":
                db.execute(
                    "UPDATE chunks SET first_step = ?, last_step = ? WHERE id = ?",
                    (int(new.step[0]), int(new.step[-1]), rowid),
                )
    micro = "-((-{0} - 1) * 1000000 + 1)"
    db.execute(
        f"UPDATE sync_cursors SET round_step = {micro.format('round_step')} WHERE round_step < 0"
    )
    db.execute(f"UPDATE sync_items SET step = {micro.format('step')} WHERE step < 0")


# Version 6: the sync tables keyed by sink. SQLite cannot change a primary key in place:
# each table is rebuilt and its rows copied (all of them were SageMaker's).
_SINK_TABLES = """
CREATE TABLE sync_runs_v6 (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    backend TEXT NOT NULL,
    bucket TEXT,
    prefix TEXT,
    entities INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT,
    points_sent INTEGER NOT NULL DEFAULT 0,
    points_retried INTEGER NOT NULL DEFAULT 0,
    points_rejected INTEGER NOT NULL DEFAULT 0,
    data_sent INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    files_uploaded INTEGER NOT NULL DEFAULT 0,
    blocked TEXT,
    last_error TEXT,
    last_sync REAL,
    lease_owner TEXT,
    lease_expires REAL,
    resolution TEXT,
    stride INTEGER NOT NULL DEFAULT 1,
    last_stride INTEGER NOT NULL DEFAULT 1,
    caught_up REAL,              -- when the last round that left nothing pending began
    PRIMARY KEY (run_id, backend)
);
INSERT INTO sync_runs_v6(run_id, backend, bucket, prefix, entities, fingerprint, points_sent,
    points_retried, points_rejected, data_sent, api_calls, throttled, files_uploaded, blocked,
    last_error, last_sync, lease_owner, lease_expires)
    SELECT run_id, backend, bucket, prefix, entities, fingerprint, points_sent, points_retried,
    points_rejected, data_sent, api_calls, throttled, files_uploaded, blocked, last_error,
    last_sync, lease_owner, lease_expires FROM sync_runs;
DROP TABLE sync_runs;
ALTER TABLE sync_runs_v6 RENAME TO sync_runs;
CREATE TABLE sync_cursors_v6 (
    backend TEXT NOT NULL,
    metric_id INTEGER NOT NULL REFERENCES metrics(id) ON DELETE CASCADE,
    worker TEXT NOT NULL,
    done_chunk INTEGER NOT NULL DEFAULT 0,
    round_chunk INTEGER NOT NULL DEFAULT 0,
    round_step INTEGER,
    stride INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (backend, metric_id, worker)
);
INSERT INTO sync_cursors_v6(backend, metric_id, worker, done_chunk, round_chunk, round_step)
    SELECT 'sagemaker', metric_id, worker, done_chunk, round_chunk, round_step
    FROM sync_cursors;
DROP TABLE sync_cursors;
ALTER TABLE sync_cursors_v6 RENAME TO sync_cursors;
CREATE TABLE sync_uploads_v6 (
    backend TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uri TEXT NOT NULL,
    etag TEXT,
    PRIMARY KEY (backend, run_id, direction, name)
);
INSERT INTO sync_uploads_v6(backend, run_id, direction, name, sha256, uri, etag)
    SELECT 'sagemaker', run_id, direction, name, sha256, uri, etag FROM sync_uploads;
DROP TABLE sync_uploads;
ALTER TABLE sync_uploads_v6 RENAME TO sync_uploads;
DROP INDEX IF EXISTS sync_items_run;
CREATE INDEX IF NOT EXISTS sync_items_run ON sync_items(run_id, backend, state);
CREATE TABLE IF NOT EXISTS sync_files (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    extra_args BLOB NOT NULL,
    PRIMARY KEY (run_id, direction, name)
);
CREATE TABLE IF NOT EXISTS sync_agent (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT,
    pid INTEGER,
    host TEXT,
    started REAL,
    heartbeat REAL,
    expires REAL,
    state TEXT,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS sync_clients (
    owner TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    backend TEXT NOT NULL,
    opened REAL NOT NULL,
    closed REAL,
    in_job INTEGER NOT NULL DEFAULT 0
)
"""


def _sink_keys(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(sync_runs)")}
    if "last_stride" in present:  # a store half-upgraded by a killed process: done already
        _create(_SINK_TABLES.split("DROP INDEX IF EXISTS sync_items_run;")[1])(db)
        return
    _add_columns({"sync_items": "backend TEXT NOT NULL DEFAULT 'sagemaker'"})(db)
    _create(_SINK_TABLES)(db)


# Version 7: the MLflow backend's sync state (runstream._backends.mlflow._journal): its runs
# (experiment and run ids, the parameters sent, a lease), per-metric marks, refused items,
# uploaded files.
_MLFLOW = """
CREATE TABLE IF NOT EXISTS sync_mlflow_runs (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    experiment_id TEXT,
    mlflow_run_id TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    refused TEXT NOT NULL DEFAULT '{}',
    fingerprint TEXT,
    points_sent INTEGER NOT NULL DEFAULT 0,
    points_retried INTEGER NOT NULL DEFAULT 0,
    points_rejected INTEGER NOT NULL DEFAULT 0,
    data_sent INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    files_uploaded INTEGER NOT NULL DEFAULT 0,
    blocked TEXT,
    last_error TEXT,
    last_sync REAL,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE TABLE IF NOT EXISTS sync_mlflow_metrics (
    metric_id INTEGER PRIMARY KEY REFERENCES metrics(id) ON DELETE CASCADE,
    chunk_mark INTEGER NOT NULL DEFAULT 0,
    read_mark INTEGER NOT NULL DEFAULT 0,
    step_mark INTEGER NOT NULL DEFAULT -1,
    time_ms INTEGER NOT NULL DEFAULT -1
);
CREATE TABLE IF NOT EXISTS sync_mlflow_rejected (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    what TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER,
    value TEXT,
    points INTEGER NOT NULL DEFAULT 0,
    code TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_mlflow_files (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uri TEXT NOT NULL,
    PRIMARY KEY (run_id, direction, name)
)
"""

# Version 8: the MLflow sink runs in the sync agent: when a round last left a run with
# nothing pending (a closing run inside a job waits for a round that began after it closed).
_MLFLOW_CAUGHT_UP = {"sync_mlflow_runs": "caught_up REAL"}


# Version 9: the hosts a run was registered from (a JSON list: the host of each process that
# registered it, usually one per store) and the job's hosts when it said (SM_HOSTS). NULL in
# rows registered before: such a run reports no host status (one host, as before).
_HOSTS = ("hosts TEXT", "job_hosts TEXT")


def _sync_hosts(db: sqlite3.Connection) -> None:
    for column in _HOSTS:
        _add_columns({"sync_runs": column})(db)


# What each version adds to the one before it.
_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create(_DATA),
    2: _create(_SYNC),
    3: _create(_GRAPHS),
    4: _add_columns(_CHECKSUMS),
    5: _upgrade_step_keys,
    6: _sink_keys,
    7: _create(_MLFLOW),
    8: _add_columns(_MLFLOW_CAUGHT_UP),
    9: _sync_hosts,
}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create or upgrade the schema (inside the caller's write transaction)."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = 0 if row is None else int(row[0])
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the store at {path} has schema version {version}, newer than this "
            f"runstream understands ({SCHEMA_VERSION}); upgrade runstream"
        )
    for step in range(1, SCHEMA_VERSION + 1):
        # Every step is idempotent, and the first always runs: a version-1 store may
        # already hold sync tables that an older SageMaker backend created outside the
        # version, and a store half-created by a killed process is completed.
        if step > version or step == 1:
            _STEPS[step](db)
    db.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )

"""The MLflow backend's sync state, in the store beside the data it describes.

Its own tables, part of the store's versioned schema (version 7, ``_store/_schema.py``;
each row goes with its run or metric, foreign keys cascade); the sink-keyed journal of the
agent (``_backends/_journal.py``) is what they move to when this sink moves to the agent:

``sync_mlflow_runs``
    a run to sync: the tracking URI, MLflow's experiment and run ids once known, the
    parameters MLflow holds (write-once there) and those it refused, the fingerprint of the
    last run update, counters, the last error, ``blocked`` and a lease (one sender per run).
``sync_mlflow_metrics``
    per metric, the *merged* series' position: ``step_mark`` (steps through it are sent),
    ``read_mark`` (chunks through it were read by an acknowledged round), ``chunk_mark``
    (chunks through it hold nothing unsent) and ``time_ms`` (the last millisecond given to
    a point logged without a step).
``sync_mlflow_rejected``
    points MLflow refused (INVALID_PARAMETER_VALUE, one by one): kept and reported.
``sync_mlflow_files``
    files uploaded, by content hash.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .._journal import COUNTER_COLUMNS, alive

if TYPE_CHECKING:
    from ..._store import LocalStore

__all__ = (
    "MetricCursor",
    "RunTarget",
    "acquire_lease",
    "commit_metric",
    "counters",
    "has_tables",
    "metric_cursors",
    "note",
    "record_refused_file",
    "record_upload",
    "register",
    "rejected",
    "release_lease",
    "set_ids",
    "set_run_state",
    "targets",
    "uploads",
)

BACKEND = "mlflow"


def has_tables(store: LocalStore) -> bool:
    rows = store.query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sync_mlflow_runs'"
    )
    return bool(rows and int(rows[0][0]))


@dataclass(frozen=True, slots=True)
class RunTarget:
    run_id: int
    experiment_name: str | None
    run_name: str
    display_name: str | None
    tags: bytes | None
    uri: str
    experiment_id: str | None
    mlflow_run_id: str | None
    params: dict[str, str]
    refused: dict[str, str]
    fingerprint: str | None

    @property
    def trial_component_name(self) -> str:
        if self.experiment_name is None:
            return self.run_name
        return f"{self.experiment_name}-{self.run_name}"


def register(store: LocalStore, run_id: int, uri: str) -> None:
    """Mark a run for sync to the MLflow server at ``uri`` (the latest registration wins)."""
    with store.transaction("register run for MLflow sync") as db:
        row = db.execute("SELECT uri FROM sync_mlflow_runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            db.execute("INSERT INTO sync_mlflow_runs(run_id, uri) VALUES (?, ?)", (run_id, uri))
        elif row[0] != uri:
            # Another server: start over there (its ids, parameters and positions differ).
            db.execute(
                "UPDATE sync_mlflow_runs SET uri = ?, experiment_id = NULL, mlflow_run_id = NULL, "
                "params = '{}', refused = '{}', fingerprint = NULL WHERE run_id = ?",
                (uri, run_id),
            )
            db.execute(
                "DELETE FROM sync_mlflow_metrics WHERE metric_id IN "
                "(SELECT id FROM metrics WHERE run_id = ?)",
                (run_id,),
            )
            db.execute("DELETE FROM sync_mlflow_files WHERE run_id = ?", (run_id,))


def targets(store: LocalStore, run_ids: Sequence[int] | None = None) -> list[RunTarget]:
    if not has_tables(store):
        return []
    sql = (
        "SELECT r.id, e.name, r.name, r.display_name, r.tags, s.uri, s.experiment_id, "
        "s.mlflow_run_id, s.params, s.refused, s.fingerprint FROM sync_mlflow_runs s "
        "JOIN runs r ON r.id = s.run_id LEFT JOIN experiments e ON e.id = r.experiment_id"
    )
    args: list[object] = []
    if run_ids is not None:
        sql += f" WHERE r.id IN ({','.join('?' * len(run_ids))})"
        args.extend(run_ids)
    return [
        RunTarget(
            run_id=int(r[0]),
            experiment_name=None if r[1] is None else str(r[1]),
            run_name=str(r[2]),
            display_name=None if r[3] is None else str(r[3]),
            tags=r[4],
            uri=str(r[5]),
            experiment_id=None if r[6] is None else str(r[6]),
            mlflow_run_id=None if r[7] is None else str(r[7]),
            params=orjson.loads(r[8]),
            refused=orjson.loads(r[9]),
            fingerprint=None if r[10] is None else str(r[10]),
        )
        for r in store.query(sql + " ORDER BY r.id", args)
    ]


def set_ids(store: LocalStore, run_id: int, experiment_id: str, mlflow_run_id: str) -> None:
    with store.transaction("record MLflow run") as db:
        db.execute(
            "UPDATE sync_mlflow_runs SET experiment_id = ?, mlflow_run_id = ?, "
            "api_calls = api_calls + 1 WHERE run_id = ?",
            (experiment_id, mlflow_run_id, run_id),
        )


def set_run_state(
    store: LocalStore,
    run_id: int,
    *,
    params: dict[str, str],
    refused: dict[str, str],
    fingerprint: str,
    calls: int,
) -> None:
    with store.transaction("record MLflow run update") as db:
        db.execute(
            "UPDATE sync_mlflow_runs SET params = ?, refused = ?, fingerprint = ?, "
            "api_calls = api_calls + ? WHERE run_id = ?",
            (
                orjson.dumps(params).decode(),
                orjson.dumps(refused).decode(),
                fingerprint,
                calls,
                run_id,
            ),
        )
        for name, code in refused.items():
            exists = db.execute(
                "SELECT 1 FROM sync_mlflow_rejected WHERE run_id = ? AND what = 'parameter' "
                "AND name = ?",
                (run_id, name),
            ).fetchone()
            if exists is None:
                db.execute(
                    "INSERT INTO sync_mlflow_rejected(run_id, what, name, code) "
                    "VALUES (?, 'parameter', ?, ?)",
                    (run_id, name, code),
                )


def note(
    store: LocalStore,
    run_id: int,
    *,
    error: str | None = None,
    blocked: str | None = None,
    throttled: int = 0,
    retried: int = 0,
    caught_up: bool = False,
    round_began: float | None = None,
) -> None:
    """A round's end (``caught_up``: nothing was left when it ended; ``round_began``: when
    it began, recorded as the run's ``caught_up`` time) or a failure."""
    began = round_began if caught_up and round_began is not None else None
    with store.transaction("record MLflow sync state") as db:
        db.execute(
            "UPDATE sync_mlflow_runs SET last_error = CASE WHEN ? THEN NULL "
            "ELSE coalesce(?, last_error) END, blocked = ?, throttled = throttled + ?, "
            "points_retried = points_retried + ?, last_sync = ?, "
            "caught_up = coalesce(?, caught_up) WHERE run_id = ?",
            (caught_up, error, blocked, throttled, retried, time.time(), began, run_id),
        )


# -- leases (one sender per run across processes) ----------------------------------------


def acquire_lease(store: LocalStore, run_id: int, owner: str, ttl: float) -> bool:
    now = time.time()
    with store.transaction("take MLflow sync lease") as db:
        row = db.execute(
            "SELECT lease_owner, lease_expires FROM sync_mlflow_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return False
        holder, expires = row
        if holder and holder != owner and expires and expires > now and alive(str(holder)):
            return False
        db.execute(
            "UPDATE sync_mlflow_runs SET lease_owner = ?, lease_expires = ? WHERE run_id = ?",
            (owner, now + ttl, run_id),
        )
    return True


def release_lease(store: LocalStore, run_id: int, owner: str) -> None:
    with store.transaction("release MLflow sync lease") as db:
        db.execute(
            "UPDATE sync_mlflow_runs SET lease_owner = NULL, lease_expires = NULL "
            "WHERE run_id = ? AND lease_owner = ?",
            (run_id, owner),
        )


# -- metrics ------------------------------------------------------------------------------


@dataclass(slots=True)
class MetricCursor:
    metric_id: int
    metric: str
    chunk_mark: int
    read_mark: int
    step_mark: int
    time_ms: int


def metric_cursors(store: LocalStore, run_id: int) -> list[MetricCursor]:
    """The run's metrics with chunks past their ``chunk_mark``."""
    rows = store.query(
        "SELECT m.id, m.name, coalesce(s.chunk_mark, 0), coalesce(s.read_mark, 0), "
        "coalesce(s.step_mark, -1), coalesce(s.time_ms, -1) FROM metrics m "
        "LEFT JOIN sync_mlflow_metrics s ON s.metric_id = m.id WHERE m.run_id = ? AND "
        "EXISTS (SELECT 1 FROM chunks c WHERE c.metric_id = m.id "
        "AND c.id > coalesce(s.chunk_mark, 0)) ORDER BY m.id",
        (run_id,),
    )
    return [
        MetricCursor(int(a), str(b), int(c), int(d), int(e), int(f)) for a, b, c, d, e, f in rows
    ]


def commit_metric(
    store: LocalStore,
    run_id: int,
    cursor: MetricCursor,
    *,
    points: int,
    data: int,
    calls: int,
    rejected: Sequence[tuple[int, Any, int, str]],
    resent: int,
    throttled: int,
) -> None:
    """Record an acknowledged round of one metric: position, counters, refused points."""
    with store.transaction("record sent MLflow metrics") as db:
        db.execute(
            "INSERT INTO sync_mlflow_metrics(metric_id, chunk_mark, read_mark, step_mark, time_ms) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(metric_id) DO UPDATE SET "
            "chunk_mark = excluded.chunk_mark, read_mark = excluded.read_mark, "
            "step_mark = excluded.step_mark, time_ms = excluded.time_ms",
            (
                cursor.metric_id,
                cursor.chunk_mark,
                cursor.read_mark,
                cursor.step_mark,
                cursor.time_ms,
            ),
        )
        db.executemany(
            "INSERT INTO sync_mlflow_rejected(run_id, what, name, step, value, points, code) "
            "VALUES (?, 'metric', ?, ?, ?, ?, ?)",
            [
                (run_id, cursor.metric, step, str(value), n, code)
                for step, value, n, code in rejected
            ],
        )
        db.execute(
            "UPDATE sync_mlflow_runs SET points_sent = points_sent + ?, data_sent = data_sent + ?, "
            "api_calls = api_calls + ?, points_rejected = points_rejected + ?, "
            "points_retried = points_retried + ?, throttled = throttled + ?, last_sync = ? "
            "WHERE run_id = ?",
            (
                points,
                data,
                calls,
                sum(r[2] for r in rejected),
                resent,
                throttled,
                time.time(),
                run_id,
            ),
        )


def rejected(store: LocalStore, run_id: int) -> list[tuple[str, str, int | None, str | None, str]]:
    """What MLflow refused: (what, name, step, value, code)."""
    if not has_tables(store):
        return []
    rows = store.query(
        "SELECT what, name, step, value, code FROM sync_mlflow_rejected WHERE run_id = ? "
        "ORDER BY id",
        (run_id,),
    )
    return [(str(w), str(n), None if s is None else int(s), v, str(c)) for w, n, s, v, c in rows]


# -- files --------------------------------------------------------------------------------


def uploads(store: LocalStore, run_id: int) -> dict[tuple[str, str], tuple[str, str]]:
    rows = store.query(
        "SELECT direction, name, sha256, uri FROM sync_mlflow_files WHERE run_id = ?", (run_id,)
    )
    return {(str(d), str(n)): (str(s), str(u)) for d, n, s, u in rows}


def record_upload(
    store: LocalStore, run_id: int, direction: str, name: str, sha256: str, uri: str
) -> None:
    with store.transaction("record MLflow upload") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_mlflow_files VALUES (?, ?, ?, ?, ?)",
            (run_id, direction, name, sha256, uri),
        )
        db.execute(
            "UPDATE sync_mlflow_runs SET files_uploaded = files_uploaded + 1, "
            "api_calls = api_calls + 1 WHERE run_id = ?",
            (run_id,),
        )


def record_refused_file(
    store: LocalStore, run_id: int, direction: str, name: str, sha256: str, code: str
) -> None:
    """MLflow refused this file as it is now: reported (``rejected``), kept in the store,
    and not sent again unless it changes (its row has these bytes' hash and no URI)."""
    with store.transaction("record MLflow refused file") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_mlflow_files VALUES (?, ?, ?, ?, '')",
            (run_id, direction, name, sha256),
        )
        db.execute(
            "INSERT INTO sync_mlflow_rejected(run_id, what, name, value, code) "
            "VALUES (?, 'file', ?, ?, ?)",
            (run_id, f"{direction}/{name}", sha256, code),
        )
        db.execute(
            "UPDATE sync_mlflow_runs SET api_calls = api_calls + 1 WHERE run_id = ?", (run_id,)
        )


def counters(store: LocalStore, run_id: int) -> sqlite3.Row | tuple[Any, ...]:
    rows = store.query(
        f"SELECT {COUNTER_COLUMNS}, caught_up, (SELECT count(*) FROM "
        "sync_mlflow_rejected r WHERE r.run_id = s.run_id AND r.what = 'file') "
        "FROM sync_mlflow_runs s WHERE run_id = ?",
        (run_id,),
    )
    return tuple(rows[0])

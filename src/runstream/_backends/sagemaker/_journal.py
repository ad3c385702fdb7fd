"""The sync state, kept in the store beside the data it describes.

The store is the journal: the flusher writes there first, and these tables say how much
of it SageMaker has acknowledged. The tables are part of the store's versioned schema
(:mod:`runstream._store._schema`), in the same SQLite file, so a crash loses no sync state
either, and deleting a run deletes its sync state (foreign keys cascade).

``sync_runs``
    runs to sync, their S3 target, whether their entities exist, the fingerprint of the
    last trial-component update, counters, the last error and a lease (one sender per run
    across processes: two senders would send the same points twice).
``sync_cursors``
    per (metric, worker): chunks up to ``done_chunk`` are sent. A round in progress also
    covers chunks up to ``round_chunk``, sent through step ``round_step``: a round sends a
    series in step order and the cursor moves with each acknowledged call, so a sender
    killed mid-round resumes after the last acknowledged step.
``sync_items``
    data the service refused one by one: ``retry`` (INTERNAL_ERROR, CONFLICT_ERROR) or
    ``rejected`` (VALIDATION_ERROR, out of the timestamp window, non-finite): kept and
    reported, never dropped silently.
``sync_uploads``
    files uploaded to S3, by content hash: an unchanged file is not uploaded twice.
``sync_graphs``
    graphs (``log_precision_recall``...) uploaded to S3 and recorded as lineage artifacts,
    by the digest of their document: a graph logged again under its title is sent again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..._core import _aggregate, _names
from ..._core._environment import HOST
from ..._core._records import SyncStatus

if TYPE_CHECKING:
    from ..._core._aggregate import StepStats
    from ..._store import LocalStore

__all__ = (
    "CallResult",
    "Cursor",
    "Item",
    "Target",
    "acquire_lease",
    "commit",
    "cursors",
    "mark_entities",
    "new_owner",
    "note",
    "pending_graphs",
    "pending_points",
    "pending_stats",
    "record_graph",
    "record_upload",
    "register",
    "release_lease",
    "retry_items",
    "sent_graphs",
    "set_fingerprint",
    "status",
    "targets",
    "uploads",
)


# -- runs to sync -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A run registered for sync, with what the sender needs to create its entities."""

    run_id: int
    experiment_name: str | None
    run_name: str
    display_name: str | None
    tags: bytes | None
    experiment_display_name: str | None
    bucket: str | None
    prefix: str | None
    entities: bool
    fingerprint: str | None

    @property
    def trial_component_name(self) -> str:
        return _names.trial_component_name(self.experiment_name, self.run_name)


def register(
    store: LocalStore, run_id: int, *, bucket: str | None = None, prefix: str | None = None
) -> None:
    """Mark a run for sync to SageMaker (its S3 target follows the latest registration)."""
    with store.transaction("register run for sync") as db:
        db.execute(
            "INSERT INTO sync_runs(run_id, backend, bucket, prefix) "
            "VALUES (?, 'sagemaker', ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
            "bucket = coalesce(excluded.bucket, bucket), "
            "prefix = coalesce(excluded.prefix, prefix)",
            (run_id, bucket, prefix),
        )


def targets(store: LocalStore, run_ids: Sequence[int] | None = None) -> list[Target]:
    """The runs registered for sync (all of them, or those of ``run_ids``)."""
    sql = (
        "SELECT r.id, e.name, r.name, r.display_name, r.tags, e.display_name, s.bucket, "
        "s.prefix, s.entities, s.fingerprint FROM sync_runs s JOIN runs r ON r.id = s.run_id "
        "LEFT JOIN experiments e ON e.id = r.experiment_id"
    )
    args: list[object] = []
    if run_ids is not None:
        sql += f" WHERE r.id IN ({','.join('?' * len(run_ids))})"
        args.extend(run_ids)
    rows = store.query(sql + " ORDER BY r.id", args)
    return [
        Target(
            run_id=_int(r[0]),
            experiment_name=_opt(r[1]),
            run_name=str(r[2]),
            display_name=_opt(r[3]),
            tags=r[4],
            experiment_display_name=_opt(r[5]),
            bucket=_opt(r[6]),
            prefix=_opt(r[7]),
            entities=bool(r[8]),
            fingerprint=_opt(r[9]),
        )
        for r in rows
    ]


def mark_entities(store: LocalStore, run_id: int) -> None:
    with store.transaction("record sync entities") as db:
        db.execute("UPDATE sync_runs SET entities = 1 WHERE run_id = ?", (run_id,))


def set_fingerprint(store: LocalStore, run_id: int, fingerprint: str) -> None:
    with store.transaction("record trial component update") as db:
        db.execute(
            "UPDATE sync_runs SET fingerprint = ?, api_calls = api_calls + 1 WHERE run_id = ?",
            (fingerprint, run_id),
        )


def note(
    store: LocalStore,
    run_id: int,
    *,
    error: str | None = None,
    blocked: str | None = None,
    throttled: int = 0,
    retried: int = 0,
    synced: bool = False,
    caught_up: bool = False,
) -> None:
    """Record an error (or a clean round) and the counters that go with it. A round that
    caught up clears the last error: it no longer describes anything pending."""
    with store.transaction("record sync state") as db:
        db.execute(
            "UPDATE sync_runs SET last_error = CASE WHEN ? THEN NULL "
            "ELSE coalesce(?, last_error) END, blocked = ?, "
            "throttled = throttled + ?, points_retried = points_retried + ?, "
            "last_sync = CASE WHEN ? THEN ? ELSE last_sync END WHERE run_id = ?",
            (caught_up, error, blocked, throttled, retried, synced, time.time(), run_id),
        )


# -- leases -----------------------------------------------------------------------------


def new_owner() -> str:
    return f"{HOST}:{os.getpid()}:{os.urandom(4).hex()}"


def acquire_lease(store: LocalStore, run_id: int, owner: str, ttl: float) -> bool:
    """Take or renew the right to send ``run_id``. Stolen from a holder that expired or
    whose process is gone (same host), so a crash never blocks a run for long."""
    now = time.time()
    with store.transaction("take sync lease") as db:
        row = db.execute(
            "SELECT lease_owner, lease_expires FROM sync_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return False
        holder, expires = row
        if holder and holder != owner and expires and expires > now and _alive(holder):
            return False
        db.execute(
            "UPDATE sync_runs SET lease_owner = ?, lease_expires = ? WHERE run_id = ?",
            (owner, now + ttl, run_id),
        )
    return True


def release_lease(store: LocalStore, run_id: int, owner: str) -> None:
    with store.transaction("release sync lease") as db:
        db.execute(
            "UPDATE sync_runs SET lease_owner = NULL, lease_expires = NULL "
            "WHERE run_id = ? AND lease_owner = ?",
            (run_id, owner),
        )


def _alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return True  # another machine's process: trust its lease until it expires
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- metrics ----------------------------------------------------------------------------


@dataclass(slots=True)
class Cursor:
    """One (metric, worker) series of a run, and how far it is sent."""

    metric_id: int
    metric: str
    worker: str
    done_chunk: int
    round_chunk: int
    round_step: int | None
    newest_chunk: int

    @property
    def key(self) -> tuple[int, str]:
        return (self.metric_id, self.worker)


def cursors(store: LocalStore, run_id: int) -> list[Cursor]:
    """The series of ``run_id`` with chunks not yet sent."""
    rows = store.query(
        "SELECT m.id, m.name, c.worker, coalesce(s.done_chunk, 0), coalesce(s.round_chunk, 0), "
        "s.round_step, max(c.id) FROM metrics m JOIN chunks c ON c.metric_id = m.id "
        "LEFT JOIN sync_cursors s ON s.metric_id = m.id AND s.worker = c.worker "
        "WHERE m.run_id = ? AND c.id > coalesce(s.done_chunk, 0) "
        "GROUP BY m.id, c.worker ORDER BY m.id, c.worker",
        (run_id,),
    )
    return [
        Cursor(int(a), str(b), str(c), int(d), int(e), None if f is None else int(f), int(g))
        for a, b, c, d, e, f, g in rows
    ]


def pending_stats(store: LocalStore, cursor: Cursor, max_chunks: int) -> StepStats:
    """The step statistics of a series not yet sent, merged per step.

    A round in progress (``round_chunk`` ahead of ``done_chunk``) is resumed as it was:
    the same chunks, past ``round_step``. Otherwise a new round takes up to
    ``max_chunks`` chunks, and ``cursor.round_chunk`` is set to the last of them.
    """
    resuming = cursor.round_chunk > cursor.done_chunk
    sql = "SELECT id, data FROM chunks WHERE metric_id = ? AND worker = ? AND id > ?"
    args: list[object] = [cursor.metric_id, cursor.worker, cursor.done_chunk]
    if resuming:
        sql += " AND id <= ?"
        args.append(cursor.round_chunk)
    rows = store.query(sql + " ORDER BY id LIMIT ?", [*args, max_chunks])
    if not rows:
        return _aggregate.empty()
    if not resuming:
        cursor.round_chunk = _int(rows[-1][0])
        cursor.round_step = None
    stats = _aggregate.combine([_aggregate.decode(blob) for _, blob in rows])
    if cursor.round_step is not None:
        stats = stats.take(np.flatnonzero(stats.step > cursor.round_step))
    return stats


@dataclass(frozen=True, slots=True)
class Item:
    """One datum of a BatchPutMetrics call, and where it came from."""

    metric: str
    step: int  # negative: logged without a step (sent without Step)
    value: float
    ts: float
    points: int
    series: tuple[int, str] | None = None  # (metric_id, worker), None for a retry item
    item_id: int | None = None  # sync_items row of a retry item


def retry_items(store: LocalStore, run_id: int, limit: int) -> list[Item]:
    rows = store.query(
        "SELECT id, metric, step, value, ts, points FROM sync_items "
        "WHERE run_id = ? AND state = 'retry' ORDER BY id LIMIT ?",
        (run_id, limit),
    )
    return [
        Item(str(m), int(s), float(v), float(t), int(p), item_id=int(i))
        for i, m, s, v, t, p in rows
    ]


@dataclass(slots=True)
class CallResult:
    """What one call (or one round of local rejections) did, committed atomically."""

    sent: list[Item] = field(default_factory=list)
    retry: list[tuple[Item, str]] = field(default_factory=list)
    rejected: list[tuple[Item, str]] = field(default_factory=list)
    #: series -> (round_chunk, step sent through; None when the round is complete)
    advance: dict[tuple[int, str], tuple[int, int | None]] = field(default_factory=dict)
    api_calls: int = 0
    #: throttled attempts, and the points of whole calls sent again after a failure
    throttled: int = 0
    resent_points: int = 0
    max_attempts: int = 20


def commit(store: LocalStore, run_id: int, result: CallResult) -> None:
    """Record an acknowledged call: cursors, counters and item states move together."""
    with store.transaction("record sent metrics") as db:
        for (metric_id, worker), (round_chunk, step) in result.advance.items():
            done = round_chunk if step is None else None
            db.execute(
                "INSERT INTO sync_cursors(metric_id, worker, done_chunk, round_chunk, round_step) "
                "VALUES (?, ?, coalesce(?, 0), ?, ?) ON CONFLICT(metric_id, worker) DO UPDATE SET "
                "done_chunk = coalesce(?, done_chunk), round_chunk = excluded.round_chunk, "
                "round_step = excluded.round_step",
                (metric_id, worker, done, round_chunk, step, done),
            )
        acked = [i.item_id for i in result.sent if i.item_id is not None]
        if acked:
            db.executemany("DELETE FROM sync_items WHERE id = ?", [(i,) for i in acked])
        for item, code in result.retry:
            if item.item_id is None:
                _insert_item(db, run_id, item, "retry", code)
            else:
                db.execute(
                    "UPDATE sync_items SET attempts = attempts + 1, code = ?, "
                    "state = CASE WHEN attempts + 1 >= ? THEN 'rejected' ELSE 'retry' END "
                    "WHERE id = ?",
                    (code, result.max_attempts, item.item_id),
                )
        for item, code in result.rejected:
            if item.item_id is None:
                _insert_item(db, run_id, item, "rejected", code)
            else:
                db.execute(
                    "UPDATE sync_items SET state = 'rejected', code = ? WHERE id = ?",
                    (code, item.item_id),
                )
        given_up = sum(
            i.points
            for i, _ in result.retry
            if i.item_id is not None and _attempts(db, i.item_id) >= result.max_attempts
        )
        fresh_rejects = sum(i.points for i, _ in result.rejected)
        db.execute(
            "UPDATE sync_runs SET points_sent = points_sent + ?, data_sent = data_sent + ?, "
            "api_calls = api_calls + ?, points_rejected = points_rejected + ?, "
            "points_retried = points_retried + ?, throttled = throttled + ?, last_sync = ?, "
            "last_error = CASE WHEN ? THEN NULL ELSE last_error END WHERE run_id = ?",
            (
                sum(i.points for i in result.sent),
                len(result.sent),
                result.api_calls,
                fresh_rejects + given_up,
                sum(i.points for i, _ in result.retry) + result.resent_points,
                result.throttled,
                time.time(),
                not result.throttled and not result.resent_points,
                run_id,
            ),
        )


def _attempts(db: sqlite3.Connection, item_id: int) -> int:
    row = db.execute("SELECT attempts FROM sync_items WHERE id = ?", (item_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _insert_item(db: sqlite3.Connection, run_id: int, item: Item, state: str, code: str) -> None:
    db.execute(
        "INSERT INTO sync_items(run_id, metric, step, value, ts, points, state, code) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, item.metric, item.step, item.value, item.ts, item.points, state, code),
    )


# -- files ------------------------------------------------------------------------------


def uploads(store: LocalStore, run_id: int) -> dict[tuple[str, str], tuple[str, str]]:
    """(direction, name) -> (sha256, uri) of the files already in S3."""
    rows = store.query(
        "SELECT direction, name, sha256, uri FROM sync_uploads WHERE run_id = ?", (run_id,)
    )
    return {(str(d), str(n)): (str(s), str(u)) for d, n, s, u in rows}


def record_upload(
    store: LocalStore,
    run_id: int,
    direction: str,
    name: str,
    sha256: str,
    uri: str,
    etag: str | None,
    *,
    transferred: bool,
) -> None:
    with store.transaction("record upload") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_uploads VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, direction, name, sha256, uri, etag),
        )
        if transferred:
            db.execute(
                "UPDATE sync_runs SET files_uploaded = files_uploaded + 1 WHERE run_id = ?",
                (run_id,),
            )


def pending_graphs(store: LocalStore, run_id: int) -> list[tuple[str, str, str, bytes, str]]:
    """Graphs not sent as they are now: (title, type, direction, document, digest)."""
    rows = store.query(
        "SELECT g.title, g.type, g.direction, g.document, s.digest FROM graphs g "
        "LEFT JOIN sync_graphs s ON s.run_id = g.run_id AND s.title = g.title "
        "WHERE g.run_id = ? ORDER BY g.rowid",
        (run_id,),
    )
    pending = []
    for title, kind, direction, document, sent in rows:
        digest = hashlib.sha256(bytes(document)).hexdigest()
        if digest != sent:
            pending.append((str(title), str(kind), str(direction), bytes(document), digest))
    return pending


def record_graph(
    store: LocalStore,
    run_id: int,
    title: str,
    digest: str,
    uri: str,
    etag: str | None,
    artifact_arn: str | None,
) -> None:
    with store.transaction("record graph") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_graphs VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, title, digest, uri, etag, artifact_arn),
        )


def sent_graphs(store: LocalStore, run_id: int) -> dict[str, tuple[str, str | None, str | None]]:
    """title -> (uri, etag, lineage artifact ARN) of the graphs sent."""
    rows = store.query(
        "SELECT title, uri, etag, artifact_arn FROM sync_graphs WHERE run_id = ?", (run_id,)
    )
    return {str(t): (str(u), _opt(e), _opt(a)) for t, u, e, a in rows}


# -- reporting --------------------------------------------------------------------------


def pending_points(store: LocalStore, run_id: int) -> int:
    """Logged points in the store that SageMaker has not acknowledged yet."""
    total = 0
    for cursor in cursors(store, run_id):
        rows = store.query(
            "SELECT id, points, data FROM chunks WHERE metric_id = ? AND worker = ? AND id > ?",
            (cursor.metric_id, cursor.worker, cursor.done_chunk),
        )
        for chunk_id, points, blob in rows:
            round_step = cursor.round_step
            if round_step is not None and chunk_id <= cursor.round_chunk:
                stats = _aggregate.decode(blob)
                total += int(stats.count[stats.step > round_step].sum())
            else:
                total += _int(points)
    retry = store.query(
        "SELECT coalesce(sum(points), 0) FROM sync_items WHERE run_id = ? AND state = 'retry'",
        (run_id,),
    )
    return total + _int(retry[0][0])


def status(store: LocalStore, target: Target, *, files_pending: int = 0) -> SyncStatus:
    """The sync state of one registered run, read from the store."""
    row = store.query(
        "SELECT points_sent, points_retried, points_rejected, data_sent, api_calls, "
        "throttled, files_uploaded, blocked, last_error, last_sync FROM sync_runs "
        "WHERE run_id = ?",
        (target.run_id,),
    )[0]
    pending = pending_points(store, target.run_id)
    blocked = _opt(row[7])
    state = "blocked" if blocked else "pending" if pending or files_pending else "synced"
    return SyncStatus(
        experiment_name=target.experiment_name,
        run_name=target.run_name,
        backend="sagemaker",
        state=state,
        points_pending=pending,
        points_sent=_int(row[0]),
        points_retried=_int(row[1]),
        points_rejected=_int(row[2]),
        data_sent=_int(row[3]),
        api_calls=_int(row[4]),
        throttled=_int(row[5]),
        files_pending=files_pending,
        files_uploaded=_int(row[6]),
        last_error=blocked or _opt(row[8]),
        last_sync=None if row[9] is None else float(row[9]),
    )


def _int(value: object) -> int:
    """An SQLite integer column as ``int`` (for the type checker: rows are ``object``)."""
    if not isinstance(value, int | float | str):
        raise TypeError(f"expected a number from the store, got {value!r}")
    return int(value)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

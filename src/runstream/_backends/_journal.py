"""The sync state, kept in the store beside the data it describes.

The store is the journal: the flusher writes there first, and these tables say how much
of it SageMaker has acknowledged. The tables are part of the store's versioned schema
(:mod:`runstream._store._schema`), in the same SQLite file, so a crash loses no sync state
either, and deleting a run deletes its sync state (foreign keys cascade).

``sync_runs``
    runs to sync, their S3 target, whether their entities exist, the fingerprint of the
    last trial-component update, counters, the last error and a lease (one sender per run
    across processes: two senders would send the same points twice); the hosts the run was
    registered from and the job's hosts (``SM_HOSTS``), for the status across hosts.
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
import logging
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from .._core import _aggregate, _names
from .._core._environment import HOST, current_host, job_hosts
from .._core._exceptions import StoreError
from .._core._records import SyncStatus

if TYPE_CHECKING:
    from .._core._aggregate import StepStats
    from .._core._records import Artifact, Artifacts
    from .._store import LocalStore

__all__ = (
    "COUNTER_COLUMNS",
    "SAGEMAKER",
    "AgentState",
    "CallResult",
    "Cursor",
    "Item",
    "Sent",
    "Target",
    "acquire_lease",
    "agent_description",
    "agent_state",
    "alive",
    "claim_agent",
    "close_client",
    "commit",
    "count_unsent_files",
    "counter_fields",
    "cursors",
    "file_options",
    "files_pending",
    "live_clients",
    "mark_entities",
    "new_owner",
    "note",
    "open_client",
    "pending",
    "pending_graphs",
    "pending_stats",
    "record_graph",
    "record_upload",
    "register",
    "release_agent",
    "release_lease",
    "retry_items",
    "sent_graphs",
    "series_backlog",
    "set_file_options",
    "set_fingerprint",
    "status",
    "status_of",
    "targets",
    "unsent_files",
    "uploads",
)

_log = logging.getLogger("runstream")


#: the first sink's name, the default of every function below
SAGEMAKER = "sagemaker"


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
    #: the sink (backend name) this registration is for
    sink: str = "sagemaker"
    #: "full" (never group steps) or "auto" (group the oldest only past the lag bound)
    resolution: str = "auto"
    #: the hosts whose status this store reports (``SM_CURRENT_HOST``, else the machine's
    #: name, of the processes that registered the run; usually one); empty in a run
    #: registered before schema 9
    hosts: tuple[str, ...] = ()
    #: the job's hosts (``SM_HOSTS``) when the registration named them
    job_hosts: tuple[str, ...] = ()

    @property
    def trial_component_name(self) -> str:
        return _names.trial_component_name(self.experiment_name, self.run_name)


def register(
    store: LocalStore,
    run_id: int,
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    resolution: str | None = None,
    sink: str = SAGEMAKER,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Mark a run for sync to ``sink`` (its S3 target, resolution and job hosts follow the
    latest registration that names them).

    The registering process's host is recorded when the run has none yet, or when the
    process runs on a SageMaker host (``SM_CURRENT_HOST``; a store shared by several hosts
    then reports for each): ``runstream sync`` on a laptop, publishing a store a job left,
    does not add the laptop.
    """
    host = current_host(environ)
    on_job_host = bool(environ.get("SM_CURRENT_HOST"))
    hosts_of_job = job_hosts(environ)
    with store.transaction("register run for sync") as db:
        row = db.execute(
            "SELECT hosts FROM sync_runs WHERE run_id = ? AND backend = ?", (run_id, sink)
        ).fetchone()
        hosts = _names_in(row[0]) if row is not None else ()
        if not hosts or (on_job_host and host not in hosts):
            hosts = (*hosts, host)
        db.execute(
            "INSERT INTO sync_runs(run_id, backend, bucket, prefix, resolution, hosts, job_hosts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, backend) DO UPDATE SET "
            "bucket = coalesce(excluded.bucket, bucket), "
            "prefix = coalesce(excluded.prefix, prefix), "
            "resolution = coalesce(excluded.resolution, resolution), "
            "hosts = excluded.hosts, job_hosts = coalesce(excluded.job_hosts, job_hosts)",
            (
                run_id,
                sink,
                bucket,
                prefix,
                resolution,
                orjson.dumps(list(hosts)).decode(),
                orjson.dumps(list(hosts_of_job)).decode() if hosts_of_job else None,
            ),
        )


def _names_in(value: object) -> tuple[str, ...]:
    """A JSON list of names (``sync_runs.hosts``, ``job_hosts``); NULL: none."""
    if value is None:
        return ()
    found = orjson.loads(str(value))
    return tuple(str(name) for name in found) if isinstance(found, list) else ()


def targets(
    store: LocalStore, run_ids: Sequence[int] | None = None, *, sink: str | None = SAGEMAKER
) -> list[Target]:
    """The runs registered for sync to ``sink`` (every sink: ``None``), all of them or those
    of ``run_ids``."""
    sql = (
        "SELECT r.id, e.name, r.name, r.display_name, r.tags, e.display_name, s.bucket, "
        "s.prefix, s.entities, s.fingerprint, s.backend, s.resolution, s.hosts, s.job_hosts "
        "FROM sync_runs s "
        "JOIN runs r ON r.id = s.run_id LEFT JOIN experiments e ON e.id = r.experiment_id "
        "WHERE 1"
    )
    args: list[object] = []
    if sink is not None:
        sql += " AND s.backend = ?"
        args.append(sink)
    if run_ids is not None:
        sql += f" AND r.id IN ({','.join('?' * len(run_ids))})"
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
            sink=str(r[10]),
            resolution=_opt(r[11]) or "auto",
            hosts=_names_in(r[12]),
            job_hosts=_names_in(r[13]),
        )
        for r in rows
    ]


def mark_entities(store: LocalStore, run_id: int, *, sink: str = SAGEMAKER) -> None:
    with store.transaction("record sync entities") as db:
        db.execute(
            "UPDATE sync_runs SET entities = 1 WHERE run_id = ? AND backend = ?", (run_id, sink)
        )


def set_fingerprint(
    store: LocalStore, run_id: int, fingerprint: str, *, sink: str = SAGEMAKER
) -> None:
    with store.transaction("record run update") as db:
        db.execute(
            "UPDATE sync_runs SET fingerprint = ?, api_calls = api_calls + 1 "
            "WHERE run_id = ? AND backend = ?",
            (fingerprint, run_id, sink),
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
    stride: int | None = None,
    round_began: float | None = None,
    sink: str = SAGEMAKER,
) -> None:
    """Record an error (or a clean round) and the counters that go with it. A round that
    caught up clears the last error: it no longer describes anything pending."""
    with store.transaction("record sync state") as db:
        db.execute(
            "UPDATE sync_runs SET last_error = CASE WHEN ? THEN NULL "
            "ELSE coalesce(?, last_error) END, blocked = ?, "
            "throttled = throttled + ?, points_retried = points_retried + ?, "
            "last_sync = CASE WHEN ? THEN ? ELSE last_sync END, "
            "stride = max(stride, coalesce(?, 1)), "
            "last_stride = coalesce(?, last_stride), "
            "caught_up = CASE WHEN ? THEN ? ELSE caught_up END WHERE run_id = ? AND backend = ?",
            (
                caught_up,
                error,
                blocked,
                throttled,
                retried,
                synced,
                time.time(),
                stride,
                stride,
                caught_up,
                round_began,
                run_id,
                sink,
            ),
        )


# -- leases -----------------------------------------------------------------------------


def new_owner() -> str:
    return f"{HOST}:{os.getpid()}:{os.urandom(4).hex()}"


def acquire_lease(
    store: LocalStore, run_id: int, owner: str, ttl: float, *, sink: str = SAGEMAKER
) -> bool:
    """Take or renew the right to send ``run_id``. Stolen from a holder that expired or
    whose process is gone (same host), so a crash never blocks a run for long."""
    now = time.time()
    with store.transaction("take sync lease") as db:
        row = db.execute(
            "SELECT lease_owner, lease_expires FROM sync_runs WHERE run_id = ? AND backend = ?",
            (run_id, sink),
        ).fetchone()
        if row is None:
            return False
        holder, expires = row
        if holder and holder != owner and expires and expires > now and alive(holder):
            return False
        db.execute(
            "UPDATE sync_runs SET lease_owner = ?, lease_expires = ? "
            "WHERE run_id = ? AND backend = ?",
            (owner, now + ttl, run_id, sink),
        )
    return True


def release_lease(store: LocalStore, run_id: int, owner: str, *, sink: str = SAGEMAKER) -> None:
    with store.transaction("release sync lease") as db:
        db.execute(
            "UPDATE sync_runs SET lease_owner = NULL, lease_expires = NULL "
            "WHERE run_id = ? AND backend = ? AND lease_owner = ?",
            (run_id, sink, owner),
        )


def alive(owner: str) -> bool:
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
    #: the stride of the data sent last (1: one datum per step)
    stride: int = 1

    @property
    def key(self) -> tuple[int, str]:
        return (self.metric_id, self.worker)


def cursors(store: LocalStore, run_id: int, *, sink: str = SAGEMAKER) -> list[Cursor]:
    """The series of ``run_id`` with chunks not yet sent to ``sink``."""
    rows = store.query(
        "SELECT m.id, m.name, c.worker, coalesce(s.done_chunk, 0), coalesce(s.round_chunk, 0), "
        "s.round_step, max(c.id), coalesce(s.stride, 1) FROM metrics m "
        "JOIN chunks c ON c.metric_id = m.id LEFT JOIN sync_cursors s ON s.backend = ? "
        "AND s.metric_id = m.id AND s.worker = c.worker "
        "WHERE m.run_id = ? AND c.id > coalesce(s.done_chunk, 0) "
        "GROUP BY m.id, c.worker ORDER BY m.id, c.worker",
        (sink, run_id),
    )
    return [
        Cursor(
            int(a), str(b), str(c), int(d), int(e), None if f is None else int(f), int(g), int(h)
        )
        for a, b, c, d, e, f, g, h in rows
    ]


def pending_stats(store: LocalStore, cursor: Cursor, max_chunks: int) -> StepStats:
    """The step statistics of a series not yet sent, merged per step.

    A round in progress (``round_chunk`` ahead of ``done_chunk``) is resumed as it was:
    the same chunks, past ``round_step``. Otherwise a new round takes up to
    ``max_chunks`` chunks, and ``cursor.round_chunk`` is set to the last of them.
    """
    resuming = cursor.round_chunk > cursor.done_chunk
    sql = "SELECT id, data, checksum FROM chunks WHERE metric_id = ? AND worker = ? AND id > ?"
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
    stats = _aggregate.combine(_checked(store, cursor.metric_id, rows))
    if cursor.round_step is not None:
        stats = stats.take(np.flatnonzero(stats.step > cursor.round_step))
    return stats


def series_backlog(store: LocalStore, cursor: Cursor) -> int:
    """Steps of a series not sent yet (estimated from the chunks' step ranges)."""
    rows = store.query(
        "SELECT coalesce(sum(CASE WHEN first_step >= 0 THEN "
        "min(points, last_step - first_step + 1) ELSE points END), 0) FROM chunks "
        "WHERE metric_id = ? AND worker = ? AND id > ?",
        (cursor.metric_id, cursor.worker, cursor.done_chunk),
    )
    return _int(rows[0][0])


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


def retry_items(store: LocalStore, run_id: int, limit: int, *, sink: str = SAGEMAKER) -> list[Item]:
    rows = store.query(
        "SELECT id, metric, step, value, ts, points FROM sync_items "
        "WHERE run_id = ? AND backend = ? AND state = 'retry' ORDER BY id LIMIT ?",
        (run_id, sink, limit),
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
    #: series -> the stride its data were grouped by (1: one datum per step)
    strides: dict[tuple[int, str], int] = field(default_factory=dict)
    api_calls: int = 0
    #: throttled attempts, and the points of whole calls sent again after a failure
    throttled: int = 0
    resent_points: int = 0
    max_attempts: int = 20


def commit(store: LocalStore, run_id: int, result: CallResult, *, sink: str = SAGEMAKER) -> None:
    """Record an acknowledged call: cursors, counters and item states move together."""
    with store.transaction("record sent metrics") as db:
        for (metric_id, worker), (round_chunk, step) in result.advance.items():
            done = round_chunk if step is None else None
            stride = result.strides.get((metric_id, worker), 1)
            db.execute(
                "INSERT INTO sync_cursors(backend, metric_id, worker, done_chunk, round_chunk, "
                "round_step, stride) VALUES (?, ?, ?, coalesce(?, 0), ?, ?, ?) "
                "ON CONFLICT(backend, metric_id, worker) DO UPDATE SET "
                "done_chunk = coalesce(?, done_chunk), round_chunk = excluded.round_chunk, "
                "round_step = excluded.round_step, stride = excluded.stride",
                (sink, metric_id, worker, done, round_chunk, step, stride, done),
            )
        acked = [i.item_id for i in result.sent if i.item_id is not None]
        if acked:
            db.executemany("DELETE FROM sync_items WHERE id = ?", [(i,) for i in acked])
        for item, code in result.retry:
            if item.item_id is None:
                _insert_item(db, run_id, item, "retry", code, sink)
            else:
                db.execute(
                    "UPDATE sync_items SET attempts = attempts + 1, code = ?, "
                    "state = CASE WHEN attempts + 1 >= ? THEN 'rejected' ELSE 'retry' END "
                    "WHERE id = ?",
                    (code, result.max_attempts, item.item_id),
                )
        for item, code in result.rejected:
            if item.item_id is None:
                _insert_item(db, run_id, item, "rejected", code, sink)
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
            "last_error = CASE WHEN ? THEN NULL ELSE last_error END "
            "WHERE run_id = ? AND backend = ?",
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
                sink,
            ),
        )


def _attempts(db: sqlite3.Connection, item_id: int) -> int:
    row = db.execute("SELECT attempts FROM sync_items WHERE id = ?", (item_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _insert_item(
    db: sqlite3.Connection, run_id: int, item: Item, state: str, code: str, sink: str
) -> None:
    db.execute(
        "INSERT INTO sync_items(run_id, backend, metric, step, value, ts, points, state, code) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, sink, item.metric, item.step, item.value, item.ts, item.points, state, code),
    )


# -- files ------------------------------------------------------------------------------


def uploads(
    store: LocalStore, run_id: int, *, sink: str = SAGEMAKER
) -> dict[tuple[str, str], tuple[str, str]]:
    """(direction, name) -> (sha256, uri) of the files the sink acknowledged."""
    rows = store.query(
        "SELECT direction, name, sha256, uri FROM sync_uploads WHERE run_id = ? AND backend = ?",
        (run_id, sink),
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
    sink: str = SAGEMAKER,
) -> None:
    with store.transaction("record upload") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_uploads(backend, run_id, direction, name, sha256, uri, "
            "etag) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sink, run_id, direction, name, sha256, uri, etag),
        )
        if transferred:
            db.execute(
                "UPDATE sync_runs SET files_uploaded = files_uploaded + 1 "
                "WHERE run_id = ? AND backend = ?",
                (run_id, sink),
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


def pending(store: LocalStore, run_id: int, *, sink: str = SAGEMAKER) -> tuple[int, int]:
    """(points, data) not acknowledged yet. Data count one per step per series (what full
    resolution sends), estimated from the chunks' step ranges without decoding them (a
    step written in two flushes counts twice); a round in progress is decoded."""
    total = data = 0
    for cursor in cursors(store, run_id, sink=sink):
        rows = store.query(
            "SELECT id, points, first_step, last_step, "
            "CASE WHEN id <= ? AND ? IS NOT NULL THEN data END, checksum FROM chunks "
            "WHERE metric_id = ? AND worker = ? AND id > ?",
            (
                cursor.round_chunk,
                cursor.round_step,
                cursor.metric_id,
                cursor.worker,
                cursor.done_chunk,
            ),
        )
        for chunk_id, points, first, last, blob, checksum in rows:
            if blob is not None and cursor.round_step is not None:
                checked = _checked(store, cursor.metric_id, [(chunk_id, blob, checksum)])
                if not checked:
                    continue
                stats = checked[0]
                keep = stats.step > cursor.round_step
                total += int(stats.count[keep].sum())
                data += int(keep.sum())
            else:
                total += _int(points)
                span = _int(last) - _int(first) + 1 if _int(first) >= 0 else _int(points)
                data += min(_int(points), max(1, span))
    retry = store.query(
        "SELECT coalesce(sum(points), 0), count(*) FROM sync_items "
        "WHERE run_id = ? AND backend = ? AND state = 'retry'",
        (run_id, sink),
    )
    return total + _int(retry[0][0]), data + _int(retry[0][1])


def status(
    store: LocalStore,
    target: Target,
    *,
    files_pending: int = 0,
    data_per_second: float | None = None,
    agent: str | None = None,
) -> SyncStatus:
    """The sync state of one registered run, read from the store. ``data_per_second`` (the
    sink's budget) turns the data pending into seconds of lag."""
    sink = target.sink
    row = store.query(
        f"SELECT {COUNTER_COLUMNS}, stride, last_stride, caught_up "
        "FROM sync_runs WHERE run_id = ? AND backend = ?",
        (target.run_id, sink),
    )[0]
    points, data = pending(store, target.run_id, sink=sink)
    lag = None if not data_per_second else round(data / data_per_second, 3)
    return SyncStatus(
        experiment_name=target.experiment_name,
        run_name=target.run_name,
        backend=sink,
        points_pending=points,
        data_pending=data,
        lag_seconds=lag,
        stride=_int(row[11] or 1),
        max_stride=_int(row[10] or 1),
        resolution=target.resolution,
        agent=agent,
        caught_up=None if row[12] is None else float(row[12]),
        files_pending=files_pending,
        **counter_fields(row, points=points, files_pending=files_pending),
    )


#: The columns every sink's run table starts its counters with, in this order (SageMaker's
#: ``sync_runs``, MLflow's ``sync_mlflow_runs``): :func:`counter_fields` reads them.
COUNTER_COLUMNS = (
    "points_sent, points_retried, points_rejected, data_sent, api_calls, throttled, "
    "files_uploaded, blocked, last_error, last_sync"
)


def counter_fields(row: Sequence[Any], *, points: int, files_pending: int) -> dict[str, Any]:
    """The :class:`SyncStatus` fields of a row that starts with :data:`COUNTER_COLUMNS`,
    and the state they make with what is pending: blocked (credentials refused), pending,
    or synced."""
    blocked = _opt(row[7])
    return {
        "state": "blocked" if blocked else "pending" if points or files_pending else "synced",
        "points_sent": _int(row[0]),
        "points_retried": _int(row[1]),
        "points_rejected": _int(row[2]),
        "data_sent": _int(row[3]),
        "api_calls": _int(row[4]),
        "throttled": _int(row[5]),
        "files_uploaded": _int(row[6]),
        "last_error": blocked or _opt(row[8]),
        "last_sync": None if row[9] is None else float(row[9]),
    }


# -- log_file(extra_args=) ----------------------------------------------------------------


def set_file_options(
    store: LocalStore, run_id: int, direction: str, name: str, extra_args: dict[str, object]
) -> None:
    """Keep ``log_file(extra_args=...)`` for the agent that uploads the file."""
    with store.transaction("record file options") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_files(run_id, direction, name, extra_args) "
            "VALUES (?, ?, ?, ?)",
            (run_id, direction, name, orjson.dumps(extra_args, default=str)),
        )


def file_options(store: LocalStore, run_id: int) -> dict[tuple[str, str], dict[str, object]]:
    rows = store.query(
        "SELECT direction, name, extra_args FROM sync_files WHERE run_id = ?", (run_id,)
    )
    return {(str(d), str(n)): dict(orjson.loads(bytes(a))) for d, n, a in rows}


# -- the store's agent and the processes it serves ----------------------------------------


@dataclass(frozen=True, slots=True)
class AgentState:
    """The store's sync agent as its lease row says: who, since when, doing what."""

    owner: str
    pid: int
    host: str
    started: float
    heartbeat: float
    expires: float
    state: str
    detail: str | None

    @property
    def alive(self) -> bool:
        return self.expires > time.time() and alive(self.owner)


def agent_state(store: LocalStore) -> AgentState | None:
    rows = store.query(
        "SELECT owner, pid, host, started, heartbeat, expires, state, detail FROM sync_agent "
        "WHERE id = 1 AND owner IS NOT NULL"
    )
    if not rows:
        return None
    o, p, h, s, b, e, st, d = rows[0]
    return AgentState(str(o), _int(p), str(h), float(s), float(b), float(e), str(st), _opt(d))


def claim_agent(store: LocalStore, owner: str, ttl: float, state: str, detail: str | None) -> bool:
    """Take or renew the store's agent lease (one agent per store). Stolen from a holder
    whose lease expired or whose process is gone."""
    now = time.time()
    pid = int(owner.split(":")[1])
    with store.transaction("take the agent lease") as db:
        row = db.execute("SELECT owner, expires, started FROM sync_agent WHERE id = 1").fetchone()
        if row is not None and row[0] and row[0] != owner and row[1] > now and alive(row[0]):
            return False
        started = row[2] if row is not None and row[0] == owner else now
        db.execute(
            "INSERT OR REPLACE INTO sync_agent(id, owner, pid, host, started, heartbeat, "
            "expires, state, detail) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (owner, pid, HOST, started, now, now + ttl, state, detail),
        )
    return True


def release_agent(store: LocalStore, owner: str, state: str = "stopped") -> None:
    with store.transaction("release the agent lease") as db:
        db.execute(
            "UPDATE sync_agent SET owner = NULL, expires = 0, state = ?, heartbeat = ? "
            "WHERE id = 1 AND owner = ?",
            (state, time.time(), owner),
        )


def open_client(store: LocalStore, owner: str, run_id: int, sink: str, *, in_job: bool) -> None:
    """A training process opened ``run_id`` for ``sink``: the agent serves it while its
    process lives (and lingers after)."""
    with store.transaction("register sync client") as db:
        db.execute(
            "INSERT OR REPLACE INTO sync_clients(owner, run_id, backend, opened, closed, in_job) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            (owner, run_id, sink, time.time(), int(in_job)),
        )


def close_client(store: LocalStore, owner: str) -> None:
    with store.transaction("close sync client") as db:
        db.execute("UPDATE sync_clients SET closed = ? WHERE owner = ?", (time.time(), owner))


def live_clients(store: LocalStore) -> list[tuple[str, int, str]]:
    """(owner, run_id, sink) of training processes that have a run open and still live;
    rows of processes that are gone or closed long ago are removed."""
    rows = store.query("SELECT owner, run_id, backend, closed FROM sync_clients")
    live, gone = [], []
    now = time.time()
    for owner, run_id, sink, closed in rows:
        if closed is None and alive(str(owner)):
            live.append((str(owner), _int(run_id), str(sink)))
        elif closed is None or now - float(closed) > 3600:
            gone.append((str(owner),))
    if gone:
        with store.transaction("forget sync clients") as db:
            db.executemany("DELETE FROM sync_clients WHERE owner = ?", gone)
    return live


def _int(value: object) -> int:
    """An SQLite integer column as ``int`` (for the type checker: rows are ``object``)."""
    if not isinstance(value, int | float | str):
        raise TypeError(f"expected a number from the store, got {value!r}")
    return int(value)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


# -- what runstream status shows (the agent's own state included) -------------------------

#: Seconds an agent's lease lasts without renewal: a killed agent's store is free after it.
AGENT_TTL = 30.0


def agent_description(store: LocalStore) -> str:
    """``"running (pid N)"`` or ``"stopped"`` (what ``runstream status`` shows)."""
    try:
        state = agent_state(store)
    except Exception:  # an older store, read-only: no agent table yet
        return "stopped"
    if state is None or not state.alive:
        return "stopped"
    return f"running (pid {state.pid}, {state.state})"


def status_of(store: LocalStore, target: Target, data_per_second: float) -> SyncStatus:
    return status(
        store,
        target,
        files_pending=files_pending(store, target),
        data_per_second=data_per_second,
        agent=agent_description(store),
    )


def files_pending(store: LocalStore, target: Target) -> int:
    return count_unsent_files(store, target.run_id, uploads(store, target.run_id, sink=target.sink))


#: (direction, name) -> (sha256, uri) of the files a sink acknowledged (its journal's)
Sent = Mapping[tuple[str, str], tuple[str, str]]


def unsent_files(artifacts: Artifacts, sent: Sent) -> list[tuple[str, str, Artifact]]:
    """A run's ``log_file`` copies whose bytes the sink has not acknowledged (a file logged
    again under its name with other bytes goes again): (direction, name, artifact)."""
    return [
        (direction, name, artifact)
        for direction in ("input", "output")
        for name, artifact in getattr(artifacts, direction).items()
        if artifact.sha256 is not None
        and sent.get((direction, name), ("", ""))[0] != artifact.sha256
    ]


def count_unsent_files(store: LocalStore, run_id: int, sent: Sent) -> int:
    """How many of :func:`unsent_files` there are, from the store's artifact rows alone."""
    rows = store.query(
        "SELECT direction, name, sha256 FROM artifacts WHERE run_id = ? AND sha256 IS NOT NULL",
        (run_id,),
    )
    return sum(1 for d, n, s in rows if sent.get((str(d), str(n)), ("", ""))[0] != s)


def _checked(store: LocalStore, metric_id: int, rows: Sequence[Sequence[Any]]) -> list[StepStats]:
    """Chunks ``(id, data, checksum)`` decoded and checked; a damaged one is skipped with a
    warning naming its run and metric (as the store's own readers skip it), never sent."""
    found = []
    for _, blob, checksum in rows:
        try:
            found.append(store.decode_chunk(blob, checksum, metric_id))
        except StoreError as exc:
            _log.warning("runstream: %s; it is skipped, not sent", exc)
    return found

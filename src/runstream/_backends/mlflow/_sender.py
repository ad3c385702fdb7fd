"""The MLflow sender: moves what the store holds and the MLflow server has not acknowledged.

:class:`RunSync` syncs one run in rounds: create-or-get its experiment and run (once),
send each metric's merged series through ``runs/log-batch`` (:mod:`._plan`), upload new
``log_file`` copies, then bring parameters, tags, status and end time up to date. Each
metric's position moves in the store only after MLflow acknowledged all of that round's
points; a round sent again after a crash or a lost response sends the same points, which
MLflow stores once.

Failures never reach the training loop: 429, 5xx and network errors are retried with
back-off (the same batch); a batch refused with INVALID_PARAMETER_VALUE is split in halves
until the refused points are alone, and those are reported and kept locally; refused
credentials (401/403) *block* the run until they work again. The store's sync agent runs
the rounds (:mod:`._sink`); the training process only runs :func:`preflight`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from ..._core._batch import RunKey
from ..._core._exceptions import BackendError
from ..._core._records import SyncStatus
from ..._flush._backoff import Backoff
from .. import _journal as agent_journal
from .._sink import SyncConfig
from .._thread import in_thread
from . import _journal as journal
from ._client import Failure, MLflowClient, MLflowError, Outcome, classify
from ._endpoint import Endpoint, EndpointError, endpoint_from_uri
from ._plan import batches, plan_metric

if TYPE_CHECKING:
    from pathlib import Path

    from ..._core._records import RunRecord
    from ..._store import LocalStore
    from ._journal import RunTarget

__all__ = (
    "RunSync",
    "credentials_message",
    "files_pending",
    "pending",
    "preflight",
    "status",
)

_log = logging.getLogger("runstream")

STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
_TERMINAL = frozenset(STATUS)
DEFAULT_EXPERIMENT = "0"  # MLflow's "Default" experiment: runs logged with no experiment


DEFAULT_CONFIG = SyncConfig()


class _Stop(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class RunSync:
    """Syncs one run to an MLflow server, a round at a time."""

    def __init__(
        self,
        store: LocalStore,
        target: RunTarget,
        clients: Callable[[str], MLflowClient],
        *,
        owner: str,
        config: SyncConfig = DEFAULT_CONFIG,
    ) -> None:
        self.store = store
        self.target = target
        self._clients = clients
        self._owner = owner
        self._config = config
        self._backoff = Backoff(cap=config.max_backoff)
        self.blocked: str | None = None
        self.elsewhere = False
        self.files_pending = 0
        #: other workers still log into the run: its latest steps wait for them
        self._artifact_uri: str | None = None

    @property
    def _client(self) -> MLflowClient:
        """The client of the run's server (a run registered anew may name another)."""
        return self._clients(self.target.uri)

    @property
    def ready(self) -> bool:
        return self._backoff.ready

    async def wait(self) -> None:
        await self._backoff.wait()

    async def round(self) -> bool:
        """Send what is pending now. True when everything known was acknowledged."""
        store, run_id = self.store, self.target.run_id
        began = time.time()
        if not journal.acquire_lease(store, run_id, self._owner, self._config.lease_ttl):
            self.elsewhere = True
            return False
        self.elsewhere = False
        # Another process may have sent this run while this one waited for the lease.
        self.target = journal.targets(store, [run_id])[0]
        try:
            caught_up = await self._round()
        except _Stop as stop:
            await self._failed(stop.outcome)
            return False
        except Exception as exc:  # a bug or an unforeseen error: never into the run
            _log.exception("runstream: syncing run %r to MLflow failed", self.target.run_name)
            await self._failed(classify(exc))
            return False
        self.blocked = None
        self._backoff.succeeded()
        journal.note(store, run_id, caught_up=caught_up, round_began=began)
        return caught_up

    async def _round(self) -> bool:
        if self.target.mlflow_run_id is None:
            await self.ensure_run()
        record = self._record()
        # A step goes once final: every open worker logged a later one. A run is over when
        # its workers all ended, or when no live process has it open any more (a worker
        # that was killed stays InProgress: its last steps must still go).
        final = _over(record) or not self._open_elsewhere()
        open_workers = (
            set() if final else {w.worker for w in record.workers if w.status == "InProgress"}
        )
        metrics_done = await self._sync_metrics(open_workers, final)
        files_done = await self._sync_files(record)
        await self._sync_run(self._record())
        return metrics_done and files_done

    async def ensure_run(self) -> None:
        """Create-or-get the MLflow experiment and run (the run by its name)."""
        target = self.target
        record = self._record()
        try:
            if target.experiment_name is None:
                experiment_id = DEFAULT_EXPERIMENT
            else:
                experiment_id = await self._client.experiment_id(target.experiment_name)
            found = await self._client.find_run(experiment_id, target.run_name)
            if found is None:
                start = record.start_time or record.created
                created = await self._client.post(
                    "runs/create",
                    {
                        "experiment_id": experiment_id,
                        "run_name": target.run_name,
                        "start_time": int(start * 1000),
                        "tags": [{"key": k, "value": v} for k, v in _tags(target, record)],
                    },
                )
                info = created["run"]["info"]
            else:
                info = found["info"]
        except Exception as exc:
            raise _Stop(classify(exc)) from exc
        run_id = str(info["run_id"])
        self._artifact_uri = info.get("artifact_uri")
        journal.set_ids(self.store, target.run_id, experiment_id, run_id)
        self.target = replace(target, experiment_id=experiment_id, mlflow_run_id=run_id)

    async def _failed(self, outcome: Outcome) -> None:
        message = str(outcome)
        if outcome.failure is Failure.AUTH:
            self.blocked = (
                f"the MLflow server refused the credentials ({message}); data stays local"
            )
            self._backoff.not_before = time.monotonic() + self._config.blocked_retry
        else:
            self._backoff.failed()
        journal.note(
            self.store,
            self.target.run_id,
            error=message,
            blocked=self.blocked,
            throttled=int(outcome.failure is Failure.THROTTLED),
        )
        _log.warning(
            "runstream: sync of run %r to MLflow: %s (will retry; data stays in %s)",
            self.target.run_name,
            message,
            self.store.path,
        )

    def _open_elsewhere(self) -> bool:
        """A live training process has this run open for MLflow (it may log more)."""
        clients = agent_journal.live_clients(self.store)
        return any(r == self.target.run_id and s == "mlflow" for _, r, s in clients)

    def _record(self) -> RunRecord:
        t = self.target
        return self.store.records([RunKey(t.run_id, t.experiment_name, t.run_name)])[0]

    async def release(self) -> None:
        journal.release_lease(self.store, self.target.run_id, self._owner)

    # -- metrics --------------------------------------------------------------------------

    async def _sync_metrics(self, open_workers: set[str], final: bool) -> bool:
        """Send every metric's final steps. False only when a backlog remains beyond what
        one round reads (the next round goes at once); steps that wait for a worker, and
        chunks written during the round, wait for the next round, ``interval`` later, so
        a live run costs its training process one round a second."""
        done = True
        for cursor in journal.metric_cursors(self.store, self.target.run_id):
            plan = plan_metric(
                self.store, cursor, open_workers, final=final, max_chunks=self._config.max_chunks
            )
            assert plan.cursor is not None
            if not plan.points and plan.cursor == cursor:
                continue  # nothing new: no write
            rejected: list[tuple[int, Any, int, str]] = []
            counters = {"calls": 0, "resent": 0, "throttled": 0}
            for start, end in batches(plan.points):
                await self._send(plan.points[start:end], plan.counts[start:end], rejected, counters)
            sent = sum(plan.counts) - sum(r[2] for r in rejected)
            journal.commit_metric(
                self.store,
                self.target.run_id,
                plan.cursor,
                points=sent,
                data=len(plan.points) - len(rejected),
                calls=counters["calls"],
                rejected=rejected,
                resent=counters["resent"],
                throttled=counters["throttled"],
            )
            if plan.capped:
                done = False  # a backlog: the next round goes at once
        return done

    async def _send(
        self,
        points: list[dict[str, Any]],
        counts: list[int],
        rejected: list[tuple[int, Any, int, str]],
        counters: dict[str, int],
    ) -> None:
        """Send one batch until acknowledged; isolate the points MLflow refuses."""
        run_id = self.target.mlflow_run_id
        assert run_id is not None
        failing_since: float | None = None
        while True:
            try:
                counters["calls"] += 1
                await self._client.log_batch(run_id, metrics=points)
                self._backoff.succeeded()
                return
            except Exception as exc:
                outcome = classify(exc)
                if outcome.failure is Failure.AUTH or (
                    isinstance(exc, MLflowError) and exc.code == "RESOURCE_DOES_NOT_EXIST"
                ):
                    raise _Stop(outcome) from exc
                if outcome.failure is Failure.REJECTED:
                    break
                counters["resent"] += sum(counts)
                counters["throttled"] += int(outcome.failure is Failure.THROTTLED)
                # In the journal at once: `runstream status` shows an outage while it lasts.
                journal.note(self.store, self.target.run_id, error=str(outcome))
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > self._config.lease_ttl / 3:
                    # A long outage ends the round (the metric's marks have not moved: the
                    # next round sends the same points, which MLflow stores once): the agent
                    # renews its leases and notices linger or a deleted store meanwhile.
                    raise _Stop(outcome) from exc
                delay = self._backoff.failed()
                _log.debug("runstream: MLflow log-batch %s; retrying in %.2fs", outcome, delay)
                await anyio.sleep(delay)
        if len(points) == 1:
            point = points[0]
            rejected.append((int(point["step"]), point["value"], counts[0], outcome.code))
            _log.warning(
                "runstream: MLflow refused metric %r at step %s (%s); kept in the store",
                point["key"],
                point["step"],
                outcome,
            )
            return
        half = len(points) // 2
        await self._send(points[:half], counts[:half], rejected, counters)
        await self._send(points[half:], counts[half:], rejected, counters)

    # -- files ----------------------------------------------------------------------------

    async def _sync_files(self, record: RunRecord) -> bool:
        store, run_id = self.store, self.target.run_id
        done = journal.uploads(store, run_id)
        todo = agent_journal.unsent_files(record.artifacts, done)
        self.files_pending = len(todo)
        if not todo:
            return True
        base = await self._artifact_root()
        for direction, name, artifact in todo:
            relative = f"{direction}s/{name}"
            path = store.path / artifact.value
            digest = artifact.sha256 or ""
            media_type = artifact.media_type or "application/octet-stream"
            try:
                uri = await self._upload(base, relative, path, digest, media_type)
            except _Stop:
                raise
            except Exception as exc:
                outcome = _refusal(exc)
                # Refused for good: reported, kept in the store, not sent again until the
                # file changes (it never holds back the other files or the run's state).
                message = f"MLflow refused file {name!r}: {outcome}"
                _log.warning("runstream: %s; kept in the store", message)
                journal.record_refused_file(store, run_id, direction, name, digest, outcome.code)
                journal.note(store, run_id, error=message)
            else:
                journal.record_upload(store, run_id, direction, name, digest, uri)
            self.files_pending -= 1
        return self.files_pending == 0

    async def _artifact_root(self) -> str:
        if self._artifact_uri is None:
            try:
                found = await self._client.get("runs/get", run_id=self.target.mlflow_run_id)
            except Exception as exc:
                raise _Stop(classify(exc)) from exc
            self._artifact_uri = str(found["run"]["info"]["artifact_uri"])
        return self._artifact_uri

    async def _upload(
        self, base: str, relative: str, path: Path, sha256: str, media_type: str
    ) -> str:
        """Upload the store's copy at ``path`` (streamed from disk) under the run's
        artifact location; its URI there."""
        uri = f"{base.rstrip('/')}/{relative}"
        if base.startswith("mlflow-artifacts:"):
            where = base[len("mlflow-artifacts:") :].lstrip("/")
            if base.startswith("mlflow-artifacts://"):  # mlflow-artifacts://host/path
                where = where.partition("/")[2]
            await self._client.put_artifact(
                f"{where.rstrip('/')}/{relative}", path, sha256=sha256, media_type=media_type
            )
            return uri
        if base.startswith("s3://"):
            await _put_s3(uri, path, media_type)
            return uri
        raise MLflowError(
            400,
            "UNSUPPORTED_ARTIFACT_LOCATION",
            f"the run's artifact location {base!r} is neither the server's artifact proxy "
            "(mlflow-artifacts:) nor S3",
        )

    # -- parameters, tags, status ---------------------------------------------------------

    async def _sync_run(self, record: RunRecord) -> None:
        target = self.target
        uploaded = journal.uploads(self.store, target.run_id).items()
        files = {k: uri for k, (_, uri) in uploaded if uri}  # refused files have none
        params = {k: _param(v) for k, v in record.parameters.items()}
        tags = dict(_tags(target, record, files))
        state = orjson.dumps(
            [params, tags, record.status, record.end_time], option=orjson.OPT_SORT_KEYS
        )
        fingerprint = hashlib.sha256(state).hexdigest()
        if fingerprint == target.fingerprint:
            return
        sent, refused = dict(target.params), dict(target.refused)
        calls = 0
        new = [(k, v) for k, v in params.items() if k not in sent and k not in refused]
        for i in range(0, len(new), 100):
            calls += await self._send_params(new[i : i + 100], sent, refused)
        for key, value in params.items():
            if key in sent and sent[key] != value:
                tags[f"runstream.param.{key}"] = value  # write-once in MLflow: the later value
        items = sorted(tags.items())
        for i in range(0, len(items), 100):
            calls += await self._send_tags(items[i : i + 100])
        update: dict[str, Any] = {
            "run_id": target.mlflow_run_id,
            "status": STATUS.get(record.status or "", "RUNNING"),
            "run_name": target.run_name,
        }
        if record.status in _TERMINAL and record.end_time is not None:
            update["end_time"] = int(record.end_time * 1000)
        try:
            await self._client.post("runs/update", update)
        except Exception as exc:
            raise _Stop(classify(exc)) from exc
        journal.set_run_state(
            self.store,
            target.run_id,
            params=sent,
            refused=refused,
            fingerprint=fingerprint,
            calls=calls + 1,
        )
        self.target = replace(target, params=sent, refused=refused, fingerprint=fingerprint)

    async def _send_params(
        self, items: list[tuple[str, str]], sent: dict[str, str], refused: dict[str, str]
    ) -> int:
        run_id = self.target.mlflow_run_id
        assert run_id is not None
        try:
            await self._client.log_batch(run_id, params=[{"key": k, "value": v} for k, v in items])
        except Exception as exc:
            _refusal(exc)  # refused as a whole: sorted out below
        else:
            sent.update(items)
            return 1
        # Refused: some are on the server already (write-once), or invalid. Ask, then send
        # the rest one by one; a parameter MLflow refuses alone is reported, never resent.
        try:
            found = await self._client.get("runs/get", run_id=run_id)
        except Exception as exc:
            raise _Stop(classify(exc)) from exc
        server = {p["key"]: p["value"] for p in found["run"]["data"].get("params", [])}
        calls = 2
        for key, value in items:
            if key in server:
                sent[key] = str(server[key])
                continue
            calls += 1
            try:
                await self._client.log_batch(run_id, params=[{"key": key, "value": value}])
            except Exception as exc:
                outcome = _refusal(exc)
                refused[key] = str(outcome)
                _log.warning("runstream: MLflow refused parameter %r (%s)", key, outcome)
            else:
                sent[key] = value
        return calls

    async def _send_tags(self, items: list[tuple[str, str]]) -> int:
        run_id = self.target.mlflow_run_id
        assert run_id is not None
        batch = [{"key": k, "value": v} for k, v in items]
        try:
            await self._client.log_batch(run_id, tags=batch)
            return 1
        except Exception as exc:
            _refusal(exc)  # refused as a whole: one by one below
        for tag in batch:  # isolate the refused ones (tags are last-write-wins: harmless)
            try:
                await self._client.log_batch(run_id, tags=[tag])
            except Exception as exc:
                outcome = _refusal(exc)
                message = f"MLflow refused tag {tag['key']!r}: {outcome}"
                _log.warning("runstream: %s", message)
                journal.note(self.store, self.target.run_id, error=message)
        return 1 + len(batch)


def _tags(
    target: RunTarget, record: RunRecord, files: dict[tuple[str, str], str] | None = None
) -> list[tuple[str, str]]:
    """runstream's run tags, its worker list, its trial-component name and artifacts."""
    tags: list[tuple[str, str]] = []
    if target.tags:
        tags.extend((str(t.get("Key")), str(t.get("Value"))) for t in orjson.loads(target.tags))
    tags.append(("runstream.trial_component_name", target.trial_component_name))
    if record.workers:
        tags.append(("runstream.workers", ",".join(w.worker for w in record.workers)[:5000]))
    if target.display_name and target.display_name != target.run_name:
        tags.append(("runstream.display_name", target.display_name))
    for direction in ("input", "output"):
        for name, artifact in getattr(record.artifacts, direction).items():
            key = f"runstream.{direction}.{name}"
            if artifact.sha256 is not None:
                uri = (files or {}).get((direction, name))
                if uri is None:
                    continue
                tags.append((key, uri))
            else:
                tags.append((key, artifact.value))
            if artifact.media_type:
                tags.append((f"{key}.media_type", artifact.media_type))
    return tags


def _param(value: object) -> str:
    return (
        value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    )


def _refusal(exc: Exception) -> Outcome:
    """What the server refused for good (to report and keep); any other failure ends the
    round with its outcome (retried, or blocked on credentials)."""
    outcome = classify(exc)
    if outcome.failure is not Failure.REJECTED:
        raise _Stop(outcome) from exc
    return outcome


def _over(record: RunRecord) -> bool:
    return record.status in _TERMINAL and all(w.status != "InProgress" for w in record.workers)


async def _put_s3(uri: str, path: Path, media_type: str) -> None:
    """Straight to the run's S3 artifact location (a server run with ``--no-serve-artifacts``
    and an ``s3://`` artifact root): boto3's managed transfer, multipart for large files."""
    try:
        import aioboto3
    except ImportError as exc:
        raise MLflowError(
            400, "NEEDS_AWS_EXTRA", "an S3 artifact location needs runstream's aws extra"
        ) from exc
    from botocore.exceptions import ClientError

    bucket, _, key = uri[len("s3://") :].partition("/")
    try:
        async with aioboto3.Session().client("s3") as s3:
            await s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": media_type})
    except ClientError as exc:  # as an HTTP answer: 403 blocks, 503 retries, 404 refuses
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
        code, message = str(error.get("Code") or status), str(error.get("Message") or "")
        raise MLflowError(status, code, f"S3 {uri}: {message}") from exc


# -- reporting --------------------------------------------------------------------------


def pending(store: LocalStore, run_id: int) -> tuple[int, int]:
    """``(points, steps)`` in the store the MLflow server has not acknowledged yet (a step
    of a metric is one MLflow point, however many workers logged it)."""
    from ..._core import _aggregate

    points = steps = 0
    for cursor in journal.metric_cursors(store, run_id):
        rows = store.query(
            "SELECT id, points, first_step, last_step, data FROM chunks "
            "WHERE metric_id = ? AND id > ?",
            (cursor.metric_id, cursor.chunk_mark),
        )
        for chunk_id, count, first, last, blob in rows:
            if int(chunk_id) > cursor.read_mark:  # unread: counted without decoding
                points += int(count)
                span = int(last) - int(first) + 1 if int(first) >= 0 else int(count)
                steps += min(int(count), max(1, span))
            else:
                stats = _aggregate.decode(bytes(blob))
                later = stats.step > cursor.step_mark
                points += int(stats.count[later].sum())
                steps += int(later.sum())
    return points, steps


def files_pending(store: LocalStore, run_id: int) -> int:
    return agent_journal.count_unsent_files(store, run_id, journal.uploads(store, run_id))


def status(store: LocalStore, target: RunTarget, *, files: int | None = None) -> SyncStatus:
    """A run's MLflow sync state from the store. MLflow publishes no rate budget, so the lag
    in seconds is unknown (None); ``data_pending`` is the steps not yet sent."""
    row = journal.counters(store, target.run_id)
    points, steps = pending(store, target.run_id)
    files = files_pending(store, target.run_id) if files is None else files
    return SyncStatus(
        experiment_name=target.experiment_name,
        run_name=target.run_name,
        backend="mlflow",
        points_pending=points,
        data_pending=steps,
        resolution="full",
        files_pending=files,
        caught_up=None if row[10] is None else float(row[10]),
        files_rejected=int(row[11]),
        **agent_journal.counter_fields(row, points=points, files_pending=files),
        agent=agent_journal.agent_description(store),
    )


# -- at run start -------------------------------------------------------------------------


def preflight(store: LocalStore, run_id: int) -> Endpoint:
    """Register the run for MLflow sync and create-or-get its experiment and run now.

    Refused credentials raise :class:`BackendError` before the training loop starts; an
    unreachable server does not (the run logs locally and syncs when it can).

    :raises BackendError: no or an invalid ``MLFLOW_TRACKING_URI``; credentials refused
    """
    try:
        endpoint = endpoint_from_uri()
    except EndpointError as exc:
        raise BackendError(str(exc)) from exc
    journal.register(store, run_id, endpoint.uri)
    # The lease serializes create-or-get between the processes of one store (two workers
    # starting together must not create two MLflow runs of one name).
    holder = agent_journal.new_owner()
    leased = journal.acquire_lease(store, run_id, holder, DEFAULT_CONFIG.lease_ttl)
    target = journal.targets(store, [run_id])[0]

    async def check() -> Outcome | None:
        async with MLflowClient(endpoint) as client:
            sync = RunSync(store, target, lambda uri: client, owner=holder)
            try:
                if target.mlflow_run_id is not None:
                    await client.get("runs/get", run_id=target.mlflow_run_id)
                elif leased:
                    await sync.ensure_run()
                else:  # another process creates it: only check the credentials
                    await client.post("experiments/search", {"max_results": 1})
            except _Stop as stop:
                return stop.outcome
            except Exception as exc:
                return classify(exc)
        return None

    try:
        outcome = in_thread(lambda: anyio.run(check), "runstream-mlflow-preflight")
    finally:
        if leased:  # the agent sends the run from now on
            journal.release_lease(store, run_id, holder)
    if outcome is None:
        return endpoint
    if outcome.failure is Failure.AUTH:
        raise BackendError(credentials_message(outcome, store, endpoint.uri))
    _log.warning(
        "runstream: cannot reach the MLflow server at %s now (%s); run %r logs to %s and "
        "syncs when it can",
        endpoint.uri,
        outcome,
        target.run_name,
        store.path,
    )
    return endpoint


def credentials_message(outcome: Outcome, store: LocalStore, uri: str) -> str:
    return (
        f"the MLflow server at {uri} refused the credentials ({outcome}). Check "
        "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD (a SageMaker ARN: "
        "the AWS credentials). Nothing was sent; the store keeps everything logged "
        f"({store.path}): fix them and run `runstream sync`."
    )

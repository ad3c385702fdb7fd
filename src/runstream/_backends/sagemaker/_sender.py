"""The sender: moves what the store holds and SageMaker has not acknowledged.

:class:`RunSync` syncs one run in *rounds*: create-or-load its entities (once per store),
upload new ``log_file`` copies to S3 while sending metrics, then bring the trial
component's parameters, artifacts, status and times up to date. Every acknowledged call
is recorded in the store before the next is sent (:mod:`._journal`), so a sender that
dies mid-round and a new one that picks the run up later send nothing twice.

Failures never escape to the caller's loop: throttling slows the API's token bucket and
retries the same call after a back-off; a network error or 5xx is retried the same way;
items refused one by one are retried alone (INTERNAL_ERROR, CONFLICT_ERROR) or reported
(anything else); refused credentials *block* the run (nothing is sent, everything is
kept) until they work again. Each is counted in the run's sync state.

:class:`SageMakerSender` runs a run's sender in its flusher's event loop while the run
is open, then drains it when the run closes; :func:`sync_store` is ``runstream sync``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec
import orjson

from ..._core._batch import RunKey
from ..._core._exceptions import BackendError
from ..._flush._backoff import Backoff
from . import _journal as journal
from ._clients import Clients, Failure, Outcome, classify, open_clients, session_for
from ._entities import EntityError, ensure_entities, trial_component_update
from ._metrics import Call, plan, rejected_call, request_data, result_of
from ._ratelimit import bucket
from ._uploads import (
    DEFAULT_PREFIX,
    S3Target,
    default_bucket,
    object_key,
    put_document,
    upload,
)

if TYPE_CHECKING:
    from ..._core._records import RunRecord, SyncStatus
    from ..._store import LocalStore
    from ._journal import CallResult, Target

__all__ = (
    "RunSync",
    "SageMakerSender",
    "SyncConfig",
    "preflight",
    "statuses",
    "sync_store",
)

T = TypeVar("T")
Blocking = Callable[[Callable[[], Any]], Awaitable[Any]]
_log = logging.getLogger("runstream")


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """How a sender paces itself (the per-API rates are in :mod:`._ratelimit`).

    :param interval: seconds between rounds while a run is open
    :param horizon: a round sends at most this many seconds of the BatchPutMetrics budget;
        a larger backlog is grouped into coarser steps (the store keeps every step)
    :param max_chunks: chunks one series reads per round (bounds memory)
    :param lease_ttl: seconds a sender's claim on a run lasts without renewal
    :param blocked_retry: seconds between attempts while credentials are refused
    :param max_backoff: the longest wait after a failure
    :param file_concurrency: uploads in flight per run
    """

    interval: float = 1.0
    horizon: float = 2.0
    max_chunks: int = 512
    lease_ttl: float = 30.0
    blocked_retry: float = 60.0
    max_backoff: float = 30.0
    file_concurrency: int = 4


DEFAULT_CONFIG = SyncConfig()


class _Stop(Exception):
    """Ends a round early: the outcome says why (credentials, or a backend that failed)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class _Identity:
    """The caller's account, asked of STS once per set of clients."""

    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._account: str | None = None
        self._lock = anyio.Lock()

    async def account(self) -> str:
        async with self._lock:
            if self._account is None:
                found = await self._clients.sts.get_caller_identity()
                self._account = str(found["Account"])
            return self._account


class RunSync:
    """Syncs one run to SageMaker, a round at a time."""

    def __init__(
        self,
        store: LocalStore,
        target: Target,
        clients: Clients,
        identity: _Identity,
        blocking: Blocking,
        *,
        owner: str,
        config: SyncConfig = DEFAULT_CONFIG,
    ) -> None:
        self.store = store
        self.target = target
        self._clients = clients
        self._identity = identity
        self._blocking = blocking
        self._owner = owner
        self._config = config
        self._backoff = Backoff(cap=config.max_backoff)
        self._file_backoff = Backoff(cap=max(config.max_backoff, 300.0))
        self._s3: S3Target | None = None
        self.blocked: str | None = None
        #: another process holds this run's lease (a worker of the same run, a sync)
        self.elsewhere = False
        self.files_pending = 0
        self.snapshot: SyncStatus | None = None
        #: ``log_file(extra_args=)`` by (direction, name), handed over by the live run
        self.file_options: dict[tuple[str, str], dict[str, Any]] = {}
        self._trial_component_arn: str | None = None

    async def _run(self, fn: Callable[[], T]) -> T:
        result: T = await self._blocking(fn)
        return result

    @property
    def ready(self) -> bool:
        return self._backoff.ready

    async def wait(self) -> None:
        await self._backoff.wait()

    # -- a round --------------------------------------------------------------------------

    async def round(self) -> bool:
        """Send what is pending now. True when everything known was acknowledged."""
        store, run_id = self.store, self.target.run_id
        if not await self._run(
            lambda: journal.acquire_lease(store, run_id, self._owner, self._config.lease_ttl)
        ):
            self.elsewhere = True  # another live process is sending this run: let it
            return False
        self.elsewhere = False
        try:
            caught_up = await self._round()
        except _Stop as stop:
            await self._failed(stop.outcome)
            return False
        except EntityError as exc:
            await self._failed(Outcome(Failure.REJECTED, "EntityError", str(exc)))
            return False
        except Exception as exc:  # a bug or an unforeseen error: never into the run
            _log.exception("runstream: syncing run %r to SageMaker failed", self.target.run_name)
            await self._failed(classify(exc))
            return False
        if self.blocked is not None:
            self.blocked = None
        self._backoff.succeeded()
        await self._run(lambda: journal.note(store, run_id, synced=True, caught_up=caught_up))
        await self.refresh()
        return caught_up

    async def _round(self) -> bool:
        if not self.target.entities:
            await self._guard(ensure_entities(self._clients, self.target))
            store, run_id = self.store, self.target.run_id
            await self._run(lambda: journal.mark_entities(store, run_id))
            self.target = replace(self.target, entities=True)
        record = await self._run(self._record)
        files_done = True
        async with anyio.create_task_group() as tasks:

            async def files() -> None:
                nonlocal files_done
                files_done = await self._sync_files(record)

            tasks.start_soon(files)
            metrics_done = await self._sync_metrics()
        graphs_done = await self._sync_graphs()
        trial_component_done = await self._sync_trial_component()
        return metrics_done and files_done and graphs_done and trial_component_done

    async def _guard(self, work: Awaitable[T]) -> T:
        """Await control-plane work; a failure ends the round with its outcome."""
        try:
            return await work
        except EntityError:
            raise
        except Exception as exc:
            outcome = classify(exc)
            if outcome.failure is Failure.THROTTLED:
                bucket("control").throttled()
            raise _Stop(outcome) from exc

    async def _failed(self, outcome: Outcome) -> None:
        message = str(outcome)
        if outcome.failure is Failure.AUTH:
            self.blocked = f"AWS refused the credentials ({message}); data stays local"
            self._backoff.not_before = time.monotonic() + self._config.blocked_retry
        else:
            self._backoff.failed()
        store, run_id, blocked = self.store, self.target.run_id, self.blocked
        throttled = int(outcome.failure is Failure.THROTTLED)
        await self._run(
            lambda: journal.note(store, run_id, error=message, blocked=blocked, throttled=throttled)
        )
        _log.warning(
            "runstream: sync of run %r to SageMaker: %s (will retry; data stays in %s)",
            self.target.run_name,
            message,
            self.store.path,
        )
        await self.refresh()

    def _record(self) -> RunRecord:
        target = self.target
        key = RunKey(target.run_id, target.experiment_name, target.run_name)
        return self.store.records([key])[0]

    def _live_failure(self, outcome: Outcome) -> None:
        """Show a failure in ``Run.stats`` at once; the store records it with the call."""
        if self.snapshot is not None:
            self.snapshot = msgspec.structs.replace(
                self.snapshot,
                throttled=self.snapshot.throttled + int(outcome.failure is Failure.THROTTLED),
                last_error=str(outcome),
            )

    async def refresh(self) -> None:
        store, target, files = self.store, self.target, self.files_pending
        self.snapshot = await self._run(lambda: journal.status(store, target, files_pending=files))

    async def release(self) -> None:
        store, run_id, owner = self.store, self.target.run_id, self._owner
        await self._run(lambda: journal.release_lease(store, run_id, owner))

    # -- metrics --------------------------------------------------------------------------

    async def _sync_metrics(self) -> bool:
        store, run_id, config = self.store, self.target.run_id, self._config

        def gather() -> tuple[list[tuple[journal.Cursor, Any]], list[journal.Item], bool]:
            found = journal.cursors(store, run_id)
            series = [(c, journal.pending_stats(store, c, config.max_chunks)) for c in found]
            more = any(c.newest_chunk > c.round_chunk for c in found)
            return series, journal.retry_items(store, run_id, 1000), more

        series, retries, more = await self._run(gather)
        if not series and not retries:
            return True
        # Sized by the configured rate, not the throttled one: a throttled round just takes
        # longer, and the next round finds a bigger backlog and groups more.
        rate = bucket("BatchPutMetrics").ceiling
        budget = max(10, int(rate * 10 * config.horizon))
        again = False
        for call in plan(series, retries, budget):
            result = await self._send(call)
            again = again or bool(result.retry)
            await self._run(lambda result=result: journal.commit(store, run_id, result))  # type: ignore[misc]
        return not more and not again

    async def _send(self, call: Call) -> CallResult:
        """Send one call until it is acknowledged (or refused as a whole)."""
        if not call.items:
            return result_of(call, None)
        data = request_data(call.items)
        limiter = bucket("BatchPutMetrics")
        throttled = resent = 0
        while True:
            await limiter.take()
            try:
                response = await self._clients.metrics.batch_put_metrics(
                    TrialComponentName=self.target.trial_component_name, MetricData=data
                )
            except Exception as exc:
                outcome = classify(exc)
                if outcome.failure in (Failure.AUTH, Failure.EXISTS):
                    raise _Stop(outcome) from exc
                if outcome.failure is Failure.REJECTED:
                    result = rejected_call(call, outcome.code)
                    break
                if outcome.failure is Failure.THROTTLED:
                    limiter.throttled()
                    throttled += 1
                resent += sum(i.points for i in call.items)
                self._live_failure(outcome)
                delay = self._backoff.failed()
                _log.debug("runstream: BatchPutMetrics %s; retrying in %.2fs", outcome, delay)
                await anyio.sleep(delay)
                continue
            limiter.succeeded()
            self._backoff.succeeded()
            result = result_of(call, response.get("Errors"))
            break
        result.throttled = throttled
        result.resent_points = resent
        return result

    # -- files ----------------------------------------------------------------------------

    async def _sync_files(self, record: RunRecord) -> bool:
        store, run_id = self.store, self.target.run_id
        done = await self._run(lambda: journal.uploads(store, run_id))
        todo = [
            (direction, name, artifact)
            for direction in ("input", "output")
            for name, artifact in getattr(record.artifacts, direction).items()
            if artifact.sha256 is not None
            and done.get((direction, name), ("", ""))[0] != artifact.sha256
        ]
        self.files_pending = len(todo)
        if not todo:
            return True
        if not self._file_backoff.ready:
            return False
        target = await self._s3_target()
        limiter = anyio.CapacityLimiter(self._config.file_concurrency)
        failures: list[Outcome] = []

        async def one(direction: str, name: str, artifact: Any) -> None:
            key = object_key(target.prefix, self.target.trial_component_name, name)
            path = store.path / artifact.value
            async with limiter:
                try:
                    etag, sent = await upload(
                        self._clients,
                        target,
                        key,
                        path,
                        artifact.sha256,
                        artifact.media_type,
                        self.file_options.get((direction, name)),
                    )
                except Exception as exc:
                    failures.append(classify(exc))
                    return
            await self._run(
                lambda: journal.record_upload(
                    store,
                    run_id,
                    direction,
                    name,
                    artifact.sha256,
                    target.uri(key),
                    etag,
                    transferred=sent,
                )
            )
            self.files_pending -= 1

        async with anyio.create_task_group() as tasks:
            for direction, name, artifact in todo:
                tasks.start_soon(one, direction, name, artifact)
        for outcome in failures:
            if outcome.failure is Failure.AUTH:
                raise _Stop(outcome)
        if failures:
            self._file_backoff.failed()
            message = f"S3 upload failed: {failures[0]}"
            await self._run(lambda: journal.note(store, run_id, error=message))
            _log.warning("runstream: %s (will retry)", message)
            return False
        self._file_backoff.succeeded()
        return True

    async def _s3_target(self) -> S3Target:
        if self._s3 is None:
            prefix = DEFAULT_PREFIX if self.target.prefix is None else self.target.prefix
            if self.target.bucket:
                self._s3 = S3Target(self.target.bucket, prefix.strip("/"), None)
            else:
                account = await self._guard(self._identity.account())
                name = await self._guard(default_bucket(self._clients, account))
                self._s3 = S3Target(name, prefix.strip("/"), account)
        return self._s3

    # -- graphs ---------------------------------------------------------------------------

    async def _sync_graphs(self) -> bool:
        """Upload each new graph document as the official SDK does (``<title>.json`` beside
        the run's files) and record it as a lineage artifact: CreateArtifact, then
        AddAssociation (Produced by the run, or ContributedTo it for an input)."""
        store, run_id = self.store, self.target.run_id
        pending = await self._run(lambda: journal.pending_graphs(store, run_id))
        if not pending:
            return True
        target = await self._s3_target()
        for title, kind, direction, document, digest in pending:
            key = object_key(target.prefix, self.target.trial_component_name, f"{title}.json")
            # The official SDK's bytes: json.dumps of the document.
            body = json.dumps(orjson.loads(document)).encode()
            etag = await self._guard(put_document(self._clients, target, key, body))
            uri = target.uri(key)
            try:
                arn: str | None = await self._lineage(title, kind, direction, uri, etag)
            except Exception as exc:
                outcome = classify(exc)
                if outcome.failure is not Failure.REJECTED:
                    if outcome.failure is Failure.THROTTLED:
                        bucket("control").throttled()
                    raise _Stop(outcome) from exc
                message = f"lineage artifact for graph {title!r} refused: {outcome}"
                _log.warning("runstream: %s", message)
                await self._run(lambda m=message: journal.note(store, run_id, error=m))  # type: ignore[misc]
                arn = None

            sent = (title, digest, uri, etag, arn)
            await self._run(lambda sent=sent: journal.record_graph(store, run_id, *sent))  # type: ignore[misc]
        return True

    async def _lineage(
        self, title: str, kind: str, direction: str, uri: str, etag: str | None
    ) -> str:
        sm = self._clients.sagemaker
        if self._trial_component_arn is None:
            await bucket("control").take()
            found = await sm.describe_trial_component(
                TrialComponentName=self.target.trial_component_name
            )
            self._trial_component_arn = str(found["TrialComponentArn"])
        sources = [{"SourceIdType": "S3ETag", "Value": etag}] if etag else []
        await bucket("control").take()
        try:
            created = await sm.create_artifact(
                ArtifactName=title,
                ArtifactType=kind,
                Source={"SourceUri": uri, "SourceTypes": sources},
            )
            arn = str(created["ArtifactArn"])
        except Exception as exc:
            if classify(exc).failure is not Failure.EXISTS:
                raise
            await bucket("control").take()
            listed = await sm.list_artifacts(SourceUri=uri)
            summaries = listed.get("ArtifactSummaries") or []
            if not summaries:
                raise
            arn = str(summaries[0]["ArtifactArn"])
        run_arn = self._trial_component_arn
        source, destination, association = (
            (run_arn, arn, "Produced") if direction == "output" else (arn, run_arn, "ContributedTo")
        )
        await bucket("control").take()
        try:
            await sm.add_association(
                SourceArn=source, DestinationArn=destination, AssociationType=association
            )
        except Exception as exc:
            if classify(exc).failure is not Failure.EXISTS:
                raise
        return arn

    # -- the trial component --------------------------------------------------------------

    async def _sync_trial_component(self) -> bool:
        store, run_id = self.store, self.target.run_id
        record = await self._run(self._record)
        uploaded = await self._run(lambda: journal.uploads(store, run_id))
        files = {key: uri for key, (_, uri) in uploaded.items()}
        request, fingerprint = trial_component_update(record, files)
        if fingerprint == self.target.fingerprint:
            return True
        await bucket("control").take()
        try:
            await self._clients.sagemaker.update_trial_component(**request)
        except Exception as exc:
            outcome = classify(exc)
            if outcome.failure is not Failure.REJECTED:
                if outcome.failure is Failure.THROTTLED:
                    bucket("control").throttled()
                raise _Stop(outcome) from exc
            # The request itself is invalid (say, a parameter the service refuses): report
            # it and do not send this same state again; a later change is tried afresh.
            message = f"UpdateTrialComponent refused: {outcome}"
            _log.warning("runstream: %s", message)
            await self._run(lambda: journal.note(store, run_id, error=message))
        await self._run(lambda: journal.set_fingerprint(store, run_id, fingerprint))
        self.target = replace(self.target, fingerprint=fingerprint)
        return True


# -- inside a run: the flusher's sender ------------------------------------------------


class SageMakerSender:
    """Runs a run's sender beside its flusher; drains it when the run closes.

    Also picks up runs of the same store that an earlier process left unsent (a crash, an
    outage), after its own run, so the next run that opens a store finishes the job.
    """

    def __init__(
        self,
        store: LocalStore,
        run_id: int,
        *,
        sagemaker_session: object | None = None,
        close_timeout: float = 60.0,
        config: SyncConfig | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._sagemaker_session = sagemaker_session
        self._close_timeout = close_timeout
        self._config = config or DEFAULT_CONFIG
        self._closing = threading.Event()
        self._closed_at = math.inf
        self._own: RunSync | None = None
        self._file_options: dict[tuple[str, str], dict[str, Any]] = {}
        #: the lease holder name of this run's sender (taken by :func:`preflight`)
        self.owner = journal.new_owner()

    def close(self) -> None:
        """The run is over and its last data and status are in the store: drain and stop."""
        self._closed_at = time.monotonic()
        self._closing.set()

    @property
    def status(self) -> SyncStatus | None:
        return None if self._own is None else self._own.snapshot

    def file_options(self, direction: str, name: str, extra_args: dict[str, Any]) -> None:
        """``log_file(extra_args=)`` for that artifact's upload (a dict set is atomic)."""
        self._file_options[(direction, name)] = extra_args

    async def run(self) -> None:
        try:
            async with open_clients(session_for(self._sagemaker_session)) as clients:
                await self._serve(clients, _inline)
        except Exception:
            _log.exception("runstream: the SageMaker sender stopped; data stays in the store")
            await self._wait_closed()

    async def _serve(self, clients: Clients, blocking: Blocking) -> None:
        store, identity, owner = self._store, _Identity(clients), self.owner
        found = await blocking(lambda: journal.targets(store))
        syncs = [
            RunSync(store, t, clients, identity, blocking, owner=owner, config=self._config)
            for t in found
        ]
        own = next(s for s in syncs if s.target.run_id == self._run_id)
        own.file_options = self._file_options
        self._own = own
        others = [s for s in syncs if s is not own]
        try:
            while not self._closing.is_set():
                caught_up = own.ready and await own.round()
                if others and others[0].ready:
                    leftover = others.pop(0)
                    if not await leftover.round():
                        others.append(leftover)  # not done (or someone else's): later
                    else:
                        await leftover.release()
                idle = caught_up or own.elsewhere
                await self._pause(self._config.interval if idle else 0.05)
            await self._drain(own)
        finally:
            with anyio.CancelScope(shield=True):
                for sync in syncs:
                    await sync.release()

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            await anyio.sleep(min(0.05, seconds))

    async def _drain(self, own: RunSync) -> None:
        remaining = self._closed_at + self._close_timeout - time.monotonic()
        handed_over = False
        with anyio.move_on_after(max(0.0, remaining)):
            while not await own.round():
                if own.blocked or own.elsewhere:
                    handed_over = bool(own.elsewhere)
                    break
                await own.wait()
        await own.refresh()
        left = own.snapshot
        if own.elsewhere or handed_over:
            _log.info("runstream: run %r is being sent by another process", own.target.run_name)
        elif left is not None and left.state != "synced":
            _log.warning(
                "runstream: run %r closed with %d points and %d files not yet in SageMaker "
                "(%s); they are kept in %s: run `runstream sync` to send them",
                own.target.run_name,
                left.points_pending,
                left.files_pending,
                left.last_error or f"not done after close_timeout={self._close_timeout}s",
                self._store.path,
            )

    async def _wait_closed(self) -> None:
        while not self._closing.is_set():
            await anyio.sleep(0.05)


# -- at run start: fail early on credentials ----------------------------------------------


def preflight(
    store: LocalStore,
    run_id: int,
    *,
    bucket_name: str | None,
    prefix: str | None,
    sagemaker_session: object | None = None,
    owner: str | None = None,
) -> None:
    """Register the run for sync (leased to ``owner``, its sender) and check, once, that
    AWS takes these credentials.

    Runs in a thread of its own (the caller may be inside an event loop). Credentials that
    are missing or refused raise :class:`BackendError` now, rather than after hours of
    training; an unreachable endpoint or throttling does not: the run logs locally and the
    sender catches up.

    :raises BackendError: no region, no credentials, or credentials AWS refuses
    """
    journal.register(store, run_id, bucket=bucket_name, prefix=prefix)
    if owner is not None:
        # Claim the run now: a sender already running in this store (another run's,
        # adopting leftovers) must not take a live run from its own sender.
        journal.acquire_lease(store, run_id, owner, DEFAULT_CONFIG.lease_ttl)
    target = journal.targets(store, [run_id])[0]
    outcome = _in_thread(lambda: anyio.run(_check, store, target, sagemaker_session))
    if outcome is None:
        return
    if owner is not None and outcome.failure in (Failure.AUTH, Failure.REJECTED):
        journal.release_lease(store, run_id, owner)  # no sender will run: free the run
    if outcome.failure is Failure.AUTH:
        raise BackendError(_credentials_message(outcome, store))
    if outcome.failure is Failure.REJECTED:
        raise BackendError(f"SageMaker refused run {target.run_name!r}: {outcome}")
    _log.warning(
        "runstream: cannot reach SageMaker now (%s); run %r logs to %s and syncs when it can",
        outcome,
        target.run_name,
        store.path,
    )


async def _check(store: LocalStore, target: Target, sagemaker_session: object) -> Outcome | None:
    try:
        async with open_clients(session_for(sagemaker_session)) as clients:
            await clients.sts.get_caller_identity()
            if not target.entities:
                await ensure_entities(clients, target)
                journal.mark_entities(store, target.run_id)
    except EntityError as exc:
        return Outcome(Failure.REJECTED, "EntityError", str(exc))
    except Exception as exc:
        return classify(exc)
    return None


def _credentials_message(outcome: Outcome, store: LocalStore) -> str:
    return (
        f"AWS refused the credentials for backend='sagemaker' ({outcome}). Check "
        "AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, "
        "AWS_REGION and ~/.aws/credentials. Nothing was sent; the store keeps everything "
        f"logged ({store.path}): fix the credentials and run `runstream sync`."
    )


def _in_thread(fn: Callable[[], T]) -> T:
    box: list[Any] = []

    def target() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=target, name="runstream-preflight", daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result


# -- runstream sync -----------------------------------------------------------------------


def sync_store(
    store: LocalStore,
    run_ids: Sequence[int] | None = None,
    *,
    timeout: float = 300.0,
    concurrency: int = 4,
    config: SyncConfig | None = None,
) -> list[SyncStatus]:
    """Send what the store's registered runs (or ``run_ids``) have not sent; report each.

    :raises BackendError: when AWS refuses the credentials (nothing is sent)
    """
    targets = journal.targets(store, run_ids)
    if not targets:
        return []
    config = config or DEFAULT_CONFIG

    async def main() -> list[SyncStatus]:
        async with open_clients(session_for()) as clients:
            try:
                await clients.sts.get_caller_identity()
            except Exception as exc:
                outcome = classify(exc)
                if outcome.failure is Failure.AUTH:
                    raise BackendError(_credentials_message(outcome, store)) from exc
            identity, owner = _Identity(clients), journal.new_owner()
            limiter = anyio.CapacityLimiter(concurrency)
            syncs = [
                RunSync(store, t, clients, identity, _inline, owner=owner, config=config)
                for t in targets
            ]

            async def drain(sync: RunSync) -> None:
                async with limiter:
                    with anyio.move_on_after(timeout):
                        while not await sync.round():
                            if sync.blocked or sync.elsewhere:
                                break
                            await sync.wait()
                    with anyio.CancelScope(shield=True):
                        await sync.release()
                        await sync.refresh()

            async with anyio.create_task_group() as tasks:
                for sync in syncs:
                    tasks.start_soon(drain, sync)
            return [s.snapshot for s in syncs if s.snapshot is not None]

    try:
        return anyio.run(main)
    except BackendError:
        raise
    except Exception as exc:
        outcome = classify(exc)
        if outcome.failure is Failure.AUTH:
            raise BackendError(_credentials_message(outcome, store)) from exc
        raise


async def _inline(fn: Callable[[], Any]) -> Any:
    return fn()


def statuses(store: LocalStore, run_ids: Sequence[int] | None = None) -> list[SyncStatus]:
    """The sync state of the store's registered runs, without any network call."""
    return [
        journal.status(store, t, files_pending=_files_pending(store, t))
        for t in journal.targets(store, run_ids)
    ]


def _files_pending(store: LocalStore, target: Target) -> int:
    done = journal.uploads(store, target.run_id)
    rows = store.query(
        "SELECT direction, name, sha256 FROM artifacts WHERE run_id = ? AND sha256 IS NOT NULL",
        (target.run_id,),
    )
    return sum(1 for d, n, s in rows if done.get((str(d), str(n)), ("", ""))[0] != s)

"""The sender: moves what the store holds and SageMaker has not acknowledged.

:class:`RunSync` syncs one run in *rounds*: create-or-load its entities (once per store),
upload new ``log_file`` copies to S3 while sending metrics, then bring the trial
component's parameters, artifacts, status and times up to date. Every acknowledged call
is recorded in the store before the next is sent (:mod:`._journal`), so a sender that
dies mid-round and a new one that picks the run up later send nothing twice. A run synced
from several hosts gets its status from all of them (:mod:`._hosts`).

Failures never escape to the caller's loop: throttling slows the API's token bucket and
retries the same call after a back-off; a network error or 5xx is retried the same way;
items refused one by one are retried alone (INTERNAL_ERROR, CONFLICT_ERROR) or reported
(anything else); refused credentials *block* the run (nothing is sent, everything is
kept) until they work again. Each is counted in the run's sync state.

The store's sync agent runs the rounds (:mod:`._sink`, :mod:`.._agent`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import numpy as np
import orjson

from ..._core._batch import RunKey
from ..._core._exceptions import BackendError
from ..._flush._backoff import Backoff
from .. import _journal as journal
from .._sink import SyncConfig
from .._thread import in_thread
from ._clients import Clients, Failure, Outcome, classify, open_clients, session_for
from ._entities import EntityError, ensure_entities, trial_component_update
from ._entities import fingerprint as fingerprint_of
from ._hosts import TERMINAL, across_hosts, host_key, reported, shows, with_status
from ._metrics import BATCH_SIZE, Call, plan, rejected_call, request_data, result_of, strides
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
    from ..._core._records import RunRecord
    from ..._store import LocalStore
    from .._journal import CallResult, Target

__all__ = (
    "Identity",
    "RunSync",
    "credentials_message",
    "data_per_second",
    "inline",
    "preflight",
)

T = TypeVar("T")
Blocking = Callable[[Callable[[], Any]], Awaitable[Any]]
_log = logging.getLogger("runstream")


DEFAULT_CONFIG = SyncConfig()


class _Stop(Exception):
    """Ends a round early: the outcome says why (credentials, or a backend that failed)."""

    def __init__(self, outcome: Outcome, *, counted: bool = False) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome
        #: the failure is in the journal already (a call that kept failing)
        self.counted = counted


class Identity:
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
        identity: Identity,
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
        #: ``log_file(extra_args=)`` by (direction, name), handed over by the live run
        self.file_options: dict[tuple[str, str], dict[str, Any]] = {}
        self._trial_component_arn: str | None = None
        #: the stride of the last round's data (1: every step)
        self.stride = 1
        # The status across hosts (:mod:`._hosts`): whether this run involves other hosts
        # (known from SM_HOSTS, or learnt from the trial component); when to read the
        # trial component again (monotonic; None: not before something changes); reads in
        # a row that found nothing to rewrite since this host's last write; until when this
        # host, done, keeps watching the others; and when the next round is due at all.
        self._across = bool(target.hosts) and len(target.job_hosts) > 1
        self._probed: str | None = None  # the status last sent after a probe (one host)
        self._probe_refused = False
        self._check_at: float | None = None
        self._clean_reads = 0
        self._watch_until: float | None = None
        self._rest_until: float | None = None

    async def _run(self, fn: Callable[[], T]) -> T:
        result: T = await self._blocking(fn)
        return result

    @property
    def ready(self) -> bool:
        if self._rest_until is not None and time.monotonic() < self._rest_until:
            return False  # all sent; the next read of the other hosts is not due yet
        return self._backoff.ready

    async def wait(self) -> None:
        await self._backoff.wait()

    # -- a round --------------------------------------------------------------------------

    async def round(self) -> bool:
        """Send what is pending now. True when everything known was acknowledged and no
        read of the other hosts' status is due later (see :meth:`_sync_across_hosts`)."""
        store, run_id = self.store, self.target.run_id
        began = time.time()
        self._rest_until = None
        if not await self._run(
            lambda: journal.acquire_lease(store, run_id, self._owner, self._config.lease_ttl)
        ):
            self.elsewhere = True  # another live process is sending this run: let it
            return False
        self.elsewhere = False
        self.file_options = await self._run(lambda: journal.file_options(store, run_id))
        try:
            caught_up = await self._round()
        except _Stop as stop:
            await self._failed(stop.outcome, counted=stop.counted)
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
        await self._run(
            lambda: journal.note(store, run_id, synced=True, caught_up=caught_up, round_began=began)
        )
        # Caught up (the journal says so: a closing job stops waiting) while this host, done,
        # still watches the others: the agent keeps serving until the watch ends.
        return caught_up and self._check_at is None

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
        if metrics_done and files_done and graphs_done:
            self._rest_until = self._check_at  # nothing else to send: rest until that read
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

    async def _failed(self, outcome: Outcome, *, counted: bool = False) -> None:
        message = str(outcome)
        if outcome.failure is Failure.AUTH:
            self.blocked = f"AWS refused the credentials ({message}); data stays local"
            self._backoff.not_before = time.monotonic() + self._config.blocked_retry
        else:
            self._backoff.failed()
        store, run_id, blocked = self.store, self.target.run_id, self.blocked
        throttled = int(outcome.failure is Failure.THROTTLED and not counted)
        await self._run(
            lambda: journal.note(store, run_id, error=message, blocked=blocked, throttled=throttled)
        )
        _log.warning(
            "runstream: sync of run %r to SageMaker: %s (will retry; data stays in %s)",
            self.target.run_name,
            message,
            self.store.path,
        )

    def _record(self) -> RunRecord:
        target = self.target
        key = RunKey(target.run_id, target.experiment_name, target.run_name)
        return self.store.records([key])[0]

    async def release(self) -> None:
        store, run_id, owner = self.store, self.target.run_id, self._owner
        await self._run(lambda: journal.release_lease(store, run_id, owner))

    # -- metrics --------------------------------------------------------------------------

    async def _sync_metrics(self) -> bool:
        store, run_id, config = self.store, self.target.run_id, self._config

        def gather() -> tuple[
            list[tuple[journal.Cursor, Any]], list[journal.Item], bool, dict[Any, int]
        ]:
            found = journal.cursors(store, run_id)
            backlog = {c.key: journal.series_backlog(store, c) for c in found}
            series = [(c, journal.pending_stats(store, c, config.max_chunks)) for c in found]
            more = any(c.newest_chunk > c.round_chunk for c in found)
            return series, journal.retry_items(store, run_id, 1000), more, backlog

        series, retries, more, backlog = await self._run(gather)
        if not series and not retries:
            return True
        # The lag bound in data, at the configured rate (not the throttled one): a
        # throttling storm slows the sending, not the resolution, until the backlog would
        # take longer than the bound to send.
        rate = bucket("BatchPutMetrics").ceiling
        capacity = rate * BATCH_SIZE * config.max_lag
        grouping = strides(backlog, capacity, self.target.resolution)
        used = max((stride for stride, grouped in grouping.values() if grouped), default=1)
        # A round sends at most ``horizon`` seconds of calls, then lets other runs have a
        # turn; the cursors say where the next round resumes.
        limit = max(1, int(rate * config.horizon))
        # Plan only what this round can send: a large backlog is not re-planned whole every
        # round. A series cut short keeps its round open (its cursor says where it stopped).
        rows = limit * BATCH_SIZE
        cut: set[tuple[int, str]] = set()
        kept = []
        for cursor, stats in series:
            stride = grouping.get(cursor.key, (1, 0))[0]
            if len(stats) > rows * stride:
                stats = stats.take(np.arange(rows * stride))
                cut.add(cursor.key)
            kept.append((cursor, stats))
        again = bool(cut)
        calls = plan(kept, retries, grouping, open_rounds=cut)
        for index, call in enumerate(calls):
            if index >= limit:
                again = True
                break
            result = await self._send(call)
            again = again or bool(result.retry)
            await self._run(lambda result=result: journal.commit(store, run_id, result))  # type: ignore[misc]
        self.stride = used
        await self._run(lambda: journal.note(store, run_id, stride=used))
        return not more and not again

    async def _record_failure(self, outcome: Outcome) -> None:
        """A failed attempt, in the journal at once (``runstream status`` shows it)."""
        store, run_id = self.store, self.target.run_id
        throttled = int(outcome.failure is Failure.THROTTLED)
        message = str(outcome)
        await self._run(lambda: journal.note(store, run_id, throttled=throttled, error=message))

    async def _send(self, call: Call) -> CallResult:
        """Send one call until it is acknowledged (or refused as a whole)."""
        if not call.items:
            return result_of(call, None)
        data = request_data(call.items)
        limiter = bucket("BatchPutMetrics")
        resent = 0
        failing_since: float | None = None
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
                resent += sum(i.points for i in call.items)
                await self._record_failure(outcome)
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > self._config.lease_ttl / 3:
                    # A long outage ends the round (nothing of this call was acknowledged;
                    # the next round sends it again): the agent renews its leases, and
                    # notices linger, a deleted store or a new run, while it backs off.
                    raise _Stop(outcome, counted=True) from exc
                delay = self._backoff.failed()
                _log.debug("runstream: BatchPutMetrics %s; retrying in %.2fs", outcome, delay)
                await anyio.sleep(delay)
                continue
            limiter.succeeded()
            self._backoff.succeeded()
            result = result_of(call, response.get("Errors"))
            break
        result.throttled = 0  # recorded as they happened, above
        result.resent_points = resent
        return result

    # -- files ----------------------------------------------------------------------------

    async def _sync_files(self, record: RunRecord) -> bool:
        store, run_id = self.store, self.target.run_id
        done = await self._run(lambda: journal.uploads(store, run_id))
        todo = journal.unsent_files(record.artifacts, done)
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
        described = None
        if (
            not self._across
            and not self._probe_refused
            and self.target.hosts
            and record.status not in (None, self._probed)
            and fingerprint != self.target.fingerprint
        ):
            self._probed = record.status
            described = await self._probe()
        if self._across and self.target.hosts and record.status is not None:
            return await self._sync_across_hosts(record, request, described)
        if fingerprint == self.target.fingerprint:
            return True
        await self._update(request)
        await self._run(lambda: journal.set_fingerprint(store, run_id, fingerprint))
        self.target = replace(self.target, fingerprint=fingerprint)
        return True

    async def _update(self, request: dict[str, Any]) -> None:
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
            store, run_id = self.store, self.target.run_id
            await self._run(lambda: journal.note(store, run_id, error=message))

    async def _describe(self) -> dict[str, Any]:
        await bucket("control").take()
        found = await self._clients.sagemaker.describe_trial_component(
            TrialComponentName=self.target.trial_component_name
        )
        if found.get("TrialComponentArn"):
            self._trial_component_arn = str(found["TrialComponentArn"])
        return dict(found)

    async def _probe(self) -> dict[str, Any] | None:
        """One host, about to send a new status (once per status: when the run starts
        and when it ends): is another host's status on the trial component already (a run
        that the hosts of a job logged into before)? Then this run's status is computed
        across hosts too, and a run another host failed stays Failed. Any failure leaves
        the run as one host's: the request it sends is the same as without the probe."""
        try:
            found = await self._describe()
        except Exception as exc:
            outcome = classify(exc)
            if outcome.failure is Failure.THROTTLED:
                bucket("control").throttled()
            elif outcome.failure in (Failure.AUTH, Failure.REJECTED):
                self._probe_refused = True  # not allowed to describe: never ask again
            _log.debug("runstream: DescribeTrialComponent for the hosts' status: %s", outcome)
            return None
        own = {host_key(host) for host in self.target.hosts}
        self._across = any(key not in own for key in reported(found))
        return found

    async def _sync_across_hosts(
        self, record: RunRecord, request: dict[str, Any], described: dict[str, Any] | None
    ) -> bool:
        """This host's status on the trial component, and the run's computed from every
        host's (:func:`._hosts.across_hosts`). True when the journal may call it caught up.

        Every write is computed from a read (DescribeTrialComponent) just before it. Two
        hosts finishing at once may each read the other still running and both write
        ``InProgress``; so after a write while this host is done, it reads again, one
        interval later, until two reads in a row find nothing to rewrite. Of any hosts
        that race, the last to write its own status reads after every other host's write,
        sees them all and writes the final status: the run converges.

        Then, while the run is still running elsewhere (this host done, another not), this
        host re-reads every ``hosts_recheck`` seconds, for ``hosts_watch`` seconds at most,
        while the journal calls this host caught up (a job's close does not wait for the
        other hosts). It does not wait on them longer: the host that finishes last computes
        the final status itself (that needs no watcher); the watch only covers reads that
        lag behind writes. A longer one would keep every early host's agent, and
        ``runstream sync``, waiting on hosts that may take hours.
        """
        store, run_id, config = self.store, self.target.run_id, self._config
        status = str(record.status)
        base = with_status(request, self.target.hosts, status)
        digest = fingerprint_of(base)
        changed = digest != self.target.fingerprint
        now = time.monotonic()
        due = self._check_at is not None and now >= self._check_at
        if not changed and not due and described is None:
            return not self._settling
        if described is None:
            try:
                described = await self._guard(self._describe())
            except _Stop as stop:
                if stop.outcome.failure not in (Failure.AUTH, Failure.REJECTED):
                    raise
                # Not allowed to describe it (say, an IAM policy without
                # DescribeTrialComponent): this host's status alone, as with one host.
                message = (
                    f"DescribeTrialComponent refused ({stop.outcome}): the run's status "
                    "is this host's"
                )
                _log.warning("runstream: %s", message)
                await self._run(lambda: journal.note(store, run_id, error=message))
        if described is None:
            update, run_status, write = base, status, changed
        else:
            update, run_status = across_hosts(
                base,
                status=status,
                message=record.message,
                hosts=self.target.hosts,
                expected=self.target.job_hosts,
                described=described,
            )
            write = changed or not shows(described, update)
        if write:
            await self._update(update)
            await self._run(lambda: journal.set_fingerprint(store, run_id, digest))
            self.target = replace(self.target, fingerprint=digest)

        if status not in TERMINAL or described is None:
            # Running here: the host that finishes decides; every write reads first.
            self._check_at = self._watch_until = None
            self._clean_reads = 0
            return True
        self._clean_reads = 0 if write else self._clean_reads + 1
        if self._clean_reads < _SETTLED_READS:
            self._check_at = now + config.interval  # read again: did another host race us?
            return False
        if run_status in TERMINAL:
            self._check_at = None  # the run is over: nothing another host does changes it
            return True
        if self._watch_until is None:
            self._watch_until = now + config.hosts_watch
        recheck = now + config.hosts_recheck
        self._check_at = None if now >= self._watch_until else min(recheck, self._watch_until)
        return True

    @property
    def _settling(self) -> bool:
        """Between this host's write and the reads that confirm it (see above)."""
        return self._check_at is not None and self._clean_reads < _SETTLED_READS


#: Reads in a row that found nothing to rewrite before a host's final write counts as done.
_SETTLED_READS = 2


def data_per_second() -> float:
    """The BatchPutMetrics budget in data per second (what the lag is measured in)."""
    return bucket("BatchPutMetrics").ceiling * BATCH_SIZE


# -- at run start: fail early on credentials ----------------------------------------------


def preflight(
    store: LocalStore,
    run_id: int,
    *,
    bucket_name: str | None,
    prefix: str | None,
    sagemaker_session: object | None = None,
    resolution: str | None = None,
) -> None:
    """Register the run for sync (leased to ``owner``, its sender) and check, once, that
    AWS takes these credentials.

    Runs in a thread of its own (the caller may be inside an event loop). Credentials that
    are missing or refused raise :class:`BackendError` now, rather than after hours of
    training; an unreachable endpoint or throttling does not: the run logs locally and the
    sender catches up.

    :raises BackendError: no region, no credentials, or credentials AWS refuses
    """
    journal.register(store, run_id, bucket=bucket_name, prefix=prefix, resolution=resolution)
    target = journal.targets(store, [run_id])[0]
    outcome = in_thread(
        lambda: anyio.run(_check, store, target, sagemaker_session), "runstream-preflight"
    )
    if outcome is None:
        return
    if outcome.failure is Failure.AUTH:
        raise BackendError(credentials_message(outcome, store))
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


def credentials_message(outcome: Outcome, store: LocalStore) -> str:
    return (
        f"AWS refused the credentials for backend='sagemaker' ({outcome}). Check "
        "AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, "
        "AWS_REGION and ~/.aws/credentials. Nothing was sent; the store keeps everything "
        f"logged ({store.path}): fix the credentials and run `runstream sync`."
    )


async def inline(fn: Callable[[], Any]) -> Any:
    return fn()

"""SageMaker Experiments and S3 as a sink of the sync agent (see :mod:`.._sink`).

What it sends: each run's entities (created at ``Run(...)`` by the preflight), every
worker's series at full resolution in BatchPutMetrics calls of 10 data (the oldest steps
grouped only past the lag bound), ``log_file`` copies to S3, graph documents and their
lineage, and the trial component's parameters, artifacts, status and times
(:class:`._sender.RunSync`). Its budget: ``RUNSTREAM_SAGEMAKER_RATE`` BatchPutMetrics calls
per second (:mod:`._ratelimit`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .. import _journal as journal
from ._clients import Clients, classify, open_clients, session_for
from ._sender import Identity, RunSync, credentials_message, data_per_second, inline

if TYPE_CHECKING:
    from ..._core._records import SyncStatus
    from ..._store import LocalStore
    from .._sink import Outcome, Sink, SyncConfig

__all__ = ("SINK", "SageMakerSink")


class SageMakerSink:
    name = "sagemaker"

    def run_ids(self, store: LocalStore, run_ids: Sequence[int] | None = None) -> list[int]:
        return [t.run_id for t in journal.targets(store, run_ids, sink=self.name)]

    def data_per_second(self) -> float:
        return data_per_second()

    def status(self, store: LocalStore, run_id: int) -> SyncStatus:
        [target] = journal.targets(store, [run_id], sink=self.name)
        return journal.status_of(store, target, data_per_second())

    async def check(self, store: LocalStore, run_ids: Sequence[int]) -> Outcome | None:
        async with open_clients(session_for()) as clients:
            try:
                await clients.sts.get_caller_identity()
            except Exception as exc:
                return classify(exc)
        return None

    def credentials_message(self, outcome: Outcome, store: LocalStore) -> str:
        return credentials_message(outcome, store)

    @asynccontextmanager
    async def connect(
        self, store: LocalStore, owner: str, config: SyncConfig
    ) -> AsyncIterator[_Connection]:
        async with open_clients(session_for()) as clients:
            yield _Connection(store, clients, owner, config)


class _Connection:
    """One set of AWS clients (and the account, asked once) for all the agent's runs."""

    def __init__(self, store: LocalStore, clients: Clients, owner: str, config: SyncConfig):
        self._store = store
        self._clients = clients
        self._identity = Identity(clients)
        self._owner = owner
        self._config = config

    def sender(self, run_id: int) -> RunSync:
        [target] = journal.targets(self._store, [run_id], sink=SageMakerSink.name)
        return RunSync(
            self._store,
            target,
            self._clients,
            self._identity,
            inline,
            owner=self._owner,
            config=self._config,
        )


SINK: Sink = SageMakerSink()

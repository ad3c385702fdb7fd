"""MLflow tracking servers as a sink of the sync agent (see :mod:`.._sink`).

What it sends: each run's merged series per metric at full resolution (never grouped) in
``runs/log-batch`` calls of at most 1,000 points, a step once every open worker logged a
later one; ``log_file`` copies through the server's artifact proxy (or the run's S3
location); parameters, tags, status and end time (:class:`._sender.RunSync`). A call is
acknowledged by its 200 answer; a round moves a metric's marks only after all of its
points were acknowledged, and MLflow keeps an identical point once, so a round sent again
doubles nothing. Its budget: none published (the server's own pace), so the lag in
seconds is not reported. One client per tracking URI, shared by the agent's runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from ._client import MLflowClient, classify
from ._endpoint import endpoint_from_uri
from ._journal import targets
from ._sender import RunSync, credentials_message, status

if TYPE_CHECKING:
    from ..._core._records import SyncStatus
    from ..._store import LocalStore
    from .._sink import Outcome, Sink, SyncConfig

__all__ = ("SINK", "MLflowSink")


class MLflowSink:
    name = "mlflow"

    def run_ids(self, store: LocalStore, run_ids: Sequence[int] | None = None) -> list[int]:
        return [t.run_id for t in targets(store, run_ids)]

    def data_per_second(self) -> float | None:
        return None

    def status(self, store: LocalStore, run_id: int) -> SyncStatus:
        [target] = targets(store, [run_id])
        return status(store, target)

    async def check(self, store: LocalStore, run_ids: Sequence[int]) -> Outcome | None:
        for uri in sorted({t.uri for t in targets(store, run_ids)}):
            async with MLflowClient(endpoint_from_uri(uri)) as client:
                try:
                    await client.post("experiments/search", {"max_results": 1})
                except Exception as exc:
                    return classify(exc)
        return None

    def credentials_message(self, outcome: Outcome, store: LocalStore) -> str:
        uris = ", ".join(sorted({t.uri for t in targets(store)}))
        return credentials_message(outcome, store, uris)

    @asynccontextmanager
    async def connect(
        self, store: LocalStore, owner: str, config: SyncConfig
    ) -> AsyncIterator[_Connection]:
        async with AsyncExitStack() as stack:
            yield _Connection(store, stack, owner, config)


class _Connection:
    """The agent's MLflow clients, one per tracking URI, opened when a run needs one."""

    def __init__(
        self, store: LocalStore, stack: AsyncExitStack, owner: str, config: SyncConfig
    ) -> None:
        self._store = store
        self._stack = stack
        self._owner = owner
        self._config = config
        self._clients: dict[str, MLflowClient] = {}

    def sender(self, run_id: int) -> RunSync:
        [target] = targets(self._store, [run_id])
        return RunSync(self._store, target, self._client, owner=self._owner, config=self._config)

    def _client(self, uri: str) -> MLflowClient:
        client = self._clients.get(uri)
        if client is None:
            # httpx opens connections on first use: making the client does no I/O.
            client = self._clients[uri] = MLflowClient(endpoint_from_uri(uri))
            self._stack.push_async_exit(client.__aexit__)
        return client


SINK: Sink = MLflowSink()

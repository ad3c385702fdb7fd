"""The graphs of a run in the store (table ``graphs``, schema version 3).

One row per title per run: logging a title again replaces its document, as the official
SDK overwrites ``<title>.json`` in S3. Written through :meth:`LocalStore.transaction`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec
import orjson

if TYPE_CHECKING:
    from ._local import LocalStore

__all__ = ("Graph", "put_graph", "run_graphs")


class Graph(msgspec.Struct, frozen=True):
    """A logged graph: the official SDK's JSON document and where it points."""

    title: str
    type: str
    direction: str  # "output" (Produced by the run) or "input" (ContributedTo it)
    document: dict[str, object]
    worker: str
    logged: float

    @property
    def is_output(self) -> bool:
        return self.direction == "output"


def put_graph(
    store: LocalStore,
    run_id: int,
    *,
    title: str,
    graph_type: str,
    direction: str,
    document: dict[str, object],
    worker: str,
) -> None:
    encoded = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    with store.transaction("log graph") as db:
        db.execute(
            "INSERT INTO graphs(run_id, title, type, direction, document, worker, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, title) DO UPDATE SET "
            "type = excluded.type, direction = excluded.direction, "
            "document = excluded.document, worker = excluded.worker, ts = excluded.ts",
            (run_id, title, graph_type, direction, encoded, worker, time.time()),
        )


def run_graphs(store: LocalStore, run_id: int) -> list[Graph]:
    """The run's graphs, in the order they were first logged."""
    rows = store.query(
        "SELECT title, type, direction, document, worker, ts FROM graphs WHERE run_id = ? "
        "ORDER BY rowid",
        (run_id,),
    )
    return [
        Graph(
            title=str(r[0]),
            type=str(r[1]),
            direction=str(r[2]),
            document=orjson.loads(r[3]),
            worker=str(r[4]),
            logged=float(r[5]),
        )
        for r in rows
    ]

"""The embedded store: one SQLite database per store directory, files beside it.

Above this package, code reads and writes through :class:`LocalStore`'s methods; the sync
journal of the remote backends adds its own statements through ``transaction()`` and
``query()``, on tables that :mod:`._schema` versions with the rest.
"""

from ._graphs import Graph, put_graph, run_graphs
from ._local import LocalStore, default_store_path, is_transient, resolve_store_path
from ._schema import DB_NAME, SCHEMA_VERSION

__all__ = (
    "DB_NAME",
    "SCHEMA_VERSION",
    "Graph",
    "LocalStore",
    "default_store_path",
    "is_transient",
    "put_graph",
    "resolve_store_path",
    "run_graphs",
)

"""``Run.log_precision_recall``, ``log_roc_curve`` and ``log_confusion_matrix``.

The official signatures and errors (``RuntimeError`` outside ``with``, the "Lengths
mismatch..." ``ValueError``), the official JSON documents (:mod:`.._core._graphs`). The
document is stored with the run at the call, in one store transaction: a graph is logged
once per evaluation, not per step, and the call returns once it is durable, as the
official call returns once its upload is done. Under ``backend="sagemaker"`` the sender
then uploads it to ``<prefix>/<trial component>/<title>.json`` and records it as a lineage
artifact associated with the run, as the official ``close()`` does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core import _graphs
from .._store import put_graph

if TYPE_CHECKING:
    from .._store import LocalStore

__all__ = (
    "confusion_matrix",
    "log_graph",
    "precision_recall",
    "roc_curve",
)

_MAX_TITLE_LEN = 120


def log_graph(
    store: LocalStore,
    run_id: int,
    *,
    worker: str,
    backend: str,
    graph_type: str,
    title: str | None,
    is_output: bool,
    build: Callable[[str], dict[str, Any]],
) -> None:
    """Store a graph document with the run (the SageMaker backend uploads it)."""
    if title is None:
        # The official SDK means to name it so, but drops the name and fails (TypeError).
        title = f"{graph_type}-{int(time.time())}-{secrets.token_hex(2)}"
    if not isinstance(title, str) or not 1 <= len(title) <= _MAX_TITLE_LEN:
        raise ValueError(
            f"graph title {title!r} must be a string of 1 to {_MAX_TITLE_LEN} characters"
        )
    if backend == "sagemaker":
        from .._backends.sagemaker import check_sagemaker_name

        check_sagemaker_name("graph title (its lineage ArtifactName)", title)
    document = build(title)
    put_graph(
        store,
        run_id,
        title=title,
        graph_type=graph_type,
        direction="output" if is_output else "input",
        document=document,
        worker=worker,
    )


def precision_recall(
    y_true: Any, predicted_probabilities: Any, positive_label: Any, no_skill: Any
) -> Callable[[str], dict[str, Any]]:
    _graphs.check_lengths(y_true, predicted_probabilities, "predicted probabilities")
    return lambda title: _graphs.precision_recall_document(
        y_true, predicted_probabilities, positive_label, title, no_skill
    )


def roc_curve(y_true: Any, y_score: Any) -> Callable[[str], dict[str, Any]]:
    _graphs.check_lengths(y_true, y_score, "predicted scores")
    return lambda title: _graphs.roc_curve_document(y_true, y_score, title)


def confusion_matrix(y_true: Any, y_pred: Any) -> Callable[[str], dict[str, Any]]:
    _graphs.check_lengths(y_true, y_pred, "predicted labels")
    return lambda title: _graphs.confusion_matrix_document(y_true, y_pred, title)

"""The graph documents of ``log_precision_recall``, ``log_roc_curve`` and ``log_confusion_matrix``.

The official SDK computes them with scikit-learn and uploads one JSON document per graph
(``{"type", "version": 0, "title", ...}``), which SageMaker Studio draws. runstream writes
the same documents, computed here with numpy by scikit-learn's own algorithms (so no
scikit-learn is needed): ``precision_recall_curve`` and ``average_precision_score``
(binary, ``average="micro"``), ``roc_curve`` (``drop_intermediate=True``) with ``auc``, and
``confusion_matrix`` over the sorted labels of both inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = (
    "GRAPH_TYPES",
    "check_lengths",
    "confusion_matrix_document",
    "precision_recall_document",
    "roc_curve_document",
)

GRAPH_TYPES = ("PrecisionRecallCurve", "ROCCurve", "ConfusionMatrix")


def check_lengths(y_true: Sequence[Any], predicted: Sequence[Any], what: str) -> None:
    """The official SDK's check, with its message."""
    if len(y_true) != len(predicted):
        raise ValueError(
            f"Lengths mismatch between true labels and {what}: ({len(y_true)} vs {len(predicted)})."
        )


def _labels(values: Any, label: str) -> NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{label} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{label} is empty")
    return array


def _scores(values: Any, label: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be numbers, got {values!r}") from None
    if array.ndim != 1:
        raise ValueError(f"{label} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{label} must be finite numbers (no NaN or infinity)")
    return array


_DEFAULT_POSITIVE = ({0, 1}, {-1, 1}, {0}, {-1}, {1})


def _positive(y_true: NDArray[Any], pos_label: Any) -> NDArray[np.bool_]:
    """y_true == the positive class, which defaults to 1 for {0, 1} or {-1, 1} labels."""
    classes = np.unique(y_true).tolist()
    if len(classes) > 2:
        raise ValueError(
            f"y_true has {len(classes)} classes ({classes}); these curves need binary labels"
        )
    if pos_label is None:
        if y_true.dtype.kind not in "biuf" or set(classes) not in _DEFAULT_POSITIVE:
            raise ValueError(
                f"y_true takes value in {set(classes)} and pos_label is not specified: "
                "either make y_true take value in {0, 1} or {-1, 1} or pass pos_label "
                "explicitly."
            )
        pos_label = 1
    elif len(classes) == 2 and pos_label not in classes:
        raise ValueError(
            f"pos_label={pos_label!r} is not a valid label. It should be one of {classes}"
        )
    return np.asarray(y_true == pos_label)


def _binary_clf_curve(
    positive: NDArray[np.bool_], score: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """False and true positives at each distinct score, highest first (sklearn's)."""
    order = np.argsort(score, kind="mergesort")[::-1]
    score = score[order]
    truth = positive[order].astype(np.float64)
    distinct = np.where(np.diff(score))[0]
    thresholds = np.r_[distinct, truth.size - 1]
    tps = np.cumsum(truth)[thresholds]
    fps = 1 + thresholds - tps
    return fps.astype(np.float64), tps


def _precision_recall(
    positive: NDArray[np.bool_], score: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    fps, tps = _binary_clf_curve(positive, score)
    predicted = tps + fps
    precision = np.zeros_like(tps)
    np.divide(tps, predicted, out=precision, where=predicted != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.hstack((precision[::-1], 1.0)), np.hstack((recall[::-1], 0.0))


def precision_recall_document(
    y_true: Sequence[Any],
    probabilities: Sequence[Any],
    positive_label: Any,
    title: str,
    no_skill: Any,
) -> dict[str, Any]:
    truth = _labels(y_true, "y_true")
    score = _scores(probabilities, "predicted_probabilities")
    positive = _positive(truth, positive_label)
    precision, recall = _precision_recall(positive, score)
    average = float(-np.sum(np.diff(recall) * precision[:-1]))
    return {
        "type": "PrecisionRecallCurve",
        "version": 0,
        "title": title,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "averagePrecisionScore": average,
        "noSkill": no_skill,
    }


def roc_curve_document(y_true: Sequence[Any], y_score: Sequence[Any], title: str) -> dict[str, Any]:
    truth = _labels(y_true, "y_true")
    score = _scores(y_score, "y_score")
    fps, tps = _binary_clf_curve(_positive(truth, None), score)
    if len(fps) > 2:  # drop_intermediate: keep only the corners of the curve
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    fpr = np.full(fps.shape, math.nan) if fps[-1] <= 0 else fps / fps[-1]
    tpr = np.full(tps.shape, math.nan) if tps[-1] <= 0 else tps / tps[-1]
    return {
        "type": "ROCCurve",
        "version": 0,
        "title": title,
        "falsePositiveRate": fpr.tolist(),
        "truePositiveRate": tpr.tolist(),
        "areaUnderCurve": _auc(fpr, tpr),
    }


def _auc(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    dx = np.diff(x)
    direction = 1.0
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            raise ValueError("x is neither increasing nor decreasing")
        direction = -1.0
    return float(direction * np.sum(dx * (y[1:] + y[:-1]) / 2.0))


def confusion_matrix_document(
    y_true: Sequence[Any], y_pred: Sequence[Any], title: str
) -> dict[str, Any]:
    truth = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    if (truth.dtype.kind in "USO") != (predicted.dtype.kind in "USO"):
        raise ValueError("Mix of label input types (string and number)")
    labels = np.unique(np.concatenate([truth, predicted]))
    index = {label: i for i, label in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth.tolist(), predicted.tolist(), strict=True):
        matrix[index[t], index[p]] += 1
    return {
        "type": "ConfusionMatrix",
        "version": 0,
        "title": title,
        "confusionMatrix": matrix.tolist(),
    }

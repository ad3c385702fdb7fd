"""From stored step statistics to MLflow metric points: the merged series, every step.

MLflow gets one metric per runstream metric: the *merged* series, as ``run.series(name)``
gives it (every worker's points at a step reduced to their mean, at the step's last
timestamp), at full resolution: one MLflow point per step, never grouped. Points logged
without a step keep their own time (one point each, MLflow step 0, the timestamp in
milliseconds made strictly increasing per metric so none collapses into another).

A step is sent once it is *final*: every worker still logging that metric has logged a
later step (or the run is over), so its merged value never changes after it was sent. A
point logged later for a step already sent (a worker that joins late, a step logged again)
is sent as a further point at that step, with the mean of those late points.

A plan is a pure function of the store and the metric's position (:mod:`._journal`), so a
plan sent again after a lost response or a crash is the same points: MLflow's SQL store
keys a metric row on (key, timestamp, step, run, value, is_nan) and keeps an identical
point once, which makes resending harmless (see the README's "Exactly once").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._core import _aggregate

if TYPE_CHECKING:
    from ..._store import LocalStore
    from ._journal import MetricCursor

__all__ = ("MAX_BATCH", "MAX_BYTES", "MetricPlan", "batches", "plan_metric", "wire_value")

MAX_BATCH = 1000  # metrics per runs/log-batch (MLflow's limit)
MAX_BYTES = 900_000  # below the 1 MB request limit, with room for the envelope


@dataclass(slots=True)
class MetricPlan:
    """What one metric sends this round, and where its position moves once acknowledged."""

    points: list[dict[str, Any]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # logged points each datum stands for
    cursor: MetricCursor | None = None
    held: int = 0  # steps not final yet
    capped: bool = False  # more chunks wait than one plan reads


def wire_value(value: float) -> float | str:
    """A metric value as MLflow's JSON takes it: NaN and the infinities as strings (MLflow
    stores NaN as NaN and clamps the infinities to the largest finite doubles)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def plan_metric(
    store: LocalStore,
    cursor: MetricCursor,
    open_workers: set[str],
    *,
    final: bool,
    max_chunks: int = 256,
) -> MetricPlan:
    """The points of ``cursor``'s metric not sent yet, and its position after them.

    :param open_workers: workers still logging into the run (their latest step is not final)
    :param final: the run is over here: every step is final
    """
    from dataclasses import replace

    rows = store.query(
        "SELECT id, worker, data FROM chunks WHERE metric_id = ? AND id > ? ORDER BY id LIMIT ?",
        (cursor.metric_id, cursor.chunk_mark, max_chunks),
    )
    new = replace(cursor)
    plan = MetricPlan(cursor=new, capped=len(rows) >= max_chunks)
    if not rows:
        return plan
    decoded = [(int(i), str(w), _aggregate.decode(bytes(d))) for i, w, d in rows]
    watermark = math.inf if final else _watermark(store, cursor.metric_id, open_workers)
    merged = _aggregate.combine([s for _, _, s in decoded])
    fresh_new = [s for i, _, s in decoded if i > cursor.read_mark]
    late_source = _aggregate.combine(fresh_new) if fresh_new else _aggregate.empty()

    name = cursor.metric
    # 1. step-less points of the chunks not read before: each at its own millisecond
    stepless = late_source.take(np.flatnonzero(late_source.step < 0))
    if len(stepless):
        order = np.argsort(-stepless.step, kind="stable")  # keys are -(µs + 1): oldest first
        stepless = stepless.take(order)
        micros = -stepless.step - 1
        last_ms = cursor.time_ms
        for us, total, count in zip(
            micros.tolist(), stepless.sum.tolist(), stepless.count.tolist(), strict=True
        ):
            ms = max(int(us) // 1000, last_ms + 1)
            last_ms = ms
            plan.points.append(_point(name, total / count, ms, 0))
            plan.counts.append(int(count))
        new.time_ms = last_ms
    # 2. late points: steps already sent, logged again in chunks not read before
    late = late_source.take(
        np.flatnonzero((late_source.step >= 0) & (late_source.step <= cursor.step_mark))
    )
    _add_steps(plan, name, late)
    # 3. the merged series past the position, through the last final step
    stepped = merged.step >= 0
    ahead = stepped & (merged.step > cursor.step_mark)
    ready = ahead & (merged.step <= watermark)
    _add_steps(plan, name, merged.take(np.flatnonzero(ready)))
    plan.held = int(np.count_nonzero(ahead & ~ready))
    if np.any(ready):
        new.step_mark = int(merged.step[ready].max())
    new.read_mark = max(cursor.read_mark, decoded[-1][0])
    # chunk_mark: past every leading chunk whose steps are all sent now
    for chunk_id, _, stats in decoded:
        steps = stats.step[stats.step >= 0]
        if len(steps) and int(steps.max()) > new.step_mark:
            break
        new.chunk_mark = chunk_id
    return plan


def _add_steps(plan: MetricPlan, name: str, stats: _aggregate.StepStats) -> None:
    if not len(stats):
        return
    with np.errstate(all="ignore"):
        means = stats.sum / stats.count
    for step, value, ts, count in zip(
        stats.step.tolist(),
        means.tolist(),
        stats.last_ts.tolist(),
        stats.count.tolist(),
        strict=True,
    ):
        plan.points.append(_point(name, value, math.floor(ts * 1000), int(step)))
        plan.counts.append(int(count))


def _point(name: str, value: float, ms: int, step: int) -> dict[str, Any]:
    return {"key": name, "value": wire_value(float(value)), "timestamp": ms, "step": step}


def _watermark(store: LocalStore, metric_id: int, open_workers: set[str]) -> float:
    """The last final step: one before the lowest latest step of the open workers.

    An open worker that has no step of this metric yet holds it too, until it has written
    something after the metric's newest chunk without it (then it does not log this metric,
    for now): a worker that starts late must not miss the merge of the first steps.
    """
    if not open_workers:
        return math.inf
    rows = store.query(
        "SELECT worker, max(last_step), max(id) FROM chunks WHERE metric_id = ? GROUP BY worker",
        (metric_id,),
    )
    latest = {str(w): int(step) for w, step, _ in rows if step is not None and int(step) >= 0}
    newest = max((int(i) for _, _, i in rows), default=0)
    others = [w for w in open_workers if w not in latest]
    bound = min((latest[w] - 1 for w in open_workers if w in latest), default=math.inf)
    if others:
        written = dict(
            store.query(
                "SELECT c.worker, max(c.id) FROM chunks c JOIN metrics m ON m.id = c.metric_id "
                "WHERE m.run_id = (SELECT run_id FROM metrics WHERE id = ?) GROUP BY c.worker",
                (metric_id,),
            )
        )
        if any(int(written.get(w) or 0) < newest for w in others):
            return -1  # wait for that worker's first write
    return bound


def batches(points: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """``[start, end)`` slices of at most 1,000 points and about 900 KB each."""
    out: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, point in enumerate(points):
        cost = len(point["key"].encode()) + 80
        if i > start and (i - start >= MAX_BATCH or size + cost > MAX_BYTES):
            out.append((start, i))
            start, size = i, 0
        size += cost
    if start < len(points):
        out.append((start, len(points)))
    return out

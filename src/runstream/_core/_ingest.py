"""The in-memory side of a run: what ``log_*`` appends to and the flusher drains.

The hot path (:meth:`runstream.Run.log_metric`) does one dict lookup and one
``list += (step, value)`` per point: a single C call, so it is atomic under the GIL (and
under the per-object locks of free-threaded builds) and needs no lock even when several
threads log into one run. Each metric has its own flat list, which turns into numpy arrays
in one bulk conversion when drained.

The consumer side (the flusher's tick, or the rare compaction) takes a lock, reads the
first ``n`` items and deletes exactly those with ``del buf[:n]``, so points appended
meanwhile are neither lost nor read twice.

Points logged without a timestamp are stamped when the flusher's tick drains them: a
timestamp within one tick (``tick`` seconds, 200 ms by default) of the call, instead of a
clock read on the hot path. SageMaker keeps whole seconds anyway.
"""

from __future__ import annotations

import logging
import numbers
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _aggregate, _names
from ._batch import ArtifactWrite, Batch, ParameterWrite
from ._tensors import DeviceValues, capture

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ._aggregate import StepStats
    from ._records import Artifact, ParameterValue
    from ._tensors import Captured, DeviceEntry

__all__ = ("Ingest", "PendingFile")

MAX_METRIC_NAME_LEN = 255
_log = logging.getLogger("runstream")


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A ``log_file`` call waiting to be copied into the store (or uploaded)."""

    path: str
    name: str
    media_type: str | None
    direction: str


class Ingest:
    """Buffers of one run in one process, and the counters that account for every point.

    :param capacity: points a metric may hold before the producer compacts it (bounded
        memory without ever dropping a point or blocking).
    """

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        # Per metric: a flat list [step, value, step, value, ...]; -1 means "no step".
        self.lists: dict[str, list[float]] = {}
        # (name, value, step, timestamp) for the rare calls that pass a timestamp.
        self.stamped: list[tuple[str, float, int, float]] = []
        self.parameters: list[tuple[str, ParameterValue, float]] = []
        self.artifacts: list[tuple[str, str, Artifact, float]] = []
        self.files: list[PendingFile] = []
        self._pending: dict[str, list[StepStats]] = {}
        self._pending_points = 0
        self._lock = threading.Lock()
        self._parameters_held = 0  # taken into a batch the store has not settled yet
        self._nonfinite_warned = False
        # Per metric, the last microsecond a point without a step was keyed at: the next
        # drain's such points come after it, one key per call (see _aggregate.time_keys).
        self._time_keys: dict[str, int] = {}
        self.compactions = 0
        self.drained_points = 0
        # Framework tensors on a device, between the call and ``lists`` (see _tensors).
        self.device: DeviceValues | None = None

    def register(self, name: object) -> list[float]:
        """First use of a metric name: validate it and create its list."""
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_METRIC_NAME_LEN:
            raise ValueError(
                f"metric name {name!r} must be a string of 1 to {MAX_METRIC_NAME_LEN} "
                "characters (the service's MetricName rule)"
            )
        return self.lists.setdefault(name, [])

    def warn_nonfinite(self, name: str, value: float) -> None:
        """Warn once per run: NaN/inf are kept (the official SDK drops them silently)."""
        if not self._nonfinite_warned:
            self._nonfinite_warned = True
            warnings.warn(
                f"metric {name!r} got {value}; runstream keeps NaN and infinite values in the "
                "local store (a diverged run must stay visible). Warned once per run.",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- device tensors (the slow path of log_metric) --------------------------------------

    def metric_value(
        self, name: str, value: object, step: object, timestamp: object
    ) -> float | None:
        """A metric value that is not a ``float``: the number, or ``None`` for a device
        tensor, which is deferred and reaches ``lists`` once copied off the device."""
        if not isinstance(value, numbers.Real):
            captured = capture(value)
            if captured is not None:
                self._defer(name, captured, step, timestamp)
                return None
        return _names.coerce_metric_value(value)

    def prepare_value(self, value: object) -> float | Captured:
        """A metric value checked but not logged yet: the number, or a captured device
        tensor for :meth:`defer` (``log_metrics`` checks every value before logging any)."""
        if not isinstance(value, numbers.Real):
            captured = capture(value)
            if captured is not None:
                return captured
        return _names.coerce_metric_value(value)

    def defer(self, name: str, captured: Captured, step: object, timestamp: object) -> None:
        """Log a captured device tensor: it reaches ``lists`` once copied off the device."""
        self._defer(name, captured, step, timestamp)

    def _defer(self, name: str, captured: Captured, step: object, timestamp: object) -> None:
        checked = -1 if step is None else _names.check_step(step)
        stamp = None if timestamp is None else _names.coerce_timestamp(timestamp)
        if self.device is None:
            self.device = DeviceValues()
        self.device.add(name, captured, checked, stamp)

    @property
    def device_pending(self) -> int:
        """Device values logged and not yet copied off the device."""
        return 0 if self.device is None else self.device.pending

    @property
    def device_lost(self) -> int:
        return 0 if self.device is None else self.device.lost

    def _deliver(self, entries: list[DeviceEntry], values: NDArray[np.float64]) -> None:
        for entry, value in zip(entries, values.tolist(), strict=True):
            if value - value and not self._nonfinite_warned:
                # The flusher's thread: a log record, not a warning the caller could see.
                self._nonfinite_warned = True
                _log.warning("runstream: metric %r got %s; kept (warned once)", entry.name, value)
            if entry.timestamp is None:
                self.lists.setdefault(entry.name, []).extend((entry.step, value))
            else:
                self.stamped.append((entry.name, value, entry.step, entry.timestamp))

    # -- consumer side --------------------------------------------------------------------

    def buffered_points(self) -> int:
        lists = sum(len(buf) for buf in self.lists.values()) // 2
        return lists + len(self.stamped) + self.device_pending

    @property
    def pending_points(self) -> int:
        return self._pending_points

    def logged_points(self) -> int:
        """Every point ever logged: drained, still buffered, or a device value lost. Read
        under the drain lock, so a point moving from its buffer to the drained count is
        counted once."""
        with self._lock:
            return self.drained_points + self.buffered_points() + self.device_lost

    def compact(self, name: str) -> None:
        """Called by the producer when a metric's list is over capacity: aggregate it now."""
        with self._lock:
            self.compactions += 1
            self._drain_metric(name, self.lists[name], time.time())
            # The flusher may have drained and taken this metric since the producer saw it
            # over capacity: then there is nothing (or one part) to compact.
            pending = self._pending.get(name, [])
            if len(pending) > 1:
                self._pending[name] = [_aggregate.combine(pending)]

    def drain(self, now: float | None = None) -> int:
        """Move every buffered point into numpy step statistics stamped ``now``."""
        if self.device is not None:
            self.device.poll(self._deliver)  # copies that landed join this drain
        moved = 0
        with self._lock:
            # Stamped under the lock: a compaction that got in first stamped earlier points
            # earlier, so "last" (ordered by timestamp) stays the last logged.
            now = time.time() if now is None else now
            for name, buf in list(self.lists.items()):
                if buf:
                    moved += self._drain_metric(name, buf, now)
            if self.stamped:
                moved += self._drain_stamped()
        return moved

    def _drain_metric(self, name: str, buf: list[float], now: float) -> int:
        n = len(buf) & ~1  # whole (step, value) pairs; appends are atomic, so n is even
        if not n:
            return 0
        flat = np.fromiter(buf, dtype=np.float64, count=n)
        del buf[:n]
        steps = flat[0::2].astype(np.int64)
        timestamps = np.full(len(steps), now)
        after = self._time_keys.get(name, -1)
        last = _aggregate.time_keys(steps, timestamps, after)
        if last != after:
            self._time_keys[name] = last
        self._add(name, _aggregate.from_points(steps, flat[1::2].copy(), timestamps))
        return n // 2

    def _drain_stamped(self) -> int:
        n = len(self.stamped)
        taken = self.stamped[:n]
        del self.stamped[:n]
        by_name: dict[str, list[tuple[float, int, float]]] = {}
        for name, value, step, ts in taken:
            by_name.setdefault(name, []).append((value, step, ts))
        for name, points in by_name.items():
            arr = np.array(points, dtype=np.float64)
            order = np.argsort(arr[:, 2], kind="stable")
            steps = arr[order, 1].astype(np.int64)
            timestamps = arr[order, 2].copy()
            _aggregate.time_keys(steps, timestamps)
            self._add(name, _aggregate.from_points(steps, arr[order, 0].copy(), timestamps))
        return n

    def _add(self, name: str, stats: StepStats) -> None:
        self._pending.setdefault(name, []).append(stats)
        points = stats.points
        self._pending_points += points
        self.drained_points += points

    def take_batch(self, run_id: int, worker: str) -> Batch:
        """Everything drained so far, aggregated per step, ready for one store write."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._pending_points = 0
            params = self.parameters[: len(self.parameters)]
            del self.parameters[: len(params)]
            self._parameters_held += len(params)
            arts = self.artifacts[: len(self.artifacts)]
            del self.artifacts[: len(arts)]
        return Batch(
            run_id=run_id,
            worker=worker,
            metrics={name: _aggregate.combine(parts) for name, parts in pending.items()},
            parameters=[ParameterWrite(n, v, ts) for n, v, ts in params],
            artifacts=[ArtifactWrite(d, n, a, ts) for d, n, a, ts in arts],
        )

    @property
    def parameters_pending(self) -> int:
        """Parameters logged and not yet settled (written, spilled or set aside): those
        still in the list and those taken into a batch, read together under the lock."""
        with self._lock:
            return len(self.parameters) + self._parameters_held

    def settle_parameters(self, count: int) -> None:
        """A batch holding ``count`` parameters was written, spilled or set aside."""
        with self._lock:
            self._parameters_held -= count

    def take_files(self) -> list[PendingFile]:
        with self._lock:
            files = self.files[: len(self.files)]
            del self.files[: len(files)]
        return files

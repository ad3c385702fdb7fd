"""The timed loops.

- :func:`time_calls`: the bare loop. ``perf_counter_ns`` is read before and after every
  logging call; the timer's own cost (:func:`timer_cost_ns`) is reported, not subtracted.
- :func:`training_slowdown`: a simulated training step (a fixed float32 matmul; BLAS
  single-threaded by the caller's environment) run without logging, with logging, then
  without again, all in one process; the slowdown is the logged loop against the mean of
  the two baselines, and their disagreement is the noise.

Both stop early at a deadline (checked between steps, outside the timed calls), so a slow
tracker logs fewer steps instead of taking the whole run; the caller reports the steps done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from ._workload import Workload

__all__ = (
    "CallStyle",
    "CallTimes",
    "Slowdown",
    "matmul_step",
    "percentile_us",
    "time_calls",
    "timer_cost_ns",
    "training_slowdown",
)

# How a tracker's logging call takes a point: (name, value, step) positionally, with
# ``step=`` as a keyword, or a whole step as one mapping with ``step=``.
CallStyle = Literal["pos", "kw", "dict"]
Log = Callable[..., object]
_clock = time.perf_counter_ns


@dataclass(frozen=True)
class CallTimes:
    """The bare loop: one duration per call, and the whole loop's wall time."""

    steps: int
    points: int
    durations_ns: list[int]
    loop_ns: int


@dataclass(frozen=True)
class Slowdown:
    """The simulated training loop; times are seconds per step."""

    steps: int
    baseline_before: float
    logged: float
    baseline_after: float

    @property
    def percent(self) -> float:
        return 100.0 * (self.logged / self.baseline - 1.0)

    @property
    def baseline(self) -> float:
        return (self.baseline_before + self.baseline_after) / 2

    @property
    def noise_percent(self) -> float:
        """How far the two baselines disagree: differences below this are noise."""
        return 100.0 * abs(self.baseline_before - self.baseline_after) / self.baseline


def timer_cost_ns(repeat: int = 10_000) -> int:
    """The median cost of one ``perf_counter_ns`` pair, included in every per-call time."""
    pairs = []
    for _ in range(repeat):
        start = _clock()
        pairs.append(_clock() - start)
    pairs.sort()
    return pairs[len(pairs) // 2]


def percentile_us(durations_ns: list[int], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation) in microseconds."""
    if not durations_ns:
        raise ValueError("no durations to summarize")
    return float(np.percentile(np.asarray(durations_ns, dtype=np.int64), q)) / 1000.0


def time_calls(log: Log, style: CallStyle, workload: Workload, deadline_ns: int) -> CallTimes:
    """Call ``log`` for every point (or step, for ``dict``), timing each call."""
    calls = workload.steps if style == "dict" else workload.points()
    durations = [0] * calls
    j = 0
    steps = 0
    start = _clock()
    for step in range(workload.steps):
        if style == "dict":
            values = workload.dicts[step]
            t0 = _clock()
            log(values, step=step)
            durations[j] = _clock() - t0
            j += 1
        elif style == "kw":
            for name, value in workload.rows[step]:
                t0 = _clock()
                log(name, value, step=step)
                durations[j] = _clock() - t0
                j += 1
        else:
            for name, value in workload.rows[step]:
                t0 = _clock()
                log(name, value, step)
                durations[j] = _clock() - t0
                j += 1
        steps += 1
        if _clock() > deadline_ns:
            break
    loop_ns = _clock() - start
    del durations[j:]
    return CallTimes(steps, workload.points(steps), durations, loop_ns)


def matmul_step(size: int) -> Callable[[], object]:
    """A fixed unit of numeric work: one ``size``x``size`` float32 matmul into a buffer."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)

    def step() -> object:
        return np.matmul(a, b, out=out)

    return step


def _baseline(work: Callable[[], object], workload: Workload, steps: int) -> float:
    """The training loop with the logging calls left out: seconds per step."""
    rows = workload.rows
    start = _clock()
    for step in range(steps):
        work()
        for _name, _value in rows[step]:
            pass
    return (_clock() - start) / 1e9 / steps


def _logged(
    log: Log, style: CallStyle, work: Callable[[], object], workload: Workload, deadline_ns: int
) -> tuple[int, float]:
    rows, dicts = workload.rows, workload.dicts
    steps = 0
    start = _clock()
    for step in range(workload.steps):
        work()
        if style == "dict":
            log(dicts[step], step=step)
        elif style == "kw":
            for name, value in rows[step]:
                log(name, value, step=step)
        else:
            for name, value in rows[step]:
                log(name, value, step)
        steps += 1
        # Reading the clock costs ~60 ns against a ~200 µs step: not worth a special case.
        if _clock() > deadline_ns:
            break
    return steps, (_clock() - start) / 1e9 / steps


def training_slowdown(
    log: Log,
    style: CallStyle,
    workload: Workload,
    work: Callable[[], object],
    deadline_ns: int,
    close: Callable[[], object],
) -> tuple[Slowdown, float]:
    """Baseline, logged loop, ``close()``, baseline again; returns the close time too."""
    before = _baseline(work, workload, workload.steps)
    steps, logged = _logged(log, style, work, workload, deadline_ns)
    start = _clock()
    close()
    close_s = (_clock() - start) / 1e9
    after = _baseline(work, workload, steps)
    return Slowdown(steps, before, logged, after), close_s

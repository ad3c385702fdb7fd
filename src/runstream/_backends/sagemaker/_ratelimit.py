"""Token buckets per API, shared by every sender in the process, and back-off.

AWS limits request rates per account and API, so all runs of a process draw from one
bucket per API. The rate adapts: it halves on throttling and creeps back up on success
(additive increase, multiplicative decrease), so a fleet of processes settles near what
the service grants instead of hammering it. The buckets are thread-safe (each run's
sender lives in its own flusher thread) and never block a thread: callers ``await``.
"""

from __future__ import annotations

import os
import threading
import time

import anyio

__all__ = ("TokenBucket", "bucket", "reset_buckets")

ENV_RATE = "RUNSTREAM_SAGEMAKER_RATE"

# Calls per second per API. BatchPutMetrics carries 10 data per call; the control plane
# (create, update, search) is throttled far lower by AWS (the official tooling sleeps
# 1.2 s between such calls).
_DEFAULT_RATES = {"BatchPutMetrics": 10.0, "control": 10.0, "s3": 50.0}
_BURSTS = {"BatchPutMetrics": 10.0, "control": 20.0, "s3": 50.0}


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`take` waits for one."""

    def __init__(self, rate: float, burst: float, *, floor: float = 0.2) -> None:
        if not rate > 0:
            raise ValueError(f"a token bucket's rate must be positive, got {rate!r}")
        self.ceiling = rate
        self.rate = rate
        self.burst = burst
        self.floor = min(floor, rate)
        self._tokens = burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token now if there is one (0.0), else the seconds until there is."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    async def take(self) -> None:
        while (wait := self._reserve()) > 0:
            await anyio.sleep(wait)

    def throttled(self) -> None:
        with self._lock:
            self.rate = max(self.floor, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        if self.rate < self.ceiling:
            with self._lock:
                self.rate = min(self.ceiling, self.rate + self.ceiling / 20)


_buckets: dict[str, TokenBucket] = {}
_buckets_lock = threading.Lock()


def bucket(api: str) -> TokenBucket:
    """The process-wide bucket of ``api`` (``BatchPutMetrics``, ``control`` or ``s3``)."""
    with _buckets_lock:
        found = _buckets.get(api)
        if found is None:
            rate = _DEFAULT_RATES[api]
            if api == "BatchPutMetrics" and os.environ.get(ENV_RATE):
                rate = _rate_from_environment(os.environ[ENV_RATE])
            burst = max(_BURSTS[api], rate) if api == "BatchPutMetrics" else _BURSTS[api]
            found = _buckets[api] = TokenBucket(rate, burst=burst)
        return found


def reset_buckets() -> None:
    """Forget the buckets (tests, and a changed ``RUNSTREAM_SAGEMAKER_RATE``)."""
    with _buckets_lock:
        _buckets.clear()


def _rate_from_environment(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not rate > 0:
        raise ValueError(
            f"{ENV_RATE}={text!r}: must be a positive number of BatchPutMetrics calls per second"
        )
    return rate

"""Exponential back-off: the one implementation the flusher and the remote senders share."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import anyio

__all__ = ("Backoff",)


@dataclass(slots=True)
class Backoff:
    """Exponential back-off, reset by a success.

    The n-th consecutive failure waits ``min(cap, base * 2**(n-1))``, scaled by a random
    factor in [0.5, 1] ("equal jitter": retries of many processes spread out, yet each
    waits at least half the nominal delay) unless ``jitter`` is off, as for a schedule the
    official SDK fixes (1, 2, 4 s).
    """

    base: float = 0.5
    cap: float = 30.0
    jitter: bool = True
    failures: int = 0
    not_before: float = 0.0

    def failed(self) -> float:
        """Count a failure; returns the delay before the next attempt."""
        self.failures += 1
        delay = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        if self.jitter:
            delay *= random.uniform(0.5, 1.0)
        self.not_before = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.not_before = 0.0

    @property
    def ready(self) -> bool:
        return time.monotonic() >= self.not_before

    async def wait(self) -> None:
        delay = self.not_before - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)

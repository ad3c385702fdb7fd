"""One lifecycle for every run: its flusher and senders in a thread and loop of their own.

``with`` and ``async with`` differ only in how the caller waits: a ``with`` block blocks,
an ``async with`` block awaits the same blocking steps in a worker thread. The flusher
never runs in the caller's event loop, so a CPU-bound loop that never awaits still has its
points written every ``flush_interval``, and a slow store never stalls the caller's loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from .._backends import Sender
    from .._flush._flusher import Flusher

__all__ = ("Background",)


class Background:
    """Serves one run's flusher and its backend senders until the run closes."""

    def __init__(self, flusher: Flusher, senders: Sequence[Sender], name: str) -> None:
        self.flusher = flusher
        self.senders = tuple(senders)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        """Start serving; returns once the flusher's loop runs (blocking)."""
        self._thread.start()
        self._ready.wait()

    def _serve(self) -> None:
        async def main() -> None:
            async with anyio.create_task_group() as tasks:
                for sender in self.senders:
                    tasks.start_soon(sender.run)
                await tasks.start(self.flusher.serve)
                self._ready.set()

        try:
            anyio.run(main)
        finally:
            self.flusher.mark_stopped()  # whatever happened, release every waiter
            self._ready.set()

    def drain(self, timeout: float) -> None:
        """Ask the flusher for its last write and wait for it, at most ``timeout`` seconds;
        past that it stops retrying, and what is unwritten stays in the counters."""
        generation = self.flusher.request_close()
        if not self.flusher.wait_sync(generation, timeout):
            self.flusher.abandon()

    def stop(self, timeout: float) -> None:
        """After :meth:`drain` and the run's final status: let the senders send that too,
        then wait for the thread (its last attempt is bounded by the store's busy
        timeout, then it spills)."""
        for sender in self.senders:
            sender.close()
        self._thread.join(timeout=timeout)

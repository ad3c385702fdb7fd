"""A blocking call made in a thread of its own, for the backends' checks at ``Run(...)``.

The caller may be inside an event loop already (``async with Run(...)``, a notebook), where
``anyio.run`` would refuse to start another: a fresh thread has none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ("in_thread",)

T = TypeVar("T")


def in_thread(fn: Callable[[], T], name: str) -> T:
    """``fn()`` in a new thread named ``name``: its result, or its exception re-raised."""
    box: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result

"""Finding the run from the other ranks of a ``torch.distributed`` job.

Ranks are separate processes started by a launcher, not children of rank 0, so the
environment a run exports does not reach them. When ``torch.distributed`` is initialized,
the job already has a key-value store shared by every rank (the c10d store behind the
process group): entering a run publishes its identity there, and ``load_run()`` on another
rank reads it. Setting and reading a key is not a collective, so no rank can deadlock on
it. torch is never imported here: only a job that already uses it takes this path.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

__all__ = ("lookup_run", "publish_run")

_KEY = "runstream/current-run"


def _job_store() -> Any | None:
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    try:
        return dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError):  # a private API: degrade, don't break the job
        return None


def publish_run(experiment: str | None, run: str, store_path: str) -> bool:
    """Publish the run's identity to the job's store; False when there is no such job."""
    store = _job_store()
    if store is None:
        return False
    store.set(_KEY, json.dumps([experiment, run, store_path]))
    return True


def lookup_run(timeout: float) -> tuple[str | None, str, str] | None:
    """The identity another rank published, waiting up to ``timeout`` seconds for it."""
    store = _job_store()
    if store is None:
        return None
    try:
        store.wait([_KEY], timedelta(seconds=timeout))
    except RuntimeError:  # timed out: nobody entered a run
        return None
    experiment, run, path = json.loads(store.get(_KEY))
    return experiment, run, path

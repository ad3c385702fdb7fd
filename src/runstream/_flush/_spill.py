"""The last resort for data the store would not take before a run closed.

When closing gives up (the store stayed locked or unwritable past ``close_timeout``), the
unwritten batch is saved to ``<store>/spill/`` instead of being lost with the process, and
the next run that opens the store writes it in. The file is written under a temporary name
and renamed, so a reader never sees half a batch.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import msgspec

from .._core import _aggregate
from .._core._batch import ArtifactWrite, Batch, ParameterWrite
from .._core._records import Artifact, ParameterValue
from .._store import LocalStore, is_transient

__all__ = ("replay_spills", "spill_batch")

_log = logging.getLogger("runstream")
_SUFFIX = ".batch"
_REJECTED = ".rejected"


class _Spilled(msgspec.Struct, frozen=True):
    run_id: int
    worker: str
    metrics: dict[str, bytes]
    parameters: list[tuple[str, ParameterValue, float]]
    artifacts: list[tuple[str, str, Artifact, float]]


def spill_batch(batch: Batch, store_path: Path, *, rejected: bool = False) -> Path:
    """Write ``batch`` durably beside the store; returns the file.

    A ``rejected`` batch (one the store refused outright) is kept under another suffix,
    for inspection, and never replayed automatically.
    """
    folder = store_path / "spill"
    folder.mkdir(parents=True, exist_ok=True)
    record = _Spilled(
        run_id=batch.run_id,
        worker=batch.worker,
        metrics={name: _aggregate.encode(stats) for name, stats in batch.metrics.items()},
        parameters=[(p.name, p.value, p.ts) for p in batch.parameters],
        artifacts=[(a.direction, a.name, a.artifact, a.ts) for a in batch.artifacts],
    )
    target = folder / f"{uuid.uuid4().hex}{_REJECTED if rejected else _SUFFIX}"
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as f:
        f.write(msgspec.msgpack.encode(record))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, target)
    return target


def replay_spills(store: LocalStore, only: list[Path] | None = None) -> int:
    """Write spilled batches into the store, oldest first; returns the points replayed.

    Each file is claimed by renaming it first, so two processes never write one twice. A
    batch that cannot be written now goes back for the next attempt (and the error is
    raised); one the store refuses outright is set aside as ``.rejected`` and logged.
    """
    folder = store.path / "spill"
    if only is None:
        if not folder.is_dir():
            return 0
        only = sorted(folder.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    replayed = 0
    decoder = msgspec.msgpack.Decoder(_Spilled)
    for path in only:
        claimed = path.with_name(f"{path.name}.{os.getpid()}.claimed")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another process took it
            continue
        record = decoder.decode(claimed.read_bytes())
        batch = Batch(
            run_id=record.run_id,
            worker=record.worker,
            metrics={name: _aggregate.decode(blob) for name, blob in record.metrics.items()},
            parameters=[ParameterWrite(n, v, ts) for n, v, ts in record.parameters],
            artifacts=[ArtifactWrite(d, n, a, ts) for d, n, a, ts in record.artifacts],
        )
        try:
            store.write(batch)
        except Exception as exc:
            if is_transient(exc):  # try again later; the caller hears about it
                os.rename(claimed, path)
                raise
            os.rename(claimed, path.with_suffix(_REJECTED))
            _log.error("runstream: the store refuses the spilled batch %s: %s", path, exc)
            continue
        claimed.unlink()
        replayed += batch.points
        _log.warning(
            "runstream: wrote %d spilled points from %s into the store", batch.points, path
        )
    return replayed

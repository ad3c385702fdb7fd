"""The last resort for data the store would not take before a run closed.

When closing gives up (the store stayed locked or unwritable past ``close_timeout``), or a
long outage would grow memory past its bound, the unwritten batch is saved to
``<store>/spill/`` instead of being lost with the process, and the next run that opens the
store writes it in. When the store's own disk cannot take it (full, read-only), it goes to
the fallback folder instead: ``$RUNSTREAM_SPILL_DIR``, else ``<tmp>/runstream-spill``, in a
sub-folder named after the store (see :func:`fallback_dir`); replays look in both. A file is
written under a temporary name and renamed, so a reader never sees half a batch.

A spill file that cannot be read back (truncated, damaged, from an incompatible version)
is renamed ``.quarantined`` and counted: it never stops a run from opening. Items of a
spilled batch that the store refuses outright are set aside as ``.rejected``; the rest of the
batch is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from .._core import _aggregate
from .._core._batch import ArtifactWrite, Batch, ParameterWrite
from .._core._records import Artifact, ParameterValue
from .._store import LocalStore, is_transient

__all__ = ("Replayed", "fallback_dir", "replay_spills", "spill_batch", "spill_dirs")

_log = logging.getLogger("runstream")
_SUFFIX = ".batch"
_REJECTED = ".rejected"
_QUARANTINED = ".quarantined"


class _Spilled(msgspec.Struct, frozen=True):
    run_id: int
    worker: str
    metrics: dict[str, bytes]
    parameters: list[tuple[str, ParameterValue, float]]
    artifacts: list[tuple[str, str, Artifact, float]]


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a replay did: points written in, points set aside, files quarantined."""

    points: int = 0
    rejected: int = 0
    quarantined: int = 0
    elsewhere: int = 0  # files another process claimed first (and writes)
    respilled: int = 0  # points whose items failed transiently: in a new spill file


def fallback_dir(store_path: Path) -> Path:
    """Where spills go when the store's disk cannot take them: ``$RUNSTREAM_SPILL_DIR``,
    else ``<tmp>/runstream-spill``, then a folder per store (a hash of its path)."""
    root = os.environ.get("RUNSTREAM_SPILL_DIR") or Path(tempfile.gettempdir(), "runstream-spill")
    digest = hashlib.sha256(str(Path(store_path).absolute()).encode()).hexdigest()[:16]
    return Path(root) / digest


def spill_dirs(store_path: Path) -> list[Path]:
    """Every folder a store's spills may be in: its own, then the fallback."""
    return [store_path / "spill", fallback_dir(store_path)]


def spill_batch(batch: Batch, store_path: Path, *, rejected: bool = False) -> Path:
    """Write ``batch`` durably beside the store, else in the fallback folder; returns the
    file. Raises the fallback's ``OSError`` when neither can take it.

    A ``rejected`` batch (one the store refused outright) is kept under another suffix,
    for inspection, and never replayed automatically.
    """
    record = _Spilled(
        run_id=batch.run_id,
        worker=batch.worker,
        metrics={name: _aggregate.encode(stats) for name, stats in batch.metrics.items()},
        parameters=[(p.name, p.value, p.ts) for p in batch.parameters],
        artifacts=[(a.direction, a.name, a.artifact, a.ts) for a in batch.artifacts],
    )
    data = msgspec.msgpack.encode(record)
    name = f"{uuid.uuid4().hex}{_REJECTED if rejected else _SUFFIX}"
    primary, fallback = spill_dirs(store_path)
    try:
        return _write_durably(primary / name, data)
    except OSError as exc:
        _log.warning(
            "runstream: cannot spill to %s (%s); using the fallback folder %s",
            primary,
            exc,
            fallback,
        )
        return _write_durably(fallback / name, data)


def _write_durably(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _pending_spills(store_path: Path) -> list[Path]:
    found: list[Path] = []
    for folder in spill_dirs(store_path):
        if folder.is_dir():
            found += folder.glob(f"*{_SUFFIX}")
    return sorted(found, key=_mtime)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def replay_spills(store: LocalStore, only: list[Path] | None = None) -> Replayed:
    """Write spilled batches into the store, oldest first.

    Each file is claimed by renaming it first, so two processes never write one twice. A
    batch that cannot be written now goes back for the next attempt (and the error is
    raised). Items the store refuses outright are set aside as ``.rejected``; a file that
    cannot be decoded is quarantined. Neither stops the replay.
    """
    if only is None:
        only = _pending_spills(store.path)
    points = rejected = quarantined = elsewhere = respilled = 0
    decoder = msgspec.msgpack.Decoder(_Spilled)
    for path in only:
        claimed = path.with_name(f"{path.name}.{os.getpid()}.claimed")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another process took it
            elsewhere += 1
            continue
        try:
            record = decoder.decode(claimed.read_bytes())
            batch = Batch(
                run_id=record.run_id,
                worker=record.worker,
                metrics={name: _aggregate.decode(blob) for name, blob in record.metrics.items()},
                parameters=[ParameterWrite(n, v, ts) for n, v, ts in record.parameters],
                artifacts=[ArtifactWrite(d, n, a, ts) for d, n, a, ts in record.artifacts],
            )
        except Exception as exc:  # truncated, damaged, or not a spill file at all
            quarantine = path.with_suffix(_QUARANTINED)
            os.rename(claimed, quarantine)
            quarantined += 1
            _log.error(
                "runstream: the spilled batch %s cannot be read (%s); quarantined as %s",
                path,
                exc,
                quarantine,
            )
            continue
        try:
            store.write(batch)
        except Exception as exc:
            if is_transient(exc):  # try again later; the caller hears about it
                os.rename(claimed, path)
                raise
            written, refused, again = _write_items(store, batch, path)
            points += written
            rejected += refused
            respilled += again
            claimed.unlink()
            continue
        claimed.unlink()
        points += batch.points
        _log.warning(
            "runstream: wrote %d spilled points from %s into the store", batch.points, path
        )
    return Replayed(points, rejected, quarantined, elsewhere, respilled)


def _write_items(store: LocalStore, batch: Batch, path: Path) -> tuple[int, int, int]:
    """The store refuses a spilled batch: write its items one by one, set aside (as
    ``.rejected``) only those it refuses. Returns the points written, set aside, and
    spilled again (items the store failed to take transiently meanwhile)."""
    written = 0
    refused: Batch | None = None
    retry: Batch | None = None
    for item in batch.split():
        try:
            store.write(item)
        except Exception as exc:
            if is_transient(exc):  # the store failed meanwhile: this item waits in a spill
                if retry is None:
                    retry = item
                else:
                    retry.absorb(item)
                continue
            _log.error(
                "runstream: the store refuses %s of the spilled batch %s: %s",
                item.describe(),
                path,
                exc,
            )
            if refused is None:
                refused = item
            else:
                refused.absorb(item)
            continue
        written += item.points
    again = 0
    if retry is not None:
        spill_batch(retry, store.path)
        again = retry.points
    if refused is None:
        return written, 0, again
    try:
        kept = spill_batch(refused, store.path, rejected=True)
    except OSError as exc:
        _log.error("runstream: %d refused points could not be set aside: %s", refused.points, exc)
    else:
        _log.error("runstream: %d refused points set aside in %s", refused.points, kept)
    return written, refused.points, again

"""A run's counters, read from its buffers and its flusher without stopping either."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._core._records import RunStats

if TYPE_CHECKING:
    from .._core._ingest import Ingest
    from .._core._records import SyncStatus
    from ._flusher import Flusher

__all__ = ("run_stats",)


def run_stats(ingest: Ingest, flusher: Flusher | None, sync: SyncStatus | None) -> RunStats:
    """What :attr:`runstream.Run.stats` reports; ``flusher`` is ``None`` before the run is
    entered, ``sync`` the remote backend's side, if any."""
    if flusher is None:
        buffered = ingest.buffered_points() + ingest.pending_points
        return RunStats(points_logged=buffered, points_written=0, points_pending=buffered)
    # Written and spilled first, then logged (consistent with drains): pending is never
    # negative, and a batch being written still counts as pending, never as nothing.
    written = flusher.points_written
    spilled = flusher.points_spilled + flusher.points_rejected
    dropped = ingest.device_lost  # device values no copy nor read could recover
    lost = flusher.points_lost  # what the store lost, or nothing could keep
    logged = ingest.logged_points()
    pending = logged - written - spilled - dropped - lost
    if sync is not None:  # plus what is not even in the store yet
        sync = msgspec.structs.replace(sync, points_pending=sync.points_pending + pending)
    return RunStats(
        points_logged=logged,
        points_written=written,
        points_pending=pending,
        points_spilled=flusher.points_spilled,
        points_rejected=flusher.points_rejected,
        points_dropped=dropped,
        points_lost=lost,
        parameters_pending=ingest.parameters_pending,
        files_pending=flusher.files_pending + len(ingest.files),
        files_written=flusher.files_written,
        files_failed=flusher.files_failed,
        spills_quarantined=flusher.spills_quarantined,
        flushes=flusher.flushes,
        write_errors=flusher.write_errors,
        compactions=ingest.compactions,
        last_error=flusher.last_error,
        sync=sync,
    )

"""The flush layer: what moves a run's buffers into the store, off the training thread.

The flusher (drain, aggregate, write, copy files), the spill files that hold what the
store could not take, content-addressed file copies, back-off, and the run's counters.
"""

__all__ = ()

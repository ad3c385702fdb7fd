"""The core layer, below everything else: names and their rules, the records the API
returns, step statistics and their merges, the hot path's buffers (``_ingest``), device
tensors, the batch a flush writes, the process environment, errors and the version.
It imports nothing of runstream's."""

__all__ = ()

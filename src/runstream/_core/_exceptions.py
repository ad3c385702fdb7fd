"""runstream's exceptions.

The hierarchy::

    RunstreamError(Exception)
    ├── StoreError                 the embedded store could not be read or written
    │   └── SchemaError            the store was written by a newer, incompatible runstream
    ├── RunNotFoundError(LookupError)   a run or experiment named by the caller does not exist
    ├── BackendError               a remote backend (SageMaker) refused the credentials or setup
    └── FlushTimeoutError(TimeoutError)  a flush with a timeout gave up while data was pending

Warnings: :class:`RunContinuedWarning` (a ``UserWarning``) when ``Run(...)`` continues a run
that already ended.

User mistakes raise the builtin the official ``sagemaker.experiments`` SDK raises
(``ValueError``, ``TypeError``, ``RuntimeError``) with the same messages, so code written
against it keeps working.
"""

from __future__ import annotations

__all__ = (
    "BackendError",
    "FlushTimeoutError",
    "RunContinuedWarning",
    "RunNotFoundError",
    "RunstreamError",
    "SchemaError",
    "StoreError",
)


class RunstreamError(Exception):
    """Base class of the errors runstream raises for its own reasons."""


class StoreError(RunstreamError):
    """Raised when the embedded store cannot be opened, read or written."""


class SchemaError(StoreError):
    """Raised when a store was created by a newer runstream whose schema this one cannot read."""


class RunNotFoundError(RunstreamError, LookupError):
    """Raised when a read names a run or experiment that is not in the store."""


class BackendError(RunstreamError):
    """Raised when a run starts (or ``runstream sync`` runs) with a remote backend that
    refuses it: missing or wrong AWS credentials, no region, an unusable entity. Raised
    early, before anything is logged; data already in the store stays there."""


class FlushTimeoutError(RunstreamError, TimeoutError):
    """Raised when an explicit flush timed out; carries what is still pending."""

    def __init__(self, message: str, *, pending_points: int, pending_files: int) -> None:
        super().__init__(message)
        self.pending_points = pending_points
        self.pending_files = pending_files


class RunContinuedWarning(UserWarning):
    """``Run(...)`` named a run that already ended: its new points merge into the old ones.

    Continuing on purpose (an evaluation after training) is what ``load_run`` is for; it
    does not warn.
    """

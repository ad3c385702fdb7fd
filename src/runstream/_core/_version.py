"""The installed distribution's version, read once from its metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ("VERSION",)

try:
    VERSION = version("runstream")
except PackageNotFoundError:  # imported from a source tree that was never installed
    VERSION = "0+unknown"

"""The ``runstream`` command line (the top face: it may import any layer below)."""

from ._main import main

__all__ = ("main",)

"""JSON for people's tools: NaN and the infinities kept apart.

JSON has no NaN or infinity, and the usual encoders turn both into ``null``, which loses
what matters about a diverged run (NaN, or a loss that overflowed to ``inf``?). runstream's
JSON (``runstream ... --json``, the dashboard's API, ``export`` as JSON lines) writes them
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, which ``float()`` in Python
and ``Number()`` in JavaScript read back as the numbers. ``null`` means no value.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

__all__ = ("dumps", "jsonable", "nonfinite_name")

_encoder = msgspec.json.Encoder()


def nonfinite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def jsonable(value: Any) -> Any:
    """``value`` as builtins (structs as dicts) with non-finite floats as strings."""
    return _walk(msgspec.to_builtins(value))


def _walk(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else nonfinite_name(value)
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(type(v) is float for v in value):
            # Series arrays: one pass to find out whether anything needs replacing.
            if all(map(math.isfinite, value)):
                return value
            return [v if math.isfinite(v) else nonfinite_name(v) for v in value]
        return [_walk(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Encode ``value`` as JSON, non-finite floats as strings (see the module doc)."""
    return _encoder.encode(jsonable(value))

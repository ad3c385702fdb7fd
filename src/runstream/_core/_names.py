"""Names and input validation, exactly as ``sagemaker.experiments`` does them.

Each rule quotes the official SDK's message so that code catching its errors keeps working
(see ``shared/research/sagemaker-sdk.md`` §3). Where runstream is stricter (a negative step,
a step past the service's 32-bit integer) the error is raised at the call instead of at
send time, and names the value and the rule.
"""

from __future__ import annotations

import binascii
import difflib
import math
import numbers
import os
import time
from datetime import datetime

__all__ = (
    "MAX_ARTIFACTS",
    "MAX_NAME_LEN",
    "MAX_STATUS_MESSAGE_LEN",
    "MAX_STEP",
    "TIMESTAMP_WINDOW",
    "check_step",
    "coerce_metric_value",
    "coerce_timestamp",
    "did_you_mean",
    "generate_run_name",
    "run_group_name",
    "trial_component_name",
    "validate_names",
)

#: ``int(MAX_NAME_LEN_IN_BACKEND / 2) - 1``: each of experiment and run name.
MAX_NAME_LEN = 59
#: Per-direction cap on a run's input or output artifacts (client-side, as the SDK).
MAX_ARTIFACTS = 30
MAX_STATUS_MESSAGE_LEN = 1024
#: BatchPutMetrics ``Step`` is a 32-bit service integer with minimum 0.
MAX_STEP = 2**31 - 1
#: Timestamps must lie in [now - 14 days, now + 2 hours] (the service's window).
TIMESTAMP_WINDOW = (1_209_600.0, 7_200.0)

_RUN_NAME_BASE = "sagemaker-run"
_TRIAL_NAME_TEMPLATE = "Default-Run-Group-{}"
_TRIAL_NAME_ROOM = 120 - len(_TRIAL_NAME_TEMPLATE)


def generate_run_name() -> str:
    """``sagemaker-run-<epoch seconds>-<4 hex>``, as ``unique_name_from_base`` makes it."""
    suffix = binascii.b2a_hex(os.urandom(2)).decode()
    return f"{_RUN_NAME_BASE}-{int(time.time())}-{suffix}"


def validate_names(experiment_name: str, run_name: str | None) -> tuple[str, str]:
    """Lowercase both names, generate a run name if needed, and enforce the 59-char rule."""
    if not isinstance(experiment_name, str) or not experiment_name:
        raise ValueError(f"experiment_name must be a non-empty string, got {experiment_name!r}")
    if run_name is not None and (not isinstance(run_name, str) or not run_name):
        raise ValueError(f"run_name must be a non-empty string or None, got {run_name!r}")
    experiment = experiment_name.lower()
    run = (run_name or generate_run_name()).lower()
    for label, name in (("run_name", run), ("experiment_name", experiment)):
        if len(name) > MAX_NAME_LEN:
            raise ValueError(
                f"The {label} (length: {len(name)}) must have length less than or equal to "
                f"{MAX_NAME_LEN}"
            )
    return experiment, run


def trial_component_name(experiment_name: str | None, run_name: str) -> str:
    """The run's trial-component name: ``<experiment>-<run>``, lowercased; an unassigned
    run's is its own name. The one place this name is built."""
    if experiment_name is None:
        return run_name.lower()
    return f"{experiment_name}-{run_name}".lower()


def run_group_name(experiment_name: str) -> str:
    """The run-group trial every run of an experiment belongs to."""
    return _TRIAL_NAME_TEMPLATE.format(experiment_name[:_TRIAL_NAME_ROOM])


def coerce_metric_value(value: object) -> float:
    """Turn a metric value into a float, or raise naming the value and the rule.

    Accepts what ``float()`` accepts in the official SDK's ``log_metric``: ints, floats,
    bools, numpy scalars and one-element arrays; a numeric string raises, as it should have.
    """
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            raise OverflowError(
                f"metric value {_number_text(value)} is too large for a 64-bit float (at most "
                "about 1.8e308): log a float, or the value's logarithm"
            ) from None
    item = getattr(value, "item", None)  # numpy 0-d/1-element arrays, framework scalars
    if callable(item):
        try:
            scalar = item()
        except (ValueError, RuntimeError) as exc:
            raise TypeError(
                f"metric value {value!r} is not a scalar: only one-element arrays can be logged"
            ) from exc
        return coerce_metric_value(scalar)
    error = ValueError if isinstance(value, str) else TypeError
    raise error(
        f"metric value {value!r} ({type(value).__name__}) is not a number: log_metric takes "
        "an int, a float or a numpy scalar"
    )


def _number_text(value: object) -> str:
    """A number for an error message: in full when short, else its start and its size."""
    if isinstance(value, int) and value.bit_length() > 10_000:  # str() refuses 4300+ digits
        return f"<an int of {value.bit_length()} bits>"
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


def check_step(step: object) -> int:
    """Validate a step: an ``int`` in ``[0, 2**31 - 1]`` (numpy integers accepted)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise ValueError(f"step must be int, got {step!r} ({type(step).__name__})")
    value = int(step)
    if not 0 <= value <= MAX_STEP:
        raise ValueError(
            f"step must be a non-negative int no larger than {MAX_STEP} (the service's "
            f"integer), got {value}"
        )
    return value


def coerce_timestamp(timestamp: object, now: float | None = None) -> float:
    """Turn a ``datetime`` (naive means local time) or epoch seconds into epoch seconds.

    Enforces the service's window with the official SDK's message.
    """
    if isinstance(timestamp, datetime):
        ts = timestamp.timestamp() if timestamp.tzinfo else timestamp.astimezone().timestamp()
    else:
        try:
            ts = float(timestamp)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"timestamp {timestamp!r} is neither a datetime nor epoch seconds"
            ) from exc
    now = time.time() if now is None else now
    before, after = TIMESTAMP_WINDOW
    if not math.isfinite(ts) or not now - before <= ts <= now + after:
        raise ValueError(
            f"Supplied timestamp {ts:f} is invalid. Timestamps must be between two weeks "
            "before and two hours from now."
        )
    return ts


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str:
    """``"; did you mean 'x'?"`` for a close candidate (case ignored), else what exists."""
    options = sorted(set(candidates))
    lowered = {c.lower(): c for c in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"
    if not options:
        return ""
    shown = ", ".join(repr(c) for c in options[:10])
    more = f" and {len(options) - 10} more" if len(options) > 10 else ""
    return f"; there are: {shown}{more}"

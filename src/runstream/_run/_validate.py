"""Call-time validation of what a run is given: everything the store cannot hold faithfully
is refused here, at the call, with an error that names the value and the rule.

Pure functions, no state: :class:`runstream.Run` calls them on its slow paths only (the first
sight of a metric name, a value that is not a ``float``, parameters, artifacts, files, its
own arguments). The hot path, a known metric name with a ``float`` value, never gets here.

What the store cannot hold, and is therefore refused:

- text SQLite cannot encode: a lone surrogate (``'\\ud800'``) in any name or value;
- an integer parameter outside SQLite's signed 64-bit integer (``2**70``,
  ``np.uint64(2**64 - 1)``): log it as a float or a string;
- a number too large for a 64-bit float (``10**400`` as a metric);
- a media type that is not ``type/subtype[; name=value]...`` (RFC 6838's shape): it ends up
  in an HTTP header of the dashboard, so nothing else may reach it.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .._backends import S3_UPLOAD_ARGS
from .._core import _names

if TYPE_CHECKING:
    from .._core._records import ParameterValue

__all__ = (
    "MAX_ARTIFACT_NAME_LEN",
    "MAX_MEDIA_TYPE_LEN",
    "MAX_PARAMETERS",
    "MAX_PARAMETER_NAME_LEN",
    "MAX_STRING_PARAMETER_LEN",
    "RunArguments",
    "check_artifact_name",
    "check_artifact_value",
    "check_capacity",
    "check_extra_args",
    "check_media_type",
    "check_metric_name",
    "check_optional_text",
    "check_parameter_name",
    "check_parameters",
    "check_run_arguments",
    "check_seconds",
    "check_store",
    "check_tags",
    "check_text",
    "check_worker",
    "is_media_type",
    "parameter_value",
)

MAX_PARAMETERS = 300
MAX_PARAMETER_NAME_LEN = 320
MAX_STRING_PARAMETER_LEN = 2500
MAX_ARTIFACT_NAME_LEN = 128
MAX_METRIC_NAME_LEN = 255
MAX_MEDIA_TYPE_LEN = 255
MAX_WORKER_LEN = 255
_INT64 = (-(2**63), 2**63 - 1)

# RFC 6838 section 4.2: restricted-name = 1*127 restricted-name-chars, starting with an
# alphanumeric. Parameters (RFC 9110): token "=" ( token / quoted-string ), with OWS around
# the ";". No control character (CR, LF, NUL...) can match.
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(
    rf"{_NAME}/{_NAME}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*",
    re.ASCII,
)


def check_text(value: str, what: str) -> str:
    """``value`` unchanged if SQLite can store it: UTF-8 encodable (no lone surrogate)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start : exc.end]
            raise ValueError(
                f"{what} {_short(value)} contains {bad!r} at position {exc.start}, a lone "
                "surrogate: names and values must be valid Unicode text (encodable as UTF-8)"
            ) from None
    return value


def _name(value: object, what: str, max_len: int, rule: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise ValueError(f"{what} {_short(value)} must be a string of 1 to {max_len} {rule}")
    return check_text(value, what)


def check_metric_name(name: object) -> str:
    return _name(
        name, "metric name", MAX_METRIC_NAME_LEN, "characters (the service's MetricName rule)"
    )


def check_parameter_name(name: object) -> str:
    return _name(name, "parameter name", MAX_PARAMETER_NAME_LEN, "characters")


def check_artifact_name(name: object) -> str:
    # Checked here: a name the store refuses would fail every later write of the run.
    return _name(name, "artifact name", MAX_ARTIFACT_NAME_LEN, "characters (the service's limit)")


def check_artifact_value(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"artifact value must be a string, got {_short(value)}")
    return check_text(value, "artifact value")


def check_media_type(media_type: object) -> str | None:
    """``None`` or a media type of RFC 6838's shape, ``type/subtype`` with optional
    ``; name=value`` parameters, at most 255 characters. Anything else raises: the value
    goes into the dashboard's ``Content-Type`` header, so CR, LF or any control character
    must never reach the store."""
    if media_type is None:
        return None
    if not isinstance(media_type, str):
        raise TypeError(
            f"media_type must be a string such as 'text/csv' or None, got {_short(media_type)} "
            f"({type(media_type).__name__})"
        )
    if not is_media_type(media_type):
        raise ValueError(
            f"media_type {_short(media_type)} is not a media type: expected "
            "'type/subtype' (RFC 6838: letters, digits and !#$&^_.+-), optionally followed by "
            f"'; name=value' parameters, at most {MAX_MEDIA_TYPE_LEN} characters"
        )
    return media_type


def is_media_type(value: object) -> bool:
    """Does ``value`` have a media type's shape (what :func:`check_media_type` accepts)?
    The dashboard asks before it writes a stored media type into a header."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_MEDIA_TYPE_LEN
        and _MEDIA_TYPE.fullmatch(value) is not None
    )


def parameter_value(name: str, value: object, *, stacklevel: int = 3) -> ParameterValue:
    """What the store keeps for a parameter value, or raise naming the value and the rule.

    Numbers stay numbers: integers (``bool`` as ``0``/``1``, numpy integers) within 64 bits,
    reals as 64-bit floats (NaN and infinities kept, with a warning). Strings are kept as
    they are, up to 2500 characters; anything else is stored as its ``str()``.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        number = int(value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise ValueError(
                f"parameter {name!r} is {_short(number)}, outside the store's 64-bit integer "
                f"range [-2**63, 2**63 - 1]: log it as a float or a string"
            )
        return number
    if isinstance(value, numbers.Real):
        try:
            real = float(value)
        except OverflowError:
            raise ValueError(
                f"parameter {name!r} is {_short(value)}, too large for a 64-bit float: log it "
                "as a string"
            ) from None
        if not math.isfinite(real):
            warnings.warn(
                f"parameter {name!r} is {real}; runstream keeps it (the official SDK drops it)",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        return real
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_STRING_PARAMETER_LEN:
        raise ValueError(
            f"parameter {name!r} is {len(text)} characters long; a string parameter holds at "
            f"most {MAX_STRING_PARAMETER_LEN} (the service's limit)"
        )
    return check_text(text, f"parameter {name!r} value")


def check_parameters(parameters: object, known: set[str]) -> list[tuple[str, ParameterValue]]:
    """Every ``(name, stored value)`` of a mapping, all checked before any is logged, the
    300-parameter limit included (``known``: the names the run already holds)."""
    if not isinstance(parameters, Mapping):
        raise TypeError(
            "log_parameters takes a mapping of parameter names to values, got "
            f"{_short(parameters)} ({type(parameters).__name__})"
        )
    checked = []
    for name, value in parameters.items():
        check_parameter_name(name)
        checked.append((name, parameter_value(name, value, stacklevel=4)))
    new = {name for name, _ in checked} - known
    if len(known) + len(new) > MAX_PARAMETERS:
        raise ValueError(
            f"cannot log {len(new)} new parameters ({_short(sorted(new)[0])}...): a run holds "
            f"at most {MAX_PARAMETERS} parameters (the service's limit) and has {len(known)}"
        )
    return checked


# -- Run(...) arguments --------------------------------------------------------------------


def check_seconds(label: str, value: object) -> float:
    """A positive, finite number of seconds (an int or a float, not a bool nor a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{label} must be a positive number of seconds, got {_short(value)} "
            f"({type(value).__name__})"
        )
    seconds = float(value)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{label} must be a positive number of seconds, got {value!r} (finite)")
    return seconds


def check_capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 2:
        raise ValueError(f"capacity must be an int of at least 2 points, got {_short(capacity)}")
    return capacity


def check_worker(worker: object) -> str | None:
    if worker is None:
        return None
    return _name(worker, "worker", MAX_WORKER_LEN, "characters, or None")


def check_optional_text(value: object, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{label} must be a string or None, got {_short(value)}")
    return check_text(value, label)


def check_store(store: object) -> None:
    if store is not None and not isinstance(store, str | os.PathLike):
        raise TypeError(f"store must be a path (str or os.PathLike) or None, got {_short(store)}")


def check_tags(tags: object) -> list[dict[str, str]] | dict[str, str] | None:
    """``None``, a ``{key: value}`` dict, or the SDK's ``[{"Key": k, "Value": v}]`` list, all
    strings (the service's Tag type)."""
    if tags is None:
        return None
    rule = "tags must be a dict of strings or a list of {'Key': str, 'Value': str}"
    if isinstance(tags, Mapping):
        pairs: list[Any] = list(tags.items())
    elif isinstance(tags, list | tuple):
        pairs = []
        for tag in tags:
            if not isinstance(tag, Mapping) or set(tag) != {"Key", "Value"}:
                raise TypeError(f"{rule}, got the tag {_short(tag)}")
            pairs.append((tag["Key"], tag["Value"]))
    else:
        raise TypeError(f"{rule}, got {_short(tags)}")
    for key, value in pairs:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{rule}, got the tag {_short(key)}: {_short(value)}")
        check_text(key, "tag key")
        check_text(value, "tag value")
    if isinstance(tags, Mapping):
        return dict(pairs)
    return [{"Key": key, "Value": value} for key, value in pairs]


def _short(value: object) -> str:
    """``repr`` of a value, shortened to what an error message can carry."""
    try:
        text = repr(value)
    except ValueError:  # int too large for repr (over 4300 digits)
        text = f"<int of {value.bit_length() if isinstance(value, int) else '?'} bits>"
    return text if len(text) <= 400 else f"{text[:300]}...({len(text)} characters)"


def check_extra_args(extra_args: object) -> dict[str, Any]:
    """``log_file(extra_args=)``: boto3's ``upload_file`` ExtraArgs, checked at the call."""
    if not isinstance(extra_args, Mapping) or not all(isinstance(k, str) for k in extra_args):
        raise TypeError(
            f"extra_args must be a dict of S3 upload arguments (boto3's ExtraArgs), got "
            f"{extra_args!r}"
        )
    unknown = sorted(set(extra_args) - S3_UPLOAD_ARGS)
    if unknown:
        raise ValueError(
            f"extra_args {unknown} are not S3 upload arguments; allowed: {sorted(S3_UPLOAD_ARGS)}"
        )
    return dict(extra_args)


class RunArguments(NamedTuple):
    """``Run(...)``'s arguments once checked: names validated and lowercased, the rest as
    given (numbers as floats)."""

    experiment_name: str | None
    run_name: str
    experiment_display_name: str | None
    run_display_name: str | None
    tags: Any
    worker: str | None
    flush_interval: float
    capacity: int
    close_timeout: float
    tick: float


def check_run_arguments(
    experiment_name: str | None,
    run_name: str | None,
    *,
    experiment_display_name: str | None,
    run_display_name: str | None,
    tags: object,
    store: object,
    worker: object,
    flush_interval: object,
    capacity: object,
    close_timeout: object,
    tick: object,
    backend: object,
) -> RunArguments:
    """Check everything ``Run(...)`` is given, before anything is created."""
    if experiment_name is None:
        if run_name is None:
            raise ValueError("an unassigned run (experiment_name=None) needs a run_name")
        _, run = _names.validate_names("unassigned", run_name)
        experiment = None
    else:
        experiment, run = _names.validate_names(experiment_name, run_name)
        check_text(experiment, "experiment_name")
    check_text(run, "run_name")
    check_store(store)
    check_optional_text(backend, "backend")
    return RunArguments(
        experiment_name=experiment,
        run_name=run,
        experiment_display_name=check_optional_text(
            experiment_display_name, "experiment_display_name"
        ),
        run_display_name=check_optional_text(run_display_name, "run_display_name"),
        tags=check_tags(tags),
        worker=check_worker(worker),
        flush_interval=check_seconds("flush_interval", flush_interval),
        capacity=check_capacity(capacity),
        close_timeout=check_seconds("close_timeout", close_timeout),
        tick=check_seconds("tick", tick),
    )

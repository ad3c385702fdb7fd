"""The SageMaker entities of a run, named and created exactly as the official SDK does.

experiment ``<experiment>``; trial ``Default-Run-Group-<experiment>``; trial component
``<experiment>-<run>`` tagged ``sagemaker:trial-component-source=run``; the trial
component associated with the trial. Each is *create-or-load*: create first (so that
tag-based access control sees the tags), and a ``ValidationException`` saying "already
exists" means load. Parameters, artifacts, status and times go through
UpdateTrialComponent with the whole maps, as the official ``close()`` sends them.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from ..._core import _names
from ._clients import Failure, classify
from ._ratelimit import bucket

if TYPE_CHECKING:
    from ..._core._records import Artifact, RunRecord
    from .._journal import Target
    from ._clients import Clients

__all__ = (
    "RUN_TC_TAG",
    "EntityError",
    "check_sagemaker_name",
    "ensure_entities",
    "fingerprint",
    "trial_component_update",
)

RUN_TC_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")
# MediaType's pattern; mimetypes guesses such as Excel's (with dots) would fail the
# whole UpdateTrialComponent, so those artifacts go without a media type instead.
_MEDIA_TYPE = re.compile(r"^[-\w]+/[-\w+]+$")
_IN_PROGRESS_MESSAGE = "Within a run context"


class EntityError(Exception):
    """A create-or-load found something it cannot use (carries the AWS outcome)."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


def check_sagemaker_name(label: str, name: str) -> None:
    """SageMaker entity names: letters, digits and hyphens, at most 120 characters."""
    if not _NAME.match(name):
        raise ValueError(
            f"{label} {name!r} is not a valid SageMaker name: it must match "
            "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119} (letters, digits and hyphens, starting and "
            "ending with a letter or digit), which backend='sagemaker' requires"
        )


async def _create_or_load(call: Any, **kwargs: Any) -> bool:
    """Create; True if created, False if it already existed."""
    await bucket("control").take()
    try:
        await call(**{k: v for k, v in kwargs.items() if v is not None})
    except Exception as exc:
        if classify(exc).failure is Failure.EXISTS:
            return False
        raise
    return True


def _tags(raw: bytes | None) -> list[dict[str, str]]:
    return list(msgspec.json.decode(raw)) if raw else []


async def ensure_entities(clients: Clients, target: Target) -> None:
    """Create-or-load the run's experiment, trial and trial component, and associate them."""
    sm = clients.sagemaker
    tags = _tags(target.tags)
    tc = target.trial_component_name
    if target.experiment_name is not None:
        experiment = target.experiment_name
        trial = _names.run_group_name(experiment)
        await _create_or_load(
            sm.create_experiment,
            ExperimentName=experiment,
            DisplayName=(
                target.experiment_display_name
                if target.experiment_display_name != experiment
                else None
            ),
            Tags=tags or None,
        )
        if not await _create_or_load(
            sm.create_trial, TrialName=trial, ExperimentName=experiment, Tags=tags or None
        ):
            await bucket("control").take()
            found = await sm.describe_trial(TrialName=trial)
            if found.get("ExperimentName", experiment) != experiment:
                raise EntityError(
                    f"the trial {trial!r} belongs to experiment {found['ExperimentName']!r}, "
                    f"not {experiment!r}"
                )
    await _create_or_load(
        sm.create_trial_component,
        TrialComponentName=tc,
        DisplayName=target.display_name if target.display_name != target.run_name else None,
        Tags=_with_run_tag(tags),
    )
    if target.experiment_name is not None:
        await bucket("control").take()
        found = await sm.search(
            Resource="ExperimentTrialComponent",
            SearchExpression={
                "Filters": [
                    {"Name": "TrialComponentName", "Operator": "Equals", "Value": tc},
                    {"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial},
                ]
            },
        )
        if not found.get("Results"):
            await bucket("control").take()
            await sm.associate_trial_component(TrialComponentName=tc, TrialName=trial)


def _with_run_tag(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """The trial component's tags: the run's, plus the run marker unless it is there."""
    return tags if RUN_TC_TAG in tags else [*tags, RUN_TC_TAG]


def trial_component_update(
    record: RunRecord, files: dict[tuple[str, str], str]
) -> tuple[dict[str, Any], str]:
    """The UpdateTrialComponent request for a run as stored, and its fingerprint.

    ``files`` maps (direction, name) of uploaded files to their S3 URIs; files not uploaded
    yet are left out until they are. The fingerprint changes when the request would.
    """
    request: dict[str, Any] = {"TrialComponentName": record.trial_component_name}
    if record.status is not None:  # none before a worker entered, as the official SDK
        status: dict[str, str] = {"PrimaryStatus": record.status}
        if record.status == "InProgress":
            status["Message"] = _IN_PROGRESS_MESSAGE
        elif record.message:
            status["Message"] = record.message[: _names.MAX_STATUS_MESSAGE_LEN]
        request["Status"] = status
    if record.start_time is not None:
        request["StartTime"] = _utc(record.start_time)
    if record.end_time is not None and record.status != "InProgress":
        request["EndTime"] = _utc(record.end_time)
    if record.parameters:
        request["Parameters"] = {k: _parameter(v) for k, v in record.parameters.items()}
    for direction, key in (("input", "InputArtifacts"), ("output", "OutputArtifacts")):
        artifacts = getattr(record.artifacts, direction)
        mapped = {}
        for name, artifact in artifacts.items():
            converted = _artifact(artifact, files.get((direction, name)))
            if converted is not None:
                mapped[name] = converted
        if mapped:
            request[key] = mapped
    return request, fingerprint(request)


def fingerprint(request: dict[str, Any]) -> str:
    """A digest of an UpdateTrialComponent request: equal requests, equal fingerprints."""
    encoded = orjson.dumps(request, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC)
    return hashlib.sha256(encoded).hexdigest()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _parameter(value: str | int | float) -> dict[str, Any]:
    """Numbers as NumberValue (the service stores doubles), the rest as StringValue.

    NaN and infinities are not JSON numbers: they go as strings, visible rather than lost.
    """
    if isinstance(value, str):
        return {"StringValue": value}
    number = float(value)
    if not math.isfinite(number):
        return {"StringValue": str(number)}
    return {"NumberValue": number}


def _artifact(artifact: Artifact, uploaded: str | None) -> dict[str, str] | None:
    if artifact.sha256 is not None:  # a log_file copy: the S3 URI once uploaded
        if uploaded is None:
            return None
        value = uploaded
    else:
        value = artifact.value
    converted = {"Value": value}
    if artifact.media_type and _MEDIA_TYPE.match(artifact.media_type):
        converted["MediaType"] = artifact.media_type
    return converted

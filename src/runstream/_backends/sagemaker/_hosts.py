"""A run's status across hosts: each host reports its own, the run's is computed from all.

A multi-node job has a store and an agent per host; they share only the trial component.
Each host's sender records its host's status there (the aggregate of that host's workers,
what its store derives) as a parameter ``runstream:host:<host>`` (StringValue
``InProgress``, ``Completed``, ``Failed`` or ``Stopped``) and sends the run's status as
computed from every host's (:func:`across_hosts`):

- ``Failed`` as soon as any host failed, naming it (``Failed on host algo-2: <message>``);
- else ``Stopped`` as soon as any host stopped: a host's store derives its run's status
  from its workers the same way (an interrupted worker ends the run, see
  ``LocalStore``'s ``_derive_status``), so one rule holds for workers and for hosts;
- else ``Completed`` once every expected host (``SM_HOSTS``) and every host seen on the
  trial component completed;
- else ``InProgress``.

Only when the run involves more than one host: ``SM_HOSTS`` lists more than one, or another
host's parameter is on the trial component already. A single host adds no parameter (Studio
shows the run as before) and its UpdateTrialComponent is the official SDK's, byte for byte.

The service merges ``Parameters`` by key, so hosts never overwrite each other's; the status
is last-writer-wins, which is why each host reads the others (DescribeTrialComponent) before
it writes, and reads again after (see ``RunSync._sync_across_hosts``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from ..._core import _names
from ._entities import _IN_PROGRESS_MESSAGE

__all__ = ("PREFIX", "TERMINAL", "across_hosts", "host_key", "reported", "shows", "with_status")

PREFIX = "runstream:host:"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
_STATUSES = TERMINAL | {"InProgress"}
# Parameters' keys may have 320 characters, but ParametersToRemove's only 256: a host's
# key stays removable. The keys' pattern is ``.*`` (no line breaks): host names are
# percent-encoded past letters, digits and ``_.-~``, so any name makes a valid key.
_KEY_MAX = 256


def host_key(host: str) -> str:
    """The parameter that holds ``host``'s status: ``runstream:host:algo-1``."""
    raw = host.encode("utf-8", "surrogateescape")
    quoted = quote(raw, safe="")
    key = PREFIX + quoted
    if len(key) <= _KEY_MAX:
        return key
    digest = hashlib.sha256(raw).hexdigest()[:16]  # a name too long: cut, kept distinct
    return f"{PREFIX}{quoted[: _KEY_MAX - len(PREFIX) - 17]}~{digest}"


def reported(described: Mapping[str, Any]) -> dict[str, str]:
    """Parameter key -> status of each host that reported on the trial component."""
    found: dict[str, str] = {}
    for key, value in (described.get("Parameters") or {}).items():
        if str(key).startswith(PREFIX) and isinstance(value, Mapping):
            status = value.get("StringValue")
            if status in _STATUSES:
                found[str(key)] = str(status)
    return found


def with_status(request: Mapping[str, Any], hosts: Sequence[str], status: str) -> dict[str, Any]:
    """This host's UpdateTrialComponent request with its hosts' status parameters."""
    parameters = dict(request.get("Parameters") or {})
    for host in hosts:
        parameters[host_key(host)] = {"StringValue": status}
    return {**request, "Parameters": parameters}


def across_hosts(
    request: Mapping[str, Any],
    *,
    status: str,
    message: str | None,
    hosts: Sequence[str],
    expected: Sequence[str],
    described: Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """The request to send, and the run's status across hosts.

    :param request: this host's request (:func:`with_status`: its status parameters in)
    :param status: this host's status (``message``: why, when it failed or stopped)
    :param hosts: the hosts this store reports for (usually one)
    :param expected: the job's hosts (``SM_HOSTS``), possibly none
    :param described: the trial component as DescribeTrialComponent answered just now
    """
    own = {host_key(h) for h in hosts}
    names = {host_key(h): h for h in (*expected, *hosts)}
    statuses = reported(described)
    statuses.update(dict.fromkeys(own, status))  # this store's word is the latest on itself
    order = list(dict.fromkeys(host_key(h) for h in expected))
    order += sorted(key for key in statuses if key not in order)  # a stable order on every host
    run, decider = "InProgress", None
    for ending in ("Failed", "Stopped"):
        decider = next((key for key in order if statuses.get(key) == ending), None)
        if decider is not None:
            run = ending
            break
    else:
        if all(statuses.get(key) == "Completed" for key in order):
            run = "Completed"

    current = described.get("Status") or {}
    text: str | None = None
    if run == "InProgress":
        text = _IN_PROGRESS_MESSAGE
    elif decider is not None:
        head = f"{run} on host {names.get(decider) or unquote(decider[len(PREFIX) :])}"
        shown = current.get("Message")
        if decider in own:
            text = f"{head}: {message}" if message else head
        elif (
            current.get("PrimaryStatus") == run
            and isinstance(shown, str)
            and (shown == head or shown.startswith(f"{head}:"))
        ):
            text = shown  # that host's own words (its message), which only it knows
        else:
            text = head
    new: dict[str, Any] = {**request, "Status": {"PrimaryStatus": run}}
    if text:
        new["Status"]["Message"] = text[: _names.MAX_STATUS_MESSAGE_LEN]
    # The run's times span every host's: the earliest start, the latest end.
    started = described.get("StartTime")
    if started is not None and "StartTime" in new:
        new["StartTime"] = min(new["StartTime"], started)
    ended = described.get("EndTime")
    if run not in TERMINAL:
        new.pop("EndTime", None)  # this host is done, the run is not
    elif ended is not None and "EndTime" in new:
        new["EndTime"] = max(new["EndTime"], ended)
    return new, run


def shows(described: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    """Whether the trial component already shows what ``request`` would write about the
    run's status: the same status (and message), these hosts' parameters, an end time."""
    current = described.get("Status") or {}
    wanted = request.get("Status") or {}
    if current.get("PrimaryStatus") != wanted.get("PrimaryStatus"):
        return False
    if "Message" in wanted and current.get("Message") != wanted["Message"]:
        return False
    parameters = described.get("Parameters") or {}
    for key, value in (request.get("Parameters") or {}).items():
        if key.startswith(PREFIX) and parameters.get(key) != value:
            return False
    return "EndTime" not in request or described.get("EndTime") is not None

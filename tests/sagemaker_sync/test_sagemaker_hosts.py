"""Two hosts, one run: each host keeps its own local store and syncs to the same trial
component, as the hosts of a multi-node SageMaker training job do. The run's status is
computed from every host's (``runstream._backends.sagemaker._hosts``)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from _support import wait_until
from runstream._backends import _journal
from runstream._backends.sagemaker._hosts import across_hosts, host_key, shows, with_status
from runstream._core._environment import HOST as MACHINE
from runstream._store import DB_NAME, LocalStore

from .moto_rig import JSON, Answer, Environ, sagemaker_action

if TYPE_CHECKING:
    from .moto_rig import Rig

WAIT = 60.0  # a bound on waiting for a background event, never an assertion on speed
HOSTS = '["algo-1", "algo-2"]'

HOST = textwrap.dedent(
    """
    import sys
    import runstream
    store, host = sys.argv[1], int(sys.argv[2])
    with runstream.Run("fleet", "r1", store=store, backend="sagemaker") as run:
        run.log_parameter("batch_size", 64)
        for step in range(100):
            run.log_metric("loss", host * 100.0 + step, step=step)
            if step % 25 == 0:
                run.flush()
    """
)

_CREATES = {
    "CreateExperiment": "ExperimentName",
    "CreateTrial": "TrialName",
    "CreateTrialComponent": "TrialComponentName",
}


class AlreadyExists:
    """SageMaker answers a second create of a name with "already exists"; moto instead
    replaces the entity (and drops its data). Answer as the service does: the first create
    goes through to moto (under a lock, so a second one waits until it is done)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.created: set[tuple[str, str]] = set()
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, body: bytes) -> Answer | None:
        action = sagemaker_action(environ)
        if action not in _CREATES:
            return None
        key = (action, json.loads(body)[_CREATES[action]])
        with self.lock:
            if key in self.created:
                self.refused += 1
                payload = {"__type": "ValidationException", "message": f"{key[1]} already exists."}
                return "400 Bad Request", [("Content-Type", JSON)], json.dumps(payload).encode()
            answer: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], *exc: object) -> None:
                answer.update(status=status, headers=headers)

            payload_bytes = b"".join(self.app(environ, capture))
            if answer["status"].startswith("200"):
                self.created.add(key)
            return answer["status"], answer["headers"], payload_bytes


def test_two_hosts_sync_one_run_with_nothing_duplicated(aws: Rig, tmp_path: Path) -> None:
    exists = AlreadyExists(aws.injector.app)
    aws.injector.handlers.append(exists)
    hosts = [
        subprocess.Popen(
            [sys.executable, "-c", HOST, str(tmp_path / f"store-{index}"), str(index)],
            env={
                **os.environ,
                "SM_CURRENT_HOST": f"algo-{index + 1}",
                "SM_HOSTS": '["algo-1", "algo-2"]',
            },
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    errors = [host.communicate(timeout=240)[1] for host in hosts]
    assert [host.returncode for host in hosts] == [0, 0], errors
    assert exists.refused >= 3  # the second host loaded what the first created

    delivered = Counter(aws.injector.delivered)
    assert len(delivered) == 100  # every step of "loss"...
    assert set(delivered.values()) == {2}  # ...once from each host, never twice

    sent = {(d["Step"], d["Value"]) for data in aws.injector.requested for d in data}
    assert sent == {(s, float(s)) for s in range(100)} | {(s, 100.0 + s) for s in range(100)}
    # (moto keeps one datum per step, so its summary cannot show both hosts' points; the
    # service accumulates them. What reached it is checked above, exactly.)
    found = aws.boto3("sagemaker").describe_trial_component(TrialComponentName="fleet-r1")
    assert found["Status"]["PrimaryStatus"] == "Completed"
    assert found["Parameters"]["batch_size"] == {"NumberValue": 64.0}
    for index in range(2):  # and each host keeps its full local journal
        record = runstream_record(tmp_path / f"store-{index}")
        assert record["metrics"]["loss"]["count"] == 100
        assert [w["worker"] for w in record["workers"]] == [f"algo-{index + 1}"]


def runstream_record(store: Path) -> dict[str, Any]:
    shown = subprocess.run(
        [sys.executable, "-m", "runstream", "show", "fleet", "r1", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    record: dict[str, Any] = json.loads(shown.stdout)
    return record


# -- the run's status across hosts ----------------------------------------------------------

# One host of a job: enter the run, log, then finish (done), wait for a line on stdin before
# finishing (wait), or fail (fail). Close waits for the agent (RUNSTREAM_CLOSE_WAIT=1).
STATUS_HOST = textwrap.dedent(
    """
    import sys
    import runstream
    store, mode = sys.argv[1], sys.argv[2]
    with runstream.Run("fleet", "status", store=store, backend="sagemaker") as run:
        run.log_parameter("batch_size", 64)
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        print("entered", flush=True)
        if mode == "wait":
            sys.stdin.readline()
        if mode == "fail":
            raise RuntimeError("out of memory")
    """
)


def start_host(tmp_path: Path, host: str | None, mode: str) -> subprocess.Popen[str]:
    """A host's training process, with its own store; ``None``: not on a job's host."""
    env = dict(os.environ)
    if host is not None:
        env.update(SM_CURRENT_HOST=host, SM_HOSTS=HOSTS)
    child = subprocess.Popen(
        [sys.executable, "-c", STATUS_HOST, str(tmp_path / f"store-{host}"), mode],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != "entered":
        child.kill()
        raise AssertionError(f"host {host} did not enter the run: {child.communicate()[1]}")
    return child


def finish(child: subprocess.Popen[str]) -> None:
    """Let a waiting host finish, and check it did (its close waited for its agent)."""
    _, errors = child.communicate("\n", timeout=WAIT)
    assert child.returncode == 0, errors


def trial_component(aws: Rig) -> dict[str, Any]:
    found: dict[str, Any] = aws.boto3("sagemaker").describe_trial_component(
        TrialComponentName="fleet-status"
    )
    return found


def host_status(found: dict[str, Any], host: str) -> str | None:
    value = found.get("Parameters", {}).get(f"runstream:host:{host}")
    return None if value is None else str(value["StringValue"])


@pytest.fixture
def hosts(aws: Rig) -> Rig:
    """moto answering a second create as the service does (else the second host's create
    would replace the trial component, and the first host's status with it)."""
    aws.injector.handlers.append(AlreadyExists(aws.injector.app))
    return aws


def test_the_run_is_in_progress_until_the_last_host_completes(hosts: Rig, tmp_path: Path) -> None:
    aws = hosts
    second = start_host(tmp_path, "algo-2", "wait")
    try:
        finish(start_host(tmp_path, "algo-1", "done"))
        # algo-1 is done (its close waited for its agent), algo-2 is still training.
        wait_until(
            lambda: host_status(trial_component(aws), "algo-2") == "InProgress",
            "algo-2's status on the trial component",
            WAIT,
        )
        found = trial_component(aws)
        assert host_status(found, "algo-1") == "Completed"
        assert found["Status"] == {"PrimaryStatus": "InProgress", "Message": "Within a run context"}
        assert "EndTime" not in found or found["EndTime"] is None
        assert found["Parameters"]["batch_size"] == {"NumberValue": 64.0}
    finally:
        finish(second)
    found = trial_component(aws)
    assert found["Status"]["PrimaryStatus"] == "Completed"
    assert [host_status(found, h) for h in ("algo-1", "algo-2")] == ["Completed", "Completed"]
    assert found["StartTime"] <= found["EndTime"]
    # Read back, the run's parameters are the user's: the hosts' status is the run's status.
    from runstream._backends.sagemaker import read_run

    back = read_run("fleet", "status")
    assert (back.status, back.parameters) == ("Completed", {"batch_size": 64})


def test_one_failed_host_fails_the_run_and_is_named(hosts: Rig, tmp_path: Path) -> None:
    aws = hosts
    first = start_host(tmp_path, "algo-1", "wait")
    try:
        second = start_host(tmp_path, "algo-2", "fail")
        _, errors = second.communicate(timeout=WAIT)
        assert second.returncode == 1
        assert "out of memory" in errors
        found = trial_component(aws)  # Failed at once, while algo-1 still trains
        assert found["Status"] == {
            "PrimaryStatus": "Failed",
            "Message": "Failed on host algo-2: out of memory",
        }
        wait_until(
            lambda: host_status(trial_component(aws), "algo-1") == "InProgress",
            "algo-1's status on the trial component",
            WAIT,
        )
    finally:
        finish(first)  # algo-1 completed, after algo-2 failed: the run stays Failed
    found = trial_component(aws)
    assert [host_status(found, h) for h in ("algo-1", "algo-2")] == ["Completed", "Failed"]
    assert found["Status"] == {
        "PrimaryStatus": "Failed",
        "Message": "Failed on host algo-2: out of memory",
    }

    # A process on no job's host (no SM_HOSTS) that logs into the run later sees the hosts'
    # status there: it reports its own and the run stays Failed, still naming algo-2.
    finish(start_host(tmp_path, None, "wait"))
    found = trial_component(aws)
    assert found["Status"]["Message"] == "Failed on host algo-2: out of memory"
    reported = {k for k in found["Parameters"] if k.startswith("runstream:host:")}
    assert reported == {host_key("algo-1"), host_key("algo-2"), host_key(MACHINE)}
    assert found["Parameters"][host_key(MACHINE)] == {"StringValue": "Completed"}


def test_one_host_sends_what_it_sent_before(aws: Rig, tmp_path: Path) -> None:
    """A job of one host (SM_HOSTS of one), like a run outside any job: no host parameter,
    the official SDK's UpdateTrialComponent."""
    updates: list[dict[str, Any]] = []

    def record(environ: Environ, body: bytes) -> None:
        if sagemaker_action(environ) == "UpdateTrialComponent":
            updates.append(json.loads(body))

    aws.injector.handlers.append(record)
    env = {**os.environ, "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": '["algo-1"]'}
    done = subprocess.run(
        [sys.executable, "-c", STATUS_HOST, str(tmp_path / "store"), "done"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    assert updates
    assert all(set(u["Parameters"]) == {"batch_size"} for u in updates)
    assert updates[-1]["Status"] == {"PrimaryStatus": "Completed"}
    assert trial_component(aws)["Status"]["PrimaryStatus"] == "Completed"


# -- the computation ----------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 1, 1, tzinfo=UTC)
T2 = datetime(2025, 1, 1, 2, tzinfo=UTC)


def described(
    status: str | None = None, message: str | None = None, **hosts: str
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "Parameters": {host_key(h.replace("_", "-")): {"StringValue": s} for h, s in hosts.items()},
    }
    if status is not None:
        found["Status"] = {"PrimaryStatus": status, **({"Message": message} if message else {})}
    return found


def computed(
    status: str,
    found: dict[str, Any],
    *,
    message: str | None = None,
    expected: tuple[str, ...] = ("algo-1", "algo-2"),
) -> tuple[dict[str, Any], str]:
    base = with_status({"TrialComponentName": "e-r"}, ["algo-1"], status)
    return across_hosts(
        base, status=status, message=message, hosts=["algo-1"], expected=expected, described=found
    )


@pytest.mark.parametrize(
    ("mine", "others", "run"),
    [
        ("Completed", {}, "InProgress"),  # algo-2 expected, not heard from
        ("Completed", {"algo_2": "InProgress"}, "InProgress"),
        ("Completed", {"algo_2": "Completed"}, "Completed"),
        ("InProgress", {"algo_2": "Completed"}, "InProgress"),
        ("InProgress", {"algo_2": "Failed"}, "Failed"),  # as soon as one failed
        ("Completed", {"algo_2": "Stopped"}, "Stopped"),
        ("Stopped", {"algo_2": "Failed"}, "Failed"),
        ("Completed", {"algo_2": "Completed", "algo_3": "InProgress"}, "InProgress"),  # seen
    ],
)
def test_the_run_status_is_computed_from_every_host(
    mine: str, others: dict[str, str], run: str
) -> None:
    request, status = computed(mine, described(**others))
    assert status == run == request["Status"]["PrimaryStatus"]
    assert request["Parameters"][host_key("algo-1")] == {"StringValue": mine}


def test_without_sm_hosts_the_hosts_seen_decide() -> None:
    assert computed("Completed", described(), expected=())[1] == "Completed"
    assert computed("Completed", described(algo_2="InProgress"), expected=())[1] == "InProgress"


def test_a_failure_names_its_host_and_keeps_its_words() -> None:
    mine, _ = computed("Failed", described(algo_2="InProgress"), message="boom")
    assert mine["Status"] == {"PrimaryStatus": "Failed", "Message": "Failed on host algo-1: boom"}
    # Another host's failure: its message as it wrote it, else its name alone.
    said = described("Failed", "Failed on host algo-2: disk full", algo_2="Failed")
    assert computed("Completed", said)[0]["Status"]["Message"] == "Failed on host algo-2: disk full"
    stale = described("InProgress", "Within a run context", algo_2="Failed")
    assert computed("Completed", stale)[0]["Status"]["Message"] == "Failed on host algo-2"
    other = described("Failed", "Failed on host algo-20: x", algo_2="Failed")
    assert computed("Completed", other)[0]["Status"]["Message"] == "Failed on host algo-2"
    # Two failed: the first in SM_HOSTS' order, on every host alike.
    both = computed("Failed", described(algo_2="Failed"), message="boom")[0]
    assert both["Status"]["Message"] == "Failed on host algo-1: boom"


def test_the_times_span_every_host_and_end_only_with_the_run() -> None:
    base = with_status(
        {"TrialComponentName": "e-r", "StartTime": T1, "EndTime": T1}, ["h"], "Completed"
    )
    found = {**described(algo_2="Completed"), "StartTime": T0, "EndTime": T2}
    done, run = across_hosts(
        base, status="Completed", message=None, hosts=["h"], expected=(), described=found
    )
    assert (run, done["StartTime"], done["EndTime"]) == ("Completed", T0, T2)
    found = {**described(algo_2="InProgress"), "StartTime": T0}
    waiting, run = across_hosts(
        base, status="Completed", message=None, hosts=["h"], expected=(), described=found
    )
    assert run == "InProgress"
    assert "EndTime" not in waiting


def test_what_the_trial_component_shows_needs_no_rewrite() -> None:
    request, _ = computed("Completed", described(algo_2="InProgress"))
    assert not shows(described("InProgress", algo_2="InProgress"), request)  # no message yet
    now = described("InProgress", "Within a run context", algo_1="Completed", algo_2="InProgress")
    assert shows(now, request)
    raced = described(
        "InProgress", "Within a run context", algo_1="InProgress", algo_2="InProgress"
    )
    assert not shows(raced, request)


def test_host_keys_are_valid_parameter_names() -> None:
    assert host_key("algo-1") == "runstream:host:algo-1"
    assert host_key("ip-10-0-0-1.ec2.internal") == "runstream:host:ip-10-0-0-1.ec2.internal"
    assert host_key("a b\nc:d") == "runstream:host:a%20b%0Ac%3Ad"
    long = host_key("h" * 300)
    assert len(long) <= 256
    assert long != host_key("h" * 299)


# -- what the store records -----------------------------------------------------------------


def test_the_registration_records_the_hosts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with store.transaction("a run") as db:
        db.execute("INSERT INTO runs(id, name, created) VALUES (1, 'r', 0)")
    job = {"SM_CURRENT_HOST": "algo-2", "SM_HOSTS": HOSTS}
    _journal.register(store, 1, environ=job)
    (target,) = _journal.targets(store)
    assert (target.hosts, target.job_hosts) == (("algo-2",), ("algo-1", "algo-2"))
    _journal.register(store, 1, environ={})  # runstream sync elsewhere: adds no host
    (target,) = _journal.targets(store)
    assert (target.hosts, target.job_hosts) == (("algo-2",), ("algo-1", "algo-2"))
    _journal.register(store, 1, environ={"SM_CURRENT_HOST": "algo-1"})  # a shared store
    assert _journal.targets(store)[0].hosts == ("algo-2", "algo-1")


def test_a_store_of_schema_7_gains_the_hosts_and_caught_up_columns(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = LocalStore(path)
    with store.transaction("a run") as db:
        db.execute("INSERT INTO runs(id, name, created) VALUES (1, 'r', 0)")
        db.execute("INSERT INTO sync_runs(run_id, backend) VALUES (1, 'sagemaker')")
    store.close()
    db = sqlite3.connect(path / DB_NAME)
    db.execute("ALTER TABLE sync_runs DROP COLUMN hosts")
    db.execute("ALTER TABLE sync_runs DROP COLUMN job_hosts")
    db.execute("ALTER TABLE sync_mlflow_runs DROP COLUMN caught_up")
    db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    reopened = LocalStore(path)
    columns = {row[1] for row in reopened.query("PRAGMA table_info(sync_mlflow_runs)")}
    assert "caught_up" in columns  # version 8: the MLflow sink's caught-up time
    (target,) = _journal.targets(reopened)
    assert (target.hosts, target.job_hosts) == ((), ())  # reported as one host, as before
    _journal.register(reopened, 1, environ={"SM_CURRENT_HOST": "algo-1", "SM_HOSTS": HOSTS})
    assert _journal.targets(reopened)[0].hosts == ("algo-1",)

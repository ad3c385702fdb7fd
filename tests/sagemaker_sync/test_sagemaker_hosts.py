"""Two hosts, one run: each host keeps its own local store and syncs to the same trial
component, as the hosts of a multi-node SageMaker training job do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .moto_rig import JSON, Answer, Environ, sagemaker_action

if TYPE_CHECKING:
    from .moto_rig import Rig

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

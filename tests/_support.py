"""Helpers shared by the tests, and the code child processes run.

Child processes are started with ``multiprocessing``'s *spawn* method (a fresh interpreter,
as a launcher would start one), so what they run must live in an importable module: this
one. They return what they saw through files, because a SIGKILLed child cannot return.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

import runstream
from runstream import Run, _cli

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event

#: The directory holding the ``runstream`` package, for child processes' ``PYTHONPATH`` (the
#: suite runs against an editable install or ``PYTHONPATH=src`` alike).
PACKAGE_ROOT = str(Path(runstream.__file__).resolve().parent.parent)

#: What the tests clear from the environment: runstream's own variables and the launchers'
#: rank variables that ``worker_identity`` reads.
ENVIRONMENT_VARIABLES = (
    "RUNSTREAM_EXPERIMENT_NAME",
    "RUNSTREAM_RUN_NAME",
    "RUNSTREAM_STORE",
    "RUNSTREAM_WORKER",
    "RANK",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "SLURM_PROCID",
    "SM_CURRENT_HOST",
    "SM_HOSTS",
)


def child_env(**extra: str) -> dict[str, str]:
    """The current environment (a run's exported identity included) for a subprocess."""
    path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` in the current environment; fail loudly on error."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"child failed ({result.returncode}):\n{result.stderr}"
    return result


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """``runstream ... --json`` run in this process, parsed."""
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``runstream ...`` run in this process: exit code, standard output and error."""
    capsys.readouterr()
    code = _cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll a condition another thread or process makes true; fail (not hang) if it never
    does within ``timeout`` seconds. The one poll loop of the suite."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` on a read-only bind mount of itself (the files in it stay readable), even
    for root, whom file permissions do not stop; skips where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    bound = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def integrity(store: str) -> str:
    """``PRAGMA integrity_check`` of a store's database, from a fresh connection."""
    db = sqlite3.connect(Path(store) / "runstream.db")
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


# -- what child processes run ---------------------------------------------------------------


def worker_value(worker: int, step: int) -> float:
    """A value every party can compute: exact in binary floating point."""
    return worker * 1000.0 + step * 0.5


def log_into_shared_run(
    store: str, experiment: str, run: str, worker: int, steps: int, start: Event, out: str
) -> None:
    """One of several processes logging into the same run of the same (fresh) store."""
    start.wait()
    # A short interval makes the writers' transactions interleave many times.
    with Run(experiment, run, store=store, flush_interval=0.01, tick=0.005) as r:
        r.log_parameter(f"worker-{worker}", worker)
        for step in range(steps):
            r.log_metric("loss", worker_value(worker, step), step=step)
            r.log_metrics({"accuracy": step / steps, f"own-{worker}": float(step)}, step=step)
            if step % 25 == 24:
                r.flush()  # many transactions per writer, racing the others'
    Path(out).write_bytes(msgspec.json.encode({"worker": r.worker, "stats": r.stats}))


def log_until_killed(
    store: str, experiment: str, run: str, metric: str, flushed: Synchronized[int]
) -> None:
    """Log ``metric == step`` forever; after each explicit flush publish how many points are in.

    The parent kills this process with SIGKILL at an arbitrary moment, in the middle of
    logging and, as often as not, in the middle of a background write.
    """
    with Run(experiment, run, store=store, flush_interval=0.02, tick=0.005) as r:
        step = 0
        while True:
            for _ in range(500):
                r.log_metric(metric, float(step), step=step)
                step += 1
            r.flush()
            flushed.value = step


# -- processes a test starts ---------------------------------------------------------------


@contextlib.contextmanager
def python_child(*argv: str) -> Iterator[subprocess.Popen[str]]:
    """``python ARGV...`` with this environment and its stdout piped (text); killed and
    reaped on the way out, whatever the test did to it."""
    child = subprocess.Popen(
        [sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def agent_environment(registry: Path) -> dict[str, str]:
    """The agents a test starts: fast pacing, short idle and linger, and a registry of
    their pids (:func:`end_agents` ends them). Close waits for the agent, as in a job:
    most tests read the backend right after a run closes; the agent's own tests unset it."""
    return {
        "RUNSTREAM_SYNC_INTERVAL": "0.2",
        "RUNSTREAM_SYNC_MAX_BACKOFF": "0.2",
        "RUNSTREAM_AGENT_IDLE": "1",
        "RUNSTREAM_AGENT_LINGER": "30",
        "RUNSTREAM_AGENT_REGISTRY": str(registry),
        "RUNSTREAM_CLOSE_WAIT": "1",
    }


def end_agents(registry: Path) -> None:
    """End the agents a test started (by the pids they registered), SIGKILL after 5 s."""
    if not registry.exists():
        return
    pids = {int(line) for line in registry.read_text().split()}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    registry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of this process that exited is a zombie until reaped: not alive.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def agent_pid(store: Path, timeout: float = 60.0) -> int:
    """The pid of the store's agent, as its lease says (waiting for it to claim one)."""
    from runstream._backends import _journal
    from runstream._store import LocalStore

    def claimed() -> _journal.AgentState | None:
        state = _journal.agent_state(LocalStore(store))
        return state if state is not None and state.alive else None

    wait_until(claimed, "an agent to claim the store", timeout)
    state = claimed()
    assert state is not None
    return state.pid


def pid_alive(pid: int) -> bool:
    """A process that exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False

"""The sync agent: one process per store that does all remote sending.

The first run that needs a remote sink starts it (:func:`ensure_agent`), detached in a
session of its own; it claims the store's agent lease (``sync_agent``: one agent per
store, renewed every round, stolen only from a holder that expired or whose process is
gone), serves every run registered for sync and every training process of that store, and
lives on after them until everything is acknowledged. It exits

- when nothing is pending and no training process has a run open, after a short idle
  grace (``RUNSTREAM_AGENT_IDLE``, 3 s, so the next run of a script finds it);
- at the latest ``RUNSTREAM_AGENT_LINGER`` seconds (default 900) after the last training
  process of the store closed or died, even if something is left (credentials refused, an
  outage): what is left stays in the store for the next run or ``runstream sync``.

``runstream sync`` runs the same engine in the foreground (:func:`serve` with
``until_idle``), and ``--follow`` keeps it serving. The training process itself only
registers its run (:func:`open_link`); it never imports botocore after the preflight.

Run as ``python -m runstream._backends._agent --store PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from . import _journal as journal

if TYPE_CHECKING:
    from .._core._records import SyncStatus
    from .._store import LocalStore

__all__ = ("ENV_LINGER", "AgentLink", "agent_description", "ensure_agent", "serve")

ENV_LINGER = "RUNSTREAM_AGENT_LINGER"
ENV_IDLE = "RUNSTREAM_AGENT_IDLE"
#: Tests: a file each agent appends its pid to, so the suite can end what it started.
ENV_REGISTRY = "RUNSTREAM_AGENT_REGISTRY"
DEFAULT_LINGER = 900.0
DEFAULT_IDLE = 3.0
AGENT_TTL = 30.0
LOG_NAME = "agent.log"

_log = logging.getLogger("runstream")


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{name}={text!r}: must be a number of seconds >= 0")
    return value


# -- in the training process --------------------------------------------------------------


def agent_description(store: LocalStore) -> str:
    """``"running (pid N)"`` or ``"stopped"`` (what ``runstream status`` shows)."""
    try:
        state = journal.agent_state(store)
    except Exception:  # an older store, read-only: no agent table yet
        return "stopped"
    if state is None or not state.alive:
        return "stopped"
    return f"running (pid {state.pid}, {state.state})"


def ensure_agent(store: LocalStore) -> int | None:
    """Start the store's agent unless one runs; its pid, or None when one was running.

    The agent starts detached (a session of its own, no terminal, output to
    ``<store>/agent.log``); a thread of this process reaps it should it exit first, so it
    never lingers as a zombie. Two processes starting one at once are fine: the second
    agent finds the lease taken and exits.
    """
    with _spawn_lock:
        started = _spawned.get(store.path)
        if started is not None and started.poll() is None:
            return None  # ours, still starting (or serving): one is enough
        state = journal.agent_state(store)
        if state is not None and state.alive:
            return None
        process = _spawn(store)
        _spawned[store.path] = process
    threading.Thread(target=process.wait, name="runstream-agent-reaper", daemon=True).start()
    return process.pid


_spawned: dict[Path, subprocess.Popen[bytes]] = {}
_spawn_lock = threading.Lock()


def _spawn(store: LocalStore) -> subprocess.Popen[bytes]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    log = open(store.path / LOG_NAME, "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "runstream._backends._agent", "--store", str(store.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
            cwd=str(store.path),
        )
    finally:
        log.close()
    return process


class AgentLink:
    """A run's end of the agent, in the training process (a :class:`.Sender`).

    It registers the process as a client of the store's agent, starts the agent if none
    runs, keeps ``log_file(extra_args=)`` in the journal, and reads the run's sync state
    from the store. Closing returns at once outside a SageMaker job; inside one (the
    container ends with the script) it waits for the agent to send the run, bounded by
    ``close_timeout``, and says what is left.
    """

    def __init__(
        self,
        store: LocalStore,
        target: journal.Target,
        *,
        close_timeout: float,
        in_job: bool,
        data_per_second: Callable[[], float],
    ) -> None:
        self._store = store
        self._target = target
        self._close_timeout = close_timeout
        self._in_job = in_job
        self._data_per_second = data_per_second
        self._closing = threading.Event()
        self._closed_at = 0.0
        self._status: SyncStatus | None = None
        self._status_at = 0.0
        self._lock = threading.Lock()
        self.owner = journal.new_owner()
        journal.open_client(store, self.owner, target.run_id, target.sink, in_job=in_job)
        ensure_agent(store)

    def close(self) -> None:
        self._closed_at = time.monotonic()
        self._closing.set()

    def file_options(self, direction: str, name: str, extra_args: dict[str, Any]) -> None:
        journal.set_file_options(self._store, self._target.run_id, direction, name, extra_args)

    @property
    def status(self) -> SyncStatus | None:
        with self._lock:
            if self._status is None or time.monotonic() - self._status_at > 0.5:
                self._status = self._read_status()
                self._status_at = time.monotonic()
            return self._status

    def _read_status(self) -> SyncStatus | None:
        try:
            return status_of(self._store, self._target, self._data_per_second())
        except Exception as exc:  # a busy store: the last known state will do
            _log.debug("runstream: sync state not read: %s", exc)
            return self._status

    async def run(self) -> None:
        """Wait for the run to close; in a job, wait for the agent to drain it."""
        while not self._closing.is_set():
            await anyio.sleep(0.05)
        try:
            if self._in_job:
                await anyio.to_thread.run_sync(self._drain)
        finally:
            with self._lock:
                self._status = None  # read afresh: the run is closed
            with contextlib.suppress(Exception):
                journal.close_client(self._store, self.owner)

    def _drain(self) -> None:
        deadline = self._closed_at + self._close_timeout
        closed = time.time()  # the run's last data and final status are in the store
        left: SyncStatus | None = None
        done = False
        while time.monotonic() < deadline:
            ensure_agent(self._store)  # it may have given up on an outage: start again
            left = status_of(self._store, self._target, self._data_per_second())
            done = left.state == "synced" and (left.caught_up or 0.0) >= closed
            if done or left.state == "blocked":
                break
            time.sleep(0.1)
        if left is not None and not done:
            message = (
                f"runstream: run {self._target.run_name!r} closed with {left.points_pending} "
                f"points and {left.files_pending} files not yet in {self._target.sink} "
                f"({left.last_error or f'not done after close_timeout={self._close_timeout}s'})"
                f"; they are kept in {self._store.path}"
            )
            print(message, file=sys.stderr, flush=True)
            _log.warning("%s", message)


def status_of(store: LocalStore, target: journal.Target, data_per_second: float) -> SyncStatus:
    return journal.status(
        store,
        target,
        files_pending=files_pending(store, target),
        data_per_second=data_per_second,
        agent=agent_description(store),
    )


def files_pending(store: LocalStore, target: journal.Target) -> int:
    done = journal.uploads(store, target.run_id, sink=target.sink)
    rows = store.query(
        "SELECT direction, name, sha256 FROM artifacts WHERE run_id = ? AND sha256 IS NOT NULL",
        (target.run_id,),
    )
    return sum(1 for d, n, s in rows if done.get((str(d), str(n)), ("", ""))[0] != s)


# -- the agent ----------------------------------------------------------------------------


async def serve(
    store: LocalStore,
    *,
    owner: str | None = None,
    until_idle: bool = False,
    follow: bool = False,
    timeout: float | None = None,
    run_ids: list[int] | None = None,
    on_round: Callable[[list[SyncStatus]], None] | None = None,
) -> list[SyncStatus] | None:
    """Serve the store's registered runs as its agent; None if another agent holds it.

    :param until_idle: ``runstream sync``: return once everything is acknowledged (or
        blocked), without waiting for training processes
    :param follow: ``runstream sync --follow``: never exit on idleness or linger
    :param timeout: give up after this many seconds (what is left stays in the store)
    :param on_round: called with the runs' states after every round (progress)
    """
    from .sagemaker._sender import SyncConfig, serve_sagemaker

    owner = owner or journal.new_owner()
    if not journal.claim_agent(store, owner, AGENT_TTL, "starting", None):
        return None
    registry = os.environ.get(ENV_REGISTRY)
    if registry:
        with open(registry, "a") as file:
            file.write(f"{os.getpid()}\n")
    try:
        return await serve_sagemaker(
            store,
            owner,
            SyncConfig.from_environment(),
            linger=_seconds(ENV_LINGER, DEFAULT_LINGER),
            idle=_seconds(ENV_IDLE, DEFAULT_IDLE),
            until_idle=until_idle,
            follow=follow,
            timeout=timeout,
            run_ids=run_ids,
            on_round=on_round,
        )
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            journal.release_agent(store, owner)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runstream._backends._agent")
    parser.add_argument("--store", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s runstream-agent[%(process)d] %(message)s"
    )
    for noisy in ("botocore", "aiobotocore", "aioboto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from .._store import LocalStore

    store = LocalStore(args.store)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        served = anyio.run(lambda: serve(store))
    except KeyboardInterrupt:
        _log.info("stopped by a signal; what is left stays in %s", store.path)
        return 0
    if served is None:
        _log.info("another agent serves %s", store.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

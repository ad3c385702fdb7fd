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

It knows no backend: it serves every installed sink (:mod:`._sink`: SageMaker, MLflow)
that has runs registered in the store, a round for each run in turn.

``runstream sync`` runs the same engine in the foreground (:func:`serve` with
``until_idle``), and ``--follow`` keeps it serving. The training process itself only
registers its run (:class:`AgentLink`); after the preflight it makes no network call.

Run as ``python -m runstream._backends._agent --store PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .._core._exceptions import BackendError
from .._store import DB_NAME
from . import _journal as journal
from ._sink import Failure, SyncConfig, available_sinks

if TYPE_CHECKING:
    from .._core._records import SyncStatus
    from .._store import LocalStore
    from ._sink import Connection, RunSender, Sink

__all__ = (
    "ENV_LINGER",
    "AgentLink",
    "ensure_agent",
    "main",
    "serve",
    "statuses",
    "sync_store",
)

ENV_LINGER = "RUNSTREAM_AGENT_LINGER"
ENV_IDLE = "RUNSTREAM_AGENT_IDLE"
#: Tests: a file each agent appends its pid to, so the suite can end what it started.
ENV_REGISTRY = "RUNSTREAM_AGENT_REGISTRY"
DEFAULT_LINGER = 900.0
DEFAULT_IDLE = 3.0
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
        sink: Sink,
        run_id: int,
        run_name: str,
        *,
        close_timeout: float,
        in_job: bool,
    ) -> None:
        self._store = store
        self._sink = sink
        self._run_id = run_id
        self._run_name = run_name
        self._close_timeout = close_timeout
        self._in_job = in_job
        self._closing = threading.Event()
        # close() wakes run() through this pair: no polling tick in the training process
        # (each wake-up of its event loop would take the GIL from the loop).
        self._woken, self._waker = socket.socketpair()
        self._woken.setblocking(False)
        self._waker.setblocking(False)
        self._closed_at = 0.0
        self._status: SyncStatus | None = None
        self._status_at = 0.0
        self._lock = threading.Lock()
        self.owner = journal.new_owner()
        journal.open_client(store, self.owner, run_id, sink.name, in_job=in_job)
        ensure_agent(store)

    def close(self) -> None:
        self._closed_at = time.monotonic()
        self._closing.set()
        with contextlib.suppress(OSError):  # closed already: run() has returned
            self._waker.send(b"x")

    def file_options(self, direction: str, name: str, extra_args: dict[str, Any]) -> None:
        journal.set_file_options(self._store, self._run_id, direction, name, extra_args)

    @property
    def status(self) -> SyncStatus | None:
        with self._lock:
            if self._status is None or time.monotonic() - self._status_at > 0.5:
                self._status = self._read_status()
                self._status_at = time.monotonic()
            return self._status

    def _read_status(self) -> SyncStatus | None:
        try:
            return self._sink.status(self._store, self._run_id)
        except Exception as exc:  # a busy store: the last known state will do
            _log.debug("runstream: sync state not read: %s", exc)
            return self._status

    async def run(self) -> None:
        """Wait for the run to close; in a job, wait for the agent to drain it."""
        while not self._closing.is_set():
            await anyio.wait_readable(self._woken)
        try:
            if self._in_job:
                await anyio.to_thread.run_sync(self._drain)
        finally:
            with self._lock:
                self._status = None  # read afresh: the run is closed
            with contextlib.suppress(Exception):
                journal.close_client(self._store, self.owner)
            self._woken.close()
            self._waker.close()

    def _drain(self) -> None:
        deadline = self._closed_at + self._close_timeout
        closed = time.time()  # the run's last data and final status are in the store
        left: SyncStatus | None = None
        done = False
        while time.monotonic() < deadline:
            ensure_agent(self._store)  # it may have given up on an outage: start again
            left = self._sink.status(self._store, self._run_id)
            done = left.state == "synced" and (left.caught_up or 0.0) >= closed
            if done or left.state == "blocked":
                break
            time.sleep(0.1)
        if left is not None and not done:
            message = (
                f"runstream: run {self._run_name!r} closed with {left.points_pending} "
                f"points and {left.files_pending} files not yet in {self._sink.name} "
                f"({left.last_error or f'not done after close_timeout={self._close_timeout}s'})"
                f"; they are kept in {self._store.path}"
            )
            print(message, file=sys.stderr, flush=True)
            _log.warning("%s", message)


# -- the agent ----------------------------------------------------------------------------


async def serve(
    store: LocalStore,
    *,
    owner: str | None = None,
    until_idle: bool = False,
    follow: bool = False,
    timeout: float | None = None,
    run_ids: Sequence[int] | None = None,
    sinks: Sequence[str] | None = None,
    on_round: Callable[[list[SyncStatus]], None] | None = None,
) -> list[SyncStatus] | None:
    """Serve the store's registered runs as its agent; None if another agent holds it.

    :param until_idle: ``runstream sync``: return once everything is acknowledged (or
        blocked), without waiting for training processes
    :param follow: ``runstream sync --follow``: never exit on idleness or linger
    :param timeout: give up after this many seconds (what is left stays in the store)
    :param run_ids: only these runs (default: every registered one)
    :param sinks: only these sinks' runs (default: every installed sink)
    :param on_round: called with the runs' states after every round (progress)
    """
    owner = owner or journal.new_owner()
    if not journal.claim_agent(store, owner, journal.AGENT_TTL, "starting", None):
        return None
    registry = os.environ.get(ENV_REGISTRY)
    if registry:
        with open(registry, "a") as file:
            file.write(f"{os.getpid()}\n")
    rounds = _Rounds(store, owner, available_sinks(sinks), run_ids, SyncConfig.from_environment())
    try:
        async with contextlib.AsyncExitStack() as stack:
            return await rounds.loop(
                stack,
                linger=_seconds(ENV_LINGER, DEFAULT_LINGER),
                idle=_seconds(ENV_IDLE, DEFAULT_IDLE),
                until_idle=until_idle,
                follow=follow,
                timeout=timeout,
                on_round=on_round,
            )
    finally:
        with anyio.CancelScope(shield=True):
            await rounds.release()
            with contextlib.suppress(Exception):
                journal.release_agent(store, owner)


class _Rounds:
    """The agent's loop: a round for each registered run of each sink, in turn."""

    def __init__(
        self,
        store: LocalStore,
        owner: str,
        sinks: list[Sink],
        run_ids: Sequence[int] | None,
        config: SyncConfig,
    ) -> None:
        self.store = store
        self.owner = owner
        self.sinks = {sink.name: sink for sink in sinks}
        self.run_ids = run_ids
        self.config = config
        self.connections: dict[str, Connection] = {}
        self.senders: dict[tuple[str, int], RunSender] = {}

    async def loop(
        self,
        stack: contextlib.AsyncExitStack,
        *,
        linger: float,
        idle: float,
        until_idle: bool,
        follow: bool,
        timeout: float | None,
        on_round: Callable[[list[SyncStatus]], None] | None,
    ) -> list[SyncStatus]:
        store, config = self.store, self.config
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        last_client = time.monotonic()
        idle_since: float | None = None
        served = _database_identity(store)
        while True:
            now = time.monotonic()
            if _database_identity(store) != served:
                # Gone, or deleted and made anew (`rm -rf store`, then a new run): its run
                # ids start over, and this agent's senders would send a new run as an old one.
                _log.warning("runstream: the store %s is gone or replaced; stopping", store.path)
                break
            live = journal.live_clients(store)
            if live:
                last_client = now
            await self._discover(stack)
            done_all, sent = await self._round_all()
            state = "sending" if not done_all else "idle"
            if not journal.claim_agent(store, self.owner, journal.AGENT_TTL, state, None):
                _log.warning("runstream: another agent took over %s", store.path)
                break
            if on_round is not None:
                on_round(self.statuses())
            if done_all and (until_idle or not live):
                if until_idle:
                    break
                idle_since = now if idle_since is None else idle_since
                if not follow and now - idle_since >= idle:
                    break
            else:
                idle_since = None
            if not follow and not live and not until_idle and now - last_client > linger:
                _log.warning(
                    "runstream: giving up after %.0fs with no training process; what "
                    "is left stays in %s (`runstream sync` sends it)",
                    linger,
                    store.path,
                )
                break
            if now > deadline:
                break
            # Straight on while a round left work; a pause when every run is done, or
            # waits (backing off, or watching other hosts) and no round ran.
            await anyio.sleep(0.02 if sent and not done_all else config.interval)
        return self.statuses()

    async def _discover(self, stack: contextlib.AsyncExitStack) -> None:
        """Senders for runs registered since the last round (a sink's clients are opened
        when its first run appears)."""
        for name, sink in self.sinks.items():
            for run_id in sink.run_ids(self.store, self.run_ids):
                if (name, run_id) in self.senders:
                    continue
                if name not in self.connections:
                    opened = sink.connect(self.store, self.owner, self.config)
                    self.connections[name] = await stack.enter_async_context(opened)
                self.senders[name, run_id] = self.connections[name].sender(run_id)

    async def _round_all(self) -> tuple[bool, bool]:
        """One round of every ready run: (all acknowledged or blocked, a round ran)."""
        done_all, sent = True, False
        for sender in list(self.senders.values()):
            if not sender.ready:
                done_all = done_all and sender.blocked is not None
                continue
            sent = True
            caught_up = await sender.round()
            if not caught_up and sender.blocked is None:
                done_all = False
        return done_all, sent

    def statuses(self) -> list[SyncStatus]:
        found = []
        for name, run_id in self.senders:
            with contextlib.suppress(Exception):  # a run deleted meanwhile
                found.append(self.sinks[name].status(self.store, run_id))
        return found

    async def release(self) -> None:
        for sender in self.senders.values():
            with contextlib.suppress(Exception):
                await sender.release()


def _database_identity(store: LocalStore) -> tuple[int, int] | None:
    try:
        found = os.stat(store.path / DB_NAME)
    except OSError:
        return None
    return found.st_dev, found.st_ino


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


# -- runstream sync -----------------------------------------------------------------------


def sync_store(
    store: LocalStore,
    run_ids: Sequence[int] | None = None,
    *,
    sinks: Sequence[str] | None = None,
    timeout: float = 300.0,
    follow: bool = False,
    on_round: Callable[[list[SyncStatus]], None] | None = None,
) -> list[SyncStatus]:
    """``runstream sync``: the agent's engine in the foreground until everything registered
    (or ``run_ids``; of ``sinks``) is acknowledged, blocked, or ``timeout`` passes;
    ``follow`` keeps serving. When the store's agent is running, follow its progress.

    :raises BackendError: when a sink refuses the credentials (nothing is sent)
    """
    chosen = available_sinks(sinks)
    wanted = {sink.name: sink.run_ids(store, run_ids) for sink in chosen}
    if not any(wanted.values()) and not follow:
        return []

    async def check() -> None:
        for sink in chosen:
            if wanted[sink.name]:
                outcome = await sink.check(store, wanted[sink.name])
                if outcome is not None and outcome.failure is Failure.AUTH:
                    raise BackendError(sink.credentials_message(outcome, store))

    def found() -> list[SyncStatus]:
        return [sink.status(store, i) for sink in chosen for i in sink.run_ids(store, run_ids)]

    async def main() -> list[SyncStatus]:
        await check()
        deadline = time.monotonic() + timeout
        while True:
            served = await serve(
                store,
                until_idle=not follow,
                follow=follow,
                timeout=max(0.0, deadline - time.monotonic()),
                run_ids=run_ids,
                sinks=[sink.name for sink in chosen],
                on_round=on_round,
            )
            if served is not None:
                return served
            # The store's agent is sending: wait with it until these runs are done.
            states = found()
            if on_round is not None:
                on_round(states)
            if all(s.state != "pending" for s in states) or time.monotonic() > deadline:
                return states
            await anyio.sleep(0.2)

    return anyio.run(main)


def statuses(store: LocalStore, run_ids: Sequence[int] | None = None) -> list[SyncStatus]:
    """The sync state of the store's registered runs (every sink), without network calls."""
    return [
        sink.status(store, run_id)
        for sink in available_sinks()
        for run_id in sink.run_ids(store, run_ids)
    ]

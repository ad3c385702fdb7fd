"""Command-line side of the SageMaker backend: ``sync``, ``status``, and ``--backend``.

``runstream sync [EXPERIMENT [RUN]]`` sends what the store holds and SageMaker has not
acknowledged (naming an experiment or run also registers it, so a run logged locally
can be published later); ``runstream status`` prints each registered run's sync state
without touching the network. ``runstream runs``/``show`` gain ``--backend sagemaker``,
which reads the runs back from SageMaker with the same tables and ``--json`` shapes.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, cast

from ._backend import BACKENDS
from ._cli import COMMANDS, command, table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._records import SyncStatus
    from ._store import LocalStore

__all__ = ()


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", nargs="?", help="only this experiment's runs")
    parser.add_argument("run", nargs="?", help="only this run")


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    _selection(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to keep trying (throttling, outages) before reporting what is left",
    )


def _selected_ids(store: LocalStore, args: argparse.Namespace, *, register: bool) -> list[int]:
    """Run ids the arguments name (registering them for sync if asked), or all registered."""
    from ._aws import _journal

    if not args.experiment:
        return [t.run_id for t in _journal.targets(store)]
    experiment = None if args.experiment == "-" else args.experiment.lower()
    if args.run:
        keys = [store.find_run(experiment, args.run.lower())]
    else:
        if experiment is not None:
            store.experiment(experiment)  # raises RunNotFoundError
        keys = [k for k, _ in store.run_keys(experiment, unassigned=experiment is None)]
    if register:
        from ._aws import check_sagemaker_name

        for key in keys:
            try:
                if key.experiment_name is not None:
                    check_sagemaker_name("experiment_name", key.experiment_name)
                check_sagemaker_name("run", key.run_name)
            except ValueError as exc:
                raise SystemExit(f"runstream sync: {exc}") from exc
            _journal.register(store, key.run_id)
    return [k.run_id for k in keys]


def _print(statuses: Sequence[SyncStatus]) -> None:
    print(
        table(
            ["experiment", "run", "state", "pending", "sent", "retried", "rejected", "calls",
             "files pending", "last error"],
            [
                (s.experiment_name, s.run_name, s.state, s.points_pending, s.points_sent,
                 s.points_retried, s.points_rejected, s.api_calls, s.files_pending,
                 s.last_error)
                for s in statuses
            ],
        )
    )  # fmt: skip


@command("sync", "send what SageMaker has not acknowledged yet (all registered runs by default)")(
    _sync_arguments
)
def _sync(args: argparse.Namespace, store: LocalStore) -> Any:
    from ._aws import sync_store

    statuses = sync_store(store, _selected_ids(store, args, register=True), timeout=args.timeout)
    if not args.json:
        _print(statuses)
    return statuses


@command("status", "the sync state of each run registered for SageMaker (no network)")(_selection)
def _status(args: argparse.Namespace, store: LocalStore) -> Any:
    try:
        from ._aws import statuses
    except ImportError:  # no aws extra: nothing can have been registered
        found: list[SyncStatus] = []
    else:
        found = statuses(store, _selected_ids(store, args, register=False))
    if not args.json:
        _print(found)
    return found


def _add_backend_option(name: str) -> None:
    """Give an existing read command ``--backend``; ``sagemaker`` swaps the store for a
    read-only view of SageMaker with the same methods, so the output is the same shape."""
    help_text, add_arguments, handler = COMMANDS[name]

    def add(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            default="local",
            help="read from the local store (default) or from SageMaker",
        )

    def handle(args: argparse.Namespace, store: LocalStore) -> Any:
        if args.backend == "sagemaker":
            from ._aws import SageMakerView

            return handler(args, cast("LocalStore", SageMakerView()))
        return handler(args, store)

    COMMANDS[name] = (help_text, add, handle)


for _name in ("runs", "show"):
    _add_backend_option(_name)

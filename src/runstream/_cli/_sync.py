"""Command-line side of the remote backends: ``sync`` and ``status``.

``runstream sync [EXPERIMENT [RUN]]`` runs the sync agent's engine in the foreground: it
sends what the store holds and SageMaker (``--backend mlflow``: the MLflow server of
``MLFLOW_TRACKING_URI``) has not acknowledged; naming an experiment or run also registers
it, so a run logged locally can be published later. ``runstream status`` prints each
registered run's sync state, for every backend, without touching the network.
(``runs``/``show --backend ...`` are in ``_browse``.)
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import Command, table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._core._batch import RunKey
    from .._core._records import SyncStatus
    from .._store import LocalStore

__all__ = ("COMMANDS",)


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
    parser.add_argument(
        "--follow",
        action="store_true",
        help="keep serving as the store's agent (new data of running trainings) until Ctrl-C",
    )
    parser.add_argument(
        "--backend",
        dest="sync_backend",
        choices=("sagemaker", "mlflow"),
        default="sagemaker",
        help="where to send (mlflow: the server of MLFLOW_TRACKING_URI)",
    )


def _selected_ids(
    store: LocalStore, args: argparse.Namespace, backend: str | None, *, register: bool
) -> list[int] | None:
    """Run ids the arguments name (registering them for ``backend`` if asked), or None:
    every registered run."""
    if not args.experiment:
        return None
    experiment = None if args.experiment == "-" else args.experiment.lower()
    if args.run:
        keys = [store.find_run(experiment, args.run.lower())]
    else:
        if experiment is not None:
            store.experiment(experiment)  # raises RunNotFoundError
        keys = [k for k, _ in store.run_keys(experiment, unassigned=experiment is None)]
    if register and backend == "mlflow":
        _register_mlflow(store, keys)
    elif register:
        _register_sagemaker(store, keys)
    return [k.run_id for k in keys]


def _register_sagemaker(store: LocalStore, keys: Sequence[RunKey]) -> None:
    from .._backends import _journal
    from .._backends.sagemaker import check_sagemaker_name

    for key in keys:
        try:
            if key.experiment_name is not None:
                check_sagemaker_name("experiment_name", key.experiment_name)
            check_sagemaker_name("run", key.run_name)
        except ValueError as exc:
            raise SystemExit(f"runstream sync: {exc}") from exc
        _journal.register(store, key.run_id)


def _register_mlflow(store: LocalStore, keys: Sequence[RunKey]) -> None:
    from .._backends.mlflow import EndpointError, _journal, endpoint_from_uri

    try:
        uri = endpoint_from_uri().uri
    except EndpointError as exc:
        raise SystemExit(f"runstream sync: {exc}") from exc
    for key in keys:
        _journal.register(store, key.run_id, uri)


def _print(statuses: Sequence[SyncStatus], agent: str | None = None) -> None:
    print(
        table(
            ["experiment", "run", "state", "pending", "lag s", "stride", "sent", "retried",
             "rejected", "calls", "files pending", "last error"],
            [
                (s.experiment_name, s.run_name, s.state, s.points_pending, s.lag_seconds,
                 s.stride, s.points_sent, s.points_retried, s.points_rejected, s.api_calls,
                 s.files_pending, s.last_error)
                for s in statuses
            ],
        )
    )  # fmt: skip
    if agent is not None:
        print(f"agent: {agent}")


def _sync(args: argparse.Namespace, store: LocalStore) -> Any:
    import sys

    from .._backends._agent import sync_store
    from .._backends._journal import agent_description

    backend = args.sync_backend
    ids = _selected_ids(store, args, backend, register=True)
    progress = _Progress() if sys.stdout.isatty() and not args.json else None
    try:
        statuses = sync_store(
            store,
            None if args.follow and not args.experiment else ids,
            sinks=[backend],
            timeout=float("inf") if args.follow else args.timeout,
            follow=args.follow,
            on_round=None if progress is None else progress.update,
        )
    except KeyboardInterrupt:
        statuses = []
    finally:
        if progress is not None:
            progress.stop()
    if not args.json:
        _print(statuses, agent_description(store))
    return statuses


class _Progress:
    """A progress bar of the data acknowledged (rich; only on a terminal)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("syncing"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} data"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._bar.add_task("sync", total=None, detail="")
        self._bar.start()

    def update(self, statuses: list[SyncStatus]) -> None:
        sent = sum(s.data_sent for s in statuses)
        left = sum(s.data_pending for s in statuses)
        files = sum(s.files_pending for s in statuses)
        detail = f"{files} files pending" if files else ""
        self._bar.update(self._task, completed=sent, total=sent + left, detail=detail)

    def stop(self) -> None:
        self._bar.stop()


def _status(args: argparse.Namespace, store: LocalStore) -> Any:
    from .._backends._agent import statuses
    from .._backends._journal import agent_description

    found = statuses(store, _selected_ids(store, args, None, register=False))
    if not args.json:
        _print(found, agent_description(store) if found else None)
    return found


COMMANDS: tuple[Command, ...] = (
    Command(
        "sync",
        "send what SageMaker (or, with --backend mlflow, MLflow) has not acknowledged yet "
        "(all registered runs by default)",
        _sync_arguments,
        _sync,
        writes=True,
    ),
    Command(
        "status",
        "the sync state of each run registered for SageMaker or MLflow (no network)",
        _selection,
        _status,
    ),
)

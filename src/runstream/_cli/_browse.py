"""Commands that browse a store: experiments, runs, show, series, stragglers, delete.

``runs`` and ``show`` also read from SageMaker (``--backend sagemaker``), and ``runs``,
``show`` and ``series`` from an MLflow server (``--backend mlflow``): read-only views with
the store's reading methods, so the tables and ``--json`` shapes are the same.

"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .._backends import BACKENDS
from .._core._exceptions import RunNotFoundError
from .._core._names import did_you_mean
from ._common import Command, columns_argument, no_arguments, select_columns, table, when

if TYPE_CHECKING:
    from .._core._records import RunRecord
    from .._store import LocalStore

__all__ = ("COMMANDS", "runs_table")


def _backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="read from the local store (default), from SageMaker, or from the MLflow "
        "server of MLFLOW_TRACKING_URI",
    )


def _source(args: argparse.Namespace, store: LocalStore) -> LocalStore:
    """The store, or SageMaker read through the same methods when ``--backend`` says so."""
    backend = getattr(args, "backend", "local")
    if backend == "sagemaker":
        from .._backends.sagemaker import SageMakerView

        return cast("LocalStore", SageMakerView())
    if backend == "mlflow":
        from .._backends.mlflow._read import MLflowView

        return cast("LocalStore", MLflowView())
    return store


def _experiments(args: argparse.Namespace, store: LocalStore) -> Any:
    records = store.list_experiments()
    if not args.json:
        print(
            table(
                ["experiment", "runs", "created"],
                [(r.experiment_name, r.run_count, when(r.created)) for r in records],
            )
        )
    return records


def _runs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment", nargs="?", help="the experiment ('-' or --unassigned: the unassigned runs)"
    )
    parser.add_argument("--unassigned", action="store_true", help="runs with no experiment")
    columns_argument(parser)
    _backend_option(parser)


def _runs(args: argparse.Namespace, store: LocalStore) -> Any:
    store = _source(args, store)
    unassigned = args.unassigned or args.experiment == "-"
    if not unassigned and not args.experiment:
        raise SystemExit("runstream runs: name an EXPERIMENT, or '-' for the unassigned runs")
    experiment = None if unassigned else args.experiment.lower()
    if experiment is not None:
        store.experiment(experiment)
    keys = store.run_keys(experiment, unassigned=unassigned)
    records = store.records([k for k, _ in keys])
    if not args.json:
        print(runs_table(records, args.columns))
    return records


def runs_table(records: Sequence[RunRecord], columns: str | None = None) -> str:
    """Runs as rows: status, times, then one column per parameter and per metric's last
    (those ``columns`` names, or as many as fit a terminal)."""
    params = sorted({p for r in records for p in r.parameters})
    metrics = sorted({m for r in records for m in r.metrics})
    headers = ["run", "status", "started", *params, *(f"{m} (last)" for m in metrics)]
    rows: list[list[object]] = [
        [
            r.run_name,
            r.status,
            when(r.start_time),
            *(r.parameters.get(p) for p in params),
            *(r.metrics[m].last if m in r.metrics else None for m in metrics),
        ]
        for r in records
    ]
    aliases = {f"{m} (last)": m for m in metrics}
    headers, rows, note = select_columns(headers, rows, columns, aliases=aliases)
    return table(headers, rows) + (f"\n{note}" if note else "")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="the experiment ('-' for an unassigned run)")
    parser.add_argument("run", help="the run")


def _find(store: LocalStore, experiment: str, run: str) -> Any:
    return store.find_run(None if experiment == "-" else experiment.lower(), run.lower())


def _find_metric(store: LocalStore, args: argparse.Namespace) -> Any:
    """The run of ``args``, checking it has ``args.metric`` (an error names what it has)."""
    key = _find(store, args.experiment, args.run)
    names = store.metric_names(key.run_id)
    if args.metric not in names:
        raise RunNotFoundError(
            f"run {key.run_name!r} has no metric named {args.metric!r}"
            + (did_you_mean(args.metric, names) or "; it has no metrics")
        )
    worker = getattr(args, "worker", None)
    if worker is not None:
        workers = store.workers_of_metric(key.run_id, args.metric)
        if worker not in workers:
            raise RunNotFoundError(
                f"no worker {worker!r} logged {args.metric!r} in run {key.run_name!r}"
                + did_you_mean(worker, workers)
            )
    return key


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser)
    _backend_option(parser)


def _show(args: argparse.Namespace, store: LocalStore) -> Any:
    store = _source(args, store)
    record = store.records([_find(store, args.experiment, args.run)])[0]
    if not args.json:
        print(f"run         {record.run_name}")
        print(f"experiment  {record.experiment_name or '(unassigned)'}")
        status = (record.status or "not entered yet") + (
            f": {record.message}" if record.message else ""
        )
        print(f"status      {status}")
        print(f"started     {when(record.start_time)}")
        print(f"ended       {when(record.end_time)}\n")
        if record.parameters:
            print(table(["parameter", "value"], sorted(record.parameters.items())), "\n")
        if record.metrics:
            print(
                table(
                    ["metric", "min", "max", "avg", "std", "last", "count"],
                    [
                        (n, m.min, m.max, m.avg, m.std, m.last, m.count)
                        for n, m in sorted(record.metrics.items())
                    ],
                ),
                "\n",
            )
        arts = [("input", n, a.value, a.media_type) for n, a in record.artifacts.input.items()]
        arts += [("output", n, a.value, a.media_type) for n, a in record.artifacts.output.items()]
        if arts:
            print(table(["direction", "artifact", "value", "media type"], arts), "\n")
        if record.parameter_conflicts:
            conflicts = [
                (name, worker, value)
                for name, values in sorted(record.parameter_conflicts.items())
                for worker, value in sorted(values.items())
            ]
            print("parameters that workers set differently:")
            print(table(["parameter", "worker", "value"], conflicts), "\n")
        if len(record.workers) > 1 or record.status != "Completed":
            print(
                table(
                    ["worker", "status", "started", "ended", "message"],
                    [
                        (w.worker, w.status, when(w.start_time), when(w.end_time), w.message)
                        for w in record.workers
                    ],
                )
            )
    return record


def _series_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser)
    parser.add_argument("metric", help="the metric")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--worker", help="one worker's series instead of the merged one")
    view.add_argument(
        "--by-worker", action="store_true", help="every worker's series (JSON: worker -> rows)"
    )
    parser.add_argument(
        "--backend",
        choices=("local", "mlflow"),
        default="local",
        help="read from the local store (default) or from the MLflow server of "
        "MLFLOW_TRACKING_URI (the merged series)",
    )


def _series_table(rows: Sequence[Any]) -> str:
    return table(
        ["step", "count", "mean", "min", "max", "std", "last", "time"],
        [(r.step, r.count, r.mean, r.min, r.max, r.std, r.last, when(r.timestamp)) for r in rows],
    )


def _series(args: argparse.Namespace, store: LocalStore) -> Any:
    store = _source(args, store)
    key = _find_metric(store, args)
    if args.by_worker:
        views = {w: s.rows() for w, s in store.worker_series(key.run_id, args.metric).items()}
        if not args.json:
            for worker, rows in views.items():
                print(f"worker {worker}\n{_series_table(rows)}\n")
        return views
    rows = store.series(key.run_id, args.metric, args.worker).rows()
    if not args.json:
        print(_series_table(rows))
    return rows


def _stragglers_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser)
    parser.add_argument("metric", help="a metric where larger is slower, such as a step time")


def _stragglers(args: argparse.Namespace, store: LocalStore) -> Any:
    key = _find_metric(store, args)
    stragglers = store.stragglers(key.run_id, args.metric)
    rows = stragglers.rows()
    if not args.json:
        print(
            table(
                ["step", "slowest worker", "value", "mean over workers", "workers"],
                [(r.step, r.worker, r.value, r.mean, r.workers) for r in rows],
            )
        )
        counts = stragglers.slowest_counts()
        print("\n" + table(["worker", "steps slowest"], sorted(counts.items())))
    return {"rows": rows, "slowest_counts": stragglers.slowest_counts()}


def _delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="the experiment ('-' for the unassigned runs, with RUN)")
    parser.add_argument("run", nargs="?", help="only this run (default: the whole experiment)")
    parser.add_argument(
        "-y", "--yes", action="store_true", help="do not ask (needed when not on a terminal)"
    )


def _delete(args: argparse.Namespace, store: LocalStore) -> Any:
    experiment = None if args.experiment == "-" else args.experiment.lower()
    if args.run is None:
        if experiment is None:
            raise SystemExit("runstream delete: '-' deletes one unassigned run: name the RUN")
        runs = len(store.run_keys(store.experiment(experiment).experiment_name))
        what = f"experiment {experiment!r} and its {runs} run(s)"
    else:
        key = store.find_run(experiment, args.run.lower())
        where = f"experiment {experiment!r}" if experiment else "the unassigned runs"
        what = f"run {key.run_name!r} of {where}"
    _confirm(args, f"delete {what}, with their metrics and stored files")
    if args.run is None:
        assert experiment is not None
        store.delete_experiment(experiment)
        result: dict[str, Any] = {"experiment_name": experiment, "deleted_runs": runs}
    else:
        store.delete_run(key)
        result = {"experiment_name": experiment, "run_name": key.run_name, "deleted_runs": 1}
    if not args.json:
        print(f"deleted {what}")
    return result


def _confirm(args: argparse.Namespace, action: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise SystemExit(f"runstream delete: would {action}; pass --yes to confirm")
    answer = input(f"{action[0].upper()}{action[1:]}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise SystemExit("runstream delete: nothing deleted")


COMMANDS: tuple[Command, ...] = (
    Command("experiments", "list the experiments in the store", no_arguments, _experiments),
    Command(
        "runs",
        "list the runs of an experiment, with parameters and metric summaries",
        _runs_arguments,
        _runs,
    ),
    Command(
        "show",
        "show one run: status, parameters, metrics, artifacts, workers",
        _show_arguments,
        _show,
    ),
    Command(
        "series",
        "print a metric's series by step (merged over workers, or per worker)",
        _series_arguments,
        _series,
    ),
    Command(
        "stragglers",
        "per step, the worker with the largest value of a metric",
        _stragglers_arguments,
        _stragglers,
    ),
    Command(
        "delete",
        "delete an experiment, or one run, with its metrics and files (asks first)",
        _delete_arguments,
        _delete,
        writes=True,
    ),
)

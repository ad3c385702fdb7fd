"""The ``runstream`` command line: browse a store from a terminal or a script.

Every command takes ``--store`` (default: ``$RUNSTREAM_STORE``, else ``./.runstream``) and
``--json`` for machine-readable output with the field names of :mod:`runstream._records`;
without ``--json`` it prints aligned tables for people. Commands register themselves in
``COMMANDS`` so later features add a module, not a branch here.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ._exceptions import RunNotFoundError, RunstreamError
from ._store import LocalStore

if TYPE_CHECKING:
    from ._records import RunRecord

__all__ = ("COMMANDS", "main", "table")

Handler = Callable[[argparse.Namespace, LocalStore], Any]
#: name -> (help, add_arguments, handler). A handler returns what ``--json`` prints and
#: prints its own table otherwise.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}

_json = msgspec.json.Encoder()


def command(
    name: str, help: str
) -> Callable[[Callable[[argparse.ArgumentParser], None]], Callable[[Handler], Handler]]:
    def with_arguments(
        add: Callable[[argparse.ArgumentParser], None],
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            COMMANDS[name] = (help, add, handler)
            return handler

        return register

    return with_arguments


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned columns; numbers right-aligned and shortened to 6 significant digits."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


# -- commands ---------------------------------------------------------------------------


@command("experiments", "list the experiments in the store")(_no_arguments)
def _experiments(args: argparse.Namespace, store: LocalStore) -> Any:
    records = store.list_experiments()
    if not args.json:
        print(
            table(
                ["experiment", "runs", "created"],
                [(r.experiment_name, r.run_count, _time(r.created)) for r in records],
            )
        )
    return records


def _runs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", nargs="?", help="the experiment (omit with --unassigned)")
    parser.add_argument("--unassigned", action="store_true", help="runs with no experiment")


@command("runs", "list the runs of an experiment, with parameters and metric summaries")(
    _runs_arguments
)
def _runs(args: argparse.Namespace, store: LocalStore) -> Any:
    if not args.unassigned and not args.experiment:
        raise SystemExit("runstream runs: name an EXPERIMENT or pass --unassigned")
    if not args.unassigned:
        store.experiment(args.experiment.lower())
    keys = store.run_keys(
        None if args.unassigned else args.experiment.lower(), unassigned=args.unassigned
    )
    records = store.records([k for k, _ in keys])
    if not args.json:
        print(runs_table(records))
    return records


def runs_table(records: Sequence[RunRecord]) -> str:
    """Runs as rows: status, times, then one column per parameter and per metric's last."""
    params = sorted({p for r in records for p in r.parameters})
    metrics = sorted({m for r in records for m in r.metrics})
    headers = ["run", "status", "started", *params, *(f"{m} (last)" for m in metrics)]
    rows = [
        [
            r.run_name,
            r.status,
            _time(r.start_time),
            *(r.parameters.get(p) for p in params),
            *(r.metrics[m].last if m in r.metrics else None for m in metrics),
        ]
        for r in records
    ]
    return table(headers, rows)


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
            f"run {key.run_name!r} has no metric named {args.metric!r}; it has: "
            + (", ".join(names) or "none")
        )
    return key


@command("show", "show one run: status, parameters, metrics, artifacts, workers")(_run_arguments)
def _show(args: argparse.Namespace, store: LocalStore) -> Any:
    record = store.records([_find(store, args.experiment, args.run)])[0]
    if not args.json:
        print(f"run         {record.run_name}")
        print(f"experiment  {record.experiment_name or '(unassigned)'}")
        status = record.status + (f": {record.message}" if record.message else "")
        print(f"status      {status}")
        print(f"started     {_time(record.start_time)}")
        print(f"ended       {_time(record.end_time)}\n")
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
                        (w.worker, w.status, _time(w.start_time), _time(w.end_time), w.message)
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


def _series_table(rows: Sequence[Any]) -> str:
    return table(
        ["step", "count", "mean", "min", "max", "std", "last", "time"],
        [(r.step, r.count, r.mean, r.min, r.max, r.std, r.last, _time(r.timestamp)) for r in rows],
    )


@command("series", "print a metric's series by step (merged over workers, or per worker)")(
    _series_arguments
)
def _series(args: argparse.Namespace, store: LocalStore) -> Any:
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


@command("stragglers", "per step, the worker with the largest value of a metric")(
    _stragglers_arguments
)
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
    parser.add_argument("experiment", help="the experiment to delete with all its runs")


@command("delete", "delete an experiment and all its runs")(_delete_arguments)
def _delete(args: argparse.Namespace, store: LocalStore) -> Any:
    runs = store.delete_experiment(args.experiment.lower())
    result = {"experiment_name": args.experiment.lower(), "deleted_runs": runs}
    if not args.json:
        print(f"deleted experiment {args.experiment.lower()!r} and {runs} run(s)")
    return result


# Commands kept in their own modules register themselves when imported.
from . import _cli_analysis  # noqa: E402, F401

# -- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import _sync_cli  # noqa: F401  (registers sync, status and --backend)

    parser = argparse.ArgumentParser(
        prog="runstream", description="Browse runstream experiments and runs."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", help="store directory (default: $RUNSTREAM_STORE, else ./.runstream)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, parents=[common], description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, _, handler = COMMANDS[args.command]
    try:
        with LocalStore(args.store) as store:
            result = handler(args, store)
    except RunstreamError as exc:
        print(f"runstream {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.buffer.write(_json.encode(result) + b"\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

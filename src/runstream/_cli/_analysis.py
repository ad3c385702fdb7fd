"""Commands to analyse and show runs: compare, best, export, report, demo and ui.

As everywhere in the CLI, ``-`` names the unassigned runs where an experiment is expected.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import io
import signal
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .._core._exceptions import RunNotFoundError
from .._core._json import jsonable
from .._core._names import did_you_mean
from .._run._analytics import STATISTICS, read_runs, run_table, select_best
from ._common import Command, table

if TYPE_CHECKING:
    from .._core._records import RunRecord
    from .._store import LocalStore

__all__ = (
    "COMMANDS",
    "EXPORT_FORMATS",
    "compare_table",
    "series_rows",
    "stat_name",
)

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
_json = msgspec.json.Encoder()


def _experiment(name: str) -> str | None:
    return None if name == "-" else name.lower()


def _experiment_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="the experiment ('-' for the unassigned runs)")


def stat_name(value: str) -> str:
    """``--stat`` in any case, or by its field name: ``min``, ``MIN``, ``std`` -> ``StdDev``."""
    for name, field in STATISTICS.items():
        if value.lower() in (name.lower(), field):
            return name
    raise argparse.ArgumentTypeError(
        f"must be one of {', '.join(STATISTICS)} (any case), got {value!r}"
    )


def _stat_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stat",
        default="Last",
        type=stat_name,
        metavar="{" + ",".join(STATISTICS) + "}",
        help="which summary of each metric to use, in any case (default: Last)",
    )


def _check_metrics(records: list[RunRecord], wanted: list[str] | None) -> None:
    """Every metric named must be logged by some run (an error suggests the close ones)."""
    known = {m for r in records for m in r.metrics}
    for name in wanted or ():
        if name not in known:
            raise RunNotFoundError(
                f"no run here has a metric named {name!r}"
                + (did_you_mean(name, known) or "; the runs have no metrics")
            )


# -- compare ----------------------------------------------------------------------------


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    _experiment_argument(parser)
    parser.add_argument("runs", nargs="*", metavar="RUN", help="runs to compare (default: all)")
    parser.add_argument("--metric", action="append", help="only this metric (repeatable)")
    _stat_argument(parser)


def _compare(args: argparse.Namespace, store: LocalStore) -> Any:
    experiment = _experiment(args.experiment)
    if args.runs:
        keys = [store.find_run(experiment, name.lower()) for name in args.runs]
        records = store.records(keys)
    else:
        records = read_runs(store, experiment)
    _check_metrics(records, args.metric)
    if not args.json:
        print(compare_table(records, args.metric, STATISTICS[args.stat], args.stat))
    return records


def compare_table(
    records: list[RunRecord], metrics: list[str] | None, field: str, stat: str
) -> str:
    """One column per run; a row per parameter (``*`` marks those that differ) and metric."""
    params = sorted({p for r in records for p in r.parameters})
    names = metrics or sorted({m for r in records for m in r.metrics})
    rows: list[list[object]] = [["status", *(r.status for r in records)]]
    for p in params:
        values = [r.parameters.get(p) for r in records]
        differs = len({repr(v) for v in values}) > 1
        rows.append([f"{p} *" if differs else p, *values])
    rows.extend(
        [
            f"{m} ({stat})",
            *(getattr(r.metrics[m], field) if m in r.metrics else None for r in records),
        ]
        for m in names
    )
    return table(["", *(r.run_name for r in records)], rows)


# -- best -------------------------------------------------------------------------------


def _best_arguments(parser: argparse.ArgumentParser) -> None:
    _experiment_argument(parser)
    parser.add_argument("metric", help="the metric that decides")
    parser.add_argument(
        "--maximize", action="store_true", help="higher is better (default: lower, as a loss)"
    )
    _stat_argument(parser)


def _best(args: argparse.Namespace, store: LocalStore) -> Any:
    runs = read_runs(store, _experiment(args.experiment))
    _check_metrics(runs, [args.metric])
    record, value = select_best(runs, args.metric, maximize=args.maximize, stat=args.stat)
    if not args.json:
        direction = "highest" if args.maximize else "lowest"
        print(
            f"best run by {args.metric} ({args.stat}, {direction}): {record.run_name} = {value:.6g}"
        )
        params = sorted(record.parameters.items())
        if params:
            print(table(["parameter", "value"], params))
    return {
        "experiment_name": record.experiment_name,
        "run_name": record.run_name,
        "metric": args.metric,
        "stat": args.stat,
        "maximize": args.maximize,
        "value": value,
        "run": record,
    }


# -- export -----------------------------------------------------------------------------


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    _experiment_argument(parser)
    parser.add_argument("-o", "--output", help="the file to write (default: standard output)")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="csv, jsonl or parquet (needs pyarrow); default: from the file's extension, else csv",
    )
    parser.add_argument(
        "--series",
        action="store_true",
        help="every metric's series by step (one row per run, metric and step) instead of "
        "one row per run with the ExperimentAnalytics columns",
    )


def _export(args: argparse.Namespace, store: LocalStore) -> Any:
    fmt = args.format or _format_of(args.output)
    if args.output is None and (fmt == "parquet" or args.json):
        raise SystemExit(f"runstream export: --format {fmt} and --json need -o FILE")
    runs = read_runs(store, _experiment(args.experiment))
    rows = series_rows(store, runs) if args.series else run_table(runs)
    data = _encode(rows, fmt)
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return None
    Path(args.output).write_bytes(data)
    if not args.json:
        print(f"wrote {len(rows)} rows to {args.output} ({fmt})")
    return {"path": str(Path(args.output).absolute()), "format": fmt, "rows": len(rows)}


def _format_of(output: str | None) -> str:
    """The format a file's extension names; CSV with no file or no extension. Any other
    extension is refused (``x.xlsx`` would otherwise hold CSV under Excel's name)."""
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    aliases = {"ndjson": "jsonl", "pq": "parquet", "": "csv", "txt": "csv"}
    fmt = aliases.get(suffix, suffix)
    if fmt not in EXPORT_FORMATS:
        raise SystemExit(
            f"runstream export: cannot write .{suffix} files; use a .csv, .jsonl or .parquet "
            "name, or say which with --format"
        )
    return fmt


def series_rows(store: LocalStore, runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Each run's metrics, merged over workers, one row per step ("long" format)."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        key = store.find_run(run.experiment_name, run.run_name)
        for metric in sorted(run.metrics):
            for r in store.series(key.run_id, metric).rows():
                row = msgspec.structs.asdict(r)
                del row["name"]
                rows.append(
                    {
                        "ExperimentName": run.experiment_name,
                        "RunName": run.run_name,
                        "MetricName": metric,
                        **row,
                    }
                )
    return rows


def _encode(rows: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "jsonl":
        return b"".join(_json.encode(jsonable(row)) + b"\n" for row in rows)
    columns = list(dict.fromkeys(c for row in rows for c in row))
    if fmt == "parquet":
        return _parquet(rows, columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: _json.encode(v).decode() if isinstance(v, list) else v for k, v in row.items()}
        )
    return out.getvalue().encode()


def _parquet(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    try:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise SystemExit(
            "runstream export: Parquet needs pyarrow (pip install pyarrow); "
            "or use --format csv or jsonl"
        ) from None
    try:
        frame = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SystemExit(
            f"runstream export: cannot write Parquet ({exc}); a column mixes numbers and "
            "strings across runs; use --format csv or jsonl"
        ) from None
    sink = io.BytesIO()
    pq.write_table(frame, sink)
    return sink.getvalue()


# -- report -----------------------------------------------------------------------------


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    _experiment_argument(parser)
    parser.add_argument(
        "-o", "--output", help="the HTML file (default: runstream-report-EXPERIMENT.html)"
    )
    parser.add_argument("--metric", action="append", help="only this metric (repeatable)")
    parser.add_argument("--run", action="append", help="only this run (repeatable)")


def _report(args: argparse.Namespace, store: LocalStore) -> Any:
    from .._ui._report import build_report

    experiment = _experiment(args.experiment)
    runs = [n.lower() for n in args.run] if args.run else None
    try:
        page = build_report(store, experiment, metrics=args.metric, run_names=runs)
    except ValueError as exc:
        raise SystemExit(f"runstream report: {exc}") from None
    output = Path(args.output or f"runstream-report-{experiment or 'unassigned'}.html")
    output.write_text(page, encoding="utf-8")
    if not args.json:
        print(f"wrote {output} ({len(page.encode()) / 1024:.0f} KiB); open it in a browser")
    return {"path": str(output.absolute()), "bytes": len(page.encode())}


# -- demo -------------------------------------------------------------------------------


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _demo(args: argparse.Namespace, store: LocalStore) -> Any:
    from ._demo import run_demo

    result = run_demo(store.path)
    if not args.json:
        exp = result.experiment_name
        flag = "" if args.store is None else f" --store {args.store}"
        print(
            f"runstream demo: trained {len(result.run_names)} runs of experiment {exp!r} "
            f"and 1 unassigned run in {result.seconds:.1f} s"
        )
        print(f"  a learning-rate sweep: {', '.join(result.run_names[:-2])}")
        print(
            f"  {result.diverged_run}: the loss diverged to NaN at step {result.diverged_at} "
            "(run Failed; the NaN is kept)"
        )
        print(f"  {result.parallel_run}: two workers logging into one run")
        print(
            f"  {result.unassigned_run} (unassigned): evaluates the best run, "
            f"{result.best_run}, and logs confusion.csv; test accuracy "
            f"{result.best_accuracy:.3f}"
        )
        print(f"\nResults are in {store.path}\n\nLook at them:")
        print(f"  runstream ui{flag}        # the dashboard, at http://127.0.0.1:8765/")
        print(f"  runstream runs {exp}{flag}")
        print(f"  runstream best {exp} val_accuracy --maximize{flag}")
        print(f"  runstream report {exp}{flag}   # one HTML file with the charts")
    return dataclasses.asdict(result)


# -- ui ---------------------------------------------------------------------------------


def _ui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any free)")
    parser.add_argument("--open", action="store_true", help="open the dashboard in a browser")


def _ui(args: argparse.Namespace, store: LocalStore) -> Any:
    from .._ui._server import Dashboard

    if not 0 <= args.port <= 65535:
        raise SystemExit(f"runstream ui: --port must be 0 to 65535, got {args.port}")
    try:
        dashboard = Dashboard(store, args.host, args.port)
    except OSError as exc:
        raise SystemExit(
            f"runstream ui: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "pass another --port, or --port 0 for any free one"
        ) from None
    # Ctrl-C and SIGTERM stop the server, even when it was started in the background,
    # where the shell leaves SIGINT ignored and Python then never raises KeyboardInterrupt.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(f"runstream ui: serving {store.path} at {dashboard.url} (Ctrl-C to stop)", flush=True)
        if args.open:
            webbrowser.open(dashboard.url)
        dashboard.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        dashboard.close()
    return {"url": dashboard.url}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


COMMANDS: tuple[Command, ...] = (
    Command(
        "compare",
        "compare runs side by side: parameters and metric summaries",
        _compare_arguments,
        _compare,
    ),
    Command("best", "the best run of an experiment by a metric", _best_arguments, _best),
    Command(
        "export",
        "export runs (or their series) as CSV, JSON lines or Parquet",
        _export_arguments,
        _export,
    ),
    Command(
        "report",
        "write one self-contained HTML file with an experiment's runs and charts",
        _report_arguments,
        _report,
    ),
    Command(
        "demo",
        "train a small numpy model as a few runs, then show where to look",
        _demo_arguments,
        _demo,
        writes=True,
    ),
    Command(
        "ui",
        "serve the local web dashboard (experiments, runs, charts, comparisons)",
        _ui_arguments,
        _ui,
    ),
)

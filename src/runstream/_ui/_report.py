"""``runstream report``: one self-contained HTML file with an experiment's runs and charts.

Everything is inlined (uPlot, the chart code, the styles and the data as JSON), so the file
opens anywhere, offline, attached to a pull request or an email. Series are downsampled for
display to ``points`` buckets per line, as the dashboard does; the store keeps every step.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from .._core._json import dumps
from .._core._version import VERSION
from .._run._analytics import read_runs
from .._store import run_graphs
from ._api import series_lines
from ._server import static_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._core._records import RunRecord
    from .._store import LocalStore

__all__ = ("build_report",)

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header class="top"><span class="brand">runstream</span><span class="muted">report</span></header>
<main id="view"></main>
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def build_report(
    store: LocalStore,
    experiment_name: str | None,
    *,
    metrics: Sequence[str] | None = None,
    run_names: Sequence[str] | None = None,
    points: int = 800,
) -> str:
    """The report's HTML: the experiment's (or the unassigned) runs, one chart per metric.

    :param metrics: the metrics to chart (default: all)
    :param run_names: the runs to include (default: all)
    :raises RunNotFoundError: the experiment, or a named run, does not exist
    :raises ValueError: a named metric was logged by none of the runs
    """
    runs = read_runs(store, experiment_name)
    if run_names is not None:
        runs = [store.records([store.find_run(experiment_name, n)])[0] for n in run_names]
    logged = sorted({m for r in runs for m in r.metrics})
    missing = [m for m in metrics or () if m not in logged]
    if missing:
        raise ValueError(f"no run logged the metric(s) {missing}; logged: {logged}")
    charts = [_chart(store, runs, m, points) for m in (metrics or logged)]
    title = f"runstream report: {experiment_name or 'unassigned runs'}"
    data = {
        "title": title,
        "experiment_name": experiment_name,
        "store": str(store.path),
        "generated": time.time(),
        "version": VERSION,
        "runs": runs,
        "charts": charts,
        "graphs": _graphs(store, runs),
    }
    # "</" cannot end the script element early when written as the equivalent "<\/".
    payload = dumps(data).decode().replace("</", "<\\/")
    scripts = ("uPlot.iife.min.js", "charts.js", "graphs.js", "report.js")
    js = "\n".join(static_text(n) for n in scripts)
    css = "\n".join(static_text(n) for n in ("uPlot.min.css", "app.css"))
    return _TEMPLATE.format(title=html.escape(title), css=css, data=payload, js=js)


def _graphs(store: LocalStore, runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Each run's graphs, for the runs that logged any."""
    found = []
    for run in runs:
        key = store.find_run(run.experiment_name, run.run_name)
        graphs = run_graphs(store, key.run_id)
        if graphs:
            found.append({"run": run.run_name, "graphs": graphs})
    return found


def _chart(store: LocalStore, runs: list[RunRecord], metric: str, points: int) -> dict[str, Any]:
    having = [r for r in runs if metric in r.metrics]
    stats = [
        store.step_stats(store.find_run(r.experiment_name, r.run_name).run_id, metric)
        for r in having
    ]
    chart = series_lines(metric, stats, [None] * len(stats), points)
    for line, run in zip(chart["lines"], having, strict=True):
        line["label"] = run.run_name
    return chart

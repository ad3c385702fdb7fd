"""Dashboard benchmarks: first paint of a run page, a chart of a 1M-point series, 10,000 runs.

Builds a temporary store (one run with a 1,000,000-step metric, one experiment of 10,000
runs), serves it with ``runstream ui``'s server on 127.0.0.1 and loads the pages in the
system's headless Chromium. Browser times come from the page's own Performance API
(navigation start to ``first-contentful-paint`` and to the app's ``rs:*`` marks). Prints
medians of ``--repeat`` loads, and the machine.

    python benchmarks/bench_ui.py [--runs 10000] [--points 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

import runstream
from runstream import Run
from runstream._core._aggregate import from_points
from runstream._core._batch import Batch, ParameterWrite
from runstream._store import LocalStore
from runstream._ui._server import Dashboard

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def build_store(path: Path, runs: int, points: int) -> None:
    started = time.perf_counter()
    values = np.cumsum(np.random.default_rng(0).normal(0, 1, points)).tolist()
    with Run("bench", "long", store=path, capacity=points + 1) as run:
        for step, value in enumerate(values):
            run.log_metric("loss", value, step=step)
    with LocalStore(path) as store:
        steps = np.arange(10, dtype=np.int64)
        for i in range(runs):
            key = store.ensure_run("many", f"run-{i:05d}")
            store.set_worker_status(key.run_id, "w", "Completed", started=time.time())
            now = time.time()
            batch = Batch(key.run_id, "w")
            batch.parameters = [
                ParameterWrite("learning_rate", 10 ** -(i % 5), now),
                ParameterWrite("batch_size", 2 ** (i % 8), now),
                ParameterWrite("optimizer", "adam" if i % 2 else "sgd", now),
            ]
            loss = np.exp(-steps / (1 + i % 7))
            batch.metrics = {"loss": from_points(steps, loss, np.full(10, now))}
            store.write(batch)
    print(
        f"built the store in {time.perf_counter() - started:.1f} s: 1 run of {points:,} "
        f"steps, {runs:,} runs in one experiment"
    )


def http_ms(port: int, path: str, query: dict[str, Any], repeat: int) -> tuple[float, float, int]:
    """The first request's time (nothing cached), the median of the rest, the body size."""
    times, size = [], 0
    for _ in range(repeat + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.perf_counter()
        conn.request("GET", f"{path}?{urlencode(query)}")
        body = conn.getresponse().read()
        times.append((time.perf_counter() - started) * 1000)
        size = len(body)
        conn.close()
    return times[0], statistics.median(times[1:]), size


def page_marks(browser: Any, url: str, ready: str) -> dict[str, float]:
    """Milliseconds from navigation start to first contentful paint and the app's marks."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(f"body[data-ready={ready}]", timeout=120_000)
    marks: dict[str, float] = page.evaluate(
        """() => Object.fromEntries(performance.getEntries()
            .filter(e => e.entryType === 'mark' || e.name === 'first-contentful-paint')
            .map(e => [e.name, e.startTime]))"""
    )
    context.close()
    return marks


def median_marks(browser: Any, url: str, ready: str, repeat: int) -> dict[str, float]:
    runs = [page_marks(browser, url, ready) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def machine(browser_version: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"{memory:.0f} GiB; Python {platform.python_version()}, numpy {np.__version__}, "
        f"runstream {runstream.__version__}, Chromium {browser_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("bench_ui needs the system's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        path = Path(tmp) / "store"
        build_store(path, args.runs, args.points)
        with (
            LocalStore(path) as store,
            Dashboard(store, port=0).start() as ui,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            print(machine(browser.version))
            series_q = {"experiment": "bench", "run": "long", "metric": "loss", "points": 1400}
            first, ms, size = http_ms(ui.port, "/api/series", series_q, args.repeat)
            print(
                f"GET /api/series, {args.points:,} steps -> 1400 buckets: first {first:.1f} ms, "
                f"then {ms:.1f} ms (cached merge) ({size / 1024:.0f} KiB)"
            )
            first, ms, size = http_ms(ui.port, "/api/runs", {"experiment": "many"}, args.repeat)
            print(
                f"GET /api/runs, {args.runs:,} runs: first {first:.1f} ms, then {ms:.1f} ms "
                f"({size / 2**20:.1f} MiB)"
            )
            for label, extra in (
                ("first page", {}),
                ("sorted by a metric", {"sort": "metric:loss", "stat": "Min", "desc": "true"}),
                ("filtered", {"filter": "learning_rate>=0.01 loss<0.5"}),
            ):
                page_q = {"experiment": "many", "limit": 200, **extra}
                first, ms, size = http_ms(ui.port, "/api/runs", page_q, args.repeat)
                print(
                    f"GET /api/runs, a page of 200 of {args.runs:,} runs, {label}: first "
                    f"{first:.1f} ms, then {ms:.1f} ms ({size / 1024:.0f} KiB)"
                )
            run_url = f"{ui.url}#/run?experiment=bench&run=long"
            marks = median_marks(browser, run_url, "charts", args.repeat)
            print(
                f"run page, first contentful paint:              "
                f"{marks['first-contentful-paint']:8.1f} ms"
            )
            print(f"run page, record shown (rs:run):               {marks['rs:run']:8.1f} ms")
            print(
                f"run page, {args.points:,}-step chart drawn (rs:charts): "
                f"{marks['rs:charts']:8.1f} ms ({marks['rs:charts'] - marks['rs:run']:.1f} ms "
                "after the record)"
            )
            table_url = f"{ui.url}#/experiment?name=many"
            table = median_marks(browser, table_url, "exp-charts", args.repeat)
            print(
                f"runs page, first contentful paint:             "
                f"{table['first-contentful-paint']:8.1f} ms"
            )
            print(
                f"runs page, {args.runs:,} runs listed (rs:runs):      "
                f"{table['rs:runs']:8.1f} ms (a page of 200 rows)"
            )
            if "rs:exp-charts" in table:
                print(
                    f"runs page, charts of 20 runs (rs:exp-charts):  "
                    f"{table['rs:exp-charts']:8.1f} ms"
                )
            browser.close()
    print(f"medians of {args.repeat} loads each")


if __name__ == "__main__":
    main()

"""The dashboard's pages and the HTML report in headless Chromium, with screenshots.

Screenshots are checked (not blank: many colours, line-coloured pixels in charts) and kept
in ``$RUNSTREAM_SCREENSHOT_DIR`` when set, to look at.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from dashboard_support import EXPERIMENT, KnownStore, build_known_store, chromium, screenshot_dir
from runstream import Run
from runstream._cli import main
from runstream._store import LocalStore
from runstream._ui._server import Dashboard

PIL = pytest.importorskip("PIL.Image")
# The first line colour of charts.js, as RGB.
LINE_RGB = (0x25, 0x63, 0xEB)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownStore:
    return build_known_store(tmp_path_factory.mktemp("browser") / "store")


@pytest.fixture(scope="module")
def server(known: KnownStore) -> Iterator[Dashboard]:
    with LocalStore(known.path) as store, Dashboard(store, port=0).start() as dashboard:
        yield dashboard


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # any script error fails the test that caused it


def open_view(page: Any, server: Dashboard, route: str, ready: str, **query: str) -> None:
    hash_query = f"?{urlencode(query)}" if query else ""
    page.goto(f"{server.url}#/{route}{hash_query}")
    page.wait_for_selector(f"body[data-ready={ready}]", timeout=20_000)


def check_screenshot(page: Any, path: Path, selector: str | None = None) -> Any:
    """Take a screenshot and check it shows something: many colours, not one flat fill."""
    target = page.locator(selector) if selector else page
    png = target.screenshot(path=str(path))
    image = PIL.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20, f"{path.name} looks blank"
    dominant = max(count for count, _ in colours)
    assert dominant < 0.97 * image.width * image.height, f"{path.name} is almost one colour"
    return image


def line_pixels(image: Any) -> int:
    """Pixels close to the first series' colour: the chart drew its line."""
    return sum(
        count
        for count, (r, g, b) in image.getcolors(maxcolors=1 << 20) or []
        if abs(r - LINE_RGB[0]) + abs(g - LINE_RGB[1]) + abs(b - LINE_RGB[2]) < 60
    )


def wait_count(page: Any, matched: int) -> None:
    """Wait for the table to show ``matched`` runs (it is filtered on the server)."""
    page.wait_for_function(
        f"() => document.querySelector('#count').textContent.startsWith('{matched} of')"
        f" && document.querySelectorAll('#runs tbody tr').length === {matched}"
    )


def test_experiments_page_lists_experiments(page: Any, server: Dashboard, tmp_path: Path) -> None:
    open_view(page, server, "", "experiments")
    assert page.locator("#experiments tbody tr").count() == 1
    assert page.locator("#experiments").inner_text().startswith("experiment")
    assert "Unassigned runs (1)" in page.inner_text("main")
    check_screenshot(page, screenshot_dir(tmp_path) / "experiments.png")


def test_experiment_table_sorts_filters_and_finds_the_best(
    page: Any, server: Dashboard, known: KnownStore, tmp_path: Path
) -> None:
    open_view(page, server, "experiment", "exp-charts", name=EXPERIMENT)
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 4
    check_screenshot(page, screenshot_dir(tmp_path) / "experiment-table.png")
    # A filter on a parameter keeps the runs that match it (filtered on the server).
    page.fill("#search", "learning_rate>=0.1")
    wanted = {n for n, lr in known.learning_rates.items() if lr >= 0.1} | {"two-workers"}
    wait_count(page, len(wanted))
    assert {rows.nth(i).get_attribute("data-run") for i in range(rows.count())} == wanted
    page.fill("#search", "status=Failed")
    wait_count(page, 1)
    assert rows.first.get_attribute("data-run") == "lr-big"
    page.fill("#search", "")
    wait_count(page, 4)
    # Sorting by the learning rate column, ascending then descending (on the server).
    page.locator("#runs thead th", has_text="learning_rate").click()
    page.wait_for_selector("#runs thead th.asc:has-text('learning_rate')")
    ascending = sorted(known.learning_rates, key=known.learning_rates.__getitem__)
    names = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    assert [n for n in names if n in known.learning_rates] == ascending
    page.locator("#runs thead th", has_text="learning_rate").click()
    page.wait_for_selector("#runs thead th.desc:has-text('learning_rate')")
    names = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    assert [n for n in names if n in known.learning_rates] == ascending[::-1]
    # Best run by highest accuracy.
    page.select_option("#best-metric", "accuracy")
    page.select_option("#best-dir", "true")
    page.click("#find-best")
    top = max(known.accuracy, key=lambda n: known.accuracy[n][-1])
    page.wait_for_selector("tr.best")
    assert page.locator("tr.best").get_attribute("data-run") == top
    assert top in page.inner_text("#best")


def test_run_page_draws_a_chart_per_metric(page: Any, server: Dashboard, tmp_path: Path) -> None:
    open_view(page, server, "run", "charts", experiment=EXPERIMENT, run="lr-mid")
    cards = page.locator("#charts .card")
    assert cards.count() == 2  # loss and accuracy
    assert page.locator("#charts canvas").count() == 2
    assert cards.first.get_attribute("data-steps") == "40"
    assert page.locator("#parameters").inner_text().count("learning_rate") == 1
    image = check_screenshot(
        page, screenshot_dir(tmp_path) / "run-chart.png", "#charts .card >> nth=0"
    )
    assert line_pixels(image) > 100


def test_run_page_per_worker_view(page: Any, server: Dashboard) -> None:
    open_view(page, server, "run", "charts", experiment=EXPERIMENT, run="two-workers")
    card = page.locator("#charts .card").first
    card.locator("select").select_option("workers")
    page.wait_for_function(
        "() => document.querySelector('#charts .chart').uplot.series.length === 3"
    )
    labels = page.evaluate(
        "() => document.querySelector('#charts .chart').uplot.series.slice(1).map(s => s.label)"
    )
    assert labels == ["w0", "w1"]


def test_run_page_links_stored_files(page: Any, server: Dashboard, known: KnownStore) -> None:
    open_view(page, server, "run", "charts", experiment=EXPERIMENT, run="lr-small")
    href = page.locator("#artifacts a", has_text="weights.bin").get_attribute("href")
    response = page.request.get(server.url.rstrip("/") + href)
    assert response.body() == known.file_bytes


def test_compare_selected_runs_on_one_chart(page: Any, server: Dashboard, tmp_path: Path) -> None:
    open_view(page, server, "experiment", "exp-charts", name=EXPERIMENT)
    for name in ("lr-small", "lr-mid"):
        page.locator(f"#runs tr[data-run={name}] input.pick").check()
    page.select_option("#best-metric", "loss")
    page.click("#compare")
    page.wait_for_selector("body[data-ready=compare]", timeout=20_000)
    labels = page.evaluate(
        "() => document.querySelector('#compare-chart').uplot.series.slice(1).map(s => s.label)"
    )
    assert labels == ["lr-small", "lr-mid"]
    assert page.locator("#compare-table thead th").count() == 3
    image = check_screenshot(page, screenshot_dir(tmp_path) / "compare.png", ".card.wide")
    assert line_pixels(image) > 100


def test_live_run_refreshes(page: Any, tmp_path: Path) -> None:
    store_path = tmp_path / "live"
    with Run("live", "training", store=store_path) as run, LocalStore(store_path) as store:
        for step in range(10):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        with Dashboard(store, port=0).start() as dashboard:
            page.goto(f"{dashboard.url}?refresh=200#/run?experiment=live&run=training")
            page.wait_for_selector("body[data-ready=charts]", timeout=20_000)
            assert page.locator(".card").first.get_attribute("data-steps") == "10"
            for step in range(10, 25):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.flush()
            page.wait_for_selector(".card[data-steps='25']", timeout=20_000)
            assert "InProgress" in page.inner_text("main")


def test_report_opens_offline_in_the_browser(
    page: Any, known: KnownStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    assert main(["report", EXPERIMENT, "--store", str(known.path), "-o", str(report)]) == 0
    capsys.readouterr()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready=report]", timeout=20_000)
    assert page.locator("#runs tbody tr").count() == 4
    assert page.locator("#charts canvas").count() == 2  # accuracy and loss, all runs each
    assert [r for r in requests if not r.startswith("file:")] == []  # self-contained
    image = check_screenshot(page, screenshot_dir(tmp_path) / "report.png")
    assert line_pixels(image) > 100


# -- issue 13: a stored media type never writes a header, and no logged file runs script --

_HOSTILE_HTML = b"""<!doctype html><html><head><title>untouched</title></head><body>
<script>
document.title = "script ran";
fetch("/api/experiments").then(r => r.text()).then(t => { document.title = "read " + t; });
</script></body></html>"""
_INJECTED = "text/html\r\nX-Injected: 1\r\n\r\n<script>document.title='ran'</script>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    path = tmp_path_factory.mktemp("hostile") / "store"
    page_file = tmp_path_factory.mktemp("files") / "page.html"
    page_file.write_bytes(_HOSTILE_HTML)
    with Run("hostile", "files", store=path) as run:
        run.log_file(str(page_file), name="page.html", media_type="text/html")
        run.log_file(str(page_file), name="injected.html", media_type="text/html")
    # A store written before media types were checked: the header injection of the issue.
    import sqlite3

    db = sqlite3.connect(path / "runstream.db")
    db.execute("UPDATE artifacts SET media_type = ? WHERE name = 'injected.html'", (_INJECTED,))
    db.commit()
    db.close()
    with LocalStore(path) as store, Dashboard(store, port=0).start() as dashboard:
        yield dashboard


def _file_url(server: Dashboard, name: str) -> str:
    query = urlencode({"experiment": "hostile", "run": "files", "name": name})
    return f"{server.url}api/file?{query}"


def test_a_logged_html_file_runs_no_script_in_the_dashboard(page: Any, hostile: Dashboard) -> None:
    response = page.goto(_file_url(hostile, "page.html"))
    assert response is not None
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["content-type"] == "text/html"
    page.wait_for_timeout(300)  # the script, were it allowed, has run by now
    assert page.title() == "untouched"


def test_an_injected_media_type_adds_no_header_and_keeps_the_csp(
    page: Any, hostile: Dashboard
) -> None:
    page.goto(hostile.url)  # the dashboard's own origin
    headers = page.evaluate(
        """async url => {
            const r = await fetch(url);
            return Object.fromEntries(r.headers.entries());
        }""",
        _file_url(hostile, "injected.html"),
    )
    assert "x-injected" not in headers
    assert headers["content-security-policy"] == "sandbox"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff"
    # Opened in a frame of the dashboard, it cannot script the dashboard either.
    page.evaluate(
        """url => new Promise(done => {
            const frame = document.createElement("iframe");
            frame.onload = done;
            frame.src = url;
            document.body.appendChild(frame);
            setTimeout(done, 2000);
        })""",
        _file_url(hostile, "page.html"),
    )
    page.wait_for_timeout(300)
    assert "read" not in page.title()
    assert page.title() != "script ran"


def test_a_diverged_run_cannot_wreck_the_y_scale_and_step_less_points_show(
    page: Any, browser: Any, tmp_path: Path
) -> None:
    store_path = tmp_path / "diverged"
    for name, scale in (("a", 1.0), ("b", 0.8), ("boom", 1.2)):
        with Run("div", name, store=str(store_path)) as run:
            for step in range(80):
                loss = scale * 2.0 / (1 + step)
                if name == "boom" and step >= 76:
                    loss = 1e305 * (step - 75)
                run.log_metric("loss", loss, step=step)
            run.log_metric("Final Test Loss", 0.3 * scale)  # step-less, twice
            run.flush()
            run.log_metric("Final Test Loss", 0.275 * scale)
    with LocalStore(store_path, read_only=True) as store, Dashboard(store, port=0).start() as dash:
        refs = "&".join(f"e=div&r={n}" for n in ("a", "b", "boom"))
        page.goto(f"{dash.url}#/compare?metric=loss&{refs}")
        page.wait_for_selector("body[data-ready=compare]", timeout=20_000)
        top = page.evaluate("() => document.querySelector('#compare-chart').uplot.scales.y.max")
        assert top < 10  # the healthy runs' range, not 1e305
        check_screenshot(page, screenshot_dir(tmp_path) / "compare-diverged.png", ".card.wide")
        open_view(page, dash, "run", "charts", experiment="div", run="a")
        card = "section[data-metric='Final Test Loss']"
        xs = page.evaluate(f'() => document.querySelector("{card} .chart").uplot.data[0].length')
        assert xs == 2  # two calls, two points in time
        image = check_screenshot(page, screenshot_dir(tmp_path) / "step-less.png", card)
        assert line_pixels(image) > 20  # the points are drawn
        page.goto(f"{dash.url}#/run?experiment=div&run=nope")
        page.wait_for_selector("body[data-ready=error]", timeout=20_000)
        page.click("#back")
        page.wait_for_selector("body[data-ready=experiments]", timeout=20_000)

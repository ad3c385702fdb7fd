"""The experiment page as a workspace, in headless Chromium: every run's curves beside the
table, smoothing, x axes, metric search, groups with bands, parallel coordinates, paging
of many runs, compare's differing parameters, finite summaries of a diverged run, and a
wide table at 1400 px. Screenshots are checked for content (line and band colours)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dashboard_support import EXPERIMENT, KnownStore, build_known_store, chromium, screenshot_dir
from runstream._core._aggregate import from_points
from runstream._core._batch import Batch, ParameterWrite
from runstream._store import LocalStore
from runstream._ui._server import Dashboard

PIL = pytest.importorskip("PIL.Image")
BLUE = (0x25, 0x63, 0xEB)  # the first run's colour
RED = (0xDC, 0x26, 0x26)  # the second's
BAND_RED = tuple(round(255 + (c - 255) * 0.16) for c in RED)  # RED at 16 % over white


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownStore:
    return build_known_store(tmp_path_factory.mktemp("workspace") / "store")


@pytest.fixture(scope="module")
def server(known: KnownStore) -> Iterator[Dashboard]:
    with LocalStore(known.path) as store, Dashboard(store, port=0).start() as dashboard:
        yield dashboard


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _page(browser: Any, width: int = 1400) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = _page(browser)
    yield page
    page.context.close()
    assert not page.errors, page.errors


def open_experiment(page: Any, server: Dashboard, name: str = EXPERIMENT) -> None:
    page.goto(f"{server.url}#/experiment?name={name}")
    page.wait_for_selector("body[data-ready=exp-charts]", timeout=30_000)


def pixels_near(image: Any, rgb: tuple[int, ...], tolerance: int = 40) -> int:
    return sum(
        count
        for count, (r, g, b) in image.getcolors(maxcolors=1 << 20) or []
        if abs(r - rgb[0]) + abs(g - rgb[1]) + abs(b - rgb[2]) < tolerance
    )


def shot(page: Any, path: Path, selector: str) -> Any:
    import io

    png = page.locator(selector).screenshot(path=str(path))
    image = PIL.open(io.BytesIO(png)).convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20, f"{path.name} looks blank"
    return image


def wait_chart(page: Any, metric: str, condition: str) -> None:
    """Wait until the metric's chart (redrawn after a control changes) meets ``condition``."""
    page.wait_for_function(
        f'() => {{ const u = document.querySelector(\'#exp-charts [data-metric="{metric}"]'
        f" .chart')?.uplot; return Boolean(u) && ({condition}); }}"
    )


def chart_eval(page: Any, metric: str, expression: str) -> Any:
    return page.evaluate(
        f'() => {{ const u = document.querySelector(\'#exp-charts [data-metric="{metric}"]'
        f" .chart').uplot; return {expression}; }}"
    )


def test_every_run_is_charted_beside_the_table_with_a_legend_and_hide(
    page: Any, server: Dashboard, tmp_path: Path
) -> None:
    open_experiment(page, server)
    cards = page.locator("#exp-charts .card")
    assert sorted(cards.nth(i).get_attribute("data-metric") for i in range(cards.count())) == [
        "accuracy",
        "loss",
    ]
    labels = chart_eval(page, "loss", "u.series.slice(1).map(s => s.label)")
    assert labels == ["lr-small", "lr-mid", "lr-big", "two-workers"]  # the table's order
    # two-workers logged no accuracy: it is left out of that chart.
    assert chart_eval(page, "accuracy", "u.series.length") == 4
    legend = page.locator("#exp-charts [data-metric=loss] .u-legend").inner_text()
    assert all(name in legend for name in labels)
    # The table and the charts sit side by side.
    table_box = page.locator("#runs-scroll").bounding_box()
    charts_box = page.locator(".charts-side").bounding_box()
    assert table_box["x"] + table_box["width"] <= charts_box["x"] + 1
    assert abs(table_box["y"] - charts_box["y"]) < 5
    image = shot(page, screenshot_dir(tmp_path) / "workspace.png", ".workspace")
    assert pixels_near(image, BLUE) > 100
    assert pixels_near(image, RED) > 100
    # Hovering shows the values of every run at that step.
    box = page.locator("#exp-charts [data-metric=loss] .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    values = page.locator("#exp-charts [data-metric=loss] .u-legend .u-value").all_inner_texts()
    assert sum(v not in ("", "\u2013", "--") for v in values) >= 4
    # two-workers climbs to 20: hiding it from the table refits the y axis to the others.
    top = chart_eval(page, "loss", "u.scales.y.max")
    assert top > 10
    page.locator("#runs tr[data-run=two-workers] input.eye").uncheck()
    assert chart_eval(page, "loss", "u.series[4].show") is False
    assert chart_eval(page, "loss", "u.scales.y.max") < 2
    # A click on the legend hides a run too, in every chart and in the table.
    page.locator("#exp-charts [data-metric=loss] .u-legend .u-series", has_text="lr-small").click()
    assert chart_eval(page, "accuracy", "u.series[1].show") is False
    assert not page.locator("#runs tr[data-run=lr-small] input.eye").is_checked()


def test_smoothing_keeps_the_raw_line_faint(page: Any, server: Dashboard, tmp_path: Path) -> None:
    open_experiment(page, server)
    raw = chart_eval(page, "loss", "u.data[1].slice()")
    page.fill("#smoothing", "0.9")
    page.dispatch_event("#smoothing", "input")
    wait_chart(page, "loss", "u.series.length === 9")
    series = chart_eval(page, "loss", "u.series.slice(1, 3).map(s => [s.label, s._stroke])")
    assert series[0][0] == "lr-small (raw)"
    assert "rgba" in str(series[0][1])
    assert series[1][0] == "lr-small"
    smoothed = chart_eval(page, "loss", "u.data[2].slice()")
    assert chart_eval(page, "loss", "u.data[1].slice()") == raw  # the raw line is unchanged
    # An exponential moving average, debiased: the first point is kept, the rest lag.
    assert smoothed[0] == pytest.approx(raw[0])
    assert smoothed[10] > raw[10]  # a falling loss: the average lags above it
    legend = page.locator("#exp-charts [data-metric=loss] .u-legend").inner_text()
    assert "(raw)" not in legend  # raw lines share their run's legend entry
    image = shot(page, screenshot_dir(tmp_path) / "smoothing.png", "[data-metric=loss]")
    faint_blue = tuple(round(255 + (c - 255) * 0.28) for c in BLUE)
    assert pixels_near(image, BLUE) > 50
    assert pixels_near(image, faint_blue, 30) > 10


def test_x_axis_by_relative_and_wall_time(page: Any, server: Dashboard) -> None:
    open_experiment(page, server)
    page.select_option("#x-axis", "relative")
    wait_chart(page, "loss", "u.series[0].label === 'time since start'")
    xs = chart_eval(page, "loss", "u.data[0].slice()")
    assert min(xs) >= 0
    assert max(xs) < 600
    page.select_option("#x-axis", "wall")
    wait_chart(page, "loss", "u.series[0].label === 'time'")
    xs = chart_eval(page, "loss", "u.data[0].slice()")
    assert abs(min(xs) - time.time()) < 3600  # epoch seconds


def test_metric_search_by_substring_or_regex(page: Any, server: Dashboard) -> None:
    open_experiment(page, server)
    cards = page.locator("#exp-charts .card")
    page.fill("#metric-search", "ACC")
    page.wait_for_function("() => document.querySelectorAll('#exp-charts .card').length === 1")
    assert cards.first.get_attribute("data-metric") == "accuracy"
    page.fill("#metric-search", "/^l.ss$/")
    page.wait_for_function(
        "() => document.querySelector('#exp-charts .card')?.dataset.metric === 'loss'"
    )
    assert cards.count() == 1
    page.fill("#metric-search", "/[/")
    page.wait_for_function("() => document.querySelectorAll('#exp-charts .card').length === 2")
    assert "not a regular expression" in page.inner_text("#metric-note")


def test_group_by_a_parameter_draws_the_mean_and_a_band(
    page: Any, server: Dashboard, known: KnownStore, tmp_path: Path
) -> None:
    open_experiment(page, server)
    page.select_option("#group-by", "learning_rate")
    wait_chart(page, "loss", "u.series[1].label.startsWith('learning_rate=')")
    labels = chart_eval(page, "loss", "u.series.filter(s => !s.class).slice(1).map(s => s.label)")
    assert labels == [
        "learning_rate=0.01 (1 run)",
        "learning_rate=0.1 (2 runs)",
        "learning_rate=5 (1 run)",
    ]
    assert chart_eval(page, "loss", "u.bands.length") == 3
    assert page.locator("#x-axis").is_disabled()  # groups are aligned by step
    # The 0.1 group is lr-mid and two-workers (mean of its w0 and w1): mean, min, max.
    two = np.mean([known.workers["w0"], known.workers["w1"]], axis=0)
    mid = np.array(known.losses["lr-mid"][:20])
    data = chart_eval(page, "loss", "[u.data[4], u.data[5], u.data[6]].map(a => a.slice(0, 20))")
    np.testing.assert_allclose(data[0], (mid + two) / 2)
    np.testing.assert_allclose(data[1], np.minimum(mid, two))
    np.testing.assert_allclose(data[2], np.maximum(mid, two))
    image = shot(page, screenshot_dir(tmp_path) / "groups.png", "[data-metric=loss]")
    assert pixels_near(image, BAND_RED, 12) > 200  # the 0.1 group's shaded band


def test_parallel_coordinates_draws_one_line_per_run(
    page: Any, server: Dashboard, known: KnownStore, tmp_path: Path
) -> None:
    open_experiment(page, server)
    lines = page.locator("#parallel svg path.pc-line")
    assert lines.count() == 4
    assert {lines.nth(i).get_attribute("data-run") for i in range(4)} == {
        "lr-small",
        "lr-mid",
        "lr-big",
        "two-workers",
    }
    axes = page.locator("#parallel .pc-axis")
    assert axes.last.get_attribute("data-column") == "loss (Last)"
    assert "learning_rate" in [
        axes.nth(i).get_attribute("data-column") for i in range(axes.count())
    ]
    # Coloured by the metric: the lowest last loss blue, the highest red, NaN grey.
    colours = {
        lines.nth(i).get_attribute("data-run"): lines.nth(i).get_attribute("stroke")
        for i in range(4)
    }
    healthy = {n: v[-1] for n, v in known.losses.items() if n != "lr-big"}
    assert colours[min(healthy, key=healthy.__getitem__)] == "rgb(37, 99, 235)"
    assert colours["lr-big"] == "#a1a1aa"  # its last loss is NaN
    page.select_option("#pc-metric", "accuracy")
    assert page.locator("#parallel .pc-axis").last.get_attribute("data-column") == (
        "accuracy (Last)"
    )
    image = shot(page, screenshot_dir(tmp_path) / "parallel.png", ".pc-card")
    assert pixels_near(image, BLUE, 60) > 30


def test_compare_highlights_the_parameters_that_differ(page: Any, server: Dashboard) -> None:
    page.goto(f"{server.url}#/compare?metric=loss&e=sweep&r=lr-small&e=sweep&r=lr-mid")
    page.wait_for_selector("body[data-ready=compare]", timeout=20_000)
    assert page.locator("#compare-table tr.differs").get_attribute("data-param") == (
        "learning_rate"
    )
    assert page.locator("#compare-table tr.same").get_attribute("data-param") == "optimizer"
    assert "1 of 2 parameters differ" in page.inner_text("#differ-count")
    page.check("#only-differing")
    assert not page.locator("#compare-table tr[data-param=optimizer]").is_visible()
    assert page.locator("#compare-table tr[data-param=learning_rate]").is_visible()


def test_a_diverged_run_shows_finite_statistics_and_how_many_points_are_not(
    page: Any, server: Dashboard, known: KnownStore
) -> None:
    losses = np.array(known.losses["lr-big"])
    finite = losses[np.isfinite(losses)]
    page.goto(f"{server.url}#/run?experiment=sweep&run=lr-big")
    # The run page marks itself ready ("run") and its charts then mark theirs ("charts"): the
    # body's data-ready may pass "run" before a poll sees it, so wait for the page's
    # performance mark, which stays.
    page.wait_for_function(
        "() => performance.getEntriesByName('rs:run').length > 0", timeout=30_000
    )
    row = page.locator("#metrics tr", has_text="loss").inner_text().split("\t")
    assert float(row[1]) == pytest.approx(finite.min(), rel=1e-3)
    assert float(row[3]) == pytest.approx(finite.mean(), rel=1e-3)
    assert "15 of 40 (15 NaN)" in row
    # The table on the experiment page: Min over the finite points, and the count.
    open_experiment(page, server)
    page.select_option("#stat", "Min")
    page.wait_for_function(
        "() => document.querySelector('#runs thead').innerText.includes('(Min)')"
    )
    cell = page.locator("#runs tr[data-run=lr-big] td").last.inner_text()
    assert "NaN" in cell
    assert "(+15 NaN)" in cell
    assert not cell.startswith("NaN")


def _many_runs(path: Path, runs: int, params: int = 3) -> None:
    with LocalStore(path) as store:
        steps = np.arange(5, dtype=np.int64)
        for i in range(runs):
            key = store.ensure_run("many", f"run-{i:04d}")
            store.set_worker_status(key.run_id, "w", "Completed", started=time.time())
            now = time.time()
            batch = Batch(key.run_id, "w")
            batch.parameters = [ParameterWrite("seed", i, now)] + [
                ParameterWrite(f"a_rather_long_parameter_{p:02d}", p * 0.5 + i, now)
                for p in range(params - 1)
            ]
            batch.metrics = {
                f"metric_{m}": from_points(steps, np.full(5, float(i % 17)), np.full(5, now))
                for m in range(2)
            }
            store.write(batch)


def test_many_runs_are_paged_and_sorted_on_the_server(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "many"
    _many_runs(path, 450)
    page = _page(browser)
    with LocalStore(path, read_only=True) as store, Dashboard(store, port=0).start() as dash:
        open_experiment(page, dash, "many")
        rows = page.locator("#runs tbody tr")
        assert rows.count() == 200
        assert page.inner_text("#count").startswith("450 of 450")
        assert (
            page.locator("#exp-charts [data-metric=metric_0]").get_attribute("data-lines") == "20"
        )
        page.click("#next")
        page.wait_for_function(
            "() => document.querySelector('#page').textContent.startsWith('201')"
        )
        assert rows.first.get_attribute("data-run") == "run-0200"
        page.locator("#runs thead th", has_text="seed").click()  # ascending
        page.wait_for_selector("#runs thead th.asc:has-text('seed')")
        page.locator("#runs thead th", has_text="seed").click()  # descending, from the top
        page.wait_for_selector("#runs thead th.desc:has-text('seed')")
        assert rows.first.get_attribute("data-run") == "run-0449"
        page.fill("#search", "seed<10")
        page.wait_for_function(
            "() => document.querySelector('#count').textContent.startsWith('10 of')"
        )
        assert rows.count() == 10
    page.context.close()
    assert not page.errors, page.errors


def test_a_wide_table_scrolls_at_1400_px(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "wide"
    _many_runs(path, 5, params=30)
    page = _page(browser, 1400)
    with LocalStore(path, read_only=True) as store, Dashboard(store, port=0).start() as dash:
        open_experiment(page, dash, "many")
        scroller = page.locator("#runs-scroll")
        sizes = scroller.evaluate(
            "e => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX]"
        )
        assert sizes[0] > sizes[1]
        assert sizes[2] == "auto"
        last = page.locator("#runs thead th").last
        assert last.inner_text() == "metric_1 (Last)"
        last.scroll_into_view_if_needed()
        box, frame = last.bounding_box(), scroller.bounding_box()
        assert frame["x"] <= box["x"]
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
        assert box["x"] + box["width"] <= 1400  # on screen, not cut off
        shot(page, screenshot_dir(tmp_path) / "wide-1400.png", ".workspace")
    page.context.close()
    assert not page.errors, page.errors

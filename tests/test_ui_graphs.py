"""Graphs (``log_precision_recall``, ``log_roc_curve``, ``log_confusion_matrix``) in the
JSON API, on the dashboard's run page and in the report, drawn in headless Chromium.

Screenshots are checked for content (many colours, the curve's colour present) and kept
in ``$RUNSTREAM_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard_support import chromium, screenshot_dir
from runstream import Run
from runstream._cli import main
from runstream._store import LocalStore
from runstream._ui._server import Dashboard

PIL = pytest.importorskip("PIL.Image")
LINE_RGB = (0x25, 0x63, 0xEB)  # graphs.js's curve colour
COUNTS = ["2", "0", "0", "0", "0", "1", "1", "0", "2"]


@pytest.fixture(scope="module")
def graph_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("graphs") / "store"
    with Run("eval", "model", store=path) as run:
        run.log_metric("loss", 0.5, step=0)
        run.log_precision_recall([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], title="pr", no_skill=0.5)
        run.log_roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], title="roc", is_output=False)
        run.log_confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], title="cm")
    return path


@pytest.fixture(scope="module")
def server(graph_store: Path) -> Iterator[Dashboard]:
    with LocalStore(graph_store) as store, Dashboard(store, port=0).start() as dashboard:
        yield dashboard


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 1400})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        assert not errors, errors


def check_graphs(page: Any, path: Path) -> None:
    kinds = page.locator("[data-graph]")
    types = [kinds.nth(i).get_attribute("data-graph") for i in range(kinds.count())]
    assert types == ["PrecisionRecallCurve", "ROCCurve", "ConfusionMatrix"]
    pr_points = page.locator("[data-graph=PrecisionRecallCurve] polyline.graph-line")
    assert len(pr_points.get_attribute("points").split()) == 5
    assert page.locator("[data-graph=PrecisionRecallCurve] .graph-noskill").count() == 1
    roc_points = page.locator("[data-graph=ROCCurve] polyline.graph-line")
    assert len(roc_points.get_attribute("points").split()) == 5
    assert "area under the curve 0.750" in page.locator("[data-graph=ROCCurve]").inner_text()
    counts = page.locator("[data-graph=ConfusionMatrix] .graph-count").all_text_contents()
    assert counts == COUNTS
    png = page.locator("#graphs").last.screenshot(path=str(path))
    image = PIL.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20, f"{path.name} looks blank"
    line = sum(
        count
        for count, (r, g, b) in colours
        if abs(r - LINE_RGB[0]) + abs(g - LINE_RGB[1]) + abs(b - LINE_RGB[2]) < 60
    )
    assert line > 200, f"{path.name}: the curves were not drawn"


def test_api_serves_the_official_documents(server: Dashboard) -> None:
    url = f"{server.url}api/graphs?experiment=eval&run=model"
    with urllib.request.urlopen(url, timeout=10) as response:
        graphs = json.load(response)["graphs"]
    assert [(g["title"], g["type"], g["direction"]) for g in graphs] == [
        ("pr", "PrecisionRecallCurve", "output"),
        ("roc", "ROCCurve", "input"),
        ("cm", "ConfusionMatrix", "output"),
    ]
    assert graphs[2]["document"]["confusionMatrix"] == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]


def test_run_page_draws_the_graphs(page: Any, server: Dashboard, tmp_path: Path) -> None:
    page.goto(f"{server.url}#/run?experiment=eval&run=model")
    page.wait_for_selector("body[data-ready=charts]", timeout=20_000)
    check_graphs(page, screenshot_dir(tmp_path) / "run-graphs.png")


def test_report_draws_the_graphs(page: Any, graph_store: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert main(["report", "eval", "--store", str(graph_store), "-o", str(report)]) == 0
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready=report]", timeout=20_000)
    assert "Graphs: model" in page.inner_text("main")
    check_graphs(page, screenshot_dir(tmp_path) / "report-graphs.png")

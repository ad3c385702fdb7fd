"""The dashboard's JSON API, over HTTP, against a real server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest

from dashboard_support import EXPERIMENT, KnownStore, build_known_store
from runstream import Run
from runstream._store import LocalStore
from runstream._ui._api import Api
from runstream._ui._server import Dashboard


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownStore:
    return build_known_store(tmp_path_factory.mktemp("api") / "store")


@pytest.fixture(scope="module")
def server(known: KnownStore) -> Iterator[Dashboard]:
    with LocalStore(known.path) as store, Dashboard(store, port=0).start() as dashboard:
        yield dashboard


def fetch(
    server: Dashboard,
    path: str,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        url = path + ("?" + urlencode(query) if query else "")
        conn.request("GET", url, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get(server: Dashboard, path: str, **query: Any) -> Any:
    status, _, body = fetch(server, path, query)
    assert status == 200, body
    return json.loads(body)


def test_experiments(server: Dashboard, known: KnownStore) -> None:
    data = get(server, "/api/experiments")
    assert [e["experiment_name"] for e in data["experiments"]] == [EXPERIMENT]
    assert data["experiments"][0]["run_count"] == 4
    assert data["unassigned_runs"] == 1
    assert data["store"] == str(known.path)


def test_runs_are_the_cli_records(server: Dashboard, known: KnownStore) -> None:
    runs = get(server, "/api/runs", experiment=EXPERIMENT)["runs"]
    by_name = {r["run_name"]: r for r in runs}
    assert set(by_name) == {"lr-small", "lr-mid", "lr-big", "two-workers"}
    assert by_name["lr-mid"]["metrics"]["loss"]["last"] == pytest.approx(known.losses["lr-mid"][-1])
    assert by_name["lr-big"]["status"] == "Failed"
    assert by_name["lr-big"]["metrics"]["loss"]["last"] == "NaN"  # JSON has no NaN: the string
    unassigned = get(server, "/api/runs", unassigned="true")["runs"]
    assert [r["run_name"] for r in unassigned] == ["evaluation"]


def test_run_lists_metrics_and_their_workers(server: Dashboard) -> None:
    data = get(server, "/api/run", experiment=EXPERIMENT, run="two-workers")
    assert data["metrics"] == [{"metric": "loss", "workers": ["w0", "w1"]}]
    assert data["run"]["run_name"] == "two-workers"
    assert get(server, "/api/run", run="evaluation")["run"]["experiment_name"] is None


def test_series_merged_and_per_worker(server: Dashboard, known: KnownStore) -> None:
    merged = get(server, "/api/series", experiment=EXPERIMENT, run="two-workers", metric="loss")
    (line,) = merged["lines"]
    assert merged["axis"] == "step"
    assert line["worker"] is None
    expected = np.mean([known.workers["w0"], known.workers["w1"]], axis=0)
    np.testing.assert_allclose(line["y"], expected)
    np.testing.assert_allclose(line["min"], known.workers["w0"])
    np.testing.assert_allclose(line["max"], known.workers["w1"])
    split = get(
        server,
        "/api/series",
        experiment=EXPERIMENT,
        run="two-workers",
        metric="loss",
        view="workers",
    )
    assert [line["worker"] for line in split["lines"]] == ["w0", "w1"]
    for line in split["lines"]:
        np.testing.assert_allclose(line["y"], known.workers[line["worker"]])


def test_series_marks_where_values_stop_being_finite(server: Dashboard, known: KnownStore) -> None:
    data = get(server, "/api/series", experiment=EXPERIMENT, run="lr-big", metric="loss")
    first_nan = next(i for i, v in enumerate(known.losses["lr-big"]) if math.isnan(v))
    assert data["first_nonfinite"] == first_nan
    assert data["lines"][0]["y"][first_nan] == "NaN"


def test_series_zoom_window(server: Dashboard, known: KnownStore) -> None:
    data = get(
        server,
        "/api/series",
        experiment=EXPERIMENT,
        run="lr-mid",
        metric="loss",
        **{"from": 10, "to": 20},
    )
    assert data["lines"][0]["x"] == list(range(9, 22))  # one step beyond each side
    assert data["lines"][0]["steps"] == len(known.losses["lr-mid"])


def test_series_is_downsampled_for_display_only(tmp_path: Path) -> None:
    values = np.sin(np.arange(200_000) / 500.0)
    values[123_456] = 40.0  # a spike that must survive
    with Run("big", "long", store=tmp_path) as run:
        for step, value in enumerate(values.tolist()):
            run.log_metric("signal", value, step=step)
    with LocalStore(tmp_path) as store, Dashboard(store, port=0).start() as dashboard:
        data = get(
            dashboard, "/api/series", experiment="big", run="long", metric="signal", points=500
        )
        line = data["lines"][0]
        assert line["steps"] == len(values)
        assert len(line["x"]) <= 5 * 500
        assert max(line["y"]) == 40.0
        assert 123_456 in line["x"]
        assert min(line["y"]) == values.min()
        assert len(store.series(store.find_run("big", "long").run_id, "signal")) == len(values)


def test_best(server: Dashboard, known: KnownStore) -> None:
    data = get(server, "/api/best", experiment=EXPERIMENT, metric="accuracy", maximize="true")
    top = max(known.accuracy, key=lambda n: known.accuracy[n][-1])
    assert data["run"]["run_name"] == top
    assert data["value"] == pytest.approx(known.accuracy[top][-1])


def test_file_is_served_with_a_sandbox(server: Dashboard, known: KnownStore) -> None:
    query = {"experiment": EXPERIMENT, "run": "lr-small", "name": "weights.bin"}
    status, headers, body = fetch(server, "/api/file", query)
    assert status == 200
    assert body == known.file_bytes
    assert headers["Content-Security-Policy"] == "sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "weights.bin" in headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/api/run", {"experiment": EXPERIMENT, "run": "nope"}, 404),
        ("/api/run", {"experiment": EXPERIMENT}, 400),
        ("/api/runs", {}, 400),
        ("/api/runs", {"experiment": "nope"}, 404),
        ("/api/series", {"experiment": EXPERIMENT, "run": "lr-mid", "metric": "nope"}, 404),
        (
            "/api/series",
            {"experiment": EXPERIMENT, "run": "lr-mid", "metric": "loss", "points": "0"},
            400,
        ),
        (
            "/api/series",
            {"experiment": EXPERIMENT, "run": "lr-mid", "metric": "loss", "view": "x"},
            400,
        ),
        (
            "/api/series",
            {"experiment": EXPERIMENT, "run": "lr-mid", "metric": "loss", "from": "nan"},
            400,
        ),
        ("/api/best", {"experiment": EXPERIMENT, "metric": "loss", "stat": "p99"}, 400),
        ("/api/best", {"experiment": EXPERIMENT, "metric": "loss", "maximize": "maybe"}, 400),
        (
            "/api/file",
            {"experiment": EXPERIMENT, "run": "lr-small", "name": "dataset", "direction": "input"},
            404,
        ),
        (
            "/api/file",
            {"experiment": EXPERIMENT, "run": "lr-small", "name": "../../runstream.db"},
            404,
        ),
        ("/api/nothing", {}, 404),
    ],
)
def test_bad_requests_get_clear_errors(
    server: Dashboard, path: str, query: dict[str, str], status: int
) -> None:
    got, headers, body = fetch(server, path, query)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]


@pytest.mark.parametrize(
    "path",
    ["/static/../runstream.db", "/static/..%2f..%2frunstream.db", "/runstream.db", "/static/"],
)
def test_nothing_outside_the_static_files_is_served(server: Dashboard, path: str) -> None:
    status, _, body = fetch(server, path)
    assert status == 404
    assert b"SQLite" not in body


def test_static_files_and_index(server: Dashboard) -> None:
    status, headers, body = fetch(server, "/")
    assert status == 200
    assert b'<main id="view">' in body
    status, headers, body = fetch(server, "/static/uPlot.iife.min.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")


def test_foreign_host_header_is_refused(server: Dashboard) -> None:
    status, _, _ = fetch(server, "/api/experiments", headers={"Host": "evil.example:80"})
    assert status == 403
    status, _, _ = fetch(server, "/api/experiments", headers={"Host": f"localhost:{server.port}"})
    assert status == 200


def test_nan_and_infinity_stay_apart_and_step_less_points_are_times(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with Run("exp", "run", store=store) as run:
        run.log_metric("Final Test Loss", 0.3)
        run.flush()
        run.log_metric("Final Test Loss", 0.25)
        with pytest.warns(RuntimeWarning):
            run.log_metric("grad", math.inf, step=0)
        run.log_metric("grad", math.nan, step=1)
        run.log_metric("grad", -math.inf, step=2)
    api = Api(LocalStore(store, read_only=True))
    grad = api.routes["/api/series"]({"experiment": "exp", "run": "run", "metric": "grad"})
    assert grad["lines"][0]["y"] == ["Infinity", "NaN", "-Infinity"]
    loss = api.routes["/api/series"](
        {"experiment": "exp", "run": "run", "metric": "Final Test Loss"}
    )
    assert loss["axis"] == "time"
    (line,) = loss["lines"]
    assert line["y"] == [0.3, 0.25]  # two calls, two points, in order: no average
    assert line["x"][0] < line["x"][1]
    assert all(abs(x - time.time()) < 600 for x in line["x"])  # epoch seconds, not steps


# -- the experiment page: pages of runs, several runs' curves, finite summaries -----------


def test_runs_are_paged_sorted_and_filtered_on_the_server(
    server: Dashboard, known: KnownStore
) -> None:
    page = get(server, "/api/runs", experiment=EXPERIMENT, limit=2)
    assert (page["total"], page["matched"], page["offset"]) == (4, 4, 0)
    assert [r["run_name"] for r in page["runs"]] == ["lr-small", "lr-mid"]  # oldest first
    assert page["parameters"] == ["learning_rate", "optimizer"]
    assert page["metrics"] == ["accuracy", "loss"]
    rest = get(server, "/api/runs", experiment=EXPERIMENT, limit=2, offset=2)
    assert [r["run_name"] for r in rest["runs"]] == ["lr-big", "two-workers"]
    by_lr = get(server, "/api/runs", experiment=EXPERIMENT, sort="param:learning_rate", desc="true")
    assert [r["run_name"] for r in by_lr["runs"]][:1] == ["lr-big"]
    # Sorting by a metric's Min uses the finite points of the diverged run (not NaN).
    by_min = get(server, "/api/runs", experiment=EXPERIMENT, sort="metric:loss", stat="Min")
    mins = {n: min(v for v in known.losses[n] if not math.isnan(v)) for n in known.losses}
    mins["two-workers"] = min(known.workers["w0"])  # the smallest point logged
    assert [r["run_name"] for r in by_min["runs"]] == sorted(mins, key=mins.__getitem__)
    # Runs without the value sort last, whichever the direction.
    by_acc = get(server, "/api/runs", experiment=EXPERIMENT, sort="metric:accuracy", desc="true")
    assert by_acc["runs"][-1]["run_name"] == "two-workers"
    found = get(server, "/api/runs", experiment=EXPERIMENT, filter="learning_rate>=0.1 loss<0.5")
    assert found["matched"] == 1  # lr-mid's last loss; lr-big's is NaN, two-workers' is 19.5
    assert [r["run_name"] for r in found["runs"]] == ["lr-mid"]
    words = get(server, "/api/runs", experiment=EXPERIMENT, filter="failed")
    assert [r["run_name"] for r in words["runs"]] == ["lr-big"]


def test_a_page_says_how_many_points_are_not_finite(server: Dashboard, known: KnownStore) -> None:
    page = get(server, "/api/runs", experiment=EXPERIMENT, limit=10)
    assert set(page["finite"]) == {"lr-big"}
    finite = page["finite"]["lr-big"]["loss"]
    values = np.array(known.losses["lr-big"])
    ok = values[np.isfinite(values)]
    assert (finite["count"], finite["nonfinite"], finite["nan"], finite["inf"]) == (25, 15, 15, 0)
    assert finite["min"] == pytest.approx(ok.min())
    assert finite["max"] == pytest.approx(ok.max())
    assert finite["avg"] == pytest.approx(ok.mean())
    assert finite["std"] == pytest.approx(ok.std())
    run = get(server, "/api/run", experiment=EXPERIMENT, run="lr-big")
    by_metric = {m["metric"]: m for m in run["metrics"]}
    assert by_metric["loss"]["finite"] == finite
    assert "finite" not in by_metric["accuracy"]


def test_curves_of_several_runs_by_step_time_and_group(
    server: Dashboard, known: KnownStore
) -> None:
    names = ["lr-small", "lr-mid", "lr-big", "two-workers"]
    query = {"experiment": EXPERIMENT, "metric": "accuracy", "runs": json.dumps(names)}
    data = get(server, "/api/curves", **query)
    assert data["axis"] == "step"
    assert [line["run"] for line in data["lines"]] == names[:3]  # two-workers has none
    np.testing.assert_allclose(data["lines"][1]["y"], known.accuracy["lr-mid"])
    relative = get(server, "/api/curves", **query, x="relative")
    assert relative["axis"] == "relative"
    assert all(0 <= x < 600 for line in relative["lines"] for x in line["x"])
    wall = get(server, "/api/curves", **query, x="wall")
    assert wall["axis"] == "time"
    assert all(abs(x - time.time()) < 3600 for x in wall["lines"][0]["x"])
    query["metric"] = "loss"
    grouped = get(server, "/api/curves", **query, group="learning_rate")
    assert [(line["group"], line["runs"]) for line in grouped["lines"]] == [
        (0.01, 1),
        (0.1, 2),
        (5.0, 1),
    ]
    mid = np.array(known.losses["lr-mid"][:20])
    two = np.mean([known.workers["w0"], known.workers["w1"]], axis=0)
    line = grouped["lines"][1]
    np.testing.assert_allclose(line["y"][:20], (mid + two) / 2)
    np.testing.assert_allclose(line["min"][:20], np.minimum(mid, two))
    np.testing.assert_allclose(line["max"][:20], np.maximum(mid, two))
    np.testing.assert_allclose(line["y"][20:], known.losses["lr-mid"][20:])
    # The diverged group's mean is over its finite values: its NaN steps are left out.
    assert grouped["lines"][2]["x"] == list(range(25))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"limit": "0"}, 400),
        ({"limit": "10", "sort": "colour"}, 400),
        ({"limit": "10", "stat": "p99"}, 400),
        ({"limit": "10", "desc": "maybe"}, 400),
    ],
)
def test_bad_pages_get_clear_errors(server: Dashboard, query: dict[str, str], status: int) -> None:
    got, _, body = fetch(server, "/api/runs", {"experiment": EXPERIMENT, **query})
    assert got == status
    assert json.loads(body)["error"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"metric": "loss", "runs": "lr-mid"}, 400),  # not a JSON list
        ({"metric": "loss", "runs": "[]"}, 400),
        ({"metric": "loss", "runs": '["lr-mid"]', "x": "epoch"}, 400),
        ({"metric": "loss", "runs": '["lr-mid"]', "x": "wall", "group": "optimizer"}, 400),
        ({"metric": "loss", "runs": '["nope"]'}, 404),
    ],
)
def test_bad_curves_get_clear_errors(server: Dashboard, query: dict[str, str], status: int) -> None:
    got, _, body = fetch(server, "/api/curves", {"experiment": EXPERIMENT, **query})
    assert got == status
    assert json.loads(body)["error"]

// runstream report: renders the data embedded in this file (no network, no server).
"use strict";

(function () {
  const { fmt, lineChart, wideRange, parse } = window.RS;
  const data = parse(document.getElementById("report-data").textContent);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null) el.setAttribute(k, v);
    for (const c of children.flat()) {
      if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const when = (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–");
  const params = [...new Set(data.runs.flatMap((r) => Object.keys(r.parameters)))].sort();
  const metrics = [...new Set(data.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const head = ["run", "status", "started", ...params, ...metrics.map((m) => `${m} (last)`)];
  const rows = data.runs.map((r) => [
    r.run_name,
    h("span", { class: `badge ${(r.status || "not-entered").toLowerCase()}` }, r.status || "not entered"),
    when(r.start_time),
    ...params.map((p) => fmt(r.parameters[p])),
    ...metrics.map((m) => (!r.metrics[m] ? "–" : fmt(r.metrics[m].last))),
  ]);
  const view = document.getElementById("view");
  view.append(
    h("h1", {}, data.title),
    h("p", { class: "muted" }, `Generated ${when(data.generated)} from ${data.store} by runstream ${data.version}`),
    h("h2", {}, "Runs"),
    h("div", { class: "scroll" }, h("table", { id: "runs" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: i > 2 ? "num" : null }, c))))))),
    h("h2", {}, "Charts"),
  );
  const grid = h("div", { class: "grid", id: "charts" });
  view.append(grid);
  for (const chart of data.charts) {
    const body = h("div", { class: "chart" });
    grid.append(h("section", { class: "card", "data-metric": chart.metric },
      h("header", {}, h("h3", {}, chart.metric)), body));
    // Robust y limits keep a diverged run from flattening the others; log when the bulk of
    // the values spans many orders of magnitude.
    lineChart(body, { axis: chart.axis, lines: chart.lines, firstNonfinite: chart.first_nonfinite, legend: true,
      log: wideRange(chart.lines), yLabel: chart.metric });
  }
  for (const entry of data.graphs || []) {
    view.append(window.RSGraphs.section(entry.graphs, `Graphs: ${entry.run}`));
  }
  document.body.dataset.ready = "report";
})();

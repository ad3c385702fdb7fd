// runstream dashboard: a small single-page app over the JSON API (see runstream/_ui/_api.py).
// Routes live in the URL hash so every view can be bookmarked and reloaded:
//   #/                                  experiments
//   #/experiment?name=E                 an experiment's runs
//   #/unassigned                        runs with no experiment
//   #/run?experiment=E&run=R            one run (no experiment: an unassigned run)
//   #/compare?metric=M&e=E1&r=R1&e=E2&r=R2 ...   several runs on one chart
// Views poll the API while a run they show is InProgress (every `?refresh=ms`, 2000 ms).
"use strict";

(function () {
  const RS = window.RS;
  const { fmt, lineChart, wideRange, parse } = RS;
  // A metric statistic: NaN, inf and -inf arrive as such (see RS.revive); null is no value.
  const statText = (v) => fmt(v);
  // Metrics where higher is better, for the default direction of "best run".
  const HIGHER_IS_BETTER = /acc|f1|auc|precision|recall|score|reward|iou|bleu|rouge|map\b|r2/i;
  const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh")) || 2000;
  const PAGE = 200;
  const view = document.getElementById("view");
  let generation = 0; // bumps on navigation; stale timers and fetches check it
  let timer = null;

  // -- helpers ----------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  async function api(path, params) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === null || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) qs.append(k, one);
    }
    const res = await fetch(`/api/${path}?${qs}`);
    const body = parse(await res.text());
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  function link(route, params, ...children) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      for (const one of Array.isArray(v) ? v : [v]) if (one !== null) qs.append(k, one);
    }
    const q = qs.toString();
    return h("a", { href: `#/${route}${q ? "?" + q : ""}` }, ...children);
  }

  function runLink(run, ...children) {
    return link("run", { experiment: run.experiment_name, run: run.run_name }, ...children);
  }

  function time(epoch) {
    if (!epoch) return "–";
    const d = new Date(epoch * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(run) {
    if (!run.start_time) return "–";
    const s = (run.end_time || Date.now() / 1000) - run.start_time;
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function badge(status) {
    // null: constructed, never entered (as the official SDK, no status yet)
    const label = status || "not entered";
    return h("span", { class: `badge ${label.toLowerCase().replace(" ", "-")}` }, label);
  }

  function table(headers, rows, attrs) {
    return h("table", attrs || {},
      h("thead", {}, h("tr", {}, headers.map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
  }

  function live(runs) {
    return runs.some((r) => r.status === "InProgress");
  }

  // Poll `refresh` while `isLive()`; stops when the user navigates away.
  function poll(gen, isLive, refresh) {
    clearTimeout(timer);
    if (!isLive()) return;
    timer = setTimeout(async () => {
      if (gen !== generation) return;
      try { await refresh(); } catch (err) { console.error(err); }
      if (gen === generation) poll(gen, isLive, refresh);
    }, REFRESH_MS);
  }

  function setTitle(...parts) {
    document.title = [...parts, "runstream"].join(" · ");
  }

  function ready(name) {
    performance.mark(`rs:${name}`);
    document.body.dataset.ready = name;
  }

  // -- experiments ------------------------------------------------------------------------

  async function viewExperiments() {
    setTitle("Experiments");
    const data = await api("experiments");
    const rows = data.experiments.map((e) => [
      link("experiment", { name: e.experiment_name }, e.experiment_name),
      e.display_name && e.display_name !== e.experiment_name ? e.display_name : "",
      e.run_count,
      time(e.created),
    ]);
    view.replaceChildren(
      h("h1", {}, "Experiments"),
      h("p", { class: "muted" }, `Store: ${data.store}`),
      rows.length
        ? table(["experiment", "display name", "runs", "created"], rows, { id: "experiments" })
        : h("p", { class: "empty" }, "No experiments yet. Try ", h("code", {}, "runstream demo"), "."),
      h("p", {}, link("unassigned", {}, `Unassigned runs (${data.unassigned_runs})`)),
    );
    ready("experiments");
  }

  // -- runs table -------------------------------------------------------------------------

  const STATS = { Last: "last", Min: "min", Max: "max", Avg: "avg", StdDev: "std", Count: "count" };

  // The filter box's example, from this experiment's own columns: a numeric parameter
  // compared with a value that keeps some runs and drops others (from the page shown).
  function placeholder(runs) {
    const examples = [];
    const numeric = [...new Set(runs.flatMap((r) => Object.keys(r.parameters)))].sort()
      .find((p) => new Set(runs.map((r) => r.parameters[p]).filter((v) => typeof v === "number")).size > 1);
    if (numeric) {
      const values = [...new Set(runs.map((r) => r.parameters[numeric]).filter((v) => typeof v === "number"))]
        .sort((a, b) => a - b);
      examples.push(`${numeric}>=${fmt(values[Math.floor(values.length / 2)])}`);
    }
    if (runs.some((r) => r.status === "Failed")) examples.push("status=Failed");
    else examples.push("status=Completed");
    return `search, or filter: ${examples.join(" ")}`;
  }

  // The metric "best run" starts with (a validation loss, else a loss, else the first), and
  // its direction: highest for accuracies and scores, lowest otherwise.
  function defaultBest(metrics) {
    const pick = metrics.find((m) => /val.*loss|loss.*val/i.test(m)) || metrics.find((m) => /val/i.test(m) && HIGHER_IS_BETTER.test(m))
      || metrics.find((m) => /loss/i.test(m)) || metrics[0];
    return pick;
  }

  // A metric search: /regex/ (flags after the last slash), else a case-insensitive substring.
  function metricMatcher(text) {
    const t = text.trim();
    if (!t) return { test: () => true, error: null };
    const m = t.match(/^\/(.*)\/([a-z]*)$/);
    if (m) {
      try {
        const re = new RegExp(m[1], m[2] || "i");
        return { test: (name) => re.test(name), error: null };
      } catch (err) {
        return { test: () => true, error: `not a regular expression: ${err.message}` };
      }
    }
    const needle = t.toLowerCase();
    return { test: (name) => name.toLowerCase().includes(needle), error: null };
  }

  // A statistic of a metric as a table cell: over the finite points, with how many points
  // are not finite, when a diverged run has some (the stored min/max/avg would be NaN).
  function statCell(summary, finite, field, note = true) {
    if (!summary) return "–";
    if (!finite || !finite.nonfinite || field === "last" || field === "count") return statText(summary[field]);
    const kinds = [finite.nan ? `${finite.nan} NaN` : null, finite.inf ? `${finite.inf} inf` : null].filter(Boolean).join(", ");
    return h("span", { title: `${field} over the ${finite.count} finite points; ${finite.nonfinite} not finite (${kinds})` },
      statText(finite[field]), note ? h("span", { class: "nonfinite" }, ` (+${kinds})`) : "");
  }

  const CHART_RUNS = 20; // runs charted on the experiment page: the first of the table's page

  async function viewRuns(experiment) {
    const gen = generation;
    const params = experiment === null ? { unassigned: "true" } : { experiment };
    const title = experiment === null ? "Unassigned runs" : experiment;
    setTitle(title);
    const state = { sort: "created", desc: false, offset: 0, selected: new Set(), best: null,
      hidden: new Set(), smoothing: 0, x: "step", group: "", metricSearch: "", charts: [] };
    let data = null;
    let fetchSeq = 0;

    const search = h("input", { id: "search", type: "search", size: 48, placeholder: "search, or filter: status=Completed" });
    const statSelect = h("select", { id: "stat" }, Object.keys(STATS).map((s) => h("option", {}, s)));
    const bestMetric = h("select", { id: "best-metric" });
    const bestDir = h("select", { id: "best-dir" }, h("option", { value: "false" }, "lowest"),
      h("option", { value: "true" }, "highest"));
    const bestOut = h("span", { id: "best", class: "muted" });
    const compareBtn = h("button", { id: "compare", disabled: true }, "Compare selected");
    const counter = h("span", { class: "muted", id: "count" });
    const holder = h("div", { class: "scroll", id: "runs-scroll" });
    const prev = h("button", { id: "prev" }, "‹ previous");
    const next = h("button", { id: "next" }, "next ›");
    const pageInfo = h("span", { class: "muted", id: "page" });
    const metricSearch = h("input", { id: "metric-search", type: "search", size: 24,
      placeholder: "metrics: substring or /regex/" });
    const metricNote = h("span", { class: "muted", id: "metric-note" });
    const smoothing = h("input", { id: "smoothing", type: "range", min: 0, max: 0.99, step: 0.01, value: 0 });
    const smoothingOut = h("output", { id: "smoothing-value" }, "0");
    const xSelect = h("select", { id: "x-axis" }, h("option", { value: "step" }, "step"),
      h("option", { value: "relative" }, "relative time"), h("option", { value: "wall" }, "wall time"));
    const groupSelect = h("select", { id: "group-by" });
    const chartsBox = h("div", { class: "grid", id: "exp-charts" });
    const chartsNote = h("p", { class: "muted", id: "charts-note" });
    const pcMetric = h("select", { id: "pc-metric" });
    const pcBox = h("div", { class: "pc-box", id: "parallel" });

    async function load() {
      const mine = ++fetchSeq;
      const out = await api("runs", { ...params, offset: state.offset, limit: PAGE, sort: state.sort,
        desc: state.desc, stat: statSelect.value, filter: search.value });
      if (mine !== fetchSeq || gen !== generation) return false;
      data = out;
      return true;
    }

    const runKey = (r) => `${r.experiment_name ?? ""}\u0000${r.run_name}`;
    const charted = () => data.runs.slice(0, CHART_RUNS);
    const colorOf = (name) => {
      const i = charted().findIndex((r) => r.run_name === name);
      return i < 0 ? null : RS.color(i);
    };

    function setHidden(name, hide, fromChart) {
      if (hide) state.hidden.add(name); else state.hidden.delete(name);
      const box = holder.querySelector(`tr[data-run="${CSS.escape(name)}"] input.eye`);
      if (box) box.checked = !hide;
      for (const c of state.charts) if (c.chart && c.chart !== fromChart) c.chart.setShown(name, !hide);
    }

    function renderTable() {
      const { parameters, metrics } = data;
      const stat = statSelect.value;
      const field = STATS[stat];
      const cols = [
        { sort: "run", label: "run" }, { sort: "status", label: "status" }, { sort: "started", label: "started" },
        ...parameters.map((p) => ({ sort: `param:${p}`, label: p })),
        ...metrics.map((m) => ({ sort: `metric:${m}`, label: `${m} (${stat})` })),
      ];
      const metricNow = metrics.includes(bestMetric.value) ? bestMetric.value : defaultBest(metrics);
      bestMetric.replaceChildren(...metrics.map((m) => h("option", { selected: m === metricNow }, m)));
      if (!state.directionTouched && metricNow) bestDir.value = String(HIGHER_IS_BETTER.test(metricNow));
      counter.textContent = `${data.matched.toLocaleString()} of ${data.total.toLocaleString()} runs`;
      const last = Math.min(data.offset + data.runs.length, data.matched);
      pageInfo.textContent = data.matched ? `${(data.offset + 1).toLocaleString()}–${last.toLocaleString()}` : "";
      prev.disabled = data.offset <= 0;
      next.disabled = last >= data.matched;
      const head = h("tr", {}, h("th", {}, ""), h("th", { title: "charted runs: show or hide" }, ""), cols.map((c) => h("th", {
        class: "sortable" + (state.sort === c.sort ? (state.desc ? " desc" : " asc") : ""),
        onclick: () => { state.desc = state.sort === c.sort ? !state.desc : false; state.sort = c.sort; state.offset = 0; refreshAll(); },
      }, c.label)));
      const body = data.runs.map((r, i) => {
        const key = runKey(r);
        const box = h("input", { type: "checkbox", class: "pick", checked: state.selected.has(key),
          onchange: (ev) => { ev.target.checked ? state.selected.add(key) : state.selected.delete(key); updateCompare(); } });
        const colour = i < CHART_RUNS ? RS.color(i) : null;
        const eye = colour ? h("label", { class: "swatch", style: `--c: ${colour}`, title: "show on the charts" },
          h("input", { type: "checkbox", class: "eye", checked: !state.hidden.has(r.run_name),
            onchange: (ev) => setHidden(r.run_name, !ev.target.checked) })) : "";
        const best = state.best && state.best.run_name === r.run_name;
        const finite = data.finite[r.run_name] || {};
        return h("tr", { class: best ? "best" : null, "data-run": r.run_name },
          h("td", {}, box), h("td", {}, eye),
          h("td", {}, runLink(r, r.run_name)),
          h("td", {}, badge(r.status)),
          h("td", {}, time(r.start_time)),
          parameters.map((p) => h("td", { class: "num" }, fmt(r.parameters[p]))),
          metrics.map((m) => h("td", { class: "num" }, statCell(r.metrics[m], finite[m], field))));
      });
      holder.replaceChildren(h("table", { id: "runs" }, h("thead", {}, head), h("tbody", {}, body)));
      if (!search.placeholder.includes(">=")) search.placeholder = placeholder(data.runs);
      updateCompare();
    }

    function updateCompare() {
      compareBtn.disabled = state.selected.size < 1;
      compareBtn.textContent = `Compare selected (${state.selected.size})`;
    }

    // -- the charts beside the table: one per metric, a line per charted run -------------
    function renderControls() {
      const current = groupSelect.value;
      groupSelect.replaceChildren(h("option", { value: "" }, "none"),
        ...data.parameters.map((p) => h("option", { value: p, selected: p === current }, p)));
      const pcNow = data.metrics.includes(pcMetric.value) ? pcMetric.value : bestMetric.value;
      pcMetric.replaceChildren(...data.metrics.map((m) => h("option", { selected: m === pcNow }, m)));
    }

    function metricChart(metric) {
      const body = h("div", { class: "chart" });
      const caption = h("span", { class: "muted" });
      const card = h("section", { class: "card", "data-metric": metric }, h("header", {}, h("h3", {}, metric), caption), body);
      const entry = { metric, card, chart: null, range: null, seq: 0 };

      function lines(d) {
        const out = [];
        d.lines.forEach((l, i) => {
          const c = state.group ? RS.color(i) : colorOf(l.run) || RS.color(i);
          const key = state.group ? l.label : l.run;
          const show = state.group ? true : !state.hidden.has(l.run);
          const band = state.group ? { min: l.min, max: l.max } : null;
          if (state.smoothing > 0) {
            out.push({ label: `${l.label} (raw)`, key, x: l.x, y: l.y, color: c, faint: true, show });
            out.push({ label: l.label, key, x: l.x, y: RS.smooth(l.y, state.smoothing), color: c, show, band });
          } else {
            out.push({ label: l.label, key, x: l.x, y: l.y, color: c, show, band });
          }
        });
        return out;
      }

      entry.draw = async function draw() {
        const mine = ++entry.seq;
        const runs = charted().filter((r) => r.metrics[metric]).map((r) => r.run_name);
        if (!runs.length) { caption.textContent = "no charted run has it"; return; }
        const width = Math.round(Math.max(body.clientWidth, 300));
        const d = await api("curves", { experiment: experiment ?? "", metric, runs: JSON.stringify(runs),
          x: state.group ? "step" : state.x, group: state.group || null, points: width,
          from: entry.range ? entry.range[0] : null, to: entry.range ? entry.range[1] : null });
        if (mine !== entry.seq || gen !== generation) return;
        if (entry.chart) entry.chart.destroy();
        caption.textContent = state.group ? `${d.lines.length} groups of ${runs.length} runs` : `${d.lines.length} runs`;
        card.dataset.lines = d.lines.length;
        entry.chart = lineChart(body, {
          axis: d.axis, lines: lines(d), firstNonfinite: d.first_nonfinite, legend: true, yLabel: metric, height: 240,
          onZoom: (lo, hi) => { entry.range = lo === null ? null : [lo, hi]; entry.draw(); },
          onToggle: (key, show) => { if (!state.group) setHidden(key, !show, entry.chart); },
        });
      };
      return entry;
    }

    async function renderCharts() {
      for (const c of state.charts) if (c.chart) c.chart.destroy();
      const match = metricMatcher(metricSearch.value);
      const metrics = data.metrics.filter(match.test);
      metricNote.textContent = match.error || `${metrics.length} of ${data.metrics.length} metrics`;
      state.charts = metrics.map(metricChart);
      chartsBox.replaceChildren(...state.charts.map((c) => c.card));
      const n = Math.min(CHART_RUNS, data.runs.length);
      chartsNote.textContent = n ? `The first ${n} runs of the table as sorted and filtered` +
        (state.group ? `, grouped by ${state.group}: each group's mean, its min–max band shaded.` : "; untick a run's colour to hide it.") : "No runs.";
      await Promise.all(state.charts.map((c) => c.draw()));
    }

    function renderParallel() {
      const metric = pcMetric.value;
      const field = STATS[statSelect.value];
      const runs = data.runs.map((r) => {
        const summary = r.metrics[metric];
        const finite = (data.finite[r.run_name] || {})[metric];
        let value = summary ? summary[field] : undefined;
        if (finite && finite.nonfinite && field !== "last" && field !== "count") value = finite[field];
        return { name: r.run_name, params: r.parameters, value };
      });
      const varying = data.parameters.filter((p) => new Set(data.runs.map((r) => JSON.stringify(r.parameters[p] ?? null))).size > 1);
      const columns = varying.length ? varying : data.parameters;
      pcBox.replaceChildren(metric && runs.length
        ? window.RSParallel.chart(runs, columns, `${metric} (${statSelect.value})`, fmt, pcBox.clientWidth - 4)
        : h("p", { class: "muted" }, "No metric to plot."));
    }

    async function refreshAll() {
      if (!(await load())) return;
      renderTable();
      renderControls();
      renderParallel();
      await renderCharts();
    }

    async function findBest() {
      if (!bestMetric.value) return;
      try {
        const out = await api("best", { ...params, metric: bestMetric.value, maximize: bestDir.value,
          stat: statSelect.value });
        state.best = out.run;
        bestOut.replaceChildren("Best: ", runLink(out.run, out.run.run_name), ` (${fmt(out.value)})`);
      } catch (err) {
        state.best = null;
        bestOut.textContent = err.message;
      }
      renderTable();
    }

    compareBtn.addEventListener("click", () => {
      const es = [], rs = [];
      for (const key of state.selected) {
        const [e, r] = key.split("\u0000");
        es.push(e); rs.push(r);
      }
      location.hash = `#/compare?${new URLSearchParams({ metric: bestMetric.value || "" })}&` +
        es.map((e, i) => `e=${encodeURIComponent(e)}&r=${encodeURIComponent(rs[i])}`).join("&");
    });
    let typing = null;
    search.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { state.offset = 0; refreshAll(); }, 200);
    });
    statSelect.addEventListener("change", refreshAll);
    bestMetric.addEventListener("change", () => { state.directionTouched = false; state.best = null; renderTable(); });
    bestDir.addEventListener("change", () => { state.directionTouched = true; });
    prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); refreshAll(); });
    next.addEventListener("click", () => { state.offset += PAGE; refreshAll(); });
    metricSearch.addEventListener("input", () => { renderCharts(); });
    smoothing.addEventListener("input", () => {
      state.smoothing = Number(smoothing.value);
      smoothingOut.textContent = smoothing.value;
      clearTimeout(typing);
      typing = setTimeout(renderCharts, 60);
    });
    xSelect.addEventListener("change", () => { state.x = xSelect.value; for (const c of state.charts) c.range = null; renderCharts(); });
    groupSelect.addEventListener("change", () => {
      state.group = groupSelect.value;
      xSelect.disabled = Boolean(state.group); // groups are aligned by step
      for (const c of state.charts) c.range = null;
      renderCharts();
    });
    pcMetric.addEventListener("change", renderParallel);
    const bestBtn = h("button", { id: "find-best", onclick: findBest }, "Find best");

    if (!(await load())) return;
    view.replaceChildren(
      h("nav", { class: "crumbs" }, link("", {}, "Experiments"), " / ", title),
      h("h1", {}, title),
      h("div", { class: "toolbar" }, search, " statistic ", statSelect, counter),
      h("div", { class: "toolbar" }, compareBtn, " · best run by ", bestMetric, bestDir, bestBtn, bestOut),
      h("div", { class: "workspace" },
        h("div", { class: "table-side" }, holder,
          h("div", { class: "toolbar pager" }, prev, pageInfo, next)),
        h("div", { class: "charts-side" },
          h("div", { class: "toolbar", id: "chart-tools" }, metricSearch, metricNote,
            h("label", {}, " smoothing ", smoothing, smoothingOut),
            h("label", {}, " x ", xSelect), h("label", {}, " group by ", groupSelect)),
          chartsNote, chartsBox)),
      h("h2", {}, "Parallel coordinates"),
      h("div", { class: "toolbar" }, "parameters against ", pcMetric,
        h("span", { class: "muted" }, " (the runs of the page shown; the statistic chosen above)")),
      h("section", { class: "card wide pc-card" }, pcBox),
    );
    renderTable();
    renderControls();
    ready("runs"); // the table is up; the parallel coordinates and the charts follow
    renderParallel();
    await renderCharts();
    if (gen !== generation) return;
    ready("exp-charts");
    poll(gen, () => live(data.runs), refreshAll);
  }

  // -- one run ----------------------------------------------------------------------------

  // A chart card for one metric of one run, with zoom and the merged/per-worker toggle.
  function metricCard(experiment, runName, metric, workers) {
    const state = { view: "merged", range: null, chart: null, seq: 0, lines: 0, log: null };
    const body = h("div", { class: "chart" });
    const caption = h("span", { class: "muted" });
    const logBox = h("input", { type: "checkbox", class: "log",
      onchange: () => { state.log = logBox.checked; rebuild(); } });
    const toggle = workers.length > 1
      ? h("select", { onchange: (ev) => { state.view = ev.target.value; state.range = null; rebuild(); } },
          h("option", { value: "merged" }, `merged (${workers.length} workers)`),
          h("option", { value: "workers" }, "per worker"))
      : null;
    const card = h("section", { class: "card", "data-metric": metric },
      h("header", {}, h("h3", {}, metric), toggle, h("label", {}, logBox, " log"), caption), body);

    async function fetchLines() {
      const seq = ++state.seq;
      const width = Math.max(body.clientWidth, 300);
      const data = await api("series", {
        experiment, run: runName, metric, view: state.view, points: Math.round(width),
        from: state.range ? state.range[0] : null, to: state.range ? state.range[1] : null,
      });
      if (seq !== state.seq) return null; // a newer request (zoom, refresh) superseded this one
      const total = data.lines.reduce((n, l) => n + l.steps, 0);
      const drawn = data.lines.reduce((n, l) => n + l.x.length, 0);
      const unstepped = data.lines.reduce((n, l) => n + l.unstepped, 0);
      caption.textContent = `${total.toLocaleString()} steps, ${drawn.toLocaleString()} drawn` +
        (unstepped ? `, ${unstepped} without a step not charted` : "") +
        (state.range ? " · double-click to zoom out" : "");
      card.dataset.steps = total;
      return data;
    }

    const lines = (data) => data.lines.map((l) => ({ ...l, label: l.worker ?? runName }));

    async function rebuild() {
      const data = await fetchLines();
      if (!data) return;
      if (state.chart) state.chart.destroy();
      state.lines = data.lines.length;
      if (state.log === null) state.log = wideRange(data.lines); // a diverged loss: log by default
      logBox.checked = state.log;
      state.chart = lineChart(body, {
        axis: data.axis, lines: lines(data), firstNonfinite: data.first_nonfinite, log: state.log, yLabel: metric,
        onZoom: (lo, hi) => { state.range = lo === null ? null : [lo, hi]; refresh(); },
      });
    }

    async function refresh() {
      const data = await fetchLines();
      if (!data) return;
      if (!state.chart || data.lines.length !== state.lines) return rebuild();
      state.chart.update(lines(data), data.first_nonfinite, state.range);
    }

    return { card, rebuild, refresh };
  }

  function artifactRows(record) {
    const rows = [];
    for (const direction of ["input", "output"]) {
      for (const [name, a] of Object.entries(record.artifacts[direction])) {
        let target = a.value;
        if (a.sha256) {
          const href = `/api/file?${new URLSearchParams({ experiment: record.experiment_name ?? "",
            run: record.run_name, direction, name })}`;
          target = h("a", { href, target: "_blank", rel: "noopener" }, name);
        } else if (/^https?:\/\//.test(a.value)) {
          target = h("a", { href: a.value, target: "_blank", rel: "noopener noreferrer" }, a.value);
        }
        rows.push([direction, name, target, a.media_type || "–", a.size ? `${a.size.toLocaleString()} B` : "–"]);
      }
    }
    return rows;
  }

  async function viewRun(experiment, runName) {
    const gen = generation;
    let { run, metrics } = await api("run", { experiment, run: runName });
    setTitle(runName, experiment || "unassigned");
    const header = h("div", {});
    const summary = h("div", {});
    const artifacts = h("div", {});
    const workers = h("div", {});
    const cards = metrics.map((m) => metricCard(experiment, runName, m.metric, m.workers));
    // Min, max, avg and std over the finite points of a diverged metric (see /api/run).
    let finiteOf = Object.fromEntries(metrics.filter((m) => m.finite).map((m) => [m.metric, m.finite]));

    function renderRecord() {
      header.replaceChildren(
        h("p", {}, badge(run.status), run.message ? h("span", { class: "message" }, ` ${run.message}`) : "",
          h("span", { class: "muted" }, ` started ${time(run.start_time)} · ended ${time(run.end_time)} · ${duration(run)}`)));
      const params = Object.entries(run.parameters).sort(([a], [b]) => a.localeCompare(b));
      const ms = Object.entries(run.metrics).sort(([a], [b]) => a.localeCompare(b));
      summary.replaceChildren(
        h("div", { class: "two" },
          h("div", {}, h("h2", {}, "Parameters"),
            params.length ? table(["parameter", "value"], params.map(([k, v]) => [k, fmt(v)]), { id: "parameters" })
              : h("p", { class: "muted" }, "none")),
          h("div", {}, h("h2", {}, "Metrics"),
            ms.length ? table(["metric", "min", "max", "avg", "std", "last", "count", "not finite", "last step"],
              ms.map(([k, m]) => {
                const f = finiteOf[k];
                const kinds = f && f.nonfinite ? [f.nan ? `${f.nan} NaN` : null, f.inf ? `${f.inf} inf` : null].filter(Boolean).join(", ") : "";
                return [k, statCell(m, f, "min", false), statCell(m, f, "max", false),
                  statCell(m, f, "avg", false), statCell(m, f, "std", false),
                  statText(m.last), m.count, kinds ? h("span", { class: "nonfinite" }, `${f.nonfinite} of ${m.count} (${kinds})`) : "0",
                  fmt(m.last_step)];
              }),
              { id: "metrics" }) : h("p", { class: "muted" }, "none"))));
      const arts = artifactRows(run);
      artifacts.replaceChildren(...(arts.length ? [h("h2", {}, "Artifacts"),
        table(["direction", "name", "value", "media type", "size"], arts, { id: "artifacts" })] : []));
      workers.replaceChildren(h("h2", {}, "Workers"), table(["worker", "status", "host", "pid", "started", "ended", "message"],
        run.workers.map((w) => [w.worker, badge(w.status), w.host || "–", w.pid ?? "–", time(w.start_time), time(w.end_time), w.message || ""]),
        { id: "workers" }));
    }

    const where = experiment === null
      ? link("unassigned", {}, "Unassigned runs")
      : link("experiment", { name: experiment }, experiment);
    view.replaceChildren(
      h("nav", { class: "crumbs" }, link("", {}, "Experiments"), " / ", where, " / ", runName),
      h("h1", {}, runName),
      header,
      summary,
      h("h2", {}, "Charts"),
      cards.length ? h("div", { class: "grid", id: "charts" }, cards.map((c) => c.card))
        : h("p", { class: "muted" }, "No metrics logged."),
      artifacts,
      workers,
    );
    renderRecord();
    const { graphs } = await api("graphs", { experiment, run: runName });
    if (gen !== generation) return;
    artifacts.before(window.RSGraphs.section(graphs));
    ready("run");
    await Promise.all(cards.map((c) => c.rebuild()));
    if (gen !== generation) return;
    ready("charts");
    poll(gen, () => run.status === "InProgress", async () => {
      const next = await api("run", { experiment, run: runName });
      run = next.run;
      finiteOf = Object.fromEntries(next.metrics.filter((m) => m.finite).map((m) => [m.metric, m.finite]));
      renderRecord();
      if (next.metrics.length !== metrics.length) return viewRun(experiment, runName);
      await Promise.all(cards.map((c) => c.refresh()));
    });
  }

  // -- compare ----------------------------------------------------------------------------

  async function viewCompare(query) {
    const gen = generation;
    const es = query.getAll("e"), rs = query.getAll("r");
    const refs = rs.map((r, i) => ({ experiment: es[i] || null, run: r }));
    setTitle("Compare");
    const records = await Promise.all(refs.map((ref) => api("run", ref).then((d) => d.run)));
    const metrics = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
    let metric = metrics.includes(query.get("metric")) ? query.get("metric") : metrics[0];
    const select = h("select", { id: "compare-metric" }, metrics.map((m) => h("option", { selected: m === metric }, m)));
    const body = h("div", { class: "chart", id: "compare-chart" });
    const label = (r) => (refs.some((o) => o.run === r.run_name && o.experiment !== r.experiment_name)
      ? `${r.experiment_name ?? "unassigned"}/${r.run_name}` : r.run_name);
    let chart = null, range = null, seq = 0, log = null;
    const logBox = h("input", { type: "checkbox", id: "compare-log",
      onchange: () => { log = logBox.checked; if (chart) { chart.destroy(); chart = null; } draw(); } });

    async function fetchAll() {
      const mine = ++seq;
      const width = Math.round(Math.max(body.clientWidth, 300));
      const datas = await Promise.all(records.map((r) => (r.metrics[metric]
        ? api("series", { experiment: r.experiment_name, run: r.run_name, metric, points: width,
          from: range ? range[0] : null, to: range ? range[1] : null })
        : null)));
      if (mine !== seq) return null;
      const lines = [];
      let axis = "step", bad = null;
      datas.forEach((d, i) => {
        if (!d) return;
        axis = d.axis;
        if (d.first_nonfinite !== null && (bad === null || d.first_nonfinite < bad)) bad = d.first_nonfinite;
        lines.push({ ...d.lines[0], label: label(records[i]) });
      });
      return { axis, lines, bad };
    }

    async function draw() {
      const d = await fetchAll();
      if (!d) return;
      if (chart && (d.lines.length !== chart.lines || chart.metric !== metric)) { chart.destroy(); chart = null; }
      if (!chart) {
        if (log === null) log = wideRange(d.lines);
        logBox.checked = log;
        chart = lineChart(body, { axis: d.axis, lines: d.lines, firstNonfinite: d.bad, legend: true, log, yLabel: metric,
          onZoom: (lo, hi) => { range = lo === null ? null : [lo, hi]; draw(); } });
        chart.lines = d.lines.length;
        chart.metric = metric;
      } else {
        chart.update(d.lines, d.bad, range);
      }
    }

    select.addEventListener("change", () => { metric = select.value; range = null; log = null; draw(); });
    const params = [...new Set(records.flatMap((r) => Object.keys(r.parameters)))].sort();
    const differs = (p) => new Set(records.map((r) => JSON.stringify(r.parameters[p]))).size > 1;
    // Parameters that differ between the runs are highlighted (and listed first); a box
    // hides the ones that are the same everywhere.
    const differing = params.filter(differs);
    const cell = (c) => h("td", {}, c);
    const paramRow = (p) => h("tr", { class: differs(p) ? "differs" : "same", "data-param": p },
      cell(h("span", { class: differs(p) ? "differs" : "" }, p)), records.map((r) => cell(fmt(r.parameters[p]))));
    const compareTable = h("table", { id: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), records.map((r) => h("th", {}, runLink(r, label(r)))))),
      h("tbody", {},
        h("tr", {}, cell("status"), records.map((r) => cell(badge(r.status)))),
        [...differing, ...params.filter((p) => !differs(p))].map(paramRow),
        metrics.map((m) => h("tr", {}, cell(`${m} (last)`), records.map((r) => cell(r.metrics[m] ? statText(r.metrics[m].last) : "–"))))));
    const onlyBox = h("input", { type: "checkbox", id: "only-differing",
      onchange: () => compareTable.classList.toggle("only-differing", onlyBox.checked) });
    view.replaceChildren(
      h("nav", { class: "crumbs" }, link("", {}, "Experiments"), " / compare"),
      h("h1", {}, `Compare ${records.length} runs`),
      h("div", { class: "toolbar" }, "metric ", select, h("label", {}, logBox, " log scale")),
      h("section", { class: "card wide" }, body),
      h("h2", {}, "Side by side"),
      h("p", { class: "toolbar" }, h("span", { id: "differ-count" },
        differing.length ? `${differing.length} of ${params.length} parameters differ (highlighted)` : "No parameter differs"),
        h("label", {}, onlyBox, " only the parameters that differ")),
      h("div", { class: "scroll" }, compareTable),
    );
    if (metric) await draw();
    if (gen !== generation) return;
    ready("compare");
    poll(gen, () => live(records), async () => {
      const fresh = await Promise.all(refs.map((ref) => api("run", ref).then((d) => d.run)));
      records.splice(0, records.length, ...fresh);
      await draw();
    });
  }

  // -- routing ----------------------------------------------------------------------------

  function backLink() {
    return h("p", {}, h("a", { href: "#/", id: "back" }, "← Back to the experiments"),
      history.length > 1 ? h("span", {}, " · ", h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); history.back(); } }, "previous page")) : null);
  }

  async function route() {
    generation += 1;
    clearTimeout(timer);
    delete document.body.dataset.ready;
    const [path, qs] = location.hash.replace(/^#\/?/, "").split("?");
    const query = new URLSearchParams(qs || "");
    try {
      if (path === "" || path === "experiments") await viewExperiments();
      else if (path === "experiment") await viewRuns(query.get("name"));
      else if (path === "unassigned") await viewRuns(null);
      else if (path === "run") await viewRun(query.get("experiment") || null, query.get("run"));
      else if (path === "compare") await viewCompare(query);
      else view.replaceChildren(h("p", { class: "error" }, `No page ${location.hash}`), backLink());
    } catch (err) {
      view.replaceChildren(h("p", { class: "error" }, err.message), backLink());
      document.body.dataset.ready = "error";
    }
  }

  window.addEventListener("hashchange", route);
  route();
})();

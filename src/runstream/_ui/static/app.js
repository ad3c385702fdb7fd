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
  const { fmt, lineChart, wideRange, parse } = window.RS;
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

  // Search terms: `name>value` style filters on parameters, metrics (the chosen statistic),
  // `status` or `run`; any other word must appear in the run's name, status or parameters.
  function matcher(text, stat) {
    const tests = text.trim().split(/\s+/).filter(Boolean).map((term) => {
      const m = term.match(/^([^<>=!~]+)(<=|>=|!=|=|<|>|~)(.*)$/);
      if (!m) {
        const needle = term.toLowerCase();
        return (r) => [r.run_name, r.status, ...Object.values(r.parameters)]
          .some((v) => String(v).toLowerCase().includes(needle));
      }
      const [, key, op, raw] = m;
      const num = Number(raw);
      return (r) => {
        let v;
        if (key === "status") v = r.status;
        else if (key === "run") v = r.run_name;
        else if (key in r.parameters) v = r.parameters[key];
        else if (key in r.metrics) v = r.metrics[key][STATS[stat]];
        else return false;
        if (op === "~") return String(v).toLowerCase().includes(raw.toLowerCase());
        const numeric = typeof v === "number" && raw !== "" && !Number.isNaN(num);
        const [a, b] = numeric ? [v, num] : [String(v).toLowerCase(), raw.toLowerCase()];
        return { "=": a === b, "!=": a !== b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b }[op];
      };
    });
    return (r) => tests.every((t) => t(r));
  }

  // The filter box's example, from this experiment's own columns: a numeric parameter
  // compared with a value that keeps some runs and drops others.
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

  async function viewRuns(experiment) {
    const gen = generation;
    const params = experiment === null ? { unassigned: "true" } : { experiment };
    const title = experiment === null ? "Unassigned runs" : experiment;
    setTitle(title);
    let runs = (await api("runs", params)).runs;
    const state = { sort: null, desc: false, shown: PAGE, selected: new Set(), best: null };

    const search = h("input", {
      id: "search", type: "search", size: 48, placeholder: placeholder(runs),
    });
    const statSelect = h("select", { id: "stat" }, Object.keys(STATS).map((s) => h("option", {}, s)));
    const bestMetric = h("select", { id: "best-metric" });
    const bestDir = h("select", { id: "best-dir" }, h("option", { value: "false" }, "lowest"),
      h("option", { value: "true" }, "highest"));
    const bestOut = h("span", { id: "best", class: "muted" });
    const compareBtn = h("button", { id: "compare", disabled: true }, "Compare selected");
    const counter = h("span", { class: "muted", id: "count" });
    const holder = h("div", { class: "scroll" });
    const more = h("button", { id: "more" }, "Show more");

    function columns() {
      const params = [...new Set(runs.flatMap((r) => Object.keys(r.parameters)))].sort();
      const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
      return { params, metrics };
    }

    function value(r, col, stat) {
      if (col.kind === "run") return r.run_name;
      if (col.kind === "status") return r.status;
      if (col.kind === "started") return r.start_time;
      if (col.kind === "param") return r.parameters[col.name];
      const m = r.metrics[col.name];
      return m ? m[STATS[stat]] : undefined;
    }

    function render() {
      const { params, metrics } = columns();
      const stat = statSelect.value;
      const cols = [
        { kind: "run", label: "run" }, { kind: "status", label: "status" },
        { kind: "started", label: "started" },
        ...params.map((p) => ({ kind: "param", name: p, label: p })),
        ...metrics.map((m) => ({ kind: "metric", name: m, label: `${m} (${stat})` })),
      ];
      const match = matcher(search.value, stat);
      let rows = runs.filter(match);
      if (state.sort !== null && state.sort < cols.length) {
        const col = cols[state.sort];
        const missing = (v) => v === undefined || v === null || (typeof v === "number" && Number.isNaN(v));
        rows = rows.slice().sort((a, b) => {
          const va = value(a, col, stat), vb = value(b, col, stat);
          if (missing(va) || missing(vb)) return missing(va) - missing(vb); // missing last
          const c = va < vb ? -1 : va > vb ? 1 : 0;
          return state.desc ? -c : c;
        });
      }
      const metricNow = bestMetric.value || defaultBest(metrics);
      bestMetric.replaceChildren(...metrics.map((m) => h("option", { selected: m === metricNow }, m)));
      if (!state.directionTouched && metricNow) bestDir.value = String(HIGHER_IS_BETTER.test(metricNow));
      counter.textContent = `${rows.length} of ${runs.length} runs`;
      const head = h("tr", {}, h("th", {}, ""), cols.map((c, i) => h("th", {
        class: "sortable" + (state.sort === i ? (state.desc ? " desc" : " asc") : ""),
        onclick: () => { state.desc = state.sort === i ? !state.desc : false; state.sort = i; render(); },
      }, c.label)));
      const body = rows.slice(0, state.shown).map((r) => {
        const key = `${r.experiment_name ?? ""}\u0000${r.run_name}`;
        const box = h("input", { type: "checkbox", checked: state.selected.has(key),
          onchange: (ev) => { ev.target.checked ? state.selected.add(key) : state.selected.delete(key); updateCompare(); } });
        const best = state.best && state.best.run_name === r.run_name;
        return h("tr", { class: best ? "best" : null, "data-run": r.run_name },
          h("td", {}, box),
          h("td", {}, runLink(r, r.run_name)),
          h("td", {}, badge(r.status)),
          h("td", {}, time(r.start_time)),
          params.map((p) => h("td", { class: "num" }, fmt(r.parameters[p]))),
          metrics.map((m) => h("td", { class: "num" }, r.metrics[m] ? statText(r.metrics[m][STATS[statSelect.value]]) : "–")));
      });
      holder.replaceChildren(h("table", { id: "runs" }, h("thead", {}, head), h("tbody", {}, body)));
      more.hidden = rows.length <= state.shown;
      updateCompare();
    }

    function updateCompare() {
      compareBtn.disabled = state.selected.size < 1;
      compareBtn.textContent = `Compare selected (${state.selected.size})`;
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
      render();
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
    search.addEventListener("input", () => { state.shown = PAGE; render(); });
    statSelect.addEventListener("change", render);
    bestMetric.addEventListener("change", () => { state.directionTouched = false; state.best = null; render(); });
    bestDir.addEventListener("change", () => { state.directionTouched = true; });
    more.addEventListener("click", () => { state.shown += PAGE * 5; render(); });
    const bestBtn = h("button", { id: "find-best", onclick: findBest }, "Find best");

    view.replaceChildren(
      h("nav", { class: "crumbs" }, link("", {}, "Experiments"), " / ", title),
      h("h1", {}, title),
      h("div", { class: "toolbar" }, search, " statistic ", statSelect, counter),
      h("div", { class: "toolbar" }, compareBtn, " · best run by ", bestMetric, bestDir, bestBtn, bestOut),
      holder,
      more,
    );
    render();
    ready("runs");
    poll(gen, () => live(runs), async () => {
      runs = (await api("runs", params)).runs;
      render();
    });
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
            ms.length ? table(["metric", "min", "max", "avg", "std", "last", "count", "last step"],
              ms.map(([k, m]) => [k, statText(m.min), statText(m.max), statText(m.avg), statText(m.std), statText(m.last), m.count, fmt(m.last_step)]),
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
    const header = ["", ...records.map((r) => runLink(r, label(r)))];
    const rows = [
      ["status", ...records.map((r) => badge(r.status))],
      ...params.map((p) => [h("span", { class: differs(p) ? "differs" : "" }, p),
        ...records.map((r) => fmt(r.parameters[p]))]),
      ...metrics.map((m) => [`${m} (last)`, ...records.map((r) => (r.metrics[m] ? statText(r.metrics[m].last) : "–"))]),
    ];
    view.replaceChildren(
      h("nav", { class: "crumbs" }, link("", {}, "Experiments"), " / compare"),
      h("h1", {}, `Compare ${records.length} runs`),
      h("div", { class: "toolbar" }, "metric ", select, h("label", {}, logBox, " log scale")),
      h("section", { class: "card wide" }, body),
      h("h2", {}, "Side by side"),
      h("div", { class: "scroll" }, table(header, rows, { id: "compare-table" })),
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

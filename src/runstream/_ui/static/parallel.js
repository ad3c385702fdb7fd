// runstream parallel coordinates: a sweep's parameters against a chosen metric, as SVG.
// One vertical axis per parameter that varies (numbers on a linear scale, or a log scale
// when positive and spanning over 100x; text as evenly spaced categories), the metric last;
// one line per run, coloured by the metric from blue (low) to red (high). Runs without a
// finite value of the metric are drawn grey. Hover a line for the run's values.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const H = 320, T = 28, B = 30, L = 30, R = 70;
  const NONE = "#a1a1aa";

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);

  // An axis over the values of one column: position(v) in [0, 1] (null: no value), ticks.
  function scaleOf(values, fmt) {
    const present = values.filter((v) => v !== undefined && v !== null && !(typeof v === "number" && Number.isNaN(v)));
    if (present.length && present.every(isNum)) {
      let lo = Math.min(...present), hi = Math.max(...present);
      const log = lo > 0 && hi / lo > 100;
      const f = log ? Math.log10 : (v) => v;
      const [a, b] = [f(lo), f(hi)];
      const pos = (v) => (isNum(v) ? (b > a ? (f(v) - a) / (b - a) : 0.5) : null);
      const ticks = b > a ? [lo, log ? 10 ** ((a + b) / 2) : (lo + hi) / 2, hi] : [lo];
      return { pos, ticks: ticks.map((v) => [pos(v), fmt(v)]), log };
    }
    const cats = [...new Set(present.map(String))].sort();
    const pos = (v) => (v === undefined || v === null ? null : cats.length > 1 ? cats.indexOf(String(v)) / (cats.length - 1) : 0.5);
    return { pos, ticks: cats.map((c) => [pos(c), c]), log: false };
  }

  // Blue to red through grey-violet, for t in [0, 1].
  function heat(t) {
    const a = [37, 99, 235], b = [220, 38, 38];
    const c = a.map((v, i) => Math.round(v + (b[i] - v) * t));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  // runs: [{name, params: {p: v}, value}]; params: the parameter columns; metric: its label.
  function chart(runs, params, metric, fmt, room) {
    const columns = [...params.map((p) => ({ label: p, get: (r) => r.params[p] })),
      { label: metric, get: (r) => r.value, metric: true }];
    const width = Math.max(480, Math.min(room || 0, 260 * columns.length + L + R), 120 * columns.length + L + R);
    const gap = (width - L - R) / Math.max(columns.length - 1, 1);
    const svg = s("svg", { viewBox: `0 0 ${width} ${H}`, width, height: H, class: "parallel", "data-lines": runs.length });
    const scales = columns.map((c) => scaleOf(runs.map(c.get), fmt));
    const y = (p) => T + (1 - p) * (H - T - B);
    const metricScale = scales[scales.length - 1];
    const lines = s("g", { class: "pc-lines" });
    for (const r of runs) {
      const pts = [];
      columns.forEach((c, i) => {
        const p = scales[i].pos(c.get(r));
        if (p !== null) pts.push(`${(L + i * gap).toFixed(1)},${y(p).toFixed(1)}`);
      });
      const m = metricScale.pos(r.value);
      const stroke = m === null ? NONE : heat(m);
      const tip = `${r.name}\n` + columns.map((c) => `${c.label}: ${fmt(c.get(r))}`).join("\n");
      lines.append(s("path", { class: "pc-line", "data-run": r.name, d: `M${pts.join("L")}`, fill: "none",
        stroke, "stroke-width": 1.6, "stroke-opacity": m === null ? 0.6 : 0.85 }, s("title", {}, tip)));
    }
    svg.append(lines);
    columns.forEach((c, i) => {
      const x = L + i * gap;
      const g = s("g", { class: "pc-axis", "data-column": c.label });
      g.append(s("line", { x1: x, x2: x, y1: T, y2: H - B, stroke: "#374151", "stroke-width": 1 }));
      for (const [p, text] of scales[i].ticks) {
        if (p === null) continue;
        g.append(s("line", { x1: x - 4, x2: x, y1: y(p), y2: y(p), stroke: "#374151" }));
        g.append(s("text", { x: x + 5, y: y(p) + 4, "font-size": 10, fill: "#374151", class: "pc-tick" }, text));
      }
      const anchor = i === 0 ? "start" : i === columns.length - 1 ? "end" : "middle";
      g.append(s("text", { x: i === 0 ? x - 6 : x, y: T - 12, "text-anchor": anchor, "font-size": 11,
        "font-weight": c.metric ? 700 : 600, fill: "#111827" }, c.label + (scales[i].log ? " (log)" : "")));
      svg.append(g);
    });
    return svg;
  }

  window.RSParallel = { chart, heat };
})();

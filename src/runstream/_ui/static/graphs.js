// runstream graphs: the documents of log_precision_recall, log_roc_curve and
// log_confusion_matrix (the official SDK's JSON), drawn as SVG. Self-contained: used by
// the run page (app.js) and the report (report.js) through window.RSGraphs.section().
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 360, H = 300, L = 46, R = 12, T = 12, B = 40;
  const LINE = "#2563eb", GRID = "#d4d4d8", DIAG = "#a1a1aa";

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  const num = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

  // A unit square plot: axes 0..1, a grid, labels, then the given polyline(s).
  function curve(xs, ys, xLabel, yLabel, extra) {
    const x = (v) => L + v * (W - L - R);
    const y = (v) => H - B - v * (H - T - B);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "graph-plot" });
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      svg.append(s("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(1), stroke: GRID }));
      svg.append(s("line", { x1: x(0), x2: x(1), y1: y(t), y2: y(t), stroke: GRID }));
      svg.append(s("text", { x: x(t), y: H - B + 14, "text-anchor": "middle", "font-size": 10 }, t));
      svg.append(s("text", { x: L - 6, y: y(t) + 3, "text-anchor": "end", "font-size": 10 }, t));
    }
    svg.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11 }, xLabel));
    svg.append(s("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", "font-size": 11,
      transform: `rotate(-90 12 ${(T + H - B) / 2})` }, yLabel));
    if (extra) extra(svg, x, y);
    const points = xs.map((v, i) => [v, ys[i]]).filter(([a, b]) => a !== null && b !== null);
    svg.append(s("polyline", { class: "graph-line", fill: "none", stroke: LINE, "stroke-width": 2.5,
      points: points.map(([a, b]) => `${x(a)},${y(b)}`).join(" ") }));
    return svg;
  }

  function precisionRecall(doc) {
    const svg = curve(doc.recall, doc.precision, "recall", "precision", (g, x, y) => {
      if (doc.noSkill !== null && doc.noSkill !== undefined) {
        g.append(s("line", { class: "graph-noskill", x1: x(0), x2: x(1), y1: y(doc.noSkill), y2: y(doc.noSkill),
          stroke: DIAG, "stroke-dasharray": "4 3" }));
      }
    });
    return [svg, `average precision ${num(doc.averagePrecisionScore)}` +
      (doc.noSkill !== null && doc.noSkill !== undefined ? ` · no skill ${num(doc.noSkill)}` : "")];
  }

  function roc(doc) {
    const svg = curve(doc.falsePositiveRate, doc.truePositiveRate, "false positive rate", "true positive rate",
      (g, x, y) => g.append(s("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: DIAG, "stroke-dasharray": "4 3" })));
    return [svg, `area under the curve ${num(doc.areaUnderCurve)}`];
  }

  function confusion(doc) {
    const m = doc.confusionMatrix || [];
    const n = m.length;
    const size = Math.min(56, Math.floor((W - L - R) / Math.max(n, 1)));
    const max = Math.max(1, ...m.flat());
    const svg = s("svg", { viewBox: `0 0 ${L + n * size + R} ${T + n * size + B}`, width: L + n * size + R,
      height: T + n * size + B, class: "graph-plot" });
    m.forEach((row, i) => row.forEach((v, j) => {
      const shade = Math.round(255 - (v / max) * 200);
      svg.append(s("rect", { class: "graph-cell", x: L + j * size, y: T + i * size, width: size - 2, height: size - 2,
        fill: `rgb(${shade},${shade},255)` }));
      svg.append(s("text", { class: "graph-count", x: L + j * size + size / 2 - 1, y: T + i * size + size / 2 + 4,
        "text-anchor": "middle", "font-size": 13, fill: v / max > 0.6 ? "#fff" : "#111" }, v));
    }));
    svg.append(s("text", { x: L + (n * size) / 2, y: T + n * size + 26, "text-anchor": "middle", "font-size": 11 }, "predicted"));
    svg.append(s("text", { x: 14, y: T + (n * size) / 2, "text-anchor": "middle", "font-size": 11,
      transform: `rotate(-90 14 ${T + (n * size) / 2})` }, "true"));
    return [svg, `${n} classes · ${m.flat().reduce((a, b) => a + b, 0)} samples`];
  }

  const DRAW = { PrecisionRecallCurve: precisionRecall, ROCCurve: roc, ConfusionMatrix: confusion };

  function card(graph) {
    const draw = DRAW[graph.type];
    const [svg, caption] = draw ? draw(graph.document) : [el("p", { class: "muted" }, "unknown graph type"), ""];
    return el("section", { class: "card graph", "data-graph": graph.type, "data-title": graph.title },
      el("header", {}, el("h3", {}, graph.title), el("span", { class: "muted" }, ` ${graph.type} · ${graph.direction}`)),
      svg, el("p", { class: "muted graph-caption" }, caption));
  }

  // The section for a run's graphs (empty when it has none).
  function section(graphs, heading) {
    const box = el("div", { id: "graphs" });
    if (!graphs || !graphs.length) return box;
    box.append(el("h2", {}, heading || "Graphs"), el("div", { class: "grid" }, ...graphs.map(card)));
    return box;
  }

  window.RSGraphs = { section };
})();

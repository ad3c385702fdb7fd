// runstream charts: uPlot line charts shared by the dashboard and the HTML report.
// Lines arrive downsampled by the server (a few points per pixel column); NaN and
// infinities arrive as null and are drawn as gaps, with a marker where they start.
"use strict";

(function () {
  const PALETTE = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
    "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d",
  ];

  function color(i) {
    return PALETTE[i % PALETTE.length];
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
  }

  // Align lines with different x onto one x array (uPlot's data shape).
  function tableOf(lines, log) {
    const ys = lines.map((l) => (log ? l.y.map(toLog) : l.y));
    if (lines.length === 1) return [lines[0].x, ys[0]];
    return uPlot.join(lines.map((l, i) => [l.x, ys[i]]));
  }

  function nonfiniteMarker(getX) {
    return (u) => {
      const x = getX();
      if (x === null || x === undefined) return;
      const px = Math.round(u.valToPos(x, "x", true));
      if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) return;
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = "#dc2626";
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(px, u.bbox.top);
      ctx.lineTo(px, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillStyle = "#dc2626";
      ctx.font = `${12 * devicePixelRatio}px sans-serif`;
      ctx.fillText("NaN/inf", px + 4, u.bbox.top + 14 * devicePixelRatio);
      ctx.restore();
    };
  }

  // A line chart in `el`. spec: {axis: "step"|"time", lines: [{label, x, y}],
  // firstNonfinite, height, onZoom(lo, hi)}: dragging a range calls onZoom with it and a
  // double click calls onZoom(null, null); the caller refetches and calls update().
  function lineChart(el, spec) {
    let marker = spec.firstNonfinite ?? null;
    const series = [{ label: spec.axis === "time" ? "time" : "step" }].concat(
      spec.lines.map((l, i) => ({
        label: l.label,
        stroke: color(i),
        width: 1.5,
        points: { show: false },
        value: (u, v) => fmt(spec.log && v !== null ? fromLog(v) : v),
      })),
    );
    const opts = {
      width: Math.max(el.clientWidth, 200),
      height: spec.height || 260,
      series,
      scales: {
        x: { time: spec.axis === "time" },
      },
      axes: [{}, spec.log
        ? { values: (u, vals) => vals.map(logLabel), size: 70, splits: logSplits }
        : { values: (u, vals) => vals.map(fmt), size: 70 }],
      legend: { show: spec.lines.length > 1 || spec.legend === true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        draw: [nonfiniteMarker(() => marker)],
        setSelect: [
          (u) => {
            if (u.select.width < 2 || !spec.onZoom) return;
            const lo = u.posToVal(u.select.left, "x");
            const hi = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            spec.onZoom(lo, hi);
          },
        ],
      },
    };
    const plot = new uPlot(opts, tableOf(spec.lines, spec.log), el);
    el.uplot = plot; // for tests and the curious: document.querySelector(".chart").uplot
    plot.over.addEventListener("dblclick", () => spec.onZoom && spec.onZoom(null, null));
    const resize = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 200);
      if (Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height: plot.height });
    });
    resize.observe(el);
    return {
      plot,
      destroy() {
        resize.disconnect();
        plot.destroy();
      },
      width: () => plot.bbox.width / devicePixelRatio,
      // New data for the same lines; `range` keeps a zoomed x range in view.
      update(lines, firstNonfinite, range) {
        marker = firstNonfinite ?? null;
        plot.setData(tableOf(lines, spec.log), !range);
        if (range) plot.setScale("x", { min: range[0], max: range[1] });
      },
    };
  }

  // "Log" scale, done here rather than by uPlot, whose axes cannot label values past 1e17:
  // y is drawn as sign(y) * log10(1 + |y| / EPS), logarithmic above EPS, and still takes
  // 0 and negative values. Ticks sit at powers of ten, about six whatever the range.
  const EPS = 1e-3;
  function toLog(v) {
    if (v === null || v === undefined) return v;
    const a = Math.abs(v); // log10(1 + a / EPS), without overflowing a / EPS near 1e308
    return Math.sign(v) * (a > 1 ? Math.log10(a) - Math.log10(EPS) + Math.log10(1 + EPS / a) : Math.log10(1 + a / EPS));
  }
  const fromLog = (t) => Math.sign(t) * (10 ** Math.abs(t) - 1) * EPS;

  // Powers of ten in exponents, so that ranges up to 1e308 never overflow to Infinity.
  const expOf = (t) => (t > 15 ? t + Math.log10(EPS) : Math.log10(Math.max((10 ** t - 1) * EPS, 1e-300)));
  const logOfExp = (e) => (e > 15 ? e - Math.log10(EPS) : toLog(10 ** e));

  function logSplits(u, axisIdx, min, max) {
    const low = Math.log10(EPS);
    const top = Math.max(expOf(Math.abs(min)), expOf(Math.abs(max)), low);
    const rough = Math.max(1, (top - low) / 6);
    const step = [1, 2, 5, 10, 20, 25, 50, 100].find((n) => n >= rough) || 100;
    const ticks = min <= 0 && max >= 0 ? [0] : [];
    for (let e = Math.floor(top / step) * step; e >= low; e -= step) {
      const t = logOfExp(e);
      if (t >= min && t <= max) ticks.push(t);
      if (-t >= min && -t <= max) ticks.push(-t);
    }
    const gap = (max - min) / 12; // drop ticks that would print on top of each other
    return ticks.sort((a, b) => a - b).filter((t, i, all) => i === 0 || t - all[i - 1] >= gap);
  }

  function logLabel(t) {
    const e = expOf(Math.abs(t));
    if (t === 0) return "0";
    return `${t < 0 ? "-" : ""}${e > 5 || e < -2 ? `1e${Math.round(e)}` : fmt(+(10 ** e).toPrecision(3))}`;
  }

  // Whether values span so many orders of magnitude (a diverged loss) that a linear axis
  // would flatten everything else.
  function wideRange(lines) {
    let lo = Infinity, hi = 0;
    for (const l of lines) {
      for (const v of l.y) {
        if (v === null) continue;
        const a = Math.abs(v);
        if (a > hi) hi = a;
        if (a > 0 && a < lo) lo = a;
      }
    }
    return hi / lo > 1e6;
  }

  window.RS = { color, fmt, lineChart, wideRange };
})();

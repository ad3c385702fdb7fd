// runstream charts: uPlot line charts shared by the dashboard and the HTML report.
// Lines arrive downsampled by the server (a few points per pixel column); NaN and
// infinities arrive as the strings "NaN", "Infinity", "-Infinity" (see revive) and are
// drawn as gaps, with a marker where they start. The y axis is robust by default: its
// limits come from the bulk of the values, so one diverged run (1e305) cannot flatten the
// others; what lies outside is clipped, and hovering still shows the true value.
"use strict";

(function () {
  const PALETTE = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
    "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d",
  ];

  // Ten distinct colours, then more spread around the hue circle (golden angle).
  function color(i) {
    if (i < PALETTE.length) return PALETTE[i];
    const hue = Math.round((i * 137.508) % 360);
    return hslHex(hue, 65, 42);
  }

  function hslHex(h, s, l) {
    const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
    const f = (n) => {
      const k = (n + h / 30) % 12;
      const c = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
      return Math.round(255 * c).toString(16).padStart(2, "0");
    };
    return `#${f(0)}${f(8)}${f(4)}`;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
  }

  // JSON.parse reviver: runstream's JSON writes NaN and the infinities as strings.
  const NONFINITE = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };
  function revive(key, value) {
    return typeof value === "string" && value in NONFINITE ? NONFINITE[value] : value;
  }
  const parse = (text) => JSON.parse(text, revive);
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const drawable = (v) => (finite(v) ? v : null);

  // The columns a line adds to the chart: its y, and its band's min and max when it has one.
  function columnsOf(l, log) {
    const ys = (v) => (log ? v.map(drawable).map(toLog) : v.map(drawable));
    return l.band ? [ys(l.y), ys(l.band.min), ys(l.band.max)] : [ys(l.y)];
  }

  // Align lines with different x onto one x array (uPlot's data shape).
  function tableOf(lines, log) {
    if (lines.length === 1) return [lines[0].x, ...columnsOf(lines[0], log)];
    return uPlot.join(lines.map((l) => [l.x, ...columnsOf(l, log)]));
  }

  // Exponential moving average with a weight from 0 (none) to <1, debiased as TensorBoard
  // and W&B do so the start is not pulled towards zero; gaps (NaN, null) are kept as gaps.
  function smooth(y, weight) {
    if (!(weight > 0)) return y;
    let last = 0, n = 0;
    return y.map((v) => {
      if (!finite(v)) return v;
      last = last * weight + (1 - weight) * v;
      n += 1;
      return last / (1 - weight ** n);
    });
  }

  // A colour with an alpha, for faint raw lines and bands.
  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    const a = Math.abs(s);
    if (a < 120) return `${+s.toPrecision(3)} s`;
    if (a < 7200) return `${+(s / 60).toPrecision(3)} min`;
    return `${+(s / 3600).toPrecision(3)} h`;
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
    let current = spec.lines;
    const robust = spec.robust !== false;
    // Few points (one final test loss, a handful of evaluations): draw them as dots, or a
    // line of one point would show nothing at all.
    const few = (lines) => lines.every((l) => l.x.length <= 60);
    // Lines: {label, x, y, color?, faint?, show?, key?, band?: {min, max}}. A faint line is
    // a raw line under its smoothed one; a band is a group's min-max range, filled.
    const bands = [];
    const series = [{ label: spec.axis === "time" ? "time" : spec.axis === "relative" ? "time since start" : "step",
      value: spec.axis === "relative" ? (u, v) => duration(v) : undefined }];
    const keys = [null];
    spec.lines.forEach((l, i) => {
      const c = l.color || color(i);
      const shown = l.show !== false;
      series.push({
        label: l.label,
        stroke: l.faint ? alpha(c, 0.28) : c,
        width: l.faint ? 1 : 1.5,
        show: shown,
        class: l.faint ? "rs-raw" : undefined,
        points: { show: few(spec.lines), size: 6 },
        value: (u, v) => fmt(spec.log && v !== null ? fromLog(v) : v),
      });
      keys.push(l.key ?? l.label);
      if (l.band) {
        const lo = series.length;
        for (const which of ["min", "max"]) {
          series.push({ label: `${l.label} ${which}`, stroke: alpha(c, 0.35), width: 0.5, show: shown,
            class: "rs-band", points: { show: false }, value: (u, v) => fmt(spec.log && v !== null ? fromLog(v) : v) });
          keys.push(l.key ?? l.label);
        }
        bands.push({ series: [lo + 1, lo], fill: alpha(c, 0.16) });
      }
    });
    const xAxis = spec.axis === "relative" ? { values: (u, vals) => vals.map(duration) } : {};
    const yAxis = spec.log
      ? { values: (u, vals) => vals.map(logLabel), size: 70, splits: logSplits }
      : { values: (u, vals) => vals.map(fmt), size: 70 };
    if (spec.yLabel) Object.assign(yAxis, { label: spec.yLabel, labelSize: 18 });
    const opts = {
      width: Math.max(el.clientWidth, 200),
      height: spec.height || 260,
      series,
      scales: {
        x: {
          time: spec.axis === "time",
          range: (u, lo, hi) => (lo === hi || lo === null
            ? [(lo ?? 0) - (spec.axis === "time" ? 60 : 1), (hi ?? 0) + (spec.axis === "time" ? 60 : 1)]
            : [lo, hi]),
        },
        y: {
          range: (u, lo, hi) => {
            const r = robust ? robustRange(shownLines(), spec.log) : null;
            if (r) return r;
            if (lo === null || hi === null) return [0, 1];
            if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.1, hi + (Math.abs(hi) || 1) * 0.1];
            const pad = (hi - lo) * 0.05;
            return [lo - pad, hi + pad];
          },
        },
      },
      axes: [xAxis, yAxis],
      bands,
      legend: { show: spec.lines.length > 1 || spec.legend === true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        draw: [nonfiniteMarker(() => marker)],
        // A line hidden from the legend hides its raw line and band too, and the y axis
        // is fitted again to what is still shown (hiding a diverged run rescales).
        setSeries: [(u, idx, opts) => {
          if (syncing || idx === null || !opts || opts.show === undefined) return;
          setShown(keys[idx], opts.show);
          if (spec.onToggle) spec.onToggle(keys[idx], opts.show);
        }],
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
    let syncing = false;
    function shownLines() {
      if (typeof plot === "undefined") return current.filter((l) => l.show !== false);
      const shown = new Set(keys.filter((k, i) => i > 0 && plot.series[i].show));
      return current.filter((l) => shown.has(l.key ?? l.label));
    }
    function setShown(key, show) {
      syncing = true;
      keys.forEach((k, i) => { if (i > 0 && k === key && plot.series[i].show !== show) plot.setSeries(i, { show }); });
      syncing = false;
      const { min, max } = plot.scales.x; // fit y again to the lines shown, keep x
      plot.setData(plot.data, true);
      plot.setScale("x", { min, max });
    }
    var plot = new uPlot(opts, tableOf(spec.lines, spec.log), el);
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
      setShown,
      // New data for the same lines; `range` keeps a zoomed x range in view.
      update(lines, firstNonfinite, range) {
        marker = firstNonfinite ?? null;
        current = lines;
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

  // Robust y limits: values more than 1000 times the 90th percentile of the magnitudes
  // (a diverged run's 1e305) are left off the axis, clipped, instead of squashing the healthy
  // runs into one flat line; everything else, early high losses included, stays in view.
  // Hovering still shows the true values. null when nothing is left off (the usual axis).
  function robustRange(lines, log) {
    const all = [];
    for (const l of lines) for (const v of l.y) if (finite(v)) all.push(v);
    if (all.length < 2) return null;
    const mags = all.map(Math.abs).sort((a, b) => a - b);
    const ref = mags[Math.floor(0.9 * (mags.length - 1))];
    if (!(ref > 0)) return null;
    const kept = all.filter((v) => Math.abs(v) <= ref * 1e3);
    if (kept.length === all.length || !kept.length) return null;
    let lo = Math.min(...kept), hi = Math.max(...kept);
    if (log) { lo = toLog(lo); hi = toLog(hi); }
    if (!(hi > lo)) return [lo - 1, hi + 1];
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  // Whether the bulk of the values (robust, as the axis) spans so many orders of magnitude
  // that a linear axis would flatten it: then log is the better default.
  function wideRange(lines) {
    const mags = [];
    for (const l of lines) for (const v of l.y) if (finite(v) && v !== 0) mags.push(Math.abs(v));
    if (!mags.length) return false;
    mags.sort((a, b) => a - b);
    const ref = mags[Math.floor(0.9 * (mags.length - 1))];
    const kept = mags.filter((a) => a <= ref * 1e3); // as the robust axis: outliers aside
    return kept[kept.length - 1] / kept[0] > 1e6;
  }

  window.RS = { color, fmt, lineChart, wideRange, parse, revive, finite, smooth, duration, alpha };
})();

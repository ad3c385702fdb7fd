"""The machine, and the results as one Markdown table (printed and written) and JSON."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

__all__ = ("machine", "markdown", "readback_cell")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on (they compare only on the same machine)."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def number(value: float | None, signed: bool = False) -> str:
    """Three significant figures, thousands separated; ``-`` for none."""
    if value is None:
        return "-"
    sign = "+" if signed and value >= 0 else ""
    size = abs(value)
    if size >= 100:
        return f"{sign}{value:,.0f}"
    if size >= 10:
        return f"{sign}{value:.1f}"
    return f"{sign}{value:.2f}"


def readback_cell(counts: dict[str, int], expected: int) -> str:
    """``80,000/80,000``, or per place read when there are several."""
    if len(counts) == 1:
        (count,) = counts.values()
        return f"{count:,}/{expected:,}"
    return "; ".join(f"{place} {count:,}/{expected:,}" for place, count in counts.items())


def _steps(done: int, planned: int) -> str:
    return f"{done:,}" if done >= planned else f"{done:,}*"


def _row(row: dict[str, Any], planned: int) -> list[str]:
    name = row["label"]
    if row["status"] != "ok":
        return [name, row["status"], *["-"] * 9]
    hot, train, back = row["hot"], row.get("train") or {}, row["readback"]
    call = "dict/step" if hot["style"] == "dict" else "per point"
    slowdown = "-"
    if "slowdown_pct" in train:
        slowdown = f"{number(train['slowdown_pct'], signed=True)} ± {number(train['noise_pct'])}"
    read = readback_cell(back["counts"], back["expected"]) if "counts" in back else "failed"
    if back.get("complete") is False:
        read = f"**{read}**"
    return [
        name,
        call,
        _steps(hot["steps"], planned),
        number(hot["p50_us"]),
        number(hot["p99_us"]),
        number(hot["loop_us_per_point"]),
        slowdown,
        number(hot["close_s"]),
        number(hot["peak_rss_mb"]),
        number(hot["rss_growth_mb"] + hot.get("helpers_peak_rss_mb", 0.0)),
        read,
    ]


_HEADER = (
    "tracker",
    "call",
    "steps",
    "p50 µs/call",
    "p99 µs/call",
    "µs/point (loop)",
    "training slowdown %",
    "close s",
    "peak RSS MB",
    "memory growth MB",
    "read back",
)


def _table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def _scaling(scaling: dict[str, Any], width_points: int) -> list[str]:
    lines: list[str] = []
    growth = scaling.get("growth") or []
    if growth:
        lines += ["", "### runstream as the run grows (4 metrics per step, `log_metric`)", ""]
        lines += _table(
            [
                "points",
                "p50 µs/call",
                "p99 µs/call",
                "µs/point (loop)",
                "close s",
                "peak RSS MB",
                "store MB",
                "read back",
            ],
            [
                [
                    _steps(r["points"], r["planned_points"]),
                    number(r["p50_us"]),
                    number(r["p99_us"]),
                    number(r["loop_us_per_point"]),
                    number(r["close_s"]),
                    number(r["peak_rss_mb"]),
                    number(r["store_mb"]),
                    f"{r['read_back']:,}/{r['points']:,}",
                ]
                for r in growth
            ],
        )
    width = scaling.get("width") or []
    if width:
        title = f"### runstream as metrics per step grow ({width_points:,} points per run)"
        lines += ["", title, ""]
        lines += _table(
            [
                "metrics/step",
                "call",
                "steps",
                "p50 µs/call",
                "p99 µs/call",
                "µs/point (loop)",
                "peak RSS MB",
                "read back",
            ],
            [
                [
                    f"{r['metrics']:,}",
                    "log_metrics (dict/step)" if r["style"] == "dict" else "log_metric",
                    _steps(r["steps"], r["planned_points"] // r["metrics"]),
                    number(r["p50_us"]),
                    number(r["p99_us"]),
                    number(r["loop_us_per_point"]),
                    number(r["peak_rss_mb"]),
                    f"{r['read_back']:,}/{r['points']:,}",
                ]
                for r in width
            ],
        )
    for failure in scaling.get("failures", []):
        lines.append(f"- scaling: {failure}")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The whole report: the peers table, its notes, versions, skips, scaling, machine."""
    work = report["workload"]
    planned = work["steps"]
    lines = [
        f"Workload: {work['steps']:,} steps x {work['metrics']} scalar metrics; each loop "
        f"stops after {work['budget_s']:g} s (`*`: fewer steps done). Training step: one "
        f"{work['work_size']}x{work['work_size']} float32 matmul, single-threaded BLAS. "
        "Memory growth: peak RSS minus RSS before the loop, plus helper processes' peak. "
        "A dict/step call carries all the step's metrics: compare µs/point across rows.",
        "",
    ]
    lines += _table(_HEADER, [_row(r, planned) for r in report["rows"]])
    lines += ["", "Notes:"]
    for row in report["rows"]:
        label = f"{row['label']} (`{row['tracker']}`)"
        if row["status"] != "ok":
            lines.append(f"- {label} {row['status']}: {row['reason']}")
            continue
        versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items())
        notes = "; ".join(row.get("notes", []))
        extra = f"; {notes}" if notes else ""
        train = row.get("train") or {}
        if row["readback"].get("error"):
            extra += f"; read-back failed: {row['readback']['error']}"
        if train.get("error"):
            extra += f"; training variant failed: {train['error']}"
        elif train and train["steps"] < planned:
            extra += f"; training variant ran {train['steps']:,} steps"
        if train.get("tries", 1) > 1:
            extra += f"; training variant: least noisy of {train['tries']} tries"
        lines.append(f"- {label}: {versions}{extra}")
    if report.get("scaling"):
        lines += _scaling(report["scaling"], work.get("scale_width_points", 0))
    m = report["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['platform']}, "
        f"Python {m['python']}; load average at start {m['load_average_at_start']}; "
        f"{m['date']}.",
        f"Command: `{report['command']}`",
    ]
    return "\n".join(lines) + "\n"

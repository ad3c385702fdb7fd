"""Shared by the dashboard, analytics and report tests: a store of known runs, a live
dashboard server, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream import Run

EXPERIMENT = "sweep"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class KnownStore:
    """What was logged, kept here so tests compute expectations from the inputs."""

    path: Path
    losses: dict[str, list[float]] = field(default_factory=dict)
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    learning_rates: dict[str, float] = field(default_factory=dict)
    file_bytes: bytes = b""
    workers: dict[str, list[float]] = field(default_factory=dict)


def build_known_store(path: Path) -> KnownStore:
    """Four runs in ``sweep`` (one diverges to NaN and fails, one has two workers) and one
    unassigned run."""
    known = KnownStore(path)
    rng = np.random.default_rng(3)
    for name, lr in (("lr-small", 0.01), ("lr-mid", 0.1), ("lr-big", 5.0)):
        losses = [float(v) for v in np.exp(-lr * np.arange(40)) + rng.uniform(0, 0.01, 40)]
        if name == "lr-big":
            losses[25:] = [float("nan")] * 15
        accuracy = [float(v) for v in np.linspace(0.5, 0.5 + lr, 40)]
        known.losses[name], known.accuracy[name], known.learning_rates[name] = (
            losses,
            accuracy,
            lr,
        )
        try:
            with warnings.catch_warnings(), Run(EXPERIMENT, name, store=path) as run:
                warnings.simplefilter("ignore", RuntimeWarning)  # NaN is logged on purpose
                run.log_parameters({"learning_rate": lr, "optimizer": "sgd"})
                for step, (loss, acc) in enumerate(zip(losses, accuracy, strict=True)):
                    run.log_metrics({"loss": loss, "accuracy": acc}, step=step)
                if name == "lr-small":
                    weights = path.parent / "weights.bin"
                    known.file_bytes = bytes(range(256)) * 8
                    weights.write_bytes(known.file_bytes)
                    run.log_file(str(weights), name="weights.bin")
                    run.log_artifact("dataset", "s3://bucket/data.csv", is_output=False)
                if name == "lr-big":
                    raise FloatingPointError("loss is NaN")
        except FloatingPointError:
            pass
    for worker, offset in (("w0", 0.0), ("w1", 1.0)):
        values = [offset + step for step in range(20)]
        known.workers[worker] = values
        with Run(EXPERIMENT, "two-workers", store=path, worker=worker) as run:
            run.log_parameter("learning_rate", 0.1)
            for step, value in enumerate(values):
                run.log_metric("loss", value, step=step)
    with Run(None, "evaluation", store=path) as run:
        run.log_metric("test_accuracy", 0.9, step=0)
    return known


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium from the system. Missing: skip locally, fail in CI (CI=true
    installs it, so a skip there would hide that the browser tests never ran)."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        message = "headless Chromium tests need chromium and playwright (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$RUNSTREAM_SCREENSHOT_DIR`` to keep them, else a temp dir."""
    target = os.environ.get("RUNSTREAM_SCREENSHOT_DIR")
    out = Path(target) if target else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out

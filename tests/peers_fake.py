"""Fake trackers for the harness's tests: they keep points in a JSON file, read it back."""

from __future__ import annotations

import json
from collections.abc import Callable

from benchmarks.peers._trackers.base import Adapter, Unavailable


class Fake(Adapter):
    """Keeps every point; ``close`` writes them to ``points.json``."""

    style = "kw"
    keep_every = 1

    def open(self) -> Callable[..., object]:
        self.points: list[tuple[str, float, int]] = []
        self.calls = 0

        def log(name: str, value: float, step: int) -> None:
            self.calls += 1
            if self.calls % self.keep_every == 0:
                self.points.append((name, value, step))

        return log

    def close(self) -> None:
        (self.context.workdir / "points.json").write_text(json.dumps(self.points))

    def read_back(self) -> dict[str, int]:
        points = json.loads((self.context.workdir / "points.json").read_text())
        return {"file": sum(1 for name, _, _ in points if name in self.context.names)}


class Lossy(Fake):
    """Drops every other point, as a tracker that loses data would."""

    keep_every = 2


class Offline(Fake):
    def open(self) -> Callable[..., object]:
        raise Unavailable("needs a server")


class Crashing(Fake):
    def open(self) -> Callable[..., object]:
        raise RuntimeError("tracker exploded")

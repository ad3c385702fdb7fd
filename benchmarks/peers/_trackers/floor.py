"""The floor: appending a tuple to a list, pickled and fsynced on close."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable

from .base import Adapter

__all__ = ("Floor",)


class Floor(Adapter):
    style = "pos"
    distributions = ("numpy",)

    def open(self) -> Callable[..., object]:
        points: list[tuple[str, float, int]] = []
        self.points = points
        append = points.append

        def log(name: str, value: float, step: int) -> None:
            append((name, value, step))

        return log

    @property
    def _path(self) -> str:
        return str(self.context.workdir / "floor.pickle")

    def close(self) -> None:
        with open(self._path, "wb") as out:
            pickle.dump(self.points, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            os.fsync(out.fileno())

    def read_back(self) -> dict[str, int]:
        with open(self._path, "rb") as source:
            points = pickle.load(source)  # our own file, written just before
        names = set(self.context.names)
        return {"pickle": sum(1 for name, _, _ in points if name in names)}

    def notes(self) -> list[str]:
        return ["a Python function appending (name, value, step) to a list; close pickles it"]

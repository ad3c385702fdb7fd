"""trackio, local only: ``trackio.log(dict, step=)`` into its SQLite store, no Space, no UI."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .base import Adapter, module

__all__ = ("Trackio",)


class Trackio(Adapter):
    style = "dict"
    distributions = ("trackio", "numpy")

    def _import(self) -> Any:
        # trackio reads its folder at import time.
        os.environ["TRACKIO_DIR"] = str(self.context.workdir / "trackio")
        return module("trackio")

    def open(self) -> Callable[..., object]:
        trackio = self.trackio = self._import()
        trackio.init(
            project=self.context.experiment,
            name=self.context.run,
            auto_log_cpu=False,
            auto_log_gpu=False,
        )
        return trackio.log  # type: ignore[no-any-return]

    def close(self) -> None:
        self.trackio.finish()

    def read_back(self) -> dict[str, int]:
        self._import()
        storage = module("trackio.sqlite_storage").SQLiteStorage
        logs = storage.get_logs(self.context.experiment, self.context.run)
        names = set(self.context.names)
        return {"sqlite": sum(1 for entry in logs for key in entry if key in names)}

    def notes(self) -> list[str]:
        return ["local mode (TRACKIO_DIR), CPU/GPU auto-logging off"]

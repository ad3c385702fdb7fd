"""MLflow's fluent API on a SQLite tracking store, synchronous and asynchronous."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .base import Adapter, module

__all__ = ("MlflowAsync", "MlflowServerAsync", "MlflowSync")


class MlflowSync(Adapter):
    style = "kw"
    distributions = ("mlflow", "sqlalchemy", "numpy")
    asynchronous: ClassVar[bool] = False

    @property
    def _uri(self) -> str:
        return f"sqlite:///{self.context.workdir / 'mlflow.db'}"

    def open(self) -> Callable[..., object]:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        mlflow = self.mlflow = module("mlflow")
        mlflow.set_tracking_uri(self._uri)
        mlflow.config.enable_async_logging(self.asynchronous)
        mlflow.set_experiment(self.context.experiment)
        mlflow.start_run(run_name=self.context.run)
        return mlflow.log_metric  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.asynchronous:
            self.mlflow.flush_async_logging()
        self.mlflow.end_run()

    def read_back(self) -> dict[str, int]:
        client: Any = module("mlflow.tracking").MlflowClient(tracking_uri=self._uri)
        experiment = client.get_experiment_by_name(self.context.experiment)
        (run,) = client.search_runs([experiment.experiment_id])
        run_id = run.info.run_id
        count = sum(len(client.get_metric_history(run_id, n)) for n in self.context.names)
        return {"sqlite": count}


class MlflowAsync(MlflowSync):
    asynchronous = True

    def open(self) -> Callable[..., object]:
        # Without buffering every call becomes its own log_batch task, and closing takes
        # minutes on SQLite (peer-overhead.md); 1 s lets the queue merge them.
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "1")
        return super().open()

    def notes(self) -> list[str]:
        return [
            "mlflow.config.enable_async_logging(True), MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1;"
            " close = flush_async_logging() + end_run()"
        ]


class MlflowServerAsync(MlflowAsync):
    """The async client logging over REST into the harness's ``mlflow server``."""

    @property
    def _uri(self) -> str:
        return os.environ["MLFLOW_TRACKING_URI"]

    def open(self) -> Callable[..., object]:
        self._opened = time.perf_counter()
        return super().open()

    def close(self) -> None:
        super().close()  # flush_async_logging(): returns once the server has every point
        self._acked_s = time.perf_counter() - self._opened

    def read_back(self) -> dict[str, int]:
        counts = super().read_back()
        return {"mlflow server": counts["sqlite"]}

    def notes(self) -> list[str]:
        rate = getattr(self, "_acked_s", None)
        extra = [] if rate is None else [f"everything acknowledged {rate:.2f}s after open"]
        return [*super().notes(), "over REST to the harness's mlflow server", *extra]

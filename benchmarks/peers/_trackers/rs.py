"""runstream: the embedded store, its dict call, and the SageMaker backend on moto."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

import runstream

from .base import Adapter, Unavailable

ENV_RATE = "RUNSTREAM_SAGEMAKER_RATE"  # runstream._backends.sagemaker._ratelimit.ENV_RATE

__all__ = ("Runstream", "RunstreamDict", "RunstreamMLflow", "RunstreamSageMaker")


class Runstream(Adapter):
    distributions: ClassVar[tuple[str, ...]] = ("runstream", "numpy")

    @property
    def _store(self) -> str:
        return str(self.context.workdir / "store")

    def _options(self) -> dict[str, Any]:
        return {"store": self._store}

    def open(self) -> Callable[..., object]:
        self.run = runstream.Run(self.context.experiment, self.context.run, **self._options())
        self.run.__enter__()
        return self.run.log_metric

    def close(self) -> None:
        self.run.__exit__(None, None, None)

    def read_back(self) -> dict[str, int]:
        (run,) = runstream.list_runs(self.context.experiment, store=self._store)
        metrics = run.record().metrics
        return {"store": sum(metrics[n].count for n in self.context.names if n in metrics)}


class RunstreamDict(Runstream):
    style = "dict"

    def open(self) -> Callable[..., object]:
        super().open()
        return self.run.log_metrics


class RunstreamSageMaker(Runstream):
    """``Run(..., backend="sagemaker")`` with ``AWS_ENDPOINT_URL`` at the moto server."""

    distributions = ("runstream", "numpy", "aioboto3", "botocore")

    def _options(self) -> dict[str, Any]:
        if "backend" not in inspect.signature(runstream.Run).parameters:
            raise Unavailable(
                "this runstream has no SageMaker backend yet (Run() takes no backend= argument)"
            )
        # moto is not AWS: the budget is raised (as the tests raise it) so that 80,000
        # data at full resolution are acknowledged within the read-back's bound (800 s
        # at the default 10 calls/s); the store's agent inherits the setting.
        os.environ.setdefault(ENV_RATE, "100")
        return {**super()._options(), "backend": "sagemaker"}

    def read_back(self) -> dict[str, int]:
        """The local journal, and what SageMaker (moto) acknowledged, per the journal.

        The store's agent sends after close; ``runstream sync`` waits for it (up to 300 s)
        and reports. SageMaker gets one datum per step at full resolution (their mean), so
        DescribeTrialComponent's Count counts data: the sync state counts the points too.
        """
        counts = super().read_back()
        status = subprocess.run(
            [sys.executable, "-m", "runstream", "sync", "--store", str(self._store), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        (state,) = json.loads(status.stdout)
        counts["sagemaker"] = int(state["points_sent"])
        return counts

    def notes(self) -> list[str]:
        return [
            "read back from the local journal and the points SageMaker acknowledged (sync "
            "state, after the store's agent finished); SageMaker receives every step's mean "
            f"(steps are grouped only past RUNSTREAM_MAX_LAG); {ENV_RATE}="
            f"{os.environ.get(ENV_RATE)} BatchPutMetrics calls/s"
        ]


class RunstreamMLflow(Runstream):
    """``Run(..., backend="mlflow")`` into the harness's ``mlflow server``."""

    distributions = ("runstream", "numpy", "httpx")

    def _options(self) -> dict[str, Any]:
        from runstream._backends import BACKENDS

        if "mlflow" not in BACKENDS:
            raise Unavailable("this runstream has no MLflow backend yet")
        return {**super()._options(), "backend": "mlflow", "close_timeout": 600.0}

    def open(self) -> Callable[..., object]:
        self._opened = time.perf_counter()
        return super().open()

    def close(self) -> None:
        super().close()  # returns after the local write: the store's agent sends

    def _wait_acknowledged(self) -> None:
        """After close (not timed as close): until the agent has sent the run, from the
        acknowledgements in its sync state (bounded at 600 s)."""
        deadline = time.perf_counter() + 600
        while True:
            sync = self.run.stats.sync
            if (sync is not None and sync.state != "pending") or time.perf_counter() > deadline:
                break
            time.sleep(0.02)
        self._acked_s = time.perf_counter() - self._opened
        self._acked = 0 if sync is None else sync.points_sent

    def read_back(self) -> dict[str, int]:
        """The local store, and every point the MLflow server holds (read over REST)."""
        counts = super().read_back()
        shown = subprocess.run(
            [sys.executable, "-m", "runstream", "show", self.context.experiment,
             self.context.run, "--backend", "mlflow", "--json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        metrics = json.loads(shown.stdout)["metrics"]
        counts["mlflow server"] = sum(
            int(metrics[n]["count"]) for n in self.context.names if n in metrics
        )
        return counts

    def notes(self) -> list[str]:
        if getattr(self, "_opened", None) is None:
            return ["one MLflow point per step (the merged series), sent by the store's agent"]
        self._wait_acknowledged()
        rate = self._acked / self._acked_s if self._acked_s else 0.0
        return [
            f"{self._acked:,} points acknowledged {self._acked_s:.2f}s after open "
            f"({rate:,.0f} points/s); one MLflow point per step, runs/log-batch of 1,000"
        ]

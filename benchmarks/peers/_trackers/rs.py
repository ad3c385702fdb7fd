"""runstream: the embedded store, its dict call, and the SageMaker backend on moto."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import runstream

from .base import Adapter, Unavailable

__all__ = ("Runstream", "RunstreamDict", "RunstreamSageMaker")


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
            "(steps are grouped only past RUNSTREAM_MAX_LAG)"
        ]

"""Reading back with MLflow's own client."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any


def unique() -> Callable[[str], str]:
    """Experiment names unique to this test session (a reused dev server keeps old runs)."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


def mlflow_run(client: Any, experiment: str, run_name: str) -> Any:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"attributes.run_name = '{run_name}'"
    )
    assert len(runs) == 1, f"{len(runs)} MLflow runs named {run_name!r}"
    return runs[0]


def history(client: Any, run: Any, metric: str) -> list[tuple[int, float, int]]:
    """(step, value, timestamp ms) of every point MLflow keeps, in step then time order."""
    points = client.get_metric_history(run.info.run_id, metric)
    return sorted((m.step, m.value, m.timestamp) for m in points)

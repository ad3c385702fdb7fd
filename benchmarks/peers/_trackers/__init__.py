"""The trackers the harness knows: which environment each needs and which adapter drives it.

Stdlib only: the orchestrator reads this in whatever Python runs it; the adapters
(``module:Class``) are imported only inside the tracker's own environment.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("ENVIRONMENTS", "TRACKERS", "TrackerSpec", "spec")

# numpy is pinned in every environment so the simulated training step is the same code.
NUMPY = "numpy==2.4.6"

# Pins: the newest releases that install and run offline on CPython 3.11, as measured in
# shared/research/peer-overhead.md (mlflow 3.18.0's mlflow-skinny dependency does not install;
# sagemaker stays on v2, whose ``sagemaker.experiments`` is the API runstream replaces).
ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    # "{repo}" is the checkout being measured, installed editable so edits need no rebuild.
    "runstream": ("-e", "{repo}[aws,mlflow]", NUMPY),
    "moto": ("moto==5.2.5", "flask==3.1.3", "flask-cors==6.0.5"),
    "sagemaker": ("sagemaker==2.257.7", NUMPY),
    "mlflow": ("mlflow==3.17.2", NUMPY),
    "wandb": ("wandb==0.31.0", NUMPY),
    # ==2.13.0 also matches a local +cpu build, which pip prefers where one is offered.
    "tensorboard": ("torch==2.13.0", "tensorboard==2.21.0", NUMPY),
    "trackio": ("trackio==0.43.0", NUMPY),
    "aim": ("aim==3.29.1", NUMPY),
}


@dataclass(frozen=True)
class TrackerSpec:
    """One row of the table: a tracker in one mode."""

    name: str
    environment: str
    adapter: str  # "module:Class", imported in the child
    label: str
    needs_moto: bool = False
    #: logs into the MLflow server the harness starts (MLFLOW_TRACKING_URI)
    needs_mlflow_server: bool = False


_ADAPTERS = "benchmarks.peers._trackers"

TRACKERS: tuple[TrackerSpec, ...] = (
    TrackerSpec("floor", "runstream", f"{_ADAPTERS}.floor:Floor", "floor: list.append"),
    TrackerSpec("runstream", "runstream", f"{_ADAPTERS}.rs:Runstream", "runstream log_metric"),
    TrackerSpec(
        "runstream-dict", "runstream", f"{_ADAPTERS}.rs:RunstreamDict", "runstream log_metrics"
    ),
    TrackerSpec(
        "runstream-sagemaker",
        "runstream",
        f"{_ADAPTERS}.rs:RunstreamSageMaker",
        "runstream, SageMaker backend (moto)",
        needs_moto=True,
    ),
    TrackerSpec(
        "sagemaker",
        "sagemaker",
        f"{_ADAPTERS}.sagemaker:SageMaker",
        "sagemaker.experiments v2 (moto)",
        needs_moto=True,
    ),
    TrackerSpec("mlflow-sync", "mlflow", f"{_ADAPTERS}.mlflow:MlflowSync", "MLflow, SQLite"),
    TrackerSpec(
        "mlflow-async", "mlflow", f"{_ADAPTERS}.mlflow:MlflowAsync", "MLflow, SQLite, async"
    ),
    TrackerSpec(
        "runstream-mlflow",
        "runstream",
        f"{_ADAPTERS}.rs:RunstreamMLflow",
        "runstream -> MLflow server",
        needs_mlflow_server=True,
    ),
    TrackerSpec(
        "mlflow-server-async",
        "mlflow",
        f"{_ADAPTERS}.mlflow:MlflowServerAsync",
        "MLflow's async client -> MLflow server",
        needs_mlflow_server=True,
    ),
    TrackerSpec("wandb", "wandb", f"{_ADAPTERS}.wandb:Wandb", "W&B offline"),
    TrackerSpec(
        "tensorboard",
        "tensorboard",
        f"{_ADAPTERS}.tensorboard:TensorBoard",
        "TensorBoard SummaryWriter (torch)",
    ),
    TrackerSpec("trackio", "trackio", f"{_ADAPTERS}.trackio:Trackio", "trackio (local)"),
    TrackerSpec("aim", "aim", f"{_ADAPTERS}.aim:Aim", "Aim"),
)


def spec(name: str) -> TrackerSpec:
    """The tracker called ``name``. :raises ValueError: naming the known ones."""
    for tracker in TRACKERS:
        if tracker.name == name:
            return tracker
    known = ", ".join(t.name for t in TRACKERS)
    raise ValueError(f"unknown tracker {name!r}; known trackers: {known}")

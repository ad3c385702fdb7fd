"""``load_run()``: find the run this code should log into, as the official SDK does."""

from __future__ import annotations

import logging
import os

from .._backends import job_run
from .._core._environment import run_from_environment
from ._distributed import lookup_run
from ._run import Run, current_run, loading

__all__ = ("load_run",)

_log = logging.getLogger("runstream")


def load_run(
    run_name: str | None = None,
    experiment_name: str | None = None,
    sagemaker_session: object | None = None,
    artifact_bucket: str | None = None,
    artifact_prefix: str | None = None,
    tags: list[dict[str, str]] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    worker: str | None = None,
    backend: str | None = None,
    wait: float = 60.0,
) -> Run:
    """Find the run to log into: explicit names, then the run in context, then the
    environment a parent run exported (see :mod:`runstream._core._environment`), then the
    ExperimentConfig of the SageMaker job this process runs in (which selects
    ``backend="sagemaker"`` unless ``backend`` says otherwise), then, in a
    ``torch.distributed`` job, the run another rank entered (waiting up to ``wait`` seconds
    for it).

    :raises ValueError: ``run_name`` without ``experiment_name``
    :raises RuntimeError: no run could be found
    """
    if run_name and not experiment_name:
        raise ValueError(
            "Invalid input: experiment_name is missing when run_name is supplied. "
            "Please supply a valid experiment_name when the run_name is not None."
        )
    if experiment_name and not run_name:
        _log.warning(
            "run_name is None and experiment_name %r is ignored: loading the run in context "
            "or from the environment",
            experiment_name,
        )

    def construct(
        experiment: str | None,
        name: str,
        run_store: str | os.PathLike[str] | None = store,
        run_backend: str | None = backend,
    ) -> Run:
        return Run(
            experiment,
            name,
            tags=tags,
            sagemaker_session=sagemaker_session,
            artifact_bucket=artifact_bucket,
            artifact_prefix=artifact_prefix,
            store=run_store,
            worker=worker,
            backend=run_backend,
        )

    with loading():  # continuing a run on purpose: no warning that it had ended
        if run_name:
            run = construct(experiment_name, run_name)
        elif (current := current_run()) is not None:
            run = current
        elif (exported := run_from_environment()) is not None:
            experiment, name, announced_store = exported
            run = construct(experiment, name, store or announced_store)
        elif (job := job_run(sagemaker_session)) is not None:
            # A job's run is SageMaker's unless told otherwise.
            run = construct(*job, run_backend=backend or "sagemaker")
        elif (published := lookup_run(wait)) is not None:  # last: it may wait for rank 0
            experiment, name, announced_store = published
            run = construct(experiment, name, store or announced_store)
        else:
            raise RuntimeError(
                "Failed to load a Run object. Please make sure a Run object has been "
                "initialized already."
            )
    run._in_load = True
    return run

"""What runstream reads from and writes to the process environment.

A run entered with ``with``/``async with`` exports its identity, so ``load_run()`` with no
arguments finds it in a child process or a launched script:

``RUNSTREAM_EXPERIMENT_NAME``
    the experiment (empty for an unassigned run)
``RUNSTREAM_RUN_NAME``
    the run
``RUNSTREAM_STORE``
    the store directory (also how the user chooses a store without an argument)

``RUNSTREAM_WORKER`` names this process within a run; without it, launchers' variables
give the identity (torchrun's ``RANK``, MPI's ``OMPI_COMM_WORLD_RANK``/``PMI_RANK``,
Slurm's ``SLURM_PROCID``, SageMaker's ``SM_CURRENT_HOST``), else ``<host>-<pid>``.
``RUNSTREAM_WORLD_SIZE`` (else the launcher's workers on this host: ``LOCAL_WORLD_SIZE``,
``OMPI_COMM_WORLD_LOCAL_SIZE``, then ``WORLD_SIZE``, ``OMPI_COMM_WORLD_SIZE``,
``PMI_SIZE``) says how many workers of this store must finish before a run is
``Completed``. Each host keeps its own store, so a host counts its own workers.

A host is SageMaker's ``SM_CURRENT_HOST`` (``algo-1``...), else this machine's name; the
hosts of a multi-node job are ``SM_HOSTS`` (a JSON list). A run synced from several hosts
is ``Completed`` only once every one of them is (see the SageMaker backend's ``_hosts``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = (
    "ENVIRON_LOCK",
    "ENV_EXPERIMENT",
    "ENV_RUN",
    "ENV_STORE",
    "ENV_WORKER",
    "HOST",
    "RANK_VARIABLES",
    "current_host",
    "default_worker",
    "exported_identity",
    "job_hosts",
    "run_from_environment",
    "running_in_job",
    "worker_identity",
    "world_size",
)

ENV_EXPERIMENT = "RUNSTREAM_EXPERIMENT_NAME"
ENV_RUN = "RUNSTREAM_RUN_NAME"
ENV_STORE = "RUNSTREAM_STORE"
ENV_WORKER = "RUNSTREAM_WORKER"

#: Launchers' rank variables: torchrun, Open MPI, MPICH/Intel MPI, Slurm.
RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")
#: This machine's name, as workers, store rows and sync leases record it.
HOST = socket.gethostname()


def worker_identity(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """This process's name within a run: explicit, ``RUNSTREAM_WORKER``, a launcher's rank,
    or ``<host>-<pid>``."""
    if explicit:
        return explicit
    if environ.get(ENV_WORKER):
        return environ[ENV_WORKER]
    for variable in RANK_VARIABLES:
        rank = environ.get(variable)
        if rank is not None and rank.isdigit():
            host = environ.get("SM_CURRENT_HOST")
            return f"{host}-rank-{rank}" if host else f"rank-{rank}"
    if environ.get("SM_CURRENT_HOST"):
        return environ["SM_CURRENT_HOST"]
    return default_worker()


def default_worker() -> str:
    """The worker name of a process nothing names: ``<host>-<pid>``."""
    return f"{HOST}-{os.getpid()}"


def current_host(environ: Mapping[str, str] = os.environ) -> str:
    """This host's name in a multi-node job: ``SM_CURRENT_HOST``, else the machine's name."""
    return environ.get("SM_CURRENT_HOST") or HOST


def job_hosts(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The job's hosts, in order, from ``SM_HOSTS`` (``["algo-1", "algo-2"]``); empty when
    it is absent or not a JSON list of names."""
    text = environ.get("SM_HOSTS")
    if not text:
        return ()
    try:
        found = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(found, list) or not all(isinstance(h, str) and h for h in found):
        return ()
    return tuple(dict.fromkeys(found))


# The workers that log into this host's store: local sizes first (a multi-node job has a
# store per host), then the whole job's.
_SIZE_VARIABLES = (
    "RUNSTREAM_WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "WORLD_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
)


def world_size(environ: Mapping[str, str] = os.environ) -> int | None:
    """How many workers the launcher started on this host, if it says (torchrun, MPI)."""
    for variable in _SIZE_VARIABLES:
        value = environ.get(variable)
        if value is not None and value.isdigit():
            return int(value)
    return None


def run_from_environment(
    environ: Mapping[str, str] = os.environ,
) -> tuple[str | None, str, str | None] | None:
    """``(experiment, run, store)`` exported by a parent's run, or ``None``."""
    run = environ.get(ENV_RUN)
    if not run:
        return None
    return environ.get(ENV_EXPERIMENT) or None, run, environ.get(ENV_STORE) or None


#: Held while runstream changes ``os.environ``, and by code in other threads that iterates
#: it (botocore does, creating a client): a key removed mid-iteration raises KeyError.
ENVIRON_LOCK = threading.RLock()

# Runs entered now (any thread or task), oldest first, and the environment before the
# first of them: runs in threads or tasks may leave in any order, not only LIFO.
_exported: list[dict[str, str]] = []
_before_exports: dict[str, str | None] = {}


@contextmanager
def exported_identity(experiment: str | None, run: str, store: str) -> Iterator[None]:
    """Export a run's identity for child processes while the block runs.

    While several runs are entered the environment names the latest one still entered;
    when none is, it is restored to what it was before the first.
    """
    values = {ENV_EXPERIMENT: experiment or "", ENV_RUN: run, ENV_STORE: store}
    with ENVIRON_LOCK:
        if not _exported:
            _before_exports.clear()
            _before_exports.update({key: os.environ.get(key) for key in values})
        try:
            os.environ.update(values)
        except (ValueError, UnicodeError) as exc:  # a NUL, a lone surrogate
            _restore_exports()
            raise ValueError(
                f"cannot export run {run!r} (experiment {experiment!r}, store {store!r}) to "
                f"child processes: the environment cannot hold it ({exc})"
            ) from None
        _exported.append(values)
    try:
        yield
    finally:
        with ENVIRON_LOCK:
            _exported.remove(values)
            _restore_exports()


def _restore_exports() -> None:
    """The environment names the latest run still entered, else what it held before."""
    if _exported:
        os.environ.update(_exported[-1])
        return
    for key, value in _before_exports.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# How the official SDK recognizes a SageMaker job (sagemaker/experiments/_environment.py).
TRAINING_JOB_ARN_ENV = "TRAINING_JOB_ARN"
TRANSFORM_JOB_ARN_ENV = "TRANSFORM_JOB_ARN"
PROCESSING_JOB_CONFIG_PATH = "/opt/ml/config/processingjobconfig.json"


def running_in_job(
    environ: Mapping[str, str] = os.environ, processing_config: str | None = None
) -> tuple[str, str] | None:
    """``(kind, job name)`` inside a SageMaker training, processing or transform job."""
    processing_config = processing_config or PROCESSING_JOB_CONFIG_PATH
    if environ.get(TRAINING_JOB_ARN_ENV):
        return "training", environ[TRAINING_JOB_ARN_ENV].split("/")[-1]
    if os.path.exists(processing_config):
        with open(processing_config) as config:
            arn = str(json.load(config)["ProcessingJobArn"])
        return "processing", arn.split("/")[-1]
    if environ.get(TRANSFORM_JOB_ARN_ENV):
        return "transform", environ[TRANSFORM_JOB_ARN_ENV].split("/")[-1]
    return None

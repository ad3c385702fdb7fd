"""The one task runner. CI runs ``nox -s tests lint typecheck``: what you run is what CI runs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]  # bench is opt-in
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str, extras: str = "") -> None:
    session.install("-e", f".{extras}", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pass pytest arguments after --)."""
    # aws: the SageMaker backend (and SigV4 for SageMaker's MLflow); mlflow: httpx, and a
    # real MLflow server and client for tests/mlflow_sync.
    install(session, "test", "sagemaker-sdk", "mlflow-server", extras="[aws,mlflow]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The layers and no cycles (pyproject's [tool.importlinter]), read from the source tree.
    session.run("lint-imports", env={"PYTHONPATH": "src"})


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The core benchmarks: hot-path cost, training-loop slowdown, throughput, workers."""
    install(session, "bench")
    for script in ("bench_log_metric", "bench_training_loop", "bench_throughput", "bench_workers"):
        session.run("python", f"benchmarks/{script}.py", *session.posargs)


@nox.session
def bench_ui(session: nox.Session) -> None:
    """The dashboard benchmarks (needs the system's chromium): first paint, 1M points, 10k runs."""
    install(session, "bench-ui")
    session.run("python", "benchmarks/bench_ui.py", *session.posargs)


@nox.session(venv_backend="virtualenv")
def integrations(session: nox.Session) -> None:
    """Framework tensors and runstream.integrations in real CPU trainings (heavy, opt-in).

    pip, not uv: ``torch==2.13.0`` comes first, from the CPU build on this machine's disk
    (uv does not look there, and a looser pin would fetch a CUDA build of several GB).
    """
    session.install("torch==2.13.0")
    install(session, "integrations", extras="[keras,lightning,transformers]")
    session.run(
        "pytest",
        "tests/test_tensors.py",
        "tests/test_tensors_torch.py",
        "tests/integrations",
        # Four torch.distributed ranks (gloo) logging into one run.
        "tests/test_workers.py::test_torch_distributed_gloo_ranks_share_one_run",
        *session.posargs,
        env={"KERAS_BACKEND": "torch"},
    )


@nox.session(venv_backend="none")
def bench_peers(session: nox.Session) -> None:
    """runstream beside its peers (benchmarks/peers): one cached environment per tracker.

    Needs no environment of its own: the harness is stdlib-only and builds the trackers'
    environments under .bench/venvs. Pass harness options after --, e.g. -- --help.
    """
    session.run("python", "-m", "benchmarks.peers", *session.posargs)

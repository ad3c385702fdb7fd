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
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The core benchmarks: hot-path cost, training-loop slowdown, flusher throughput."""
    install(session, "bench")
    for script in ("bench_log_metric", "bench_training_loop", "bench_throughput"):
        session.run("python", f"benchmarks/{script}.py", *session.posargs)


@nox.session(venv_backend="none")
def bench_peers(session: nox.Session) -> None:
    """runstream beside its peers (benchmarks/peers): one cached environment per tracker.

    Needs no environment of its own: the harness is stdlib-only and builds the trackers'
    environments under .bench/venvs. Pass harness options after --, e.g. -- --help.
    """
    session.run("python", "-m", "benchmarks.peers", *session.posargs)

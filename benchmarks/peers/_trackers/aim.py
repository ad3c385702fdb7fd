"""Aim: ``run.track(value, name=, step=)`` into its RocksDB repo, system tracking off."""

from __future__ import annotations

from collections.abc import Callable

from .base import Adapter, module

__all__ = ("Aim",)


class Aim(Adapter):
    style = "pos"
    distributions = ("aim", "aimrocks", "numpy")

    @property
    def _repo(self) -> str:
        return str(self.context.workdir / "aim")

    def open(self) -> Callable[..., object]:
        aim = module("aim")
        repo = aim.Repo.from_path(self._repo, init=True)
        run = self.run = aim.Run(
            repo=repo,
            experiment=self.context.experiment,
            system_tracking_interval=None,
            log_system_params=False,
            capture_terminal_logs=False,
        )
        (self.context.workdir / "aim-run-hash").write_text(run.hash)
        track = run.track

        # Aim takes the value first and the name by keyword: the wrapper costs about as
        # much as a function call, noise against Aim's own cost per call.
        def log(name: str, value: float, step: int) -> None:
            track(value, name=name, step=step)

        return log

    def close(self) -> None:
        self.run.close()
        # run.close() leaves the RocksDB containers to Aim's atexit hook; run it now so the
        # close time includes making the data durable.
        module("aim.ext.cleanup").AutoClean._cleanup()

    def read_back(self) -> dict[str, int]:
        aim = module("aim")
        repo = aim.Repo.from_path(self._repo)
        run_hash = (self.context.workdir / "aim-run-hash").read_text()
        # A fresh process sees metrics only once the repo index has the run (aim up does it).
        module("aim.sdk.index_manager").RepoIndexManager.get_index_manager(repo).index(run_hash)
        run = aim.Run(run_hash, repo=repo, read_only=True)
        names = set(self.context.names)
        count = sum(len(m.values.sparse_list()[0]) for m in run.metrics() if m.name in names)
        return {"repo": count}

    def notes(self) -> list[str]:
        return [
            "system tracking, params and terminal capture off; close = run.close() + Aim's "
            "atexit flush; read back after indexing the run as aim up does"
        ]

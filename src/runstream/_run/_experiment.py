"""``Experiment`` and ``list_runs``, as ``sagemaker.experiments`` has them, on the store."""

from __future__ import annotations

import builtins
import enum
import os
from datetime import datetime
from typing import TYPE_CHECKING

from .._core._names import MAX_NAME_LEN
from .._store import LocalStore

if TYPE_CHECKING:
    from ._run import Run

__all__ = ("Experiment", "SortByType", "SortOrderType", "list_runs")

StorePath = str | os.PathLike[str] | None


class SortByType(enum.Enum):
    """How ``list_runs`` sorts (the official SDK's values)."""

    CREATION_TIME = "CreationTime"
    NAME = "Name"


class SortOrderType(enum.Enum):
    ASCENDING = "Ascending"
    DESCENDING = "Descending"


class Experiment:
    """An experiment: a named group of runs.

    Use :meth:`create`, :meth:`load` or :meth:`list`; ``Run(...)`` creates its experiment
    on the way.
    """

    def __init__(
        self,
        experiment_name: str,
        display_name: str | None = None,
        description: str | None = None,
        tags: list[dict[str, str]] | None = None,
        *,
        store: StorePath = None,
        created: float | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.display_name = display_name
        self.description = description
        self.tags = tags
        self.creation_time = created
        self._store_path = store

    def __repr__(self) -> str:
        return f"Experiment(experiment_name={self.experiment_name!r})"

    @classmethod
    def create(
        cls,
        experiment_name: str,
        display_name: str | None = None,
        description: str | None = None,
        tags: list[dict[str, str]] | None = None,
        sagemaker_session: object | None = None,
        *,
        store: StorePath = None,
    ) -> Experiment:
        """Create a new experiment. :raises ValueError: if it already exists."""
        name = _check_name(experiment_name)
        with LocalStore(store) as local:
            if any(e.experiment_name == name for e in local.list_experiments()):
                raise ValueError(f"experiment {name!r} already exists in {local.path}")
            local.ensure_experiment(
                name, display_name=display_name, description=description, tags=tags
            )
        return cls.load(name, store=store)

    @classmethod
    def load(
        cls,
        experiment_name: str,
        sagemaker_session: object | None = None,
        *,
        store: StorePath = None,
    ) -> Experiment:
        """Load an experiment. :raises RunNotFoundError: if there is none by that name."""
        with LocalStore(store) as local:
            record = local.experiment(experiment_name.lower())
        return cls(
            record.experiment_name,
            record.display_name,
            record.description,
            store=store,
            created=record.created,
        )

    @classmethod
    def _load_or_create(
        cls, experiment_name: str, display_name: str | None = None, *, store: StorePath = None
    ) -> Experiment:
        name = _check_name(experiment_name)
        with LocalStore(store) as local:
            local.ensure_experiment(name, display_name=display_name)
        return cls.load(name, store=store)

    @classmethod
    def list(cls, *, store: StorePath = None) -> builtins.list[Experiment]:
        """Every experiment in the store, oldest first."""
        with LocalStore(store) as local:
            records = local.list_experiments()
        return [
            cls(r.experiment_name, r.display_name, r.description, store=store, created=r.created)
            for r in records
        ]

    def list_runs(self) -> builtins.list[Run]:
        return list_runs(self.experiment_name, store=self._store_path)

    def delete(self) -> None:
        """Delete the experiment and every run in it (the SDK's ``_delete_all``, at once)."""
        with LocalStore(self._store_path) as local:
            local.delete_experiment(self.experiment_name)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"experiment_name must be a non-empty string, got {name!r}")
    name = name.lower()
    if len(name) > MAX_NAME_LEN:
        raise ValueError(
            f"The experiment_name (length: {len(name)}) must have length less than or equal "
            f"to {MAX_NAME_LEN}"
        )
    return name


def list_runs(
    experiment_name: str | None,
    created_before: datetime | None = None,
    created_after: datetime | None = None,
    sagemaker_session: object | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
    sort_by: SortByType = SortByType.CREATION_TIME,
    sort_order: SortOrderType = SortOrderType.DESCENDING,
    *,
    store: StorePath = None,
    unassigned: bool = False,
) -> list[Run]:
    """The runs of an experiment (or, with ``unassigned=True``, the runs of none).

    Returned runs are not in a context: read them with :meth:`Run.record` and
    :meth:`Run.series`. ``max_results`` caps the count (the official SDK passes it as a page
    size); ``next_token`` is accepted for compatibility and ignored: a local store has no pages.

    :raises RunNotFoundError: if the experiment does not exist
    """
    from ._run import Run

    local = LocalStore(store)
    if not unassigned:
        if experiment_name is None:
            raise ValueError("list_runs needs an experiment_name, or unassigned=True")
        experiment_name = experiment_name.lower()
        local.experiment(experiment_name)  # raises RunNotFoundError
    keys = local.run_keys(experiment_name, unassigned=unassigned)
    if created_before is not None:
        keys = [(k, c) for k, c in keys if c < created_before.timestamp()]
    if created_after is not None:
        keys = [(k, c) for k, c in keys if c > created_after.timestamp()]
    if sort_by is SortByType.NAME:
        keys.sort(key=lambda kc: kc[0].run_name)
    else:
        keys.sort(key=lambda kc: kc[1])
    if sort_order is SortOrderType.DESCENDING:
        keys.reverse()
    if max_results is not None:
        keys = keys[:max_results]
    return [Run._from_store(local, key) for key, _ in keys]

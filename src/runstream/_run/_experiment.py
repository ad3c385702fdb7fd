"""``Experiment`` and ``list_runs``, as ``sagemaker.experiments`` has them, on the store."""

from __future__ import annotations

import builtins
import contextlib
import enum
import os
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from .._backends import resolve_backend
from .._core._exceptions import RunNotFoundError
from .._core._names import MAX_NAME_LEN, run_group_name
from .._store import LocalStore

if TYPE_CHECKING:
    from ._run import Run

__all__ = ("Experiment", "SortByType", "SortOrderType", "TrialSummary", "list_runs")

StorePath = str | os.PathLike[str] | None


class SortByType(enum.Enum):
    """How ``list_runs`` sorts (the official SDK's values)."""

    CREATION_TIME = "CreationTime"
    NAME = "Name"


class SortOrderType(enum.Enum):
    ASCENDING = "Ascending"
    DESCENDING = "Descending"


class TrialSummary:
    """A trial of an experiment, as ``Experiment.list_trials`` gives it (the official
    ``TrialSummary``'s attributes). Runs made by ``Run`` share one: ``Default-Run-Group-<exp>``."""

    def __init__(
        self,
        trial_name: str,
        trial_arn: str | None = None,
        display_name: str | None = None,
        trial_source: object | None = None,
        creation_time: datetime | None = None,
        last_modified_time: datetime | None = None,
    ) -> None:
        self.trial_name = trial_name
        self.trial_arn = trial_arn
        self.display_name = display_name
        self.trial_source = trial_source
        self.creation_time = creation_time
        self.last_modified_time = last_modified_time

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrialSummary) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(self.trial_name)

    def __repr__(self) -> str:
        return f"TrialSummary(trial_name={self.trial_name!r})"


class Experiment:
    """An experiment: a named group of runs, as the official ``Experiment``.

    Use :meth:`create`, :meth:`load` or :meth:`list`; ``Run(...)`` creates its experiment
    on the way. The constructor takes the session first, as the official one does. Under
    ``backend="sagemaker"`` (or ``$RUNSTREAM_BACKEND``) every method is also its SageMaker
    call (CreateExperiment with the tags, DescribeExperiment, UpdateExperiment,
    DeleteExperiment, ListTrials), and the local store mirrors the result.
    """

    def __init__(
        self,
        sagemaker_session: object | None = None,
        experiment_name: str | None = None,
        display_name: str | None = None,
        description: str | None = None,
        tags: list[dict[str, str]] | None = None,
        *,
        store: StorePath = None,
        backend: str | None = None,
        created: float | None = None,
        experiment_arn: str | None = None,
    ) -> None:
        self.sagemaker_session = sagemaker_session
        self.experiment_name = experiment_name
        self.display_name = display_name
        self.description = description
        self.tags = tags
        self.creation_time = created
        self.experiment_arn = experiment_arn
        self._store_path = store
        self._backend = backend

    def __repr__(self) -> str:
        return f"Experiment(experiment_name={self.experiment_name!r})"

    @classmethod
    def create(
        cls,
        experiment_name: str,
        display_name: str | None = None,
        description: str | None = None,
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        sagemaker_session: object | None = None,
        *,
        store: StorePath = None,
        backend: str | None = None,
    ) -> Experiment:
        """Create a new experiment (with its tags).

        :raises ValueError: it already exists in the store
        :raises botocore.exceptions.ClientError: SageMaker refused it (under the backend)
        """
        name = _check_name(experiment_name)
        tag_list = _tag_list(tags)
        chosen = _backend(backend, name)
        arn = None
        if chosen == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            created = remote.create_experiment(
                sagemaker_session, name, display_name, description, tag_list
            )
            arn = created.get("ExperimentArn")
        with LocalStore(store) as local:
            if chosen != "sagemaker" and any(
                e.experiment_name == name for e in local.list_experiments()
            ):
                raise ValueError(f"experiment {name!r} already exists in {local.path}")
            local.ensure_experiment(
                name, display_name=display_name, description=description, tags=tag_list
            )
            record = local.experiment(name)
        return cls(
            sagemaker_session,
            record.experiment_name,
            record.display_name,
            record.description,
            tag_list,
            store=store,
            backend=chosen,
            created=record.created,
            experiment_arn=arn,
        )

    @classmethod
    def load(
        cls,
        experiment_name: str,
        sagemaker_session: object | None = None,
        *,
        store: StorePath = None,
        backend: str | None = None,
    ) -> Experiment:
        """Load an experiment. :raises RunNotFoundError: if there is none by that name"""
        name = experiment_name.lower()
        chosen = _backend(backend, name)
        if chosen == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            found = remote.describe_experiment(sagemaker_session, name)
            created = found.get("CreationTime")
            return cls(
                sagemaker_session,
                str(found.get("ExperimentName") or name),
                found.get("DisplayName"),
                found.get("Description"),
                store=store,
                backend=chosen,
                created=created.timestamp() if isinstance(created, datetime) else None,
                experiment_arn=found.get("ExperimentArn"),
            )
        with LocalStore(store) as local:
            record = local.experiment(name)
            tags = _stored_tags(local, name)
        return cls(
            sagemaker_session,
            record.experiment_name,
            record.display_name,
            record.description,
            tags,
            store=store,
            backend=chosen,
            created=record.created,
        )

    @classmethod
    def _load_or_create(
        cls,
        experiment_name: str,
        display_name: str | None = None,
        description: str | None = None,
        tags: list[dict[str, str]] | None = None,
        sagemaker_session: object | None = None,
        *,
        store: StorePath = None,
    ) -> Experiment:
        name = _check_name(experiment_name)
        with LocalStore(store) as local:
            local.ensure_experiment(
                name, display_name=display_name, description=description, tags=tags
            )
        return cls.load(name, sagemaker_session, store=store, backend="local")

    @classmethod
    def list(cls, *, store: StorePath = None) -> builtins.list[Experiment]:
        """Every experiment in the store, oldest first."""
        with LocalStore(store) as local:
            records = local.list_experiments()
        return [
            cls(
                None,
                r.experiment_name,
                r.display_name,
                r.description,
                store=store,
                created=r.created,
            )
            for r in records
        ]

    def save(self) -> None:
        """Save the display name and description (UpdateExperiment under the backend)."""
        name = self._name()
        if self._chosen() == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            remote.update_experiment(
                self.sagemaker_session, name, self.display_name, self.description
            )
        with LocalStore(self._store_path) as local:
            local.ensure_experiment(name)
            with local.transaction("save experiment") as db:
                db.execute(
                    "UPDATE experiments SET display_name = coalesce(?, display_name), "
                    "description = ? WHERE name = ?",
                    (self.display_name, self.description, name),
                )

    def list_runs(self) -> builtins.list[Run]:
        return list_runs(self._name(), store=self._store_path)

    def list_trials(
        self,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> Iterator[TrialSummary]:
        """The experiment's trials (ListTrials under the backend). Locally, runs made by
        ``Run`` belong to the run-group trial ``Default-Run-Group-<experiment>``."""
        name = self._name()
        if self._chosen() == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            found = remote.list_trials(
                self.sagemaker_session, name, created_before, created_after, sort_by, sort_order
            )
            return iter(
                [
                    TrialSummary(
                        trial_name=str(t["TrialName"]),
                        trial_arn=t.get("TrialArn"),
                        display_name=t.get("DisplayName"),
                        trial_source=t.get("TrialSource"),
                        creation_time=t.get("CreationTime"),
                        last_modified_time=t.get("LastModifiedTime"),
                    )
                    for t in found
                ]
            )
        with LocalStore(self._store_path) as local:
            keys = local.run_keys(name)
        if not keys:
            return iter([])
        first = datetime.fromtimestamp(min(c for _, c in keys)).astimezone()
        last = datetime.fromtimestamp(max(c for _, c in keys)).astimezone()
        if (created_before is not None and not first < _aware(created_before)) or (
            created_after is not None and not first > _aware(created_after)
        ):
            return iter([])
        trial = run_group_name(name)
        return iter([TrialSummary(trial, None, trial, None, first, last)])

    def delete(self) -> None:
        """Delete the experiment and every run in it from the store (under the backend,
        DeleteExperiment: SageMaker wants its trials deleted first; see ``_delete_all``)."""
        name = self._name()
        if self._chosen() == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            remote.delete_experiment(self.sagemaker_session, name)
        with LocalStore(self._store_path) as local:
            try:
                local.delete_experiment(name)
            except RunNotFoundError:
                if self._chosen() != "sagemaker":
                    raise

    def _delete_all(self, action: str) -> None:
        """The experiment, its trials and their runs, everywhere (``action="--force"``)."""
        if action != "--force":
            raise ValueError(
                "Must confirm with string '--force' in order to delete the experiment and "
                "associated trials, trial components."
            )
        if self._chosen() == "sagemaker":
            from .._backends.sagemaker import _experiments as remote

            remote.delete_all(self.sagemaker_session, self._name())
        with LocalStore(self._store_path) as local, contextlib.suppress(RunNotFoundError):
            local.delete_experiment(self._name())

    def _name(self) -> str:
        if not self.experiment_name:
            raise ValueError("this Experiment has no experiment_name")
        return self.experiment_name.lower()

    def _chosen(self) -> str:
        if self._backend is None:
            self._backend = _backend(None, self._name())
        return self._backend


def _backend(backend: str | None, name: str) -> str:
    return resolve_backend(backend, name, name)


def _tag_list(tags: list[dict[str, str]] | dict[str, str] | None) -> list[dict[str, str]] | None:
    """Tags as the API takes them (the official ``format_tags``: a dict becomes a list)."""
    if tags is None:
        return None
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [dict(t) for t in tags]


def _stored_tags(local: LocalStore, name: str) -> list[dict[str, str]] | None:
    rows = local.query("SELECT tags FROM experiments WHERE name = ?", (name,))
    if not rows or rows[0][0] is None:
        return None
    decoded = msgspec.json.decode(rows[0][0])
    return _tag_list(decoded)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.astimezone()


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

"""The MLflow edge: a few registry calls over an injectable MlflowClient."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mlflow_bridge.decisions import Action, MlflowVersion
from mlflow_bridge.errors import MissingRun, PermissionRefused

__all__ = [
    "MODEL_FOLDER",
    "MlflowRegistry",
    "ModelSource",
    "fail_fast_client",
    "lost_upsert_race",
    "refusal",
    "versions_filter",
]

# How each SQL backend words a unique-key violation inside MLflow's BAD_REQUEST message
_UNIQUE_KEY_VIOLATIONS = ("Duplicate entry", "UNIQUE constraint failed", "UniqueViolation")
_UPSERT_ATTEMPTS = 3
MODEL_FOLDER = "model"  # where the project's jobs log the MLflow model among the run's artifacts


@dataclass(frozen=True)
class ModelSource:
    """A model version's source: a logged model's URI with its id, or a run's model folder."""

    uri: str
    model_id: str | None = None


def versions_filter(name: str) -> str:
    """An MLflow search filter that finds every version of the model `name`, whatever
    characters it holds (MLflow allows any but `/` and `:`). MLflow's filter grammar has no
    escape inside quotes (mlflow.utils.search_utils strips one pair), so the name is quoted
    with the quote character it lacks; a name with both is matched by LIKE on its part
    before the first `'`, and the caller keeps the exact name."""
    if "'" not in name:
        return f"name = '{name}'"
    if '"' not in name:
        return f'name = "{name}"'
    return f"name LIKE '{name.split(chr(39))[0]}%'"


def lost_upsert_race(exc: BaseException) -> bool:
    """MLflow's store writes aliases and tags by read-then-insert (SQLAlchemy `merge`):
    two writers that both read "absent" both insert, and the later one fails on the key
    with BAD_REQUEST. The row exists by then, so the same write again is an update."""
    return getattr(exc, "error_code", None) == "BAD_REQUEST" and any(
        marker in str(exc) for marker in _UNIQUE_KEY_VIOLATIONS
    )


def _upsert(write: Callable[[], Any]) -> None:
    for attempt in range(1, _UPSERT_ATTEMPTS + 1):
        try:
            write()
            return
        except Exception as exc:
            if attempt == _UPSERT_ATTEMPTS or not lost_upsert_race(exc):
                raise


# The permission each call needs under MLflow's basic auth: its validators in
# mlflow/server/auth/__init__.py (GetRegisteredModel and SearchModelVersions read,
# CreateModelVersion, SetModelVersionTag, SetRegisteredModelAlias and
# TransitionModelVersionStage update, DeleteModelVersion and DeleteRegisteredModelAlias
# delete; GetRun, SearchLoggedModels and ListArtifacts read the run's experiment), and what
# grants it in mlflow/server/auth/permissions.py (READ reads, EDIT updates, MANAGE deletes).
_READ, _EDIT, _MANAGE = "READ", "EDIT", "MANAGE"


@contextmanager
def refusal(operation: str, resource: str, permission: str) -> Iterator[None]:
    """A 403 from the tracking server as PermissionRefused, naming the operation, the
    resource, the permission it needs and the MLflow user the bridge runs as."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.get_http_status_code() != 403:
            raise
        user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "(no user: MLFLOW_TRACKING_USERNAME is not set)"
        detail = str(exc).splitlines()[0]
        raise PermissionRefused(operation=operation, resource=resource, permission=permission, user=user,
                                detail=detail) from exc  # fmt: skip


def fail_fast_client(tracking_uri: str) -> Any:
    """An MlflowClient that gives up within seconds when the server is down (2 retries, 15 s
    per request, unless the environment says otherwise): Lambda retries the whole event
    later, which beats one invocation retrying past its timeout (MLflow's defaults: 7
    retries, backoff factor 2, 120 s)."""
    for key, value in {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    }.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class MlflowRegistry:
    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, tracking_uri: str) -> MlflowRegistry:
        return cls(fail_fast_client(tracking_uri))

    def ensure_model(self, name: str, description: str = "") -> None:
        from mlflow.exceptions import MlflowException

        try:
            refused = (
                f"registered model {name!r} (not there yet: an MLflow admin creates it, or lets the user create models)"
            )
            with refusal("create", refused, "the right to create registered models"):
                self.client.create_registered_model(name, description=description or None)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def versions(self, name: str) -> list[MlflowVersion]:
        """Every version with its tags, aliases and stage (aliases come from the model:
        search_model_versions leaves them empty)."""
        from mlflow.exceptions import MlflowException

        try:
            with refusal("read", f"registered model {name!r}", _READ):
                model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        with refusal("search the versions of", f"registered model {name!r}", _READ):
            found = [v for v in self.client.search_model_versions(versions_filter(name)) if v.name == name]
        return sorted(
            (
                MlflowVersion(
                    version=str(v.version),
                    tags=dict(v.tags or {}),
                    aliases=tuple(sorted(by_version.get(str(v.version), []))),
                    stage=v.current_stage or "None",
                )
                for v in found
            ),
            key=lambda v: int(v.version),
        )

    def model_source(self, run_id: str) -> ModelSource | None:
        """Where the run's model is, however it was logged; None when it has none.

        MLflow 3's `mlflow.<flavor>.log_model(name=...)` makes a *logged model*
        (`models:/m-<id>`) outside the run's artifacts; a version must point at it (and name
        its `model_id`) to load. A model folder logged as run artifacts (this project's
        jobs) is `<run artifact URI>/model`. Source: MLflow 3 docs, "Logged models".
        Raises MissingRun when the server has no such run."""
        from mlflow.exceptions import MlflowException

        try:
            with refusal("read", f"the experiment of run {run_id}", _READ):
                run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise MissingRun(run_id, self.client.tracking_uri) from None
            raise
        experiment = f"experiment {run.info.experiment_id} (of run {run_id})"
        with refusal("search the logged models of", experiment, _READ):
            logged = self.client.search_logged_models(
                [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=50
            )
        ready = sorted((m for m in logged if str(m.status) == "READY"), key=lambda m: m.creation_timestamp or 0)
        if ready:
            return ModelSource(ready[-1].model_uri, ready[-1].model_id)
        with refusal("list the artifacts of", experiment, _READ):
            artifacts = self.client.list_artifacts(run_id, MODEL_FOLDER)
        if any(a.path == f"{MODEL_FOLDER}/MLmodel" for a in artifacts):
            return ModelSource(f"{run.info.artifact_uri.rstrip('/')}/{MODEL_FOLDER}")
        return None

    def create_version(self, name: str, run_id: str, source: ModelSource, tags: dict[str, str]) -> str:
        needs = f"{_EDIT} (and {_READ} on the experiment of run {run_id}, the version's source)"
        with refusal("create a version of", f"registered model {name!r}", needs):
            version = self.client.create_model_version(
                name, source.uri, run_id=run_id, tags=tags, await_creation_for=0, model_id=source.model_id
            )
        return str(version.version)

    def delete_version(self, name: str, version: str) -> None:
        with refusal(f"delete version {version} of", f"registered model {name!r}", _MANAGE):
            self.client.delete_model_version(name, version)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        with refusal(f"tag version {version} of", f"registered model {name!r}", _EDIT):
            for key, value in tags.items():
                _upsert(functools.partial(self.client.set_model_version_tag, name, version, key, value))

    def apply(self, name: str, alias: str, action: Action) -> None:
        model = f"registered model {name!r}"
        if action.kind == "set_alias":
            with refusal(f"set alias {action.alias(alias)!r} of", model, _EDIT):
                _upsert(lambda: self.client.set_registered_model_alias(name, action.alias(alias), action.version))
        elif action.kind == "delete_alias":
            with refusal(f"delete alias {action.alias(alias)!r} of", model, _MANAGE):
                self.client.delete_registered_model_alias(name, action.alias(alias))
        elif action.kind == "transition":
            import warnings

            with warnings.catch_warnings(), refusal(f"move version {action.version} to a stage in", model, _EDIT):
                warnings.simplefilter("ignore")  # stages are deprecated, and still what many users read
                self.client.transition_model_version_stage(name, action.version, action.value)
        elif action.kind == "set_tags":
            self.set_tags(name, action.version, action.value)
        else:
            raise ValueError(f"unknown action {action.kind}")

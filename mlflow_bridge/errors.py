"""The bridge's own errors, one base class. Whether a failure is retried is decided in
`failures.py`, for these and the services' errors alike."""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "DeploymentError",
    "InvalidSettings",
    "MalformedEvent",
    "MissingRun",
    "PermissionRefused",
    "StagesUnreachable",
]


class BridgeError(Exception):
    """Base class for the bridge's own errors."""


class MalformedEvent(BridgeError):
    """The event is not a model package state change (or pipeline execution status change) we
    can read. Retrying cannot help."""


class DeploymentError(BridgeError):
    """The endpoint could not be created or updated now (e.g. it is still updating): retry."""


class InvalidSettings(BridgeError):
    """A BRIDGE_* variable (or MLFLOW_TRACKING_URI) is unusable. Permanent until the
    configuration changes: retrying cannot help. `problems` is [(variable, message)]."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class MissingRun(BridgeError):
    """The package names an MLflow run (`mlflow_run_id`) the tracking server does not have:
    a reset or restored server, or another server than the one the jobs logged to.
    Permanent until the run is back or the model is retrained."""

    def __init__(self, run_id: str, tracking_uri: str) -> None:
        self.run_id, self.tracking_uri = run_id, tracking_uri
        super().__init__(
            f"the tracking server {tracking_uri} has no run {run_id}, which the model package names "
            "(mlflow_run_id): was the server reset or restored, or did the jobs log to another one?"
        )


class PermissionRefused(BridgeError):
    """The tracking server refused the bridge's MLflow user (403) an operation on a
    resource: permanent until someone grants the permission, which the message names."""

    def __init__(self, *, operation: str, resource: str, permission: str, user: str, detail: str) -> None:
        self.operation, self.resource, self.permission, self.user = operation, resource, permission, user
        super().__init__(f"MLflow 403: user {user} may not {operation} on {resource} ({detail})")

    def fix(self) -> str:
        return (
            f"grant MLflow user {self.user} {self.permission} (or more) on {self.resource}: as an MLflow admin, "
            f"`mlflow.server.get_app_client('basic-auth').grant_user_permission(...)`, or, for a registered "
            f"model, list it in the tracking server's MLFLOW_REGISTERED_MODEL_MANAGERS for that user (granted "
            f"MANAGE at its next start)"
        )


class StagesUnreachable(BridgeError):
    """Stages in another account whose deploy role the bridge could not assume (AssumeRole
    AccessDenied: that role's trust policy does not name the bridge's role). Each other
    stage was deployed; these are rejected until the trust policy changes (a retry cannot
    help). `stages` is [(stage, role ARN, AWS's message)]; `changes` what was done."""

    def __init__(self, stages: list[tuple[str, str, str]], changes: list[str]) -> None:
        self.stages, self.changes = stages, changes
        super().__init__(
            "; ".join(f"stage {stage}: could not assume {role} ({message})" for stage, role, message in stages)
        )

    def fix(self) -> str:
        accounts = sorted({role.split(":")[4] for _, role, _ in self.stages})
        roles = ", ".join(sorted({role for _, role, _ in self.stages}))
        return (
            f"in account {', '.join(accounts)}, let the bridge's role assume {roles}: its trust policy must name "
            "the bridge's role ARN (the stack's BridgeRoleArn output) as principal with sts:AssumeRole; then "
            "`python -m mlflow_bridge sync` deploys the stage"
        )

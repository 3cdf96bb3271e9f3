"""What the MLflow registry should look like, decided without I/O.

Inputs are small snapshots (`Package` from SageMaker, `MlflowVersion` from MLflow); the
output is a list of actions. The handler and `sync` apply the same plans, and `sync
--dry-run` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Action",
    "MlflowVersion",
    "Package",
    "Tags",
    "choose_champion",
    "ignore_reason",
    "registry_actions",
    "version_tags",
]


class Tags:
    """Tag keys on MLflow model versions (no dots: they filter without quoting)."""

    PACKAGE_ARN = "sagemaker_model_package_arn"
    GROUP = "sagemaker_model_package_group"
    PACKAGE_VERSION = "sagemaker_model_package_version"
    APPROVAL = "sagemaker_approval_status"
    APPROVAL_TIME = "sagemaker_approval_time"
    APPROVED_BY = "sagemaker_approved_by"
    ENDPOINT = "sagemaker_endpoint"


@dataclass(frozen=True)
class Package:
    arn: str
    group: str
    version: int
    status: str
    run_id: str = ""
    registered_model: str = ""
    modified: str = ""  # ISO time of the last status change
    modified_by: str = ""


@dataclass(frozen=True)
class MlflowVersion:
    version: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()
    stage: str = "None"

    @property
    def package_arn(self) -> str:
        return self.tags.get(Tags.PACKAGE_ARN, "")

    @property
    def approved(self) -> bool:
        return self.tags.get(Tags.APPROVAL) == "Approved"

    @property
    def package_version(self) -> int:
        return int(self.tags.get(Tags.PACKAGE_VERSION, "0") or 0)


@dataclass(frozen=True)
class Action:
    kind: str  # set_alias, delete_alias, transition, set_tags
    version: str
    value: Any = None

    def describe(self, model: str, alias: str) -> str:
        if self.kind == "set_alias":
            return f"{model}: point alias {alias!r} at version {self.version}"
        if self.kind == "delete_alias":
            return f"{model}: remove alias {alias!r} from version {self.version}"
        if self.kind == "transition":
            return f"{model}: move version {self.version} to stage {self.value}"
        return f"{model}: set tags on version {self.version}: {self.value}"


def ignore_reason(package: Package | None, groups: list[str]) -> str | None:
    """Why an event needs no action, or None when it does."""
    if package is None:
        return "the model package no longer exists"
    if groups and package.group not in groups:
        return f"package group {package.group} is not synced (configured: {', '.join(groups)})"
    if package.status not in {"Approved", "Rejected"}:
        return f"package is {package.status}: only Approved and Rejected are synced"
    if package.status == "Approved" and not package.run_id:
        return "package carries no mlflow_run_id customer metadata: nothing to link in MLflow"
    return None


def version_tags(package: Package) -> dict[str, str]:
    tags = {
        Tags.PACKAGE_ARN: package.arn,
        Tags.GROUP: package.group,
        Tags.PACKAGE_VERSION: str(package.version),
        Tags.APPROVAL: package.status,
    }
    if package.modified:
        tags[Tags.APPROVAL_TIME] = package.modified
    if package.modified_by:
        tags[Tags.APPROVED_BY] = package.modified_by
    return tags


def choose_champion(versions: list[MlflowVersion], order: str) -> MlflowVersion | None:
    """The approved version that should hold the alias: highest package version, or the
    latest approval (ties broken by package version), as configured."""
    approved = [v for v in versions if v.approved and v.package_arn]
    if not approved:
        return None
    if order == "latest_approval":
        return max(approved, key=lambda v: (v.tags.get(Tags.APPROVAL_TIME, ""), v.package_version))
    return max(approved, key=lambda v: v.package_version)


def registry_actions(
    versions: list[MlflowVersion], *, alias: str, manage_stages: bool, order: str
) -> tuple[MlflowVersion | None, list[Action]]:
    """Alias and stages for a registered model: the champion holds the alias and the
    Production stage; a version that is no longer approved holds neither."""
    champion = choose_champion(versions, order)
    actions: list[Action] = []
    if champion is None:  # setting an alias moves it, so removal is only needed when nobody qualifies
        actions += [Action("delete_alias", v.version) for v in versions if alias in v.aliases]
    if champion is not None and alias not in champion.aliases:
        actions.append(Action("set_alias", champion.version))
    if manage_stages:
        for version in versions:
            if version.stage == "Production" and (champion is None or version.version != champion.version):
                actions.append(Action("transition", version.version, "Archived"))
        if champion is not None and champion.stage != "Production":
            actions.append(Action("transition", champion.version, "Production"))
    return champion, actions

"""What the MLflow registry and the endpoint should look like, decided without I/O.

Inputs are small snapshots (`Package` from SageMaker, `MlflowVersion` from MLflow); the
outputs are plans. The handler and `sync` apply the same plans, and `sync --dry-run`
prints them, computed on the state the real run would reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from mlflow_bridge.contract import Tags

__all__ = [
    "Action",
    "MlflowVersion",
    "Package",
    "Sighting",
    "Stage",
    "Tags",
    "after_plan",
    "choose_champion",
    "demotion",
    "deployment_target",
    "duplicate_versions",
    "ignore_reason",
    "iso_utc",
    "new_version_tags",
    "registry_actions",
    "staged_registry_actions",
    "status_record",
    "tag_updates",
    "versions_to_create",
]

SYNCED_STATUSES = ("Approved", "Rejected")


@dataclass(frozen=True)
class Package:
    """A model package as DescribeModelPackage reports it now (times: ISO 8601, UTC)."""

    arn: str
    group: str
    version: int
    status: str
    run_id: str = ""
    registered_model: str = ""
    created: str = ""  # CreationTime
    created_by: str = ""  # CreatedBy: the Studio user profile, else the IAM identity's ARN
    modified_by: str = ""  # LastModifiedBy, likewise
    never_modified: bool = False  # no LastModifiedTime after CreationTime: the status dates from creation
    lifecycle_stage: str = ""  # ModelLifeCycle.Stage, e.g. Staging, Production ("" when none is set)
    lifecycle_status: str = ""  # ModelLifeCycle.StageStatus, e.g. Approved, Rejected


@dataclass(frozen=True)
class Sighting:
    """How the bridge learns of a package's current status, which dates a status change
    SageMaker records no time for: the time of the event that reported it, else the time
    the bridge first saw it (`sync` after a missed event)."""

    now: str  # ISO 8601, UTC
    event_time: str = ""  # the event's `time`, when the event reports the package's current status


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

    def holds_stage(self, lifecycle_stage: str) -> bool:
        """Approved, and in this SageMaker lifecycle stage with stage status Approved."""
        return (
            self.approved
            and self.tags.get(Tags.LIFECYCLE_STAGE) == lifecycle_stage
            and self.tags.get(Tags.LIFECYCLE_STAGE_STATUS) == "Approved"
        )


@dataclass(frozen=True)
class Stage:
    """A deployment stage: the SageMaker lifecycle stage it follows (ModelLifeCycle.Stage),
    the MLflow alias it owns, and the legacy MLflow stage it moves ("" for none)."""

    lifecycle_stage: str
    alias: str
    legacy_stage: Literal["Staging", "Production", ""] = ""


ActionKind = Literal["create_version", "set_tags", "set_alias", "delete_alias", "transition"]


@dataclass(frozen=True)
class Action:
    """One write to the MLflow registry. `version` is MLflow's version number, or
    `new:<package version>` for a version not created yet."""

    kind: ActionKind
    version: str
    value: Any = None  # set_tags: the tags; transition: the stage; create_version: the package ARN;
    # set_alias / delete_alias: the alias when it is a stage's, else None (the configured alias)

    def alias(self, default: str) -> str:
        return self.value or default if self.kind in {"set_alias", "delete_alias"} else default

    def describe(self, model: str, alias: str) -> str:
        if self.kind == "create_version":
            return f"{model}: create a version for {self.value}"
        if self.kind == "set_alias":
            return f"{model}: point alias {self.alias(alias)!r} at version {self.version}"
        if self.kind == "delete_alias":
            return f"{model}: remove alias {self.alias(alias)!r} from version {self.version}"
        if self.kind == "transition":
            return f"{model}: move version {self.version} to stage {self.value}"
        return f"{model}: set tags on version {self.version}: {self.value}"


def iso_utc(moment: datetime) -> str:
    """One spelling for every time the bridge compares (`latest_approval` orders these
    strings): UTC, milliseconds, `+00:00`. A naive time is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds")


def ignore_reason(package: Package | None, groups: list[str]) -> str | None:
    """Why an event needs no action, or None when it does."""
    if package is None:
        return "the model package no longer exists"
    if groups and package.group not in groups:
        return f"package group {package.group} is not synced (configured: {', '.join(groups)})"
    if package.status not in SYNCED_STATUSES:
        return f"package is {package.status}: only Approved and Rejected are synced"
    if package.status == "Approved" and not package.run_id:
        return "package carries no mlflow_run_id customer metadata: nothing to link in MLflow"
    return None


def identity_tags(package: Package) -> dict[str, str]:
    """The tags that follow the package as it is now (an edit never changes them)."""
    tags = {
        Tags.PACKAGE_ARN: package.arn,
        Tags.GROUP: package.group,
        Tags.PACKAGE_VERSION: str(package.version),
        Tags.APPROVAL: package.status,
    }
    if package.lifecycle_stage:
        tags[Tags.LIFECYCLE_STAGE] = package.lifecycle_stage
        tags[Tags.LIFECYCLE_STAGE_STATUS] = package.lifecycle_status
    return tags


def status_record(package: Package, seen: Sighting) -> dict[str, str]:
    """When and by whom the package took its current status, for a status change seen
    for the first time.

    DescribeModelPackage records no approval time or approver (source: SageMaker API
    reference, DescribeModelPackage: only CreationTime/CreatedBy and the generic
    LastModifiedTime/LastModifiedBy of any update). So: a package never modified has the
    status it was created with (its creation time and creator); otherwise the time of the
    event that reported the status, else the time the bridge first saw it. The approver is
    the last modifier at that moment, which is the approver unless an edit came first."""
    if package.never_modified and package.created:
        at, source, by = package.created, "created", package.created_by
    elif seen.event_time:
        at, source, by = seen.event_time, "event", package.modified_by
    else:
        at, source, by = seen.now, "observed", package.modified_by
    return {Tags.APPROVAL_TIME: at, Tags.APPROVAL_TIME_SOURCE: source, Tags.APPROVED_BY: by or "unknown"}


def lifecycle_record(package: Package, seen: Sighting) -> dict[str, str]:
    """When the package took its current lifecycle stage and stage status, for a change
    seen for the first time: the event's time, else the time the bridge first saw it
    (DescribeModelPackage records no time for a ModelLifeCycle change either; source:
    SageMaker API reference, ModelLifeCycle). Empty for a package with no lifecycle stage."""
    return {Tags.LIFECYCLE_STAGE_TIME: seen.event_time or seen.now} if package.lifecycle_stage else {}


def new_version_tags(package: Package, seen: Sighting) -> dict[str, str]:
    return {**identity_tags(package), **status_record(package, seen), **lifecycle_record(package, seen)}


def _recorded_status_changed(package: Package, version: MlflowVersion) -> bool:
    return version.tags.get(Tags.APPROVAL) != package.status or Tags.APPROVAL_TIME not in version.tags


def _recorded_lifecycle_changed(package: Package, version: MlflowVersion) -> bool:
    recorded = (version.tags.get(Tags.LIFECYCLE_STAGE), version.tags.get(Tags.LIFECYCLE_STAGE_STATUS))
    return bool(package.lifecycle_stage) and (
        recorded != (package.lifecycle_stage, package.lifecycle_status) or Tags.LIFECYCLE_STAGE_TIME not in version.tags
    )


def versions_to_create(packages: Iterable[Package], existing: list[MlflowVersion]) -> list[Package]:
    """Approved packages with a run and no version yet (one version per package ARN)."""
    have = {v.package_arn for v in existing}
    return [p for p in packages if p.arn not in have and p.status == "Approved" and p.run_id]


def tag_updates(packages: Iterable[Package], existing: list[MlflowVersion], seen: Sighting) -> list[Action]:
    """The tags that differ from the packages' current state. The approval record is part
    of it only when the status differs from the one MLflow records: an edit, a metadata
    update or a redelivery changes nothing."""
    by_arn = {p.arn: p for p in packages}
    actions = []
    for version in existing:
        package = by_arn.get(version.package_arn)
        if package is None:
            continue
        wanted = identity_tags(package)
        if _recorded_status_changed(package, version):
            wanted.update(status_record(package, seen))
        if _recorded_lifecycle_changed(package, version):
            wanted.update(lifecycle_record(package, seen))
        stale = {k: v for k, v in wanted.items() if version.tags.get(k) != v}
        if stale:
            actions.append(Action("set_tags", version.version, stale))
    return actions


def duplicate_versions(versions: list[MlflowVersion], package_arns: set[str]) -> list[MlflowVersion]:
    """The versions beyond the first (lowest number) of each of these packages: what two
    deliveries racing on one approval both created, one of which must go."""
    seen: set[str] = set()
    extra = []
    for version in sorted(versions, key=lambda v: int(v.version)):
        if version.package_arn in package_arns:
            if version.package_arn in seen:
                extra.append(version)
            seen.add(version.package_arn)
    return extra


def after_plan(
    existing: list[MlflowVersion], creates: list[tuple[Package, dict[str, str]]], updates: list[Action]
) -> list[MlflowVersion]:
    """The versions as they will be once the creations and tag updates are applied: what
    a dry run plans the alias and stages on, so it lists what the real run does."""
    tags_by_version = {a.version: a.value for a in updates if a.kind == "set_tags"}
    planned = [replace(v, tags={**v.tags, **tags_by_version.get(v.version, {})}) for v in existing]
    planned += [MlflowVersion(version=f"new:{p.version}", tags=tags) for p, tags in creates]
    return planned


def choose_champion(
    versions: list[MlflowVersion], order: str, time_tag: str = Tags.APPROVAL_TIME
) -> MlflowVersion | None:
    """The approved version that should hold the alias: highest package version, or the
    latest approval (ties broken by package version), as configured. `time_tag` dates
    the approval: with stages, the promotion into the stage (`Tags.LIFECYCLE_STAGE_TIME`)."""
    approved = [v for v in versions if v.approved and v.package_arn]
    if not approved:
        return None
    if order == "latest_approval":
        return max(approved, key=lambda v: (v.tags.get(time_tag, ""), v.package_version))
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


def staged_registry_actions(
    versions: list[MlflowVersion], stages: list[Stage], order: str
) -> tuple[dict[str, MlflowVersion | None], list[Action]]:
    """Aliases and legacy stages when stages are configured: each stage's alias on the
    champion among the versions that hold its lifecycle stage (`MlflowVersion.holds_stage`;
    with `latest_approval`, the latest promotion into the stage),
    so a rejection in a stage moves that stage's alias back to its previous model and
    leaves the other stages alone; a legacy stage is held by its stage's champion only.
    Returns (lifecycle stage -> champion, actions)."""
    champions = {
        s.lifecycle_stage: choose_champion(
            [v for v in versions if v.holds_stage(s.lifecycle_stage)], order, Tags.LIFECYCLE_STAGE_TIME
        )
        for s in stages
    }
    actions: list[Action] = []
    for stage in stages:
        champion = champions[stage.lifecycle_stage]
        if champion is None:
            actions += [Action("delete_alias", v.version, stage.alias) for v in versions if stage.alias in v.aliases]
        elif stage.alias not in champion.aliases:
            actions.append(Action("set_alias", champion.version, stage.alias))
    legacy = {s.legacy_stage: champions[s.lifecycle_stage] for s in stages if s.legacy_stage}
    holders = {champion.version: name for name, champion in legacy.items() if champion is not None}
    for version in versions:
        if version.stage in legacy and version.version not in holders:
            actions.append(Action("transition", version.version, "Archived"))
    for version_number, legacy_stage in holders.items():
        version = next(v for v in versions if v.version == version_number)
        if version.stage != legacy_stage:
            actions.append(Action("transition", version_number, legacy_stage))
    return champions, actions


def deployment_target(package: Package, champion: MlflowVersion | None, endpoint_serves_package: bool) -> str | None:
    """The package ARN the endpoint should now serve, or None to leave it as it is.

    This package, when it is the champion (just approved, or promoted into the endpoint's
    stage). The champion, when the endpoint served this package and it no longer is the
    champion (rejected; or, with stages, rejected in or moved out of the stage). Endpoints
    are never torn down: with no champion left the endpoint keeps serving and the caller
    reports it."""
    if champion is not None and champion.package_arn == package.arn:
        return package.arn
    if endpoint_serves_package and champion is not None:
        return champion.package_arn
    return None


def demotion(package: Package, versions: list[MlflowVersion], stages: list[Stage]) -> str:
    """The last stage (production) this package is leaving, or "": its version holds that
    stage's alias, and the package is no longer Approved in that stage (moved to an
    earlier stage, rejected there, or its approval revoked). IAM's
    `sagemaker:ModelLifeCycle:stage` key names the target stage only, so a policy alone
    cannot tell a promotion from a demotion: the bridge says which it was."""
    if not stages:
        return ""
    last = stages[-1]
    holds = any(v.package_arn == package.arn and last.alias in v.aliases for v in versions)
    still_there = (
        package.status == "Approved"
        and package.lifecycle_stage == last.lifecycle_stage
        and package.lifecycle_status == "Approved"
    )
    return last.lifecycle_stage if holds and not still_there else ""

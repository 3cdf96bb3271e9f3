"""The bridge: an approval event (or a reconcile pass) in, MLflow and the endpoint in step.

Policy lives in `decisions`; this module reads state through the three edges
(`interfaces`), applies the plan and verifies it, so the same event delivered any number
of times, in any order or concurrently, converges on one state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlflow_bridge.decisions import (
    Action,
    MlflowVersion,
    Package,
    Sighting,
    Tags,
    after_plan,
    demotion,
    deployment_target,
    duplicate_versions,
    ignore_reason,
    iso_utc,
    new_version_tags,
    registry_actions,
    staged_registry_actions,
    tag_updates,
    versions_to_create,
)
from mlflow_bridge.errors import DeploymentError, StagesUnreachable
from mlflow_bridge.events import parse_event
from mlflow_bridge.logs import bridge_logger
from mlflow_bridge.settings import BridgeSettings

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from mlflow_bridge.interfaces import ModelDeployer, ModelRegistry, PackageRegistry
    from mlflow_bridge.mlflow_registry import ModelSource

__all__ = ["Bridge"]

_MAX_CONVERGENCE_PASSES = 5


def _arn(version: MlflowVersion | None) -> str:
    return version.package_arn if version is not None else ""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        sagemaker: PackageRegistry,
        mlflow: ModelRegistry,
        deployer: ModelDeployer | None = None,
        logger: Logger | None = None,
        clock: Callable[[], datetime] = _utc_now,
        stage_deployers: dict[str, ModelDeployer] | None = None,
        on_demotion: Callable[[str], None] = lambda stage: None,
    ) -> None:
        """`stage_deployers`: lifecycle stage -> the endpoint that stage's champion is served
        on (each stage its own); without them `deployer` serves the holder of `alias`.
        `on_demotion(stage)`: called when a package is seen leaving the last stage, before
        anything is written (a retry after a failed deployment would no longer see it)."""
        self.on_demotion = on_demotion
        self.settings = settings
        self.sagemaker = sagemaker
        self.mlflow = mlflow
        self.deployer = deployer if settings.deployment.enabled else None
        self.stage_deployers = stage_deployers or {}
        self.logger = logger or bridge_logger()
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: BridgeSettings, sagemaker_client: Any = None) -> Bridge:
        import os

        import boto3

        from mlflow_bridge.cross_account import assumed_role_client
        from mlflow_bridge.deployment import EndpointDeployer
        from mlflow_bridge.mlflow_registry import MlflowRegistry
        from mlflow_bridge.sagemaker_registry import SageMakerRegistry

        region = os.environ.get("AWS_REGION") or None  # Lambda sets AWS_REGION; boto3 reads AWS_DEFAULT_REGION
        client = sagemaker_client or boto3.client("sagemaker", region_name=region)
        stage_deployers: dict[str, ModelDeployer] = {
            stage: EndpointDeployer(
                assumed_role_client("sagemaker", deployment.deploy_role_arn, region)
                if deployment.deploy_role_arn
                else client,
                deployment,
            )
            for stage, deployment in settings.stage_deployments.items()
            if deployment.enabled
        }
        return cls(
            settings,
            SageMakerRegistry(client),
            MlflowRegistry.connect(settings.tracking_uri),
            EndpointDeployer(client, settings.deployment),
            stage_deployers=stage_deployers,
        )

    def model_name(self, package: Package) -> str:
        return self.settings.registered_model or package.registered_model or package.group

    # ---- events ----------------------------------------------------------------------

    def handle(self, event: Any) -> dict[str, Any]:
        """One state-change event (a dict, or one already parsed). Raises MalformedEvent
        for an event that cannot be read; other errors propagate, and the Lambda handler
        tells a retry from a rejection (`failures`)."""
        parsed = parse_event(event)
        arn = parsed.detail.model_package_arn
        self.logger.thread_safe_append_keys(package_arn=arn, event_id=parsed.id)
        try:
            return self._handle(arn, parsed.detail.model_approval_status, iso_utc(parsed.time))
        finally:
            self.logger.thread_safe_remove_keys(["package_arn", "event_id"])

    def _handle(self, arn: str, event_status: str, event_time: str) -> dict[str, Any]:
        package = self.sagemaker.describe(arn)
        reason = ignore_reason(package, self.settings.groups)
        if reason is not None or package is None:
            self.logger.info("event ignored", reason=reason)
            return {"status": "ignored", "reason": reason, "package_arn": arn}
        self.logger.info("syncing package", current_status=package.status, group=package.group)
        name = self.model_name(package)
        demoted = demotion(package, self.mlflow.versions(name), self.settings.stages)
        if demoted:  # a warning, and the handler's Demoted count, for an alarm to watch
            self.logger.warning(
                "package demoted out of the last stage",
                stage=demoted,
                now_in=package.lifecycle_stage or "none",
                stage_status=package.lifecycle_status or "none",
                approval=package.status,
                modified_by=package.modified_by or "unknown",
            )
            self.on_demotion(demoted)
        # The event dates the status only when it reports the status the package has now.
        seen = Sighting(now=iso_utc(self.clock()), event_time=event_time if event_status == package.status else "")
        changes = self.sync_packages(name, [package], seen)
        self.sagemaker.tag_stage(package)  # where it is now, for the policy that protects production
        changes += self._deploy(package)
        self.logger.info("package synced", changes=changes)
        result: dict[str, Any] = {"status": "synced", "package_arn": arn, "changes": changes}
        if demoted:
            result["demoted_from"] = demoted
        return result

    # ---- MLflow state -----------------------------------------------------------------

    def sync_packages(self, name: str, packages: list[Package], seen: Sighting, *, dry_run: bool = False) -> list[str]:
        """Versions and tags for these packages, then the alias and stages of the model.
        A dry run plans the alias and stages on the state the writes would leave, so it
        lists what the real run does."""
        existing = self.mlflow.versions(name)
        creates: list[tuple[Package, ModelSource]] = []
        for package in versions_to_create(packages, existing):
            source = self.mlflow.model_source(package.run_id)
            if source is None:  # the same answer for --dry-run and the real sync
                self.logger.warning(
                    "package ignored: its run has no loadable model",
                    ignored_package=package.arn,
                    run_id=package.run_id,
                    reason="no logged model and no model/MLmodel artifact",
                )
                continue
            creates.append((package, source))
        updates = tag_updates(packages, existing, seen)
        alias = self.settings.alias
        changes = [Action("create_version", f"new:{p.version}", p.arn).describe(name, alias) for p, _ in creates]
        changes += [update.describe(name, alias) for update in updates]
        if dry_run:
            planned = after_plan(existing, [(p, new_version_tags(p, seen)) for p, _ in creates], updates)
            return changes + [a.describe(name, alias) for a in self._registry_plan(planned)]
        for package, source in creates:
            self.mlflow.ensure_model(name, description=f"Synced from SageMaker model package group {package.group}")
            created = self.mlflow.create_version(name, package.run_id, source, new_version_tags(package, seen))
            self.logger.info("created MLflow version", model=name, version=created, source=source.uri)
        for update in updates:
            self.mlflow.apply(name, alias, update)
        return changes + self._converge(name, {package.arn for package, _ in creates})

    def _registry_plan(self, versions: list[MlflowVersion]) -> list[Action]:
        return self._champion_and_plan(versions, manage_stages=self.settings.manage_stages)[1]

    def _champion_and_plan(
        self, versions: list[MlflowVersion], *, manage_stages: bool
    ) -> tuple[MlflowVersion | None, list[Action]]:
        """The version the endpoint follows (the holder of the configured alias) and the
        alias/stage actions: one alias, or one per configured stage."""
        settings = self.settings
        if settings.stages:
            stages = settings.stages if manage_stages else [replace(s, legacy_stage="") for s in settings.stages]
            champions, actions = staged_registry_actions(versions, stages, settings.champion_order)
            followed = next((s.lifecycle_stage for s in settings.stages if s.alias == settings.alias), None)
            return (champions.get(followed) if followed else None), actions
        return registry_actions(
            versions, alias=settings.alias, manage_stages=manage_stages, order=settings.champion_order
        )

    def _converge(self, name: str, created: set[str] | None = None) -> list[str]:
        """Apply the alias/stage plan and re-read until nothing is left to do, so a
        concurrent delivery that moved the alias meanwhile is corrected. Each read also
        drops the extra versions two racing deliveries made for a package this call
        created (the lowest stays), before anything points at them."""
        changes: list[str] = []
        for _ in range(_MAX_CONVERGENCE_PASSES):
            versions = self._without_duplicates(name, self.mlflow.versions(name), created or set())
            actions = self._registry_plan(versions)
            if not actions:
                return changes
            changes += [a.describe(name, self.settings.alias) for a in actions]
            for action in actions:
                self.mlflow.apply(name, self.settings.alias, action)
                self.logger.info("registry updated", model=name, action=action.kind, version=action.version)
        raise RuntimeError(f"{name}: alias and stages did not settle after {_MAX_CONVERGENCE_PASSES} passes")

    def _without_duplicates(self, name: str, versions: list[MlflowVersion], arns: set[str]) -> list[MlflowVersion]:
        from mlflow.exceptions import MlflowException

        extra = duplicate_versions(versions, arns)
        for duplicate in extra:
            try:
                self.mlflow.delete_version(name, duplicate.version)
                self.logger.warning("removed duplicate version", model=name, version=duplicate.version)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # the other delivery removed it
                    raise
        return [v for v in versions if v not in extra]

    # ---- deployment ------------------------------------------------------------------

    def _endpoints(self, versions: list[MlflowVersion]) -> list[tuple[ModelDeployer, MlflowVersion | None, str]]:
        """(endpoint, the version it should serve, lifecycle stage): one per stage with an
        endpoint, else the one endpoint of the holder of `alias` ("" for its stage)."""
        if self.stage_deployers:
            champions, _ = staged_registry_actions(versions, self.settings.stages, self.settings.champion_order)
            return [(self.stage_deployers[s], champions[s], s) for s in champions if s in self.stage_deployers]
        if self.deployer is not None:
            return [(self.deployer, self._champion_and_plan(versions, manage_stages=False)[0], "")]
        return []

    def _deploy(self, package: Package) -> list[str]:
        """Serve each champion on its endpoint: one endpoint for the holder of `alias`, or
        one per stage. Never tears a working endpoint down (a Failed one is deleted and made
        again: deployment.py)."""
        name = self.model_name(package)
        versions = self.mlflow.versions(name)
        changes: list[str] = []
        unreachable: list[tuple[str, str, str]] = []
        for deployer, champion, stage in self._endpoints(versions):
            try:
                changes += self._deploy_on(deployer, package, champion, versions, name, stage)
            except Exception as exc:
                if not _assume_role_denied(exc):
                    raise
                unreachable.append(self._unreachable(stage, exc))
        if unreachable:  # every other stage is deployed: this one waits for its trust policy
            raise StagesUnreachable(unreachable, changes)
        return changes

    def _unreachable(self, stage: str, exc: Any) -> tuple[str, str, str]:
        role = self.settings.stage_deployments.get(stage, self.settings.deployment).deploy_role_arn
        message = exc.response.get("Error", {}).get("Message", str(exc))
        self.logger.error("cannot assume the stage's deploy role", stage=stage, role=role, reason=message)
        return stage, role, message

    def _deploy_on(
        self,
        deployer: ModelDeployer,
        package: Package,
        champion: MlflowVersion | None,
        versions: list[MlflowVersion],
        name: str,
        stage: str,
    ) -> list[str]:
        """The champion on one endpoint: after the event that made this package the
        champion, or after one that took from the champion a package the endpoint serves."""
        # Staged, an approved package can leave the stage (rejected in it): check what it serves.
        leaving = package.status != "Approved" or (bool(self.settings.stages) and package.arn != _arn(champion))
        serves = leaving and deployer.serves(package)
        target_arn = deployment_target(package, champion, serves)
        if target_arn is None:
            if serves:
                self.logger.error("the endpoint serves a package no longer eligible and none remains", stage=stage)
            elif package.status == "Approved":
                self.logger.info("not deploying: another approved package is the champion", stage=stage)
            return []
        target = package if target_arn == package.arn else self.sagemaker.describe(target_arn)
        if target is None:
            return []
        endpoint, outcome = deployer.deploy(target)
        served = next(v for v in versions if v.package_arn == target.arn)
        tag = Tags.endpoint_of(stage)
        if served.tags.get(tag) != endpoint:
            self.mlflow.set_tags(name, served.version, {tag: endpoint})
        self.logger.info("endpoint deployed", endpoint=endpoint, outcome=outcome, served=target.arn, stage=stage)
        return [] if outcome == "unchanged" else [f"endpoint {endpoint} {outcome} with {target.arn}"]

    # ---- reconcile ---------------------------------------------------------------------

    def sync_groups(self, groups: list[str], *, dry_run: bool) -> list[str]:
        """Walk every package of the groups and repair MLflow to match (missed events,
        a restored server), then every endpoint that does not serve its stage's holder
        (a Failed endpoint, a stage whose role could not be assumed before, an update
        rolled back). An endpoint that is busy is listed and left for the next sync; a
        model whose stage role cannot be assumed raises StagesUnreachable once its other
        stages are done."""
        changes: list[str] = []
        seen = Sighting(now=iso_utc(self.clock()))
        for group in groups:
            by_model: dict[str, list[Package]] = defaultdict(list)
            for package in self.sagemaker.packages(group):
                if ignore_reason(package, self.settings.groups) is None:
                    by_model[self.model_name(package)].append(package)
            for name, packages in sorted(by_model.items()):
                self.logger.thread_safe_append_keys(group=group, model=name, dry_run=dry_run)
                try:
                    changes += self.sync_packages(name, packages, seen, dry_run=dry_run)
                    if not dry_run:  # packages promoted before the stack tagged them get their tag too
                        for package in packages:
                            self.sagemaker.tag_stage(package)
                    changes += self._reconcile_endpoints(name, dry_run=dry_run)
                finally:
                    self.logger.thread_safe_remove_keys(["group", "model", "dry_run"])
        return changes

    def _reconcile_endpoints(self, name: str, *, dry_run: bool) -> list[str]:
        """Deploy each holder its endpoint does not serve (only reads with `dry_run`)."""
        changes: list[str] = []
        unreachable: list[tuple[str, str, str]] = []
        for deployer, holder, stage in self._endpoints(self.mlflow.versions(name)):
            package = self.sagemaker.describe(holder.package_arn) if holder is not None else None
            if package is None:
                continue
            where = f"stage {stage}" if stage else "the endpoint"
            try:
                if deployer.serves(package):
                    continue
                if dry_run:
                    changes.append(f"{where}: deploy {package.arn} (its endpoint serves another package, or none)")
                    continue
                endpoint, outcome = deployer.deploy(package)
            except DeploymentError as exc:  # busy, or a Failed one just deleted: the next sync goes on
                self.logger.warning("endpoint not repaired now", stage=stage, reason=str(exc))
                changes.append(f"{where}: not deployed now ({exc}); sync again")
                continue
            except Exception as exc:
                if not _assume_role_denied(exc):
                    raise
                unreachable.append(self._unreachable(stage, exc))
                continue
            self.logger.info("endpoint repaired", endpoint=endpoint, outcome=outcome, served=package.arn, stage=stage)
            changes.append(f"{where}: endpoint {endpoint} {outcome} with {package.arn}")
        if unreachable:
            raise StagesUnreachable(unreachable, changes)
        return changes


def _assume_role_denied(exc: BaseException) -> bool:
    """botocore's AssumeRole refusal, raised by a stage's client on its first call."""
    response = getattr(exc, "response", None)
    return (
        getattr(exc, "operation_name", "") == "AssumeRole"
        and isinstance(response, dict)
        and "AccessDenied" in response.get("Error", {}).get("Code", "")
    )

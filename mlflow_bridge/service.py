"""The bridge: an approval event (or a reconcile pass) in, MLflow and the endpoint in step.

Policy lives in `decisions`; this module reads state through the three edges, applies
the plan and verifies it, so the same event delivered any number of times, in any order
or concurrently, converges on one state.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from mlflow_bridge.decisions import (
    Action,
    MlflowVersion,
    Package,
    Tags,
    ignore_reason,
    registry_actions,
    version_tags,
)
from mlflow_bridge.deployment import EndpointDeployer
from mlflow_bridge.events import parse_event
from mlflow_bridge.logs import PackageLogger, configure
from mlflow_bridge.mlflow_registry import MlflowRegistry
from mlflow_bridge.sagemaker_registry import SageMakerRegistry
from mlflow_bridge.settings import BridgeSettings

__all__ = ["Bridge"]

_MAX_CONVERGENCE_PASSES = 5


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        sagemaker: SageMakerRegistry,
        mlflow: MlflowRegistry,
        deployer: EndpointDeployer | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.sagemaker = sagemaker
        self.mlflow = mlflow
        self.deployer = deployer if settings.deployment.enabled else None
        self.logger = logger or configure()

    @classmethod
    def from_settings(cls, settings: BridgeSettings, sagemaker_client: Any = None) -> Bridge:
        import os

        import boto3

        # Lambda sets AWS_REGION; boto3 itself only reads AWS_DEFAULT_REGION
        client = sagemaker_client or boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION") or None)
        return cls(
            settings,
            SageMakerRegistry(client),
            MlflowRegistry.connect(settings.tracking_uri),
            EndpointDeployer(client, settings.deployment),
        )

    def model_name(self, package: Package) -> str:
        return self.settings.registered_model or package.registered_model or package.group

    # ---- events ----------------------------------------------------------------------

    def handle(self, event: Any) -> dict[str, Any]:
        """Raises MalformedEvent for events that cannot be read (the Lambda handler rejects
        them) and lets transient errors (MLflow down, throttling) propagate for a retry."""
        parsed = parse_event(event)
        arn = parsed.detail.model_package_arn
        log = PackageLogger(self.logger, arn, event_id=parsed.id, event_status=parsed.detail.model_approval_status)
        package = self.sagemaker.describe(arn)
        reason = ignore_reason(package, self.settings.groups)
        if reason is not None or package is None:
            log.info("event ignored", fields={"reason": reason})
            return {"status": "ignored", "reason": reason, "package_arn": arn}
        log.info("syncing package", fields={"current_status": package.status, "group": package.group})
        changes = self.sync_packages(self.model_name(package), [package], log)
        changes += self._deploy(package, log)
        log.info("package synced", fields={"changes": changes})
        return {"status": "synced", "package_arn": arn, "changes": changes}

    # ---- MLflow state -----------------------------------------------------------------

    def sync_packages(
        self, name: str, packages: list[Package], log: logging.LoggerAdapter, *, dry_run: bool = False
    ) -> list[str]:
        """Versions and tags for these packages, then the alias and stages of the model."""
        changes: list[str] = []
        planned: list[MlflowVersion] = []
        existing = self.mlflow.versions(name)
        for package in packages:
            mine = [v for v in existing if v.package_arn == package.arn]
            wanted = version_tags(package)
            if not mine and package.status == "Approved" and package.run_id:
                source = self.mlflow.model_source(package.run_id)
                if source is None:  # the same answer for --dry-run and the real sync
                    log.warning(
                        "package ignored: its run has no loadable model",
                        fields={"run_id": package.run_id, "reason": "no logged model and no model/MLmodel artifact"},
                    )
                    continue
                changes.append(f"{name}: create a version for {package.arn} from run {package.run_id}")
                if dry_run:
                    planned.append(MlflowVersion(version=f"new:{package.version}", tags=wanted))
                    continue
                self.mlflow.ensure_model(name, description=f"Synced from SageMaker model package group {package.group}")
                created = self.mlflow.create_version(name, package.run_id, source, wanted)
                log.info("created MLflow version", fields={"model": name, "version": created})
                mine = self._one_version_per_package(name, package.arn, log)
            for version in mine:
                stale = {k: v for k, v in wanted.items() if version.tags.get(k) != v}
                if stale:
                    changes.append(Action("set_tags", version.version, stale).describe(name, self.settings.alias))
                    if not dry_run:
                        self.mlflow.set_tags(name, version.version, stale)
        changes += self._converge(name, log, dry_run=dry_run, planned=planned)
        return changes

    def _one_version_per_package(self, name: str, package_arn: str, log: logging.LoggerAdapter) -> list[MlflowVersion]:
        """Two deliveries racing may both create a version; keep the lowest, drop the rest."""
        from mlflow.exceptions import MlflowException

        mine = self.mlflow.for_package(name, package_arn)
        for duplicate in mine[1:]:
            try:
                self.mlflow.delete_version(name, duplicate.version)
                log.warning("removed duplicate version", fields={"model": name, "version": duplicate.version})
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # the other delivery removed it
                    raise
        return mine[:1]

    def _converge(
        self, name: str, log: logging.LoggerAdapter, *, dry_run: bool, planned: list[MlflowVersion]
    ) -> list[str]:
        """Apply the alias/stage plan and re-read until nothing is left to do, so a
        concurrent delivery that moved the alias meanwhile is corrected."""
        changes: list[str] = []
        settings = self.settings
        for _ in range(_MAX_CONVERGENCE_PASSES):
            versions = self.mlflow.versions(name) + planned
            _, actions = registry_actions(
                versions, alias=settings.alias, manage_stages=settings.manage_stages, order=settings.champion_order
            )
            if not actions:
                return changes
            changes += [a.describe(name, settings.alias) for a in actions]
            if dry_run:
                return changes
            for action in actions:
                self.mlflow.apply(name, settings.alias, action)
                log.info("registry updated", fields={"model": name, "action": action.kind, "version": action.version})
        raise RuntimeError(f"{name}: alias and stages did not settle after {_MAX_CONVERGENCE_PASSES} passes")

    # ---- deployment ------------------------------------------------------------------

    def _deploy(self, package: Package, log: logging.LoggerAdapter) -> list[str]:
        """Serve the champion: after an approval that made it champion, or after a
        rejection of the package the endpoint serves. Never tears an endpoint down."""
        if self.deployer is None:
            return []
        name = self.model_name(package)
        versions = self.mlflow.versions(name)
        champion, _ = registry_actions(
            versions, alias=self.settings.alias, manage_stages=False, order=self.settings.champion_order
        )
        if package.status == "Approved":
            if champion is None or champion.package_arn != package.arn:
                log.info("not deploying: another approved package is the champion")
                return []
            target = package
        else:
            if not self.deployer.serves(package):
                return []
            if champion is None:
                log.error("the endpoint serves a rejected package and no approved package remains to replace it")
                return []
            target = self.sagemaker.describe(champion.package_arn)
            if target is None:
                return []
        endpoint, outcome = self.deployer.deploy(target)
        served = next(v for v in versions if v.package_arn == target.arn)
        if served.tags.get(Tags.ENDPOINT) != endpoint:
            self.mlflow.record_endpoint(name, served.version, endpoint)
        log.info("endpoint deployed", fields={"endpoint": endpoint, "outcome": outcome, "served": target.arn})
        return [] if outcome == "unchanged" else [f"endpoint {endpoint} {outcome} with {target.arn}"]

    # ---- reconcile ---------------------------------------------------------------------

    def sync_groups(self, groups: list[str], *, dry_run: bool) -> list[str]:
        """Walk every package of the groups and repair MLflow to match (missed events,
        a restored server). Deployment is left to events."""
        changes: list[str] = []
        for group in groups:
            by_model: dict[str, list[Package]] = defaultdict(list)
            for package in self.sagemaker.packages(group):
                if ignore_reason(package, self.settings.groups) is None:
                    by_model[self.model_name(package)].append(package)
            for name, packages in sorted(by_model.items()):
                log = PackageLogger(self.logger, f"group:{group}", model=name, dry_run=dry_run)
                changes += self.sync_packages(name, packages, log, dry_run=dry_run)
        return changes

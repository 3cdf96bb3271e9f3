"""Approve (or reject) a package in the local registry and deliver the event EventBridge
would send to the MLflow bridge; locally, "deployment" is `mlflow models serve`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlflow_bridge.contract import EVENT_SOURCE, STATE_CHANGE_DETAIL_TYPE
from pipeline.config import PipelineConfig, PromotionStage
from pipeline.errors import LocalModeError
from pipeline.local.job_environment import JobEnvironment
from pipeline.local.registry import JournaledPackages, LocalRegistry
from pipeline.local.serving import LocalModelServer, last_served
from pipeline.local.workspace import Workspace
from pipeline.promotion import bridge_stages

if TYPE_CHECKING:
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.service import Bridge

__all__ = ["ApprovalResult", "approve_locally", "deliver_locally", "promote_locally", "state_change_event"]


@dataclass
class ApprovalResult:
    bridge_result: dict[str, Any]
    servers: dict[str, LocalModelServer]  # stage name ("" without stages) -> its running scoring server

    @property
    def server(self) -> LocalModelServer | None:
        """The one server without stages; with stages, the last stage's (production)."""
        return list(self.servers.values())[-1] if self.servers else None


def state_change_event(client: Any, arn: str) -> dict[str, Any]:
    """The "SageMaker Model Package State Change" event for a package's current state."""
    package = client.describe_model_package(ModelPackageName=arn)
    region, account = arn.split(":")[3], arn.split(":")[4]
    return {
        "version": "0",
        "id": f"local-{arn.rsplit('/', 1)[-1]}-{package['ModelApprovalStatus']}",
        "detail-type": STATE_CHANGE_DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": account,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": region,
        "resources": [arn],
        "detail": {
            "ModelPackageArn": arn,
            "ModelPackageGroupName": package["ModelPackageGroupName"],
            "ModelPackageVersion": package.get("ModelPackageVersion"),
            "ModelApprovalStatus": package["ModelApprovalStatus"],
        },
    }


def approve_locally(
    cfg: PipelineConfig,
    registry: LocalRegistry,
    arn: str,
    *,
    tracking_uri: str,
    workspace: Workspace,
    status: str = "Approved",
    serve: bool = True,
    environment: JobEnvironment,
) -> ApprovalResult:
    """Approve (or reject) the package and deliver the event. With `deployment.stages`, an
    approval also puts a package in no stage yet in the first stage, as `promote --to
    <first>` would (a rerun whose Register step was cached approves a promoted one again)."""
    registry.set_approval(arn, status, description=f"{status} locally")
    stages = cfg.deployment.stages
    if stages and status == "Approved" and not registry.lifecycle(arn):
        registry.set_lifecycle(arn, {"Stage": stages[0].lifecycle_stage, "StageStatus": "Approved"})
    return deliver_locally(
        cfg, registry, arn, tracking_uri=tracking_uri, workspace=workspace, serve=serve, environment=environment
    )


def promote_locally(
    cfg: PipelineConfig,
    registry: LocalRegistry,
    request: dict[str, Any],
    *,
    tracking_uri: str,
    workspace: Workspace,
    serve: bool = True,
    environment: JobEnvironment,
) -> ApprovalResult:
    """`promote --local`: UpdateModelPackage's ModelLifeCycle into the local registry, then
    the event to the bridge."""
    registry.set_lifecycle(request["ModelPackageArn"], request["ModelLifeCycle"])
    return deliver_locally(
        cfg,
        registry,
        request["ModelPackageArn"],
        tracking_uri=tracking_uri,
        workspace=workspace,
        serve=serve,
        environment=environment,
    )


def deliver_locally(
    cfg: PipelineConfig,
    registry: LocalRegistry,
    arn: str,
    *,
    tracking_uri: str,
    workspace: Workspace,
    serve: bool,
    environment: JobEnvironment,
) -> ApprovalResult:
    """The state-change event, delivered to the bridge over the local registry. Locally an
    "endpoint" is a scoring server (in `environment`, the jobs' Python) that lives as long
    as the command (or `--keep-services`), so afterwards every stage whose champion no
    server is serving yet gets one."""
    from mlflow_bridge.deployment import EndpointDeployer
    from mlflow_bridge.errors import MissingRun
    from mlflow_bridge.failures import MISSING_RUN_FIX
    from mlflow_bridge.interfaces import ModelDeployer
    from mlflow_bridge.logs import bridge_logger
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings, DeploymentSettings

    stages = cfg.deployment.stages
    settings = BridgeSettings(
        tracking_uri=tracking_uri,
        registered_model=cfg.mlflow.registered_model,
        groups=[cfg.registration.model_package_group],
        stages=bridge_stages(stages),
        alias=stages[-1].alias if stages else "champion",
        deployment=DeploymentSettings(enabled=serve),
    )
    logs = workspace.root / "logs"
    servers: dict[str, LocalModelServer] = {}
    if serve:
        model = cfg.mlflow.registered_model
        servers = (
            {
                s.name: LocalModelServer(
                    tracking_uri, model, logs / f"serve-{s.name}.log", workspace.root, environment, s.name
                )
                for s in stages
            }
            if stages
            else {"": LocalModelServer(tracking_uri, model, logs / "serve.log", workspace.root, environment)}
        )
    # local mode's "endpoint" is a scoring server; both implement the bridge's ModelDeployer
    single: ModelDeployer | None = None
    if not stages:
        single = servers[""] if "" in servers else EndpointDeployer(registry.client, settings.deployment)
    by_stage: dict[str, ModelDeployer] = {s.lifecycle_stage: servers[s.name] for s in stages if s.name in servers}
    logs.mkdir(parents=True, exist_ok=True)
    mlflow = MlflowRegistry.connect(tracking_uri)
    packages = JournaledPackages(registry)
    bridge = Bridge(
        settings,
        packages,
        mlflow,
        single,
        logger=bridge_logger(file=str(logs / "bridge.log")),
        stage_deployers=by_stage,
    )
    try:
        result = bridge.handle(state_change_event(registry.client, arn))
    except MissingRun as exc:  # as the Lambda would reject it, said as a local-mode error
        raise LocalModeError(f"the bridge cannot sync {arn}: {exc}; {MISSING_RUN_FIX}") from None
    if stages and serve:
        _serve_every_stage(bridge, packages, mlflow, servers, stages)  # this command's servers, one per stage
    return ApprovalResult(result, {name: server for name, server in servers.items() if server.process is not None})


def _serve_every_stage(
    bridge: Bridge,
    packages: JournaledPackages,
    mlflow: MlflowRegistry,
    servers: dict[str, LocalModelServer],
    stages: list[PromotionStage],
) -> None:
    from mlflow_bridge.decisions import staged_registry_actions

    settings = bridge.settings
    versions = mlflow.versions(settings.registered_model)
    champions, _ = staged_registry_actions(versions, settings.stages, settings.champion_order)
    for stage in stages:
        champion, server = champions.get(stage.lifecycle_stage), servers[stage.name]
        # a stage that holds no model keeps serving its last one, as its endpoint would
        arn = champion.package_arn if champion is not None else last_served(server.workspace_root, stage.name)
        if arn and server.process is None:
            package = packages.describe(arn)
            if package is not None:
                server.deploy(package)

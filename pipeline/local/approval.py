"""Approve (or reject) a package in the local registry and deliver the event EventBridge
would send to the MLflow bridge; locally, "deployment" is `mlflow models serve`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow_bridge.contract import EVENT_SOURCE, STATE_CHANGE_DETAIL_TYPE
from pipeline.config import PipelineConfig
from pipeline.local.registry import LocalRegistry
from pipeline.local.serving import LocalModelServer
from pipeline.local.workspace import Workspace

__all__ = ["ApprovalResult", "approve_locally", "state_change_event"]


@dataclass
class ApprovalResult:
    bridge_result: dict[str, Any]
    server: LocalModelServer | None


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
) -> ApprovalResult:
    from mlflow_bridge.deployment import EndpointDeployer
    from mlflow_bridge.interfaces import ModelDeployer
    from mlflow_bridge.logs import bridge_logger
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.sagemaker_registry import SageMakerRegistry
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings, DeploymentSettings

    registry.set_approval(arn, status, description=f"{status} locally")
    settings = BridgeSettings(
        tracking_uri=tracking_uri,
        registered_model=cfg.mlflow.registered_model,
        groups=[cfg.registration.model_package_group],
        deployment=DeploymentSettings(enabled=serve),
    )
    server = (
        LocalModelServer(
            tracking_uri, cfg.mlflow.registered_model, settings.alias, workspace.root / "logs" / "serve.log"
        )
        if serve
        else None
    )
    # local mode's "endpoint" is a scoring server; both implement the bridge's ModelDeployer
    deployer: ModelDeployer = server if server is not None else EndpointDeployer(registry.client, settings.deployment)
    log_file = workspace.root / "logs" / "bridge.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    bridge = Bridge(
        settings,
        SageMakerRegistry(registry.client),
        MlflowRegistry.connect(tracking_uri),
        deployer,
        logger=bridge_logger(file=str(log_file)),
    )
    result = bridge.handle(state_change_event(registry.client, arn))
    if server is not None and server.process is None:
        server = None  # the bridge decided not to deploy (another package is the champion)
    return ApprovalResult(result, server)

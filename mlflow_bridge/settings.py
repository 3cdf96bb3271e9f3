"""Bridge settings from the environment (the Lambda's configuration). Plain pydantic:
importing it pulls in neither boto3 nor MLflow."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["BridgeSettings", "DeploymentSettings"]


class DeploymentSettings(BaseModel):
    enabled: bool = True
    endpoint_name: str = ""  # default: "<group>"
    role_arn: str = ""  # the SageMaker endpoint execution role (the only role the bridge passes)
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    serverless_memory_mb: int = 0  # > 0: serverless endpoint instead of instances
    serverless_max_concurrency: int = 5
    rollback_alarms: list[str] = Field(default_factory=list)
    termination_wait_seconds: int = 300


class BridgeSettings(BaseModel):
    tracking_uri: str
    registered_model: str = ""  # default: the package's mlflow_registered_model metadata, else the group
    groups: list[str] = Field(default_factory=list)  # empty: every group
    alias: str = "champion"
    manage_stages: bool = True
    champion_order: Literal["highest_version", "latest_approval"] = "highest_version"
    credentials_secret_arn: str = ""
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BridgeSettings:
        env = os.environ if env is None else env

        def listed(name: str) -> list[str]:
            return [item.strip() for item in env.get(name, "").split(",") if item.strip()]

        return cls(
            tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            registered_model=env.get("BRIDGE_REGISTERED_MODEL", ""),
            groups=listed("BRIDGE_MODEL_PACKAGE_GROUPS"),
            alias=env.get("BRIDGE_ALIAS", "champion"),
            manage_stages=env.get("BRIDGE_MANAGE_STAGES", "true").lower() == "true",
            champion_order=env.get("BRIDGE_CHAMPION_ORDER", "highest_version"),
            credentials_secret_arn=env.get("BRIDGE_MLFLOW_SECRET_ARN", ""),
            deployment=DeploymentSettings(
                enabled=env.get("BRIDGE_DEPLOY", "true").lower() == "true",
                endpoint_name=env.get("BRIDGE_ENDPOINT_NAME", ""),
                role_arn=env.get("BRIDGE_ENDPOINT_ROLE_ARN", ""),
                instance_type=env.get("BRIDGE_ENDPOINT_INSTANCE_TYPE", "ml.m5.large"),
                instance_count=int(env.get("BRIDGE_ENDPOINT_INSTANCE_COUNT", "1")),
                serverless_memory_mb=int(env.get("BRIDGE_SERVERLESS_MEMORY_MB", "0")),
                rollback_alarms=listed("BRIDGE_ROLLBACK_ALARMS"),
            ),
        )

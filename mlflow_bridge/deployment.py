"""Put an approved package behind a SageMaker endpoint.

Names are derived from the package and the settings, so a retry finds what the first
attempt made instead of making it again. An existing endpoint is updated with a
blue/green deployment that rolls back on the configured CloudWatch alarms.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlflow_bridge.decisions import Package
from mlflow_bridge.errors import DeploymentError
from mlflow_bridge.sagemaker_registry import describe_or_none
from mlflow_bridge.settings import DeploymentSettings

__all__ = ["EndpointDeployer", "config_name", "endpoint_name", "model_name", "production_variant", "update_request"]


def endpoint_name(package: Package, settings: DeploymentSettings) -> str:
    return settings.endpoint_name or package.group


def model_name(package: Package) -> str:
    return f"{package.group[:50]}-v{package.version}"


def production_variant(package: Package, settings: DeploymentSettings) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model_name(package)}
    if settings.serverless_memory_mb:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": settings.serverless_memory_mb,
            "MaxConcurrency": settings.serverless_max_concurrency,
        }
    else:
        variant.update(InstanceType=settings.instance_type, InitialInstanceCount=settings.instance_count)
    return variant


def config_name(package: Package, settings: DeploymentSettings) -> str:
    """Model and variant settings, hashed: same package and settings, same config."""
    digest = hashlib.sha256(json.dumps(production_variant(package, settings), sort_keys=True).encode()).hexdigest()
    return f"{model_name(package)[:50]}-{digest[:8]}"


def update_request(package: Package, settings: DeploymentSettings) -> dict[str, Any]:
    request: dict[str, Any] = {
        "EndpointName": endpoint_name(package, settings),
        "EndpointConfigName": config_name(package, settings),
    }
    if not settings.serverless_memory_mb:  # blue/green is for instance-backed endpoints
        deployment: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": settings.termination_wait_seconds,
            }
        }
        if settings.rollback_alarms:
            deployment["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in settings.rollback_alarms]}
        request["DeploymentConfig"] = deployment
    return request


class EndpointDeployer:
    def __init__(self, client: Any, settings: DeploymentSettings) -> None:
        self.client = client
        self.settings = settings

    def current_config(self, package: Package) -> str | None:
        endpoint = describe_or_none(self.client.describe_endpoint, EndpointName=endpoint_name(package, self.settings))
        if endpoint is None:
            return None
        if endpoint.get("EndpointStatus") in {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}:
            raise DeploymentError(
                f"endpoint {endpoint['EndpointName']} is {endpoint['EndpointStatus']}: retry when it settles"
            )
        return endpoint.get("EndpointConfigName")

    def deploy(self, package: Package) -> tuple[str, str]:
        """Returns (endpoint name, what was done: created / updated / unchanged)."""
        name = endpoint_name(package, self.settings)
        if not self.settings.role_arn:
            raise DeploymentError("no endpoint execution role configured (BRIDGE_ENDPOINT_ROLE_ARN)")
        if describe_or_none(self.client.describe_model, ModelName=model_name(package)) is None:
            self.client.create_model(
                ModelName=model_name(package),
                ExecutionRoleArn=self.settings.role_arn,
                Containers=[{"ModelPackageName": package.arn}],
            )
        desired = config_name(package, self.settings)
        if describe_or_none(self.client.describe_endpoint_config, EndpointConfigName=desired) is None:
            self.client.create_endpoint_config(
                EndpointConfigName=desired, ProductionVariants=[production_variant(package, self.settings)]
            )
        current = self.current_config(package)
        if current is None:
            self.client.create_endpoint(EndpointName=name, EndpointConfigName=desired)
            return name, "created"
        if current == desired:
            return name, "unchanged"
        self.client.update_endpoint(**update_request(package, self.settings))
        return name, "updated"

    def serves(self, package: Package) -> bool:
        """Whether the endpoint currently serves this package (by its config name)."""
        try:
            return self.current_config(package) == config_name(package, self.settings)
        except DeploymentError:
            return False

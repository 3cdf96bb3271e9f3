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
from mlflow_bridge.errors import DeploymentError, InvalidSettings
from mlflow_bridge.sagemaker_registry import already_exists, describe_or_none
from mlflow_bridge.settings import DeploymentSettings, Rollout

__all__ = [
    "EndpointDeployer",
    "config_name",
    "endpoint_name",
    "model_name",
    "production_variant",
    "traffic_routing",
    "update_request",
]


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


def traffic_routing(rollout: Rollout) -> dict[str, Any]:
    """SageMaker's TrafficRoutingConfiguration for a blue/green update (API Reference,
    TrafficRoutingConfig): CANARY with CanarySize, LINEAR with LinearStepSize, both as a
    percentage of the fleet (CAPACITY_PERCENT)."""
    if rollout.kind == "canary":
        size = {"Type": "CAPACITY_PERCENT", "Value": rollout.percent}
        return {"Type": "CANARY", "WaitIntervalInSeconds": rollout.wait_seconds, "CanarySize": size}
    if rollout.kind == "linear":
        size = {"Type": "CAPACITY_PERCENT", "Value": rollout.percent}
        return {"Type": "LINEAR", "WaitIntervalInSeconds": rollout.wait_seconds, "LinearStepSize": size}
    return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}


def update_request(package: Package, settings: DeploymentSettings) -> dict[str, Any]:
    request: dict[str, Any] = {
        "EndpointName": endpoint_name(package, settings),
        "EndpointConfigName": config_name(package, settings),
    }
    if not settings.serverless_memory_mb:  # blue/green is for instance-backed endpoints
        deployment: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": traffic_routing(settings.rollout),
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
        """The endpoint's config name, None when there is no endpoint. Raises
        DeploymentError (retried) while it is changing, or after deleting it when it is
        `Failed`: DeleteEndpoint is the only operation SageMaker accepts on a failed endpoint
        (API Reference, EndpointSummary: EndpointStatus), so it is repaired by deleting it
        and creating it again, with the holder's config, on a later delivery or `sync`."""
        endpoint = describe_or_none(self.client.describe_endpoint, EndpointName=endpoint_name(package, self.settings))
        if endpoint is None:
            return None
        status = endpoint.get("EndpointStatus")
        if status in {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}:
            raise DeploymentError(f"endpoint {endpoint['EndpointName']} is {status}: retry when it settles")
        if status == "Failed":
            from botocore.exceptions import ClientError

            try:
                self.client.delete_endpoint(EndpointName=endpoint["EndpointName"])
            except ClientError as exc:  # another delivery deleting it already: a retry finds it gone
                raise DeploymentError(f"endpoint {endpoint['EndpointName']} was Failed; deleting it: {exc}") from exc
            raise DeploymentError(
                f"endpoint {endpoint['EndpointName']} was Failed ({endpoint.get('FailureReason', 'no reason given')}): "
                "deleted, and created again with its stage's model when a retry finds it gone"
            )
        return endpoint.get("EndpointConfigName")

    def deploy(self, package: Package) -> tuple[str, str]:
        """Returns (endpoint name, what was done: created / updated / unchanged)."""
        name = endpoint_name(package, self.settings)
        if not self.settings.role_arn:  # a configuration fault: no retry can cure it
            raise InvalidSettings([("BRIDGE_ENDPOINT_ROLE_ARN", "an endpoint execution role is needed to deploy")])
        model = {"ExecutionRoleArn": self.settings.role_arn, "Containers": [{"ModelPackageName": package.arn}]}
        self._create_once(
            "model", self.client.describe_model, self.client.create_model, {"ModelName": model_name(package)}, model
        )
        desired = config_name(package, self.settings)
        self._create_once(
            "endpoint config",
            self.client.describe_endpoint_config,
            self.client.create_endpoint_config,
            {"EndpointConfigName": desired},
            {"ProductionVariants": [production_variant(package, self.settings)]},
        )
        current = self.current_config(package)
        if current is None:
            created = self._create_once(
                "endpoint",
                self.client.describe_endpoint,
                self.client.create_endpoint,
                {"EndpointName": name},
                {"EndpointConfigName": desired},
                absent=True,  # current_config just looked
            )
            return name, "created" if created else "unchanged"
        if current == desired:
            return name, "unchanged"
        self.client.update_endpoint(**update_request(package, self.settings))
        return name, "updated"

    def _create_once(
        self, what: str, describe: Any, create: Any, key: dict[str, str], body: dict[str, Any], *, absent: bool = False
    ) -> bool:
        """Create a resource unless it exists (`absent`: the caller just saw it missing);
        True if this call created it.

        Two deliveries racing on a first deployment both find nothing and both create: the
        loser's "already exists" is success when the winner made the same resource (same
        request, as Describe* reports it), and a DeploymentError (retried) when it did not."""
        from botocore.exceptions import ClientError

        if not absent and describe_or_none(describe, **key) is not None:
            return False
        try:
            create(**key, **body)
            return True
        except ClientError as exc:
            if not already_exists(exc):
                raise
        existing = describe_or_none(describe, **key) or {}
        if all(_same(existing.get(field), wanted) for field, wanted in body.items()):
            return False
        raise DeploymentError(f"{what} {next(iter(key.values()))} was just created with other settings: retry")

    def serves(self, package: Package) -> bool:
        """Whether the endpoint is in service with this package (by its config name); a
        changing or Failed endpoint serves nothing. Only reads."""
        endpoint = describe_or_none(self.client.describe_endpoint, EndpointName=endpoint_name(package, self.settings))
        return (
            endpoint is not None
            and endpoint.get("EndpointStatus") == "InService"
            and endpoint.get("EndpointConfigName") == config_name(package, self.settings)
        )


def _same(found: Any, wanted: Any) -> bool:
    """Whether a Describe* answer holds what a Create* asked for: the fields asked for, in
    lists and nested dicts alike (SageMaker adds fields of its own to the answer)."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(_same(found.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(found, list) and len(found) == len(wanted) and all(map(_same, found, wanted))
    return found == wanted

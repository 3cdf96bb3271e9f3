"""The Lambda entry point: parse, hand over to the bridge, classify failures.

A malformed event, or settings the bridge cannot work with (checked before anything is
written), is answered with a rejection (and an error log line) instead of an exception,
so Lambda does not retry what can never succeed; anything else raises, so
Lambda retries it (and finally sends it to the dead-letter queue).
"""

from __future__ import annotations

import json
import os
from typing import Any

from mlflow_bridge.errors import InvalidSettings, MalformedEvent
from mlflow_bridge.logs import configure

__all__ = ["lambda_handler"]

_bridge: Any = None


def _load_credentials(secret_arn: str) -> None:
    """MLflow credentials of the bridge's own (non-admin) MLflow user, for the client only."""
    import boto3

    client = boto3.client("secretsmanager", region_name=os.environ.get("AWS_REGION") or None)
    secret = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    os.environ["MLFLOW_TRACKING_USERNAME"] = secret["username"]
    os.environ["MLFLOW_TRACKING_PASSWORD"] = secret["password"]


def _get_bridge() -> Any:
    global _bridge
    if _bridge is None:
        from mlflow_bridge.service import Bridge
        from mlflow_bridge.settings import BridgeSettings

        settings = BridgeSettings.from_env()
        if settings.credentials_secret_arn:
            _load_credentials(settings.credentials_secret_arn)
        _bridge = Bridge.from_settings(settings)
    return _bridge


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        return _get_bridge().handle(event)
    except (MalformedEvent, InvalidSettings) as exc:  # permanent: a retry would fail the same way
        configure().error("event rejected", extra={"fields": {"reason": str(exc), "package_arn": _arn_of(event)}})
        return {"status": "rejected", "reason": str(exc)}


def _arn_of(event: Any) -> str:
    detail = event.get("detail") if isinstance(event, dict) else None
    return detail.get("ModelPackageArn", "") if isinstance(detail, dict) else ""

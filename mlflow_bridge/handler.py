"""The Lambda entry point: parse, hand over to the bridge, tell a retry from a rejection.

Two functions run this code, each fed by its own EventBridge rule (infra/bridge.py): the
bridge, on model package state changes, as the bridge's MLflow user; and the execution
recorder, on pipeline execution status changes, as the pipeline's MLflow user (the jobs'
runs are its own), ending the execution's MLflow parent run (mlflow_bridge/execution_runs.py).

The event is parsed before anything else (settings, the Secrets Manager read, clients), so
a malformed event is rejected even when a dependency is down. A failure no retry can cure
(`failures.permanent_failure`: bad settings, a malformed event, 401/403/404, an invalid
request) is logged once with what to fix and answered with a rejection instead of an
exception, so Lambda does not retry it into the dead-letter queue; anything else raises,
so Lambda retries it. Every invocation adds one EMF count (Synced, Ignored, Rejected or
Retried) through Powertools Metrics, and a package leaving the last stage (production) one
more, Demoted.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mlflow_bridge.contract import DEMOTED_METRIC, EXECUTION_STATUS_DETAIL_TYPE, METRICS_NAMESPACE
from mlflow_bridge.events import (
    ModelPackageStateChange,
    PipelineExecutionStatusChange,
    detail_type,
    parse_event,
    parse_execution_event,
)
from mlflow_bridge.failures import permanent_failure, refused_credentials
from mlflow_bridge.logs import SERVICE, bridge_logger

if TYPE_CHECKING:
    from mlflow_bridge.execution_runs import ExecutionRecorder
    from mlflow_bridge.service import Bridge

__all__ = ["lambda_handler"]


logger = bridge_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
_bridge: Bridge | None = None
_recorder: ExecutionRecorder | None = None


def _load_credentials(secret_arn: str) -> None:
    """MLflow credentials of the bridge's own (non-admin) MLflow user, for the client only."""
    import boto3

    client = boto3.client("secretsmanager", region_name=os.environ.get("AWS_REGION") or None)
    secret = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    os.environ["MLFLOW_TRACKING_USERNAME"] = secret["username"]
    os.environ["MLFLOW_TRACKING_PASSWORD"] = secret["password"]


def _trust_server_ca(ca_arn: str) -> None:
    """Trust the ACM Private CA that signed the tracking server's certificate: its PEM
    (GetCertificateAuthorityCertificate: Certificate, then the chain) in /tmp, named by
    MLFLOW_TRACKING_SERVER_CERT_PATH, which MLflow's client verifies the server against."""
    import boto3

    client = boto3.client("acm-pca", region_name=os.environ.get("AWS_REGION") or ca_arn.split(":")[3])
    answer = client.get_certificate_authority_certificate(CertificateAuthorityArn=ca_arn)
    path = os.path.join(tempfile.gettempdir(), "mlflow-server-ca.pem")
    with open(path, "w", encoding="ascii") as handle:
        handle.write(
            "\n".join(part.strip() for part in (answer["Certificate"], answer.get("CertificateChain")) if part)
        )
        handle.write("\n")
    os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = path


def _get_bridge() -> Bridge:
    global _bridge
    if _bridge is None:
        from mlflow_bridge.service import Bridge
        from mlflow_bridge.settings import BridgeSettings

        settings = BridgeSettings.from_env()
        _reach_server(settings.server_ca_arn, settings.credentials_secret_arn)
        _bridge = Bridge.from_settings(settings)
    return _bridge


def _get_recorder() -> ExecutionRecorder:
    global _recorder
    if _recorder is None:
        import boto3

        from mlflow_bridge.execution_runs import ExecutionRecorder
        from mlflow_bridge.mlflow_registry import fail_fast_client
        from mlflow_bridge.settings import RecorderSettings

        settings = RecorderSettings.from_env()
        _reach_server(settings.server_ca_arn, settings.credentials_secret_arn)
        sagemaker = boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION") or None)
        _recorder = ExecutionRecorder(sagemaker, fail_fast_client(settings.tracking_uri), settings.experiment,
                                      settings.pipelines)  # fmt: skip
    return _recorder


def _reach_server(server_ca_arn: str, credentials_secret_arn: str) -> None:
    if server_ca_arn:
        _trust_server_ca(server_ca_arn)
    if credentials_secret_arn:
        _load_credentials(credentials_secret_arn)


def _record(parsed: PipelineExecutionStatusChange) -> dict[str, Any]:
    """The recorder's answer to an execution event; on a 401 with credentials read on an
    earlier invocation, once more with the secret read again (as `_handle`)."""
    global _recorder
    reused = _recorder is not None
    arn = parsed.detail.pipeline_execution_arn
    try:
        return _get_recorder().record(arn)
    except Exception as exc:
        if not (reused and refused_credentials(exc) and os.environ.get("BRIDGE_MLFLOW_SECRET_ARN")):
            raise
        logger.warning("MLflow refused the cached credentials; reading the secret again (rotated?)")
        _recorder = None
        return _get_recorder().record(arn)


def _handle(parsed: ModelPackageStateChange) -> dict[str, Any]:
    """Handle the event; when MLflow refuses credentials read from the secret on an earlier
    invocation, read the secret again and handle it once more (handling converges, so
    the repeat is safe). A rotated password reaches MLflow when its server restarts
    (infra/mlflow_server/prepare.py): a warm function then still holds the old one."""
    global _bridge
    reused = _bridge is not None
    bridge = _get_bridge()
    bridge.on_demotion = _count_demotion
    try:
        return bridge.handle(parsed)
    except Exception as exc:
        if not (reused and refused_credentials(exc) and bridge.settings.credentials_secret_arn):
            raise
        logger.warning("MLflow refused the cached credentials; reading the secret again (rotated?)")
        _bridge = None
        again = _get_bridge()
        again.on_demotion = _count_demotion
        return again.handle(parsed)


def _count(outcome: str) -> None:
    metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)


def _count_demotion(stage: str) -> None:
    """A package left the last stage: counted when the bridge sees it, so it is counted
    even when the event then fails (Powertools flushes the metrics either way)."""
    _count(DEMOTED_METRIC)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    execution_event = detail_type(event) == EXECUTION_STATUS_DETAIL_TYPE
    logger.append_keys(**{"execution_arn" if execution_event else "package_arn": _arn_of(event)})
    try:
        result = _record(parse_execution_event(event)) if execution_event else _handle(parse_event(event))
    except Exception as exc:
        problem = permanent_failure(exc)
        if problem is None:
            _count("Retried")
            logger.exception("event failed; Lambda retries it")
            raise
        _count("Rejected")
        logger.error("event rejected", reason=problem.reason, fix=problem.fix)
        return {"status": "rejected", "reason": problem.reason, "fix": problem.fix}
    _count(result["status"].capitalize())  # Synced or Ignored
    return result


def _arn_of(event: Any) -> str:
    detail = event.get("detail") if isinstance(event, dict) else None
    key = "pipelineExecutionArn" if detail_type(event) == EXECUTION_STATUS_DETAIL_TYPE else "ModelPackageArn"
    arn = detail.get(key, "") if isinstance(detail, dict) else ""
    return arn if isinstance(arn, str) else repr(arn)

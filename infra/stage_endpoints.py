"""One SageMaker endpoint per configured deployment stage (`deployment.stages`): its name,
the CloudWatch alarms its blue/green updates roll back on, and the bridge's settings for
it (BRIDGE_STAGES, in the bridge's own `Stage` fields plus its endpoint).

The default alarms watch what a bad model shows first (SageMaker Developer Guide, "Metrics
for monitoring Amazon SageMaker AI with Amazon CloudWatch", namespace AWS/SageMaker, per
EndpointName and VariantName): `Invocation5XXErrors` (any, over a minute) and the p99 of
`ModelLatency` (microseconds) over five minutes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline.config import PromotionStage, StageEndpoint
from pipeline.promotion import bridge_stages

__all__ = ["MODEL_LATENCY_P99_MICROSECONDS", "StageAlarms", "stage_environment"]

MODEL_LATENCY_P99_MICROSECONDS = 1_000_000
_VARIANT = "AllTraffic"  # the bridge's one production variant (mlflow_bridge.deployment)


class StageAlarms(Construct):
    """The two rollback alarms of one stage's endpoint; `names` as the bridge passes them.
    Each also tells `notify` (a rollback is news to whoever promoted the model)."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, notify: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        dimensions = {"EndpointName": endpoint_name, "VariantName": _VARIANT}
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        # construct id, name suffix, metric, statistic, period, threshold, comparison, what it means
        alarms = [
            ("Invocation5xx", "invocation-5xx", "Invocation5XXErrors", "Sum", Duration.minutes(1), 1, at_least,
             "answers 5xx: an update rolls back"),
            ("ModelLatency", "model-latency-p99", "ModelLatency", "p99", Duration.minutes(5),
             MODEL_LATENCY_P99_MICROSECONDS, above, f"p99 model latency over {MODEL_LATENCY_P99_MICROSECONDS} us"),
        ]  # fmt: skip
        # literal names, not the alarms' tokens: they go into the bridge's JSON settings
        self.names = [f"{endpoint_name}-{suffix}" for _, suffix, *_ in alarms]
        for (alarm_id, _, metric, statistic, period, threshold, comparison, meaning), name in zip(
            alarms, self.names, strict=True
        ):
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=name,
                alarm_description=f"{endpoint_name} {meaning}",
                metric=cloudwatch.Metric(
                    namespace="AWS/SageMaker", metric_name=metric, dimensions_map=dimensions,
                    statistic=statistic, period=period,
                ),
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )  # fmt: skip
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(notify))


def _endpoint_settings(name: str, endpoint: StageEndpoint, alarms: list[str]) -> dict[str, Any]:
    """A stage's endpoint in BRIDGE_STAGES (mlflow_bridge.settings reads these keys)."""
    rollout = endpoint.rollout
    settings: dict[str, Any] = {
        "name": name, "instance_type": endpoint.instance_type, "instance_count": endpoint.instance_count,
        "rollout": rollout.strategy, "rollback_alarms": alarms,
    }  # fmt: skip
    if endpoint.serverless_memory_mb:
        settings["serverless_memory_mb"] = endpoint.serverless_memory_mb
    if rollout.percent is not None:
        settings["rollout_percent"] = rollout.percent
    if rollout.wait_seconds is not None:
        settings["rollout_wait_seconds"] = rollout.wait_seconds
    if endpoint.deploy_role_arn:  # another account: its role to deploy as, its execution role
        settings["deploy_role_arn"], settings["role_arn"] = endpoint.deploy_role_arn, endpoint.execution_role_arn
    return settings


def stage_environment(stages: list[PromotionStage], group: str, alarms: dict[str, list[str]]) -> dict[str, str]:
    """BRIDGE_STAGES and BRIDGE_ALIAS (the one-endpoint fallback follows the last stage).
    `alarms`: stage name -> the alarms the stack made for its endpoint (a stage's own
    `rollback_alarms` replace them). Empty without stages."""
    if not stages:
        return {}
    items = []
    for stage, decided in zip(stages, bridge_stages(stages), strict=True):
        item: dict[str, Any] = dataclasses.asdict(decided)
        if stage.endpoint is not None:
            given = stage.endpoint.rollback_alarms
            rollback = given if given is not None else alarms.get(stage.name, [])
            item["endpoint"] = _endpoint_settings(stage.endpoint_name(group), stage.endpoint, rollback)
        items.append(item)
    return {"BRIDGE_STAGES": json.dumps(items), "BRIDGE_ALIAS": stages[-1].alias}

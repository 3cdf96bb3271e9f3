"""The MLflow bridge Lambda in the VPC and the EventBridge rule that feeds it, and beside it
the execution recorder: the same image, fed by pipeline execution status changes, ending
each execution's MLflow parent run as the pipeline's MLflow user (mlflow_bridge/handler.py).

Packaged as a container image from `infra/bridge_lambda/Dockerfile`: nothing is built at
synth time (no Docker needed to synthesize), the image is built at deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.network import Network
from infra.roles import (
    bridge_statements,
    execution_reader_statement,
    network_interface_statements,
    pipeline_arn,
    trust_ca_statement,
)
from infra.stage_endpoints import StageAlarms, stage_environment
from mlflow_bridge.contract import (
    DEMOTED_METRIC,
    ENDED_EXECUTION_STATUSES,
    EVENT_SOURCE,
    EXECUTION_STATUS_DETAIL_TYPE,
    METRICS_NAMESPACE,
    METRICS_SERVICE,
    STATE_CHANGE_DETAIL_TYPE,
)
from pipeline.config import InfraSettings, PromotionStage

__all__ = ["BridgeFunction", "ExecutionRecorderSettings"]

REPO = Path(__file__).resolve().parents[1]
# The image build context is the repository; only these paths are sent to it.
_CONTEXT_EXCLUDES = ["*", "!mlflow_bridge/**", "!infra/bridge_lambda/**", "**/__pycache__"]
# Lambda's list for a function in a VPC (Lambda Developer Guide, "Giving Lambda functions
# access to resources in an Amazon VPC": execution role permissions).
_ENI_WRITES = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
               "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]  # fmt: skip


@dataclass(frozen=True)
class ExecutionRecorderSettings:
    """`pipelines`: names whose executions are recorded; `experiment`: where their jobs log;
    `mlflow_user`: the secret of the MLflow user the jobs log as (its runs are its own)."""

    pipelines: list[str]
    experiment: str
    mlflow_user: secretsmanager.ISecret


def _image() -> lambda_.DockerImageCode:
    """One image for both functions (the same asset, built once at deploy)."""
    return lambda_.DockerImageCode.from_image_asset(
        str(REPO), file="infra/bridge_lambda/Dockerfile", exclude=_CONTEXT_EXCLUDES
    )


def _function_role(
    scope: Construct, construct_id: str, *, description: str, log_group: logs.ILogGroup, network: Network,
    server_ca_arn: str | None,
) -> iam.Role:  # fmt: skip
    """A function's own role: AWS's managed Lambda policies allow writing to every log group
    and network interfaces in every VPC; this one, to its log group and its VPC only."""
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=description)  # fmt: skip
    log_group.grant_write(role)
    for statement in network_interface_statements(scope, network.vpc, _ENI_WRITES):
        role.add_to_policy(statement)
    if server_ca_arn:
        role.add_to_policy(trust_ca_statement(server_ca_arn))
    return role


class BridgeFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        tracking_uri: str,
        mlflow_user: secretsmanager.ISecret,
        package_groups: list[str],
        registered_model: str,
        endpoint_role: iam.IRole,
        settings: InfraSettings,
        alarms: sns.ITopic,
        recorder: ExecutionRecorderSettings,
        server_ca_arn: str | None = None,
        stages: list[PromotionStage] | None = None,
    ) -> None:
        """`server_ca_arn`: the private CA the tracking server's certificate chains to;
        `alarms`: where the dead-letter and stage endpoint alarms go; `recorder`: whose
        executions' parent runs the execution recorder ends, and as whom."""
        super().__init__(scope, construct_id)
        endpoint_name = package_groups[0]
        stages = stages or []
        staged_endpoints = {s.name: s.endpoint_name(package_groups[0]) for s in stages if s.endpoint}
        at_home = {s.name for s in stages if s.endpoint and s.endpoint.account is None}
        # the stack's alarms watch its own account's endpoints; another account names its own
        stage_alarms = {
            name: StageAlarms(self, f"Alarms-{name}", endpoint_name=endpoint, notify=alarms).names
            for name, endpoint in staged_endpoints.items()
            if name in at_home
        }
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        self.role = _function_role(self, "Role", description="The MLflow bridge Lambda", log_group=self.log_group,
                                   network=network, server_ca_arn=server_ca_arn)  # fmt: skip
        self.security_group = ec2.SecurityGroup(self, "SecurityGroup", vpc=network.vpc, description="MLflow bridge")
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.function = self._function(
            "Function",
            description="Syncs SageMaker model package approvals to the MLflow registry and deploys the champion",
            role=self.role,
            log_group=self.log_group,
            network=network,
            memory_size=1024,
            timeout=Duration.minutes(2),
            concurrency=5,
            environment={
                "MLFLOW_TRACKING_URI": tracking_uri,
                "BRIDGE_MLFLOW_SECRET_ARN": mlflow_user.secret_arn,
                "BRIDGE_MODEL_PACKAGE_GROUPS": ",".join(package_groups),
                "BRIDGE_REGISTERED_MODEL": registered_model,
                "BRIDGE_ENDPOINT_NAME": endpoint_name,
                "BRIDGE_ENDPOINT_ROLE_ARN": endpoint_role.role_arn,
                "BRIDGE_ENDPOINT_INSTANCE_TYPE": settings.endpoint_instance_type,
                "BRIDGE_ROLLBACK_ALARMS": ",".join(settings.rollback_alarms),
                **({"BRIDGE_MLFLOW_CA_ARN": server_ca_arn} if server_ca_arn else {}),
                **stage_environment(stages, package_groups[0], stage_alarms),
            },
        )
        mlflow_user.grant_read(self.function)
        for statement in bridge_statements(
            self,
            package_groups=package_groups,
            # each stage's in this account, or the one
            endpoint_names=[e for n, e in staged_endpoints.items() if n in at_home] or [endpoint_name],
            endpoint_role=endpoint_role,
        ):
            self.function.add_to_role_policy(statement)
        deploy_roles = sorted({s.endpoint.deploy_role_arn for s in stages if s.endpoint and s.endpoint.deploy_role_arn})
        if deploy_roles:  # what the bridge deploys in other accounts, it does as their roles
            self.function.add_to_role_policy(
                iam.PolicyStatement(sid="DeployInOtherAccounts", actions=["sts:AssumeRole"], resources=deploy_roles)
            )
        self._feed(
            "Approvals",
            "Model package approvals and rejections for the MLflow bridge",
            STATE_CHANGE_DETAIL_TYPE,
            {"ModelPackageGroupName": package_groups, "ModelApprovalStatus": ["Approved", "Rejected"]},
            self.function,
        )
        # An event in the dead-letter queue is a sync that did not happen: someone must look.
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description="Bridge events failed every retry; MLflow may lag SageMaker (run the bridge's sync; "
            "for an execution's parent run, describe ID --log)",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarms))
        if stages:  # a package leaving production is news, whoever did it (mlflow_bridge's Demoted count)
            demoted = cloudwatch.Alarm(
                self,
                "DemotedAlarm",
                alarm_description=f"A model package left {stages[-1].lifecycle_stage}: the bridge moved its alias "
                "and endpoint back (its log names who changed the package)",
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=DEMOTED_METRIC,
                    dimensions_map={"service": METRICS_SERVICE},
                    statistic="Sum",
                    period=Duration.minutes(5),
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            demoted.add_alarm_action(cloudwatch_actions.SnsAction(alarms))
        self._execution_recorder(network, tracking_uri, recorder, server_ca_arn)

    def _function(
        self, construct_id: str, *, description: str, role: iam.IRole, log_group: logs.ILogGroup, network: Network,
        memory_size: int, timeout: Duration, concurrency: int, environment: dict[str, str],
    ) -> lambda_.DockerImageFunction:  # fmt: skip
        """A function of the bridge's image in the app subnets and the bridge's security
        group; Lambda retries a failed event twice, then the dead-letter queue keeps it."""
        return lambda_.DockerImageFunction(
            self,
            construct_id,
            code=_image(),
            description=description,
            role=role,
            log_group=log_group,
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            security_groups=[self.security_group],
            memory_size=memory_size,
            timeout=timeout,
            reserved_concurrent_executions=concurrency,
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            dead_letter_queue=self.dead_letters,
            environment=environment,
        )

    def _execution_recorder(
        self, network: Network, tracking_uri: str, settings: ExecutionRecorderSettings, server_ca_arn: str | None
    ) -> None:
        """The recorder function and its rule: an ended execution of the pipelines (Succeeded,
        Failed, Stopped) ends its MLflow parent run, even when nobody watches it. It runs in
        the bridge's security group (the tracking server admits it) and shares its
        dead-letter queue and alarm."""
        self.recorder_log_group = logs.LogGroup(
            self, "RecorderLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        self.recorder_role = _function_role(
            self, "RecorderRole", description="Ends the MLflow parent run of each ended pipeline execution",
            log_group=self.recorder_log_group, network=network, server_ca_arn=server_ca_arn,
        )  # fmt: skip
        self.recorder = self._function(
            "Recorder",
            description="Records each ended pipeline execution on its MLflow parent run",
            role=self.recorder_role,
            log_group=self.recorder_log_group,
            network=network,
            memory_size=512,
            timeout=Duration.minutes(1),
            concurrency=2,
            environment={
                "MLFLOW_TRACKING_URI": tracking_uri,
                "MLFLOW_EXPERIMENT_NAME": settings.experiment,
                "BRIDGE_PIPELINES": ",".join(settings.pipelines),
                "BRIDGE_MLFLOW_SECRET_ARN": settings.mlflow_user.secret_arn,
                **({"BRIDGE_MLFLOW_CA_ARN": server_ca_arn} if server_ca_arn else {}),
            },
        )
        settings.mlflow_user.grant_read(self.recorder)
        self.recorder.add_to_role_policy(execution_reader_statement(self, settings.pipelines))
        self._feed(
            "ExecutionsEnded",
            "Ended executions of the pipelines, for the execution recorder",
            EXECUTION_STATUS_DETAIL_TYPE,
            {
                "currentPipelineExecutionStatus": list(ENDED_EXECUTION_STATUSES),
                # SageMaker writes some pipeline ARNs in lower case: matched either way
                "pipelineArn": events.Match.any_of(
                    *[events.Match.equals_ignore_case(pipeline_arn(self, p)) for p in settings.pipelines]
                ),
            },
            self.recorder,
        )

    def _feed(
        self, rule_id: str, description: str, detail_type: str, detail: dict[str, Any],
        function: lambda_.IFunction,
    ) -> None:  # fmt: skip
        """A rule sending SageMaker's events of `detail_type` matching `detail` to `function`:
        EventBridge retries a delivery 4 times within 2 hours, then the dead-letter queue
        keeps it."""
        rule = events.Rule(
            self,
            rule_id,
            description=description,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=[detail_type], detail=detail),
        )
        rule.add_target(
            targets.LambdaFunction(
                function, dead_letter_queue=self.dead_letters, retry_attempts=4, max_event_age=Duration.hours(2)
            )
        )

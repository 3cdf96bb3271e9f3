"""The MLflow bridge Lambda in the VPC and the EventBridge rule that feeds it.

Packaged as a container image from `infra/bridge_lambda/Dockerfile`: nothing is built at
synth time (no Docker needed to synthesize), the image is built at deploy.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.network import Network
from infra.roles import bridge_statements
from mlflow_bridge.contract import EVENT_SOURCE, STATE_CHANGE_DETAIL_TYPE
from pipeline.config import InfraSettings

__all__ = ["BridgeFunction"]

REPO = Path(__file__).resolve().parents[1]
# The image build context is the repository; only these paths are sent to it.
_CONTEXT_EXCLUDES = ["*", "!mlflow_bridge/**", "!infra/bridge_lambda/**", "**/__pycache__"]


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
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = package_groups[0]
        self.security_group = ec2.SecurityGroup(self, "SecurityGroup", vpc=network.vpc, description="MLflow bridge")
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO), file="infra/bridge_lambda/Dockerfile", exclude=_CONTEXT_EXCLUDES
            ),
            description="Syncs SageMaker model package approvals to the MLflow registry and deploys the champion",
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            security_groups=[self.security_group],
            memory_size=1024,
            timeout=Duration.minutes(2),
            reserved_concurrent_executions=5,
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            dead_letter_queue=self.dead_letters,
            environment={
                "MLFLOW_TRACKING_URI": tracking_uri,
                "BRIDGE_MLFLOW_SECRET_ARN": mlflow_user.secret_arn,
                "BRIDGE_MODEL_PACKAGE_GROUPS": ",".join(package_groups),
                "BRIDGE_REGISTERED_MODEL": registered_model,
                "BRIDGE_ENDPOINT_NAME": endpoint_name,
                "BRIDGE_ENDPOINT_ROLE_ARN": endpoint_role.role_arn,
                "BRIDGE_ENDPOINT_INSTANCE_TYPE": settings.endpoint_instance_type,
                "BRIDGE_ROLLBACK_ALARMS": ",".join(settings.rollback_alarms),
            },
        )
        mlflow_user.grant_read(self.function)
        for statement in bridge_statements(
            self, package_groups=package_groups, endpoint_name=endpoint_name, endpoint_role=endpoint_role
        ):
            self.function.add_to_role_policy(statement)
        rule = events.Rule(
            self,
            "Approvals",
            description="Model package approvals and rejections for the MLflow bridge",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[STATE_CHANGE_DETAIL_TYPE],
                detail={"ModelPackageGroupName": package_groups, "ModelApprovalStatus": ["Approved", "Rejected"]},
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.function, dead_letter_queue=self.dead_letters, retry_attempts=4, max_event_age=Duration.hours(2)
            )
        )

"""Where the stack's alarms go: one SNS topic, encrypted with a key CloudWatch may use
(an alarm cannot publish to a topic under the AWS-managed SNS key: CloudWatch User Guide,
"Using Amazon CloudWatch alarms", encrypted topics need a customer managed key whose
policy allows cloudwatch.amazonaws.com), optionally with an e-mail subscription."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

__all__ = ["AlarmTopic"]


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, email: str | None = None) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "Key",
            description="Encrypts the MLOps alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True, display_name="MLOps alarms")
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

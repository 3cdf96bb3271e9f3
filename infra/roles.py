"""Least-privilege roles: the SageMaker pipeline execution role, the endpoint role, and
the bridge's policy. Resources are scoped to the bucket prefix, the package groups and
name prefixes; `*` stays only where AWS requires it (ECR tokens, ENIs in a VPC, metrics)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

__all__ = ["Roles", "bridge_statements"]


def _arn(scope: Construct, resource: str) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:{resource}"


def _vpc_statements() -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="VpcNetworkInterfacesAwsRequiresStar",
            actions=[
                "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="EcrAuthAwsRequiresStar", actions=["ecr:GetAuthorizationToken"], resources=["*"]
        ),
    ]  # fmt: skip


def _pull_sklearn_image(scope: Construct) -> iam.PolicyStatement:
    """Pull the SageMaker scikit-learn image (AWS's registry accounts differ by region)."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        resources=[f"arn:{stack.partition}:ecr:{stack.region}:*:repository/sagemaker-scikit-learn"],
    )


class Roles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        pipeline_prefix: str,
        pipeline_name: str,
        package_groups: list[str],
        pipeline_user_secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = pipeline_prefix.strip("/")
        self.endpoint_role = iam.Role(
            self, "EndpointRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker endpoints serving approved models",
        )  # fmt: skip
        bucket.grant_read(self.endpoint_role, f"{prefix}/*")
        self.endpoint_role.add_to_policy(_pull_sklearn_image(self))
        self.endpoint_role.add_to_policy(_vpc_statements()[1])
        self._logs(self.endpoint_role, "/aws/sagemaker/Endpoints/*")

        self.pipeline_role = iam.Role(
            self, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker pipeline {pipeline_name} and its jobs",
        )  # fmt: skip
        bucket.grant_read_write(self.pipeline_role, f"{prefix}/*")
        pipeline_user_secret.grant_read(self.pipeline_role)
        groups = [_arn(self, f"model-package-group/{g}") for g in package_groups]
        packages = [_arn(self, f"model-package/{g}/*") for g in package_groups]
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                resources=[
                    _arn(self, "processing-job/pipelines-*"),
                    _arn(self, "training-job/pipelines-*"),
                    _arn(self, "hyper-parameter-tuning-job/pipelines-*"),
                ],
            )
        )  # fmt: skip
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModels",
                actions=[
                    "sagemaker:CreateModelPackage", "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage", "sagemaker:AddTags",
                ],
                resources=[*groups, *packages],
            )
        )  # fmt: skip
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyItselfToItsJobs",
                actions=["iam:PassRole"],
                resources=[self.pipeline_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetricsAwsRequiresStar",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        self.pipeline_role.add_to_policy(_pull_sklearn_image(self))
        for statement in _vpc_statements():
            self.pipeline_role.add_to_policy(statement)
        self._logs(self.pipeline_role, "/aws/sagemaker/*")

    def _logs(self, role: iam.Role, group_pattern: str) -> None:
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{group_pattern}"],
            )
        )


def bridge_statements(
    scope: Construct, *, package_groups: list[str], endpoint_name: str, endpoint_role: iam.IRole
) -> list[iam.PolicyStatement]:
    """What the bridge Lambda may do: read packages of its groups, create the models and
    configs it names after them, create/update its endpoint, pass only the endpoint role."""
    models = [_arn(scope, f"model/{g}-v*") for g in package_groups]
    configs = [_arn(scope, f"endpoint-config/{g}-v*") for g in package_groups]
    return [
        iam.PolicyStatement(
            sid="ReadPackages",
            actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            resources=[
                *[_arn(scope, f"model-package/{g}/*") for g in package_groups],
                *[_arn(scope, f"model-package-group/{g}") for g in package_groups],
            ],
        ),
        iam.PolicyStatement(
            sid="ModelsAndConfigs",
            actions=[
                "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig", "sagemaker:AddTags",
            ],
            resources=[*models, *configs],
        ),
        iam.PolicyStatement(
            sid="Endpoint",
            actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"],
            resources=[_arn(scope, f"endpoint/{endpoint_name}"), *configs],
        ),
        iam.PolicyStatement(
            sid="PassOnlyTheEndpointRole",
            actions=["iam:PassRole"],
            resources=[endpoint_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]  # fmt: skip

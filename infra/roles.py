"""Least-privilege roles: the SageMaker pipeline execution role, the endpoint role, and
the bridge's policy. Resources are scoped to the bucket prefix, the package groups and
name prefixes; `*` stays only where AWS allows nothing narrower (ECR tokens, EC2 Describe
calls, metrics by namespace, network interfaces by VPC condition)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.artifact_store import grant_prefix
from mlflow_bridge.contract import PACKAGE_STAGE_TAG
from pipeline.sdk_session import image_registry_table

__all__ = [
    "Roles",
    "bridge_statements",
    "execution_reader_statement",
    "network_interface_statements",
    "pipeline_arn",
    "sklearn_image_account",
    "trust_ca_statement",
    "vpc_arn",
]


def _arn(scope: Construct, resource: str) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:{resource}"


def vpc_arn(scope: Construct, vpc: ec2.IVpc) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:vpc/{vpc.vpc_id}"


# Read-only EC2 calls a job or a Lambda in a VPC makes: AWS authorizes Describe* on "*" only
# (Service Authorization Reference, Amazon EC2: these actions have no resource types).
_DESCRIBE_NETWORK = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                     "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"]  # fmt: skip


def network_interface_statements(scope: Construct, vpc: ec2.IVpc, actions: list[str]) -> list[iam.PolicyStatement]:
    """What a service needs to place its network interfaces in `vpc`. The writes cannot name
    the interfaces (their ids exist only once made), so their resource is "*" with an
    `ec2:Vpc` condition: they apply to interfaces, subnets and security groups of this VPC
    only (Service Authorization Reference, Amazon EC2: `ec2:Vpc` on network-interface,
    subnet and security-group resources)."""
    return [
        iam.PolicyStatement(
            sid="NetworkInterfacesInThisVpcOnly",
            actions=actions,
            resources=["*"],
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn(scope, vpc)}},
        ),
        iam.PolicyStatement(sid="DescribeNetworkAwsRequiresStar", actions=_DESCRIBE_NETWORK, resources=["*"]),
    ]


_ECR_AUTH = iam.PolicyStatement(
    sid="EcrAuthAwsRequiresStar", actions=["ecr:GetAuthorizationToken"], resources=["*"]
)  # fmt: skip


def sklearn_image_account(region: str, framework_version: str = "1.4-2") -> str:
    """The AWS account that publishes SageMaker's scikit-learn image in `region`: read from
    the SageMaker SDK's own image registry table (`pipeline.sdk_session.image_registry_table`),
    without importing the SDK. Raises ValueError for a region the table does not list."""
    table = image_registry_table("sklearn")
    registries = table["training"]["versions"][framework_version]["registries"]
    if region not in registries:
        raise ValueError(f"SageMaker publishes no scikit-learn image in {region}")
    return str(registries[region])


def _pull_sklearn_image(scope: Construct) -> iam.PolicyStatement:
    """Pull the SageMaker scikit-learn image from AWS's account for this region."""
    stack = Stack.of(scope)
    account = sklearn_image_account(stack.region)
    return iam.PolicyStatement(
        sid="PullTheScikitLearnImage",
        actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        resources=[f"arn:{stack.partition}:ecr:{stack.region}:{account}:repository/sagemaker-scikit-learn"],
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
        vpc: ec2.IVpc,
        server_ca_arn: str | None = None,
        batch_output_key: str | None = None,
    ) -> None:
        """`vpc`: where the jobs run (their network interfaces); `server_ca_arn`: the private
        CA of the tracking server's certificate, whose certificate the jobs fetch;
        `batch_output_key`: the key prefix in `bucket` batch scores are written to (None when
        they go to another bucket, whose policy must let the batch model role write)."""
        super().__init__(scope, construct_id)
        prefix = pipeline_prefix.strip("/")
        # The batch pipeline's model (CreateModel's execution role, which its transform job
        # reads and writes S3 as): a team's model code runs with it, so it can read the
        # prefix (model, code, batch input) and write the scores, and nothing else: no MLflow
        # secret, no writes elsewhere, none of the pipeline role's SageMaker actions.
        self.batch_model_role = iam.Role(
            self, "BatchModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="The batch pipeline's model and its transform jobs",
        )  # fmt: skip
        grant_prefix(bucket, self.batch_model_role, prefix, write=False)
        if batch_output_key is not None:
            self.batch_model_role.add_to_policy(
                iam.PolicyStatement(
                    sid="WriteTheScores",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[bucket.arn_for_objects(f"{batch_output_key}/*")],
                )
            )
        self.batch_model_role.add_to_policy(_pull_sklearn_image(self))
        self.batch_model_role.add_to_policy(_ECR_AUTH)
        self._logs(self.batch_model_role, "/aws/sagemaker/TransformJobs*")
        self.endpoint_role = iam.Role(
            self, "EndpointRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker endpoints serving approved models",
        )  # fmt: skip
        grant_prefix(bucket, self.endpoint_role, prefix, write=False)
        self.endpoint_role.add_to_policy(_pull_sklearn_image(self))
        self.endpoint_role.add_to_policy(_ECR_AUTH)
        self._logs(self.endpoint_role, "/aws/sagemaker/Endpoints/*")

        self.pipeline_role = iam.Role(
            self, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker pipeline {pipeline_name} and its jobs",
        )  # fmt: skip
        grant_prefix(bucket, self.pipeline_role, prefix, write=True)
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
                    "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                    "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags",
                ],
                resources=[
                    _arn(self, "processing-job/pipelines-*"),
                    _arn(self, "training-job/pipelines-*"),
                    _arn(self, "hyper-parameter-tuning-job/pipelines-*"),
                    _arn(self, "transform-job/pipelines-*"),  # the batch pipeline's (pipeline/definition/batch.py)
                    _arn(self, "model/pipelines-*"),
                ],
            )
        )  # fmt: skip
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                # a job reads SageMaker's sagemaker:pipeline-execution-arn tag on itself to find its
                # execution's MLflow parent run (pipeline/steps/scripts/execution_run.py)
                sid="JobsReadTheirOwnTags",
                actions=["sagemaker:ListTags"],
                resources=[_arn(self, "processing-job/pipelines-*"), _arn(self, "training-job/pipelines-*")],
            )
        )
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
                # and the batch model role to the batch pipeline's CreateModel
                resources=[self.pipeline_role.role_arn, self.batch_model_role.role_arn],
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
        self.pipeline_role.add_to_policy(_ECR_AUTH)
        # SageMaker's own list for jobs with a VpcConfig (SageMaker Developer Guide,
        # "CreateTrainingJob API: Execution Role Permissions").
        eni_writes = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                      "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"]  # fmt: skip
        for statement in network_interface_statements(self, vpc, eni_writes):
            self.pipeline_role.add_to_policy(statement)
        if server_ca_arn:
            self.pipeline_role.add_to_policy(trust_ca_statement(server_ca_arn))
        self._logs(self.pipeline_role, "/aws/sagemaker/*")

    def _logs(self, role: iam.Role, group_pattern: str) -> None:
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{group_pattern}"],
            )
        )


def trust_ca_statement(ca_arn: str) -> iam.PolicyStatement:
    """Read the CA certificate that the tracking server's certificate chains to."""
    return iam.PolicyStatement(
        sid="TrustTheTrackingServersCa",
        actions=["acm-pca:GetCertificateAuthorityCertificate"],
        resources=[ca_arn],
    )


def pipeline_arn(scope: Construct, name: str) -> str:
    return _arn(scope, f"pipeline/{name}")


def execution_reader_statement(scope: Construct, pipelines: list[str]) -> iam.PolicyStatement:
    """Read the executions of `pipelines`: their status, steps and parameters, all the
    execution recorder reads (mlflow_bridge/execution_runs.py). Named by the pipeline and by
    its executions (`pipeline/NAME/execution/*`), each also in lower case: SageMaker writes
    pipeline ARNs in lower case in some places and IAM compares resources as written."""
    names = sorted({form for name in pipelines for form in (name, name.lower())})
    resources = [pipeline_arn(scope, f"{name}{suffix}") for name in names for suffix in ("", "/execution/*")]
    return iam.PolicyStatement(
        sid="ReadPipelineExecutions",
        actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
                 "sagemaker:ListPipelineParametersForExecution"],
        resources=resources,
    )  # fmt: skip


def bridge_statements(
    scope: Construct, *, package_groups: list[str], endpoint_names: list[str], endpoint_role: iam.IRole
) -> list[iam.PolicyStatement]:
    """What the bridge Lambda may do: read packages of its groups and tag them with their
    stage, create the models and configs it names after them, create/update (and delete
    when Failed) its endpoints (one, or one per stage) and nothing else, pass only the
    endpoint role."""
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
            sid="TagPackagesWithTheirStage",
            actions=["sagemaker:AddTags"],
            resources=[_arn(scope, f"model-package/{g}/*") for g in package_groups],
            # that one key only: the tag a data scientist's policy reads (mlflow_bridge.contract)
            conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [PACKAGE_STAGE_TAG]}},
        ),
        iam.PolicyStatement(
            sid="Endpoint",
            # DeleteEndpoint: all SageMaker accepts on a Failed endpoint, which the bridge recreates
            actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint",
                     "sagemaker:DeleteEndpoint"],
            resources=[*[_arn(scope, f"endpoint/{name}") for name in endpoint_names], *configs],
        ),
        iam.PolicyStatement(
            sid="PassOnlyTheEndpointRole",
            actions=["iam:PassRole"],
            resources=[endpoint_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]  # fmt: skip

"""cdk-nag AwsSolutions findings this design accepts, each with the reason a reviewer
would want. Everything else fails the synth (see tests/test_infra.py)."""

from __future__ import annotations

import aws_cdk as cdk

from pipeline.config import InfraSettings, PipelineConfig

__all__ = ["acknowledge", "acknowledgements"]

_S3_GRANT_ACTIONS = ["Abort*", "DeleteObject*", "GetBucket*", "GetObject*", "List*"]
_MANAGED = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{}]"
_LAMBDA_BASIC = _MANAGED.format("AWSLambdaBasicExecutionRole")
_LAMBDA_VPC = _MANAGED.format("AWSLambdaVPCAccessExecutionRole")


def acknowledgements(cfg: PipelineConfig, settings: InfraSettings) -> dict[str, str]:
    """Rule (with what it applies to) -> reason."""
    region, account = settings.region or cfg.aws.region, settings.account
    group, prefix = cfg.registration.model_package_group, cfg.aws.prefix.strip("/")
    sagemaker = f"arn:<AWS::Partition>:sagemaker:{region}:{account}"
    logs = f"arn:<AWS::Partition>:logs:{region}:{account}:log-group:/aws/sagemaker"
    found: dict[str, str] = {
        "AwsSolutions-ECS2": "The container environment holds only non-secret settings (host, port, names); every "
        "credential is an ECS secret (tests/test_infra.py asserts no secret in any environment map).",
        "AwsSolutions-RDS11": "A non-default port adds no protection here: the database sits in isolated subnets and "
        "accepts only the MLflow server's security group.",
        "AwsSolutions-SMG4": "MLflow keeps basic-auth password hashes in its own store and the server reads the "
        "database password at task start, so automatic rotation would lock clients out; rotate by "
        "updating the secret and redeploying.",
        _LAMBDA_BASIC: "The AWS-managed Lambda logging policy is the documented minimum for a function's own "
        "log group.",
        _LAMBDA_VPC: "The AWS-managed VPC access policy is what Lambda needs to manage its network interfaces.",
        "AwsSolutions-IAM5[Resource::*]": "Only actions AWS does not scope to a resource: ENI management for jobs "
        "in a VPC, ecr:GetAuthorizationToken, and cloudwatch:PutMetricData limited by a namespace condition.",
        f"AwsSolutions-IAM5[Resource::<ArtifactStoreArtifacts856EDEA9.Arn>/{prefix}/*]": "Jobs and endpoints read "
        "and write objects under the pipeline's own prefix of the artifact bucket only.",
        "AwsSolutions-IAM5[Resource::<ArtifactStoreArtifacts856EDEA9.Arn>/mlflow/*]": "The MLflow server proxies "
        "artifacts under the mlflow/ prefix of the artifact bucket only.",
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:{region}:*:repository/sagemaker-scikit-learn]": "AWS "
        "publishes the scikit-learn framework image from a per-region account; the repository name is fixed.",
        f"AwsSolutions-IAM5[Resource::{logs}/*]": "SageMaker jobs log to log groups it names per job type "
        "under /aws/sagemaker/.",
        f"AwsSolutions-IAM5[Resource::{logs}/Endpoints/*]": "Endpoints log to their own group, "
        "/aws/sagemaker/Endpoints/<endpoint name>.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:processing-job/pipelines-*]": "SageMaker Pipelines names every "
        "job it starts pipelines-<execution>-<step>; the role cannot touch other jobs.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:training-job/pipelines-*]": "As for processing jobs: only jobs "
        "started by a pipeline.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:hyper-parameter-tuning-job/pipelines-*]": "As for processing "
        "jobs: only tuning jobs started by a pipeline.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:model-package/{group}/*]": "Package versions are numbered by "
        "SageMaker within the one configured group.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:model/{group}-v*]": "The bridge names models <group>-v<version> "
        "and may create no others.",
        f"AwsSolutions-IAM5[Resource::{sagemaker}:endpoint-config/{group}-v*]": "The bridge names endpoint configs "
        "<group>-v<version>-<hash> and may create no others.",
    }
    for action in _S3_GRANT_ACTIONS:
        found[f"AwsSolutions-IAM5[Action::s3:{action}]"] = (
            "CDK's bucket grants (read, read-write) on a single prefix; the resource is the prefix, not the bucket."
        )
    if not settings.database_multi_az:
        found["AwsSolutions-RDS3"] = (
            "Single-AZ by configuration (infra.database_multi_az: false) to keep a small "
            "team's bill down; backups run daily and the instance is retained on stack deletion."
        )
    return found


def acknowledge(stack: cdk.Stack, cfg: PipelineConfig, settings: InfraSettings) -> None:
    for rule, reason in acknowledgements(cfg, settings).items():
        cdk.Validations.of(stack).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))

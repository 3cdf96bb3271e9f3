"""cdk-nag AwsSolutions findings this design accepts, each on the one construct it is
about, with a reason that says what its policy does. Everything else fails the synth
(see tests/test_infra.py); an acknowledgement on a construct covers that construct only,
so a new wildcard elsewhere is a new finding."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.artifact_store import key_in_bucket
from pipeline.config import InfraSettings, PipelineConfig

__all__ = ["acknowledge", "acknowledgements"]

_IAM5 = "AwsSolutions-IAM5[Resource::{}]"
_ROTATE = (
    "rotate by putting a new value in the secret and restarting the service (aws ecs update-service "
    "--force-new-deployment): ECS reads secrets at task start"
)


def acknowledgements(cfg: PipelineConfig, settings: InfraSettings) -> dict[str, dict[str, str]]:
    """Construct path below the stack -> {rule (with what it applies to): reason}."""
    region, account = settings.region or cfg.aws.region, settings.account
    group, prefix = cfg.registration.model_package_group, cfg.aws.prefix.strip("/")
    batch_output = key_in_bucket(cfg.batch_output_uri, cfg.aws.default_bucket)
    sagemaker = f"arn:<AWS::Partition>:sagemaker:{region}:{account}"
    logs = f"arn:<AWS::Partition>:logs:{region}:{account}:log-group:/aws/sagemaker"
    artifacts = "<ArtifactStoreArtifacts856EDEA9.Arn>"
    user_secret = (
        "An MLflow basic-auth password: every server start sets each user's password from its secret "
        f"(infra/mlflow_server/prepare.py), so {_ROTATE}. Scheduled rotation would change the secret while "
        "running tasks still hold the old password."
    )
    # as infra/roles.py's execution_reader_statement names them
    recorded_pipelines = sorted({form for p in (cfg.pipeline.name, cfg.batch_pipeline_name) for form in (p, p.lower())})
    found: dict[str, dict[str, str]] = {
        "Tracking/Task": {
            "AwsSolutions-ECS2": "The container environment holds only non-secret settings (host, port, names); "
            "every credential is an ECS secret (tests/test_infra.py asserts no secret in any environment map).",
        },
        "Tracking/Task/ExecutionRole/DefaultPolicy": {
            _IAM5.format("*"): "CDK's execution role for the server image: ecr:GetAuthorizationToken, which AWS "
            "authorizes on * only; the image pull itself names the asset repository.",
        },
        "Tracking/Task/TaskRole/DefaultPolicy": {
            _IAM5.format(f"{artifacts}/mlflow/*"): "The MLflow server proxies artifacts: get, put and delete "
            "objects under the bucket's mlflow/ prefix, nothing else in the bucket.",
        },
        "Database/Instance": {
            "AwsSolutions-RDS11": "A non-default port adds no protection here: the database sits in isolated "
            "subnets and accepts only the MLflow server's security group.",
        },
        "Database/Credentials": {
            "AwsSolutions-SMG4": "The database master password: the server reads it at task start, so scheduled "
            f"rotation would break new connections of running tasks; {_ROTATE}, together with the RDS password.",
        },
        "Tracking/FlaskSecretKey": {
            "AwsSolutions-SMG4": f"MLflow's session signing key: {_ROTATE}; rotating it only signs browsers out.",
        },
        "Tracking/AdminPassword": {"AwsSolutions-SMG4": user_secret},
        "PipelineMlflowUser": {"AwsSolutions-SMG4": user_secret},
        "BridgeMlflowUser": {"AwsSolutions-SMG4": user_secret + " The bridge reads its secret again on a 401."},
        "Roles/EndpointRole/DefaultPolicy": {
            _IAM5.format("*"): "ecr:GetAuthorizationToken, which AWS authorizes on * only.",
            _IAM5.format(f"{artifacts}/{prefix}/*"): "Endpoints read model objects under the pipeline's prefix "
            f"{prefix}/ of the artifact bucket, nothing else in it.",
            _IAM5.format(f"{logs}/Endpoints/*"): "Endpoints log to /aws/sagemaker/Endpoints/<endpoint name>, a "
            "group per endpoint that SageMaker names at creation.",
        },
        "Roles/BatchModelRole/DefaultPolicy": {
            _IAM5.format("*"): "ecr:GetAuthorizationToken, which AWS authorizes on * only.",
            _IAM5.format(f"{artifacts}/{prefix}/*"): "The batch pipeline's model reads the model, its code and "
            f"the batch under the pipeline's prefix {prefix}/ of the artifact bucket, nothing else in it.",
            **(
                {
                    _IAM5.format(f"{artifacts}/{batch_output}/*"): "The batch pipeline's model writes its scores "
                    f"under the configured batch output prefix {batch_output}/ only."
                }
                if batch_output is not None
                else {}
            ),
            _IAM5.format(f"{logs}/TransformJobs*"): "Transform jobs log to /aws/sagemaker/TransformJobs, "
            "a group SageMaker names.",
        },
        "Roles/PipelineRole/DefaultPolicy": {
            _IAM5.format("*"): "Three statements on *, each the narrowest AWS allows: ecr:GetAuthorizationToken "
            "and EC2 Describe calls (no resource types), network-interface writes conditioned on ec2:Vpc = this "
            "stack's VPC, and cloudwatch:PutMetricData conditioned on SageMaker's namespaces.",
            _IAM5.format(f"{artifacts}/{prefix}/*"): "Jobs read and write objects under the pipeline's prefix "
            f"{prefix}/ of the artifact bucket (listing is conditioned on that prefix too).",
            _IAM5.format(f"{logs}/*"): "SageMaker jobs log to groups SageMaker names per job type under "
            "/aws/sagemaker/ (ProcessingJobs, TrainingJobs).",
            _IAM5.format(f"{sagemaker}:processing-job/pipelines-*"): "SageMaker Pipelines names the jobs it "
            "starts pipelines-<execution id>-<step>; the pattern matches the jobs of every pipeline in this "
            "account and region, since the execution id is not known in advance.",
            _IAM5.format(f"{sagemaker}:training-job/pipelines-*"): "As for processing jobs: training jobs started "
            "by any pipeline in this account and region.",
            _IAM5.format(f"{sagemaker}:hyper-parameter-tuning-job/pipelines-*"): "As for processing jobs: tuning "
            "jobs started by any pipeline in this account and region.",
            _IAM5.format(f"{sagemaker}:transform-job/pipelines-*"): "As for processing jobs: the batch pipeline's "
            "transform jobs, named pipelines-<execution id>-<step> by SageMaker Pipelines.",
            _IAM5.format(f"{sagemaker}:model/pipelines-*"): "The batch pipeline's CreateModel step: SageMaker "
            "Pipelines names the model pipelines-<execution id>-<step>, of any pipeline in this account and region.",
            _IAM5.format(f"{sagemaker}:model-package/{group}/*"): "SageMaker numbers package versions within "
            f"the one configured group {group}; no other group.",
        },
        "Bridge/Role/DefaultPolicy": {
            _IAM5.format("*"): "EC2 Describe calls (AWS authorizes them on * only) and the function's "
            "network-interface writes conditioned on ec2:Vpc = this stack's VPC.",
            _IAM5.format(f"{sagemaker}:model-package/{group}/*"): "The bridge reads the package versions of the "
            f"one configured group {group}.",
            _IAM5.format(f"{sagemaker}:model/{group}-v*"): "The bridge names models <group>-v<version> and may "
            "create no others.",
            _IAM5.format(f"{sagemaker}:endpoint-config/{group}-v*"): "The bridge names endpoint configs "
            "<group>-v<version>-<hash> and may create no others.",
        },
        "Bridge/RecorderRole/DefaultPolicy": {
            _IAM5.format("*"): "EC2 Describe calls (AWS authorizes them on * only) and the function's "
            "network-interface writes conditioned on ec2:Vpc = this stack's VPC.",
            **{
                _IAM5.format(f"{sagemaker}:pipeline/{name}/execution/*"): f"The execution recorder reads the "
                f"status, steps and parameters of executions of the pipeline {name}, whose ids SageMaker makes."
                for name in recorded_pipelines
            },
        },
    }
    if not settings.database_multi_az:
        found["Database/Instance"]["AwsSolutions-RDS3"] = (
            "Single-AZ by configuration (infra.database_multi_az: false) to keep a small team's bill down; "
            "backups run daily and the instance is retained on stack deletion."
        )
    if settings.promotion_roles:
        for role in ("DataScientist", "Release"):
            found[f"Promotion/{role}Role/DefaultPolicy"] = {
                _IAM5.format(f"{sagemaker}:model-package/{group}/*"): "UpdateModelPackage on the package versions "
                f"of the one group {group}, conditioned on sagemaker:ModelLifeCycle:stage (the example's point).",
            }
    if settings.public_load_balancer:
        found["Tracking/LoadBalancer/SecurityGroup"] = {
            "AwsSolutions-EC23": "Public by configuration (infra.public_load_balancer: true): the load balancer "
            "accepts HTTPS on 443 only, from anywhere, with an ACM certificate; MLflow basic auth guards every "
            "API call behind it.",
        }
    return found


def _construct(stack: cdk.Stack, path: str) -> Construct:
    node: Construct = stack
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node


def acknowledge(stack: cdk.Stack, cfg: PipelineConfig, settings: InfraSettings) -> None:
    """Raises RuntimeError (from constructs) when a path names no construct."""
    for path, rules in acknowledgements(cfg, settings).items():
        target = _construct(stack, path)
        for rule, reason in rules.items():
            cdk.Validations.of(target).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))

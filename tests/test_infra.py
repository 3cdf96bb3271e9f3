"""The CDK app: security properties of the synthesized template, cdk-nag with zero
unacknowledged findings, cfn-lint, and `cdk synth` with the npm CLI, all offline."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.child_process import path_with_venv
from tests.conftest import DEFAULT_CONFIG, REPO

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
CDK = REPO / "infra" / "node_modules" / ".bin" / "cdk"

# Actions AWS does not let a policy scope to a resource (Describe calls, ECR tokens).
STAR_ALLOWED = {
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "ecr:GetAuthorizationToken",
}  # fmt: skip
# On "*" only with a condition that scopes them: network interfaces in the stack's VPC, metrics by namespace.
STAR_WITH_CONDITION = {
    "ec2:CreateNetworkInterface": "ec2:Vpc", "ec2:CreateNetworkInterfacePermission": "ec2:Vpc",
    "ec2:DeleteNetworkInterface": "ec2:Vpc", "ec2:DeleteNetworkInterfacePermission": "ec2:Vpc",
    "ec2:AssignPrivateIpAddresses": "ec2:Vpc", "ec2:UnassignPrivateIpAddresses": "ec2:Vpc",
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
}  # fmt: skip
READ_ONLY = re.compile(r"^[a-z0-9\-]+:(Describe|Get|List|BatchGet)")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Synthesized once, with cdk-nag and CDK's CloudFormation validation on."""
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(outdir)})
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    return template, Path(assembly.directory) / f"{stack.stack_name}.template.json"


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_load_balancer_is_internal_and_nothing_is_open_to_the_internet(synthesized) -> None:
    template, _ = synthesized
    (balancer,) = resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Scheme"] == "internal"
    ingress = [
        rule
        for group in resources(template, "AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ] + [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()]
    assert ingress, "expected ingress rules between the components"
    assert not [r for r in ingress if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"]


def test_database_is_encrypted_private_and_kept(synthesized) -> None:
    template, _ = synthesized
    (db,) = resources(template, "AWS::RDS::DBInstance").values()
    props = db["Properties"]
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["DeletionProtection"] is True and db["DeletionPolicy"] == "Retain"
    assert props["EngineVersion"].startswith("8.") and int(props["BackupRetentionPeriod"]) >= 7
    (params,) = resources(template, "AWS::RDS::DBParameterGroup").values()
    assert params["Properties"]["Parameters"]["character_set_server"] == "utf8mb4"


def test_buckets_enforce_ssl_versioning_and_block_public_access(synthesized) -> None:
    template, _ = synthesized
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert "BucketEncryption" in props and bucket["DeletionPolicy"] == "Retain"
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )
    artifacts = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    assert len(artifacts) == 1, "the artifact bucket writes access logs"


def _environment_maps(template: dict[str, Any]) -> list[dict[str, Any]]:
    maps = [
        fn["Properties"].get("Environment", {}).get("Variables", {})
        for fn in resources(template, "AWS::Lambda::Function").values()
    ]
    for task in resources(template, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            maps.append({e["Name"]: e["Value"] for e in container.get("Environment", [])})
    return maps


def test_no_secret_in_any_environment_map(synthesized) -> None:
    template, _ = synthesized
    maps = _environment_maps(template)
    assert len(maps) >= 2
    for variables in maps:
        for name, value in variables.items():
            assert not re.search(r"PASSWORD|SECRET_KEY|TOKEN", name) or name.endswith("_ARN"), name
            assert "resolve:secretsmanager" not in json.dumps(value), name
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    secrets = {s["Name"] for s in task["Properties"]["ContainerDefinitions"][0]["Secrets"]}
    assert {"DB_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= secrets
    assert {"MLFLOW_USER_SECRET_BRIDGE", "MLFLOW_USER_SECRET_PIPELINE"} <= secrets


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_star_resource_on_write_actions_and_no_managed_policies(synthesized) -> None:
    """Managed policies count: AWSLambdaBasicExecutionRole let the bridge write to every log
    group, AWSLambdaVPCAccessExecutionRole manage interfaces in every VPC."""
    template, _ = synthesized
    roles = resources(template, "AWS::IAM::Role")
    assert roles and [name for name, role in roles.items() if role["Properties"].get("ManagedPolicyArns")] == []
    assert not resources(template, "AWS::IAM::ManagedPolicy")
    offending = []
    for statement in _statements(template):
        if statement["Effect"] != "Allow" or "*" not in _listed(statement["Resource"]):
            continue
        for action in _listed(statement["Action"]):
            if action in STAR_WITH_CONDITION:
                conditions = statement.get("Condition", {})
                if not any(STAR_WITH_CONDITION[action] in keys for keys in conditions.values()):
                    offending.append((action, "without its scoping condition"))
            elif action not in STAR_ALLOWED and not READ_ONLY.match(action):
                offending.append((action, "on *"))
    assert offending == []
    vpc_conditions = [
        s["Condition"]["ArnEquals"]["ec2:Vpc"] for s in _statements(template) if "ArnEquals" in s.get("Condition", {})
    ]
    assert len(vpc_conditions) == 3  # the jobs' role, the bridge's and the execution recorder's


def test_s3_access_names_the_prefix_and_ecr_names_aws_account(synthesized) -> None:
    template, _ = synthesized
    text = json.dumps(_statements(template))
    assert "s3:List*" not in text and "s3:GetBucket*" not in text and '"s3:*"' not in text
    lists = [s for s in _statements(template) if "s3:ListBucket" in _listed(s["Action"])]
    assert len(lists) == 4  # the jobs, the endpoints, the batch model, the MLflow server: each its own prefix
    assert {p for s in lists for p in s["Condition"]["StringLike"]["s3:prefix"]} == {
        "diabetes-regression", "diabetes-regression/*", "mlflow", "mlflow/*",
    }  # fmt: skip
    pulls = [s for s in _statements(template) if "ecr:BatchGetImage" in _listed(s["Action"])]
    images = {json.dumps(r) for s in pulls for r in _listed(s["Resource"]) if "sagemaker-scikit-learn" in json.dumps(r)}
    assert images and all(":ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn" in i for i in images)


def test_every_log_group_expires_and_every_log_is_declared(synthesized) -> None:
    template, _ = synthesized
    groups = resources(template, "AWS::Logs::LogGroup")
    assert groups and all(g["Properties"].get("RetentionInDays") for g in groups.values())
    functions = resources(template, "AWS::Lambda::Function")
    assert set(functions) == set(_image_functions(template))  # no custom resource with its own log group
    assert {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()} <= set(groups)
    assert len(functions) == 2  # the bridge and the execution recorder, each its own group
    (db,) = resources(template, "AWS::RDS::DBInstance").values()
    (params,) = resources(template, "AWS::RDS::DBParameterGroup").values()
    enabled = params["Properties"]["Parameters"]
    exports = db["Properties"]["EnableCloudwatchLogsExports"]
    assert "general" not in exports and enabled.get("general_log") != "1"  # would log password-hash writes
    assert "slowquery" in exports and enabled["slow_query_log"] == "1" and enabled["log_output"] == "FILE"
    names = {g["Properties"].get("LogGroupName") for g in groups.values()}
    identifier = db["Properties"]["DBInstanceIdentifier"]
    assert {f"/aws/rds/instance/{identifier}/{log}" for log in exports} <= names


def test_secrets_are_retained_like_the_database_and_dead_letters_raise_an_alarm(synthesized) -> None:
    template, _ = synthesized
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert len(secrets) == 5 and all(s.get("DeletionPolicy") == "Retain" for s in secrets.values())
    (queue_name,) = resources(template, "AWS::SQS::Queue")
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    (props,) = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    assert props["Threshold"] == 1
    assert props["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_name, "QueueName"]}
    ((topic_name, topic),) = resources(template, "AWS::SNS::Topic").items()
    assert props["AlarmActions"] == [{"Ref": topic_name}] and "KmsMasterKeyId" in topic["Properties"]
    assert "AlarmTopicArn" in template["Outputs"]
    assert len(alarms) == 6 and all(
        a["AlarmActions"] == [{"Ref": topic_name}] for a in alarms
    )  # stage alarms and Demoted too


def test_tls_by_default_with_a_private_ca_the_clients_trust(synthesized) -> None:
    """Basic-auth passwords once crossed the VPC in clear text (an HTTP listener)."""
    template, _ = synthesized
    (listener,) = resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (443, "HTTPS")
    assert listener["Properties"]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    (target,) = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert target["Properties"]["Protocol"] == "HTTPS" and target["Properties"]["HealthCheckProtocol"] == "HTTPS"
    (certificate,) = resources(template, "AWS::CertificateManager::Certificate").values()
    assert certificate["Properties"]["DomainName"] == "mlflow.mlops.internal"
    ((ca_name, ca),) = resources(template, "AWS::ACMPCA::CertificateAuthority").items()
    assert ca["Properties"]["Type"] == "ROOT" and resources(template, "AWS::ACMPCA::CertificateAuthorityActivation")
    (zone,) = resources(template, "AWS::Route53::HostedZone").values()
    assert zone["Properties"]["Name"] == "mlflow.mlops.internal." and zone["Properties"]["VPCs"]
    assert template["Outputs"]["TrackingUri"]["Value"] == "https://mlflow.mlops.internal"
    assert template["Outputs"]["TrackingCaArn"]["Value"] == {"Fn::GetAtt": [ca_name, "Arn"]}
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert env["SERVER_TLS"] == "self_signed" and ",mlflow.mlops.internal" in json.dumps(env["ALLOWED_HOSTS"])
    for function in _image_functions(template).values():  # the bridge and the execution recorder
        assert function["Properties"]["Environment"]["Variables"]["BRIDGE_MLFLOW_CA_ARN"] == {
            "Fn::GetAtt": [ca_name, "Arn"]
        }
    readers = [s for s in _statements(template) if "acm-pca:GetCertificateAuthorityCertificate" in _listed(s["Action"])]
    assert len(readers) == 3 and all(s["Resource"] == {"Fn::GetAtt": [ca_name, "Arn"]} for s in readers)
    ingress = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()]
    assert {r["FromPort"] for r in ingress if r.get("Description", "").endswith("to MLflow")} == {443}


def test_pass_role_is_scoped(synthesized) -> None:
    template, _ = synthesized
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "iam:PassRole" in actions:
                assert statement["Resource"] != "*"
                assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"


def test_jobs_may_read_the_tags_of_pipeline_jobs_only(synthesized) -> None:
    """Issue #23: a job reads its own sagemaker:pipeline-execution-arn tag to find its
    execution's MLflow parent run; the grant names the pipelines' job ARNs, nothing else."""
    template, _ = synthesized
    policies = resources(template, "AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (statement,) = [s for s in statements if s.get("Sid") == "JobsReadTheirOwnTags"]
    assert statement["Action"] == "sagemaker:ListTags"
    arns = json.dumps(statement["Resource"])
    assert "processing-job/pipelines-*" in arns and "training-job/pipelines-*" in arns and '"*"' not in arns


def _rule(template: dict, detail_type: str) -> dict:
    (rule,) = [
        r for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["detail-type"] == [detail_type]
    ]  # fmt: skip
    return rule


def _bridge_function(template: dict) -> dict:
    (bridge,) = [f for name, f in _image_functions(template).items() if name.startswith("BridgeFunction")]
    return bridge


def _image_functions(template: dict) -> dict[str, dict]:
    """The bridge and the execution recorder, by logical id."""
    return {
        name: f
        for name, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("PackageType") == "Image"
    }


def test_bridge_rule_lambda_and_dead_letters(synthesized) -> None:
    template, _ = synthesized
    rule = _rule(template, "SageMaker Model Package State Change")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"] == {
        "ModelPackageGroupName": ["diabetes-regression"],
        "ModelApprovalStatus": ["Approved", "Rejected"],
    }
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    (name,) = [n for n in _image_functions(template) if n.startswith("BridgeFunction")]
    assert target["Arn"] == {"Fn::GetAtt": [name, "Arn"]}
    bridge = _image_functions(template)[name]
    assert bridge["Properties"]["VpcConfig"]["SubnetIds"]
    assert bridge["Properties"]["Environment"]["Variables"]["BRIDGE_MODEL_PACKAGE_GROUPS"] == "diabetes-regression"
    invokes = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert [i["Properties"]["MaximumRetryAttempts"] for i in invokes] == [2, 2]


def test_ended_executions_reach_the_recorder_which_runs_as_the_pipelines_mlflow_user(synthesized) -> None:
    """Issue #23: an execution nobody watches still ends its MLflow parent run. The rule sends
    the pipelines' ended executions (either case of their ARN) to the recorder, which reads
    the pipeline user's secret (the jobs' runs are that user's) and may read those pipelines'
    executions only."""
    template, _ = synthesized
    rule = _rule(template, "SageMaker Model Building Pipeline Execution Status Change")
    detail = rule["Properties"]["EventPattern"]["detail"]
    assert detail["currentPipelineExecutionStatus"] == ["Succeeded", "Failed", "Stopped"]
    # EventBridge takes a list of values or matcher objects, never of lists
    assert [list(matcher) for matcher in detail["pipelineArn"]] == [["equals-ignore-case"]] * 2
    arns = json.dumps(detail["pipelineArn"])
    assert ":pipeline/diabetes-regression" in arns and ":pipeline/diabetes-regression-batch" in arns
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    (name,) = [n for n in _image_functions(template) if n.startswith("BridgeRecorder")]
    assert target["Arn"] == {"Fn::GetAtt": [name, "Arn"]}
    recorder = _image_functions(template)[name]["Properties"]
    variables = recorder["Environment"]["Variables"]
    assert variables["MLFLOW_EXPERIMENT_NAME"] == "diabetes-regression"
    assert variables["BRIDGE_PIPELINES"] == "diabetes-regression,diabetes-regression-batch"
    assert "PipelineMlflowUser" in json.dumps(variables["BRIDGE_MLFLOW_SECRET_ARN"])
    statements = [
        s for p in resources(template, "AWS::IAM::Policy").values()
        if "RecorderRole" in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip
    (reads,) = [s for s in statements if s.get("Sid") == "ReadPipelineExecutions"]
    assert sorted(reads["Action"]) == ["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
                                       "sagemaker:ListPipelineParametersForExecution"]  # fmt: skip
    resources_named = json.dumps(reads["Resource"])
    assert '"*"' not in resources_named and ":pipeline/diabetes-regression/execution/*" in resources_named
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert not any(a.startswith("sagemaker:") and a not in reads["Action"] for a in actions)
    assert "secretsmanager:GetSecretValue" in actions


def test_server_settings_and_outputs(synthesized) -> None:
    template, _ = synthesized
    (service,) = resources(template, "AWS::ECS::Service").values()
    props = service["Properties"]
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert props["HealthCheckGracePeriodSeconds"] == 180
    assert resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert {"ALLOWED_HOSTS", "WORKERS", "ARTIFACTS_DESTINATION", "DB_HOST"} <= set(env)
    # t4g.small (~150 connections), up to 3 tasks of 2 workers with 2 pools each
    assert env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] == env["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] == "10"
    assert {"TrackingUri", "ArtifactBucket", "PipelineRoleArn", "PrivateSubnets", "JobSecurityGroup"} <= set(
        template["Outputs"]
    )
    assert resources(template, "AWS::EC2::FlowLog") and resources(template, "AWS::EC2::VPCEndpoint")


def _findings(app: Any) -> set[tuple[str, str]]:
    """(construct path below the stack, rule) of every cdk-nag finding the synth reports."""
    with pytest.raises(Exception, match=r"Validation failed|ValidationFailed") as failed:
        app.synth()
    lines = str(failed.value).splitlines()
    found = set()
    for before, line in itertools.pairwise(lines):
        match = re.search(r"Acknowledge with 'AwsSolutions::(.+)'", line)
        if match:
            path = before.strip().split()[0].split("/", 1)[1].removesuffix("/Resource")
            found.add((path, match.group(1)))
    return found


def test_each_acknowledgement_is_on_the_construct_it_is_about_and_is_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the acknowledgements, the findings are exactly the acknowledged ones: none is
    stack-wide, stale, or on another construct than the one it names."""
    from infra import app as app_module
    from infra.acknowledgements import acknowledgements
    from pipeline.config_loader import load_config

    cfg = load_config(DEFAULT_CONFIG)
    acknowledged = acknowledgements(cfg, cfg.infra)
    assert all(len(reason) > 40 for rules in acknowledged.values() for reason in rules.values())
    monkeypatch.setattr(app_module, "acknowledge", lambda stack, c, s: None)
    app, _ = app_module.build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)})
    expected = {(path, rule) for path, rules in acknowledged.items() for rule in rules}
    assert _findings(app) == expected


def test_public_mode_synthesizes_nag_clean_with_https_only(tmp_path: Path) -> None:
    """`public_load_balancer: true` once failed AwsSolutions-EC23 (the documented public mode)."""
    from infra.app import build_app

    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
    public = ("infra.public_load_balancer=true", "infra.tls.mode=certificate",
              "infra.tls.domain_name=mlflow.example.com", f"infra.tls.certificate_arn={certificate}")  # fmt: skip
    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)}, overrides=public)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    (balancer,) = resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Scheme"] == "internet-facing"
    (listener,) = resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (443, "HTTPS")
    assert listener["Properties"]["Certificates"] == [{"CertificateArn": certificate}]
    open_rules = [
        rule
        for group in resources(template, "AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
        if rule.get("CidrIp") == "0.0.0.0/0"
    ]
    assert [(r["FromPort"], r["ToPort"]) for r in open_rules] == [(443, 443)]
    assert template["Outputs"]["TrackingUri"]["Value"] == "https://mlflow.example.com"
    assert not resources(template, "AWS::ACMPCA::CertificateAuthority")


def test_cfn_lint_finds_no_errors(synthesized) -> None:
    _, path = synthesized
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--format", "parseable", str(path)], capture_output=True, text=True)
    # exit status is a bit mask: 2 errors, 4 warnings, 8 informational; 1 means cfn-lint itself failed
    assert result.returncode & 3 == 0, result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if ":E" in line]


def test_cdk_cli_synth_works_offline(tmp_path: Path) -> None:
    assert CDK.exists(), "run `make test` (it installs the CDK command line from infra/package.json)"
    env = {**os.environ, "PATH": path_with_venv(os.environ['PATH']),
           "AWS_EC2_METADATA_DISABLED": "true", "CDK_DISABLE_VERSION_CHECK": "1"}  # fmt: skip
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path / "out")],
        cwd=REPO / "infra", env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "mlops-diabetes-regression.template.json").exists()


@pytest.mark.parametrize(
    ("instance_type", "max_tasks", "workers", "expected"),
    [
        ("t4g.small", 3, 2, 10),  # 2 GiB: 153 connections, 122 to share among 12 pools
        ("db.t4g.small", 3, 2, 10),
        ("t4g.medium", 1, 2, 16),  # the ceiling: more would sit idle
        ("t4g.micro", 10, 4, 2),  # never below 2
        ("r6g.large", 3, 2, 16),  # memory-optimised: twice the memory of m6g.large
        ("x2iedn.metal", 3, 2, 5),  # not in the table: SQLAlchemy's default
    ],
)
def test_pool_size_fits_the_databases_connection_budget(
    instance_type: str, max_tasks: int, workers: int, expected: int
) -> None:
    from infra.database_connections import max_connections, pool_size

    size = pool_size(instance_type, max_tasks, workers)
    assert size == expected
    limit = max_connections(instance_type)
    if limit is not None and size > 2:
        assert max_tasks * workers * 2 * size <= limit


def test_plain_http_only_as_an_explicit_opt_out(tmp_path: Path) -> None:
    from infra.app import build_app

    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)}, overrides=("infra.tls.mode=none",))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    (listener,) = resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (80, "HTTP")
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert env["SERVER_TLS"] == "none"
    assert "TrackingCaArn" not in template["Outputs"] and not resources(template, "AWS::Route53::HostedZone")
    assert json.dumps(template["Outputs"]["TrackingUri"]["Value"]).startswith('{"Fn::Join": ["", ["http://"')


def test_without_egress_the_clients_still_reach_acm_private_ca(tmp_path: Path) -> None:
    from infra.app import build_app

    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)}, overrides=("infra.nat_gateways=0",))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    services = {
        json.dumps(e["Properties"]["ServiceName"]) for e in resources(template, "AWS::EC2::VPCEndpoint").values()
    }
    assert any(".acm-pca" in name for name in services), services


def test_configured_stages_reach_the_bridge_as_its_own_settings_with_an_endpoint_and_alarms_each(
    tmp_path: Path,
) -> None:
    """The default config's stages: staging all at once, production by a 10 % canary."""
    from infra.app import build_app
    from mlflow_bridge.settings import BridgeSettings

    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)})
    template = app.synth().get_stack_by_name(stack.stack_name).template
    bridge = _bridge_function(template)
    env = {k: v for k, v in bridge["Properties"]["Environment"]["Variables"].items() if isinstance(v, str)}
    settings = BridgeSettings.from_env({**env, "MLFLOW_TRACKING_URI": "https://mlflow.mlops.internal"})
    assert [(s.lifecycle_stage, s.alias, s.legacy_stage) for s in settings.stages] == [
        ("Staging", "staging", "Staging"), ("Production", "champion", "Production"),
    ]  # fmt: skip
    assert settings.alias == "champion"
    staging, production = settings.stage_deployments["Staging"], settings.stage_deployments["Production"]
    assert (staging.endpoint_name, staging.rollout.kind) == ("diabetes-regression-staging", "all_at_once")
    assert (production.endpoint_name, production.instance_count) == ("diabetes-regression-production", 1)
    assert (production.rollout.kind, production.rollout.percent, production.rollout.wait_seconds) == ("canary", 10, 600)

    declared = resources(template, "AWS::CloudWatch::Alarm").values()
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in declared if "AlarmName" in a["Properties"]}
    for deployment in (staging, production):  # one alarm set per stage endpoint, wired to its rollback
        names = {f"{deployment.endpoint_name}-invocation-5xx", f"{deployment.endpoint_name}-model-latency-p99"}
        assert names <= set(alarms) and set(deployment.rollback_alarms) == names
        for name in names:
            dimensions = {d["Name"]: d["Value"] for d in alarms[name]["Dimensions"]}
            assert dimensions == {"EndpointName": deployment.endpoint_name, "VariantName": "AllTraffic"}
    (endpoint_statement,) = [s for s in _statements(template) if s.get("Sid") == "Endpoint"]
    endpoints = [json.dumps(r) for r in endpoint_statement["Resource"] if ":endpoint/" in json.dumps(r)]
    assert len(endpoints) == 2 and all("-staging" in e or "-production" in e for e in endpoints)


def test_a_stage_endpoint_in_another_account_gets_its_role_and_alarms_not_ours(tmp_path: Path) -> None:
    from infra.app import build_app
    from mlflow_bridge.settings import BridgeSettings

    deploy, execution = "arn:aws:iam::222222222222:role/deploy", "arn:aws:iam::222222222222:role/endpoint"
    production = f"{{deploy_role_arn: '{deploy}', execution_role_arn: '{execution}', rollback_alarms: [prod-5xx]}}"
    elsewhere = f"deployment.stages=[{{name: staging, endpoint: {{}}}}, {{name: production, endpoint: {production}}}]"
    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)}, overrides=(elsewhere,))
    template = app.synth().get_stack_by_name(stack.stack_name).template  # nag-clean too
    bridge = _bridge_function(template)
    env = {k: v for k, v in bridge["Properties"]["Environment"]["Variables"].items() if isinstance(v, str)}
    production = BridgeSettings.from_env({**env, "MLFLOW_TRACKING_URI": "https://m"}).stage_deployments["Production"]
    assert (production.deploy_role_arn, production.role_arn, production.rollback_alarms) == (
        deploy, execution, ["prod-5xx"],
    )  # fmt: skip
    alarms = [a["Properties"].get("AlarmName", "") for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert not any("-production-" in name for name in alarms) and any("-staging-" in name for name in alarms)
    (assume,) = [s for s in _statements(template) if s.get("Sid") == "DeployInOtherAccounts"]
    assert (assume["Action"], assume["Resource"]) == ("sts:AssumeRole", deploy)
    (endpoint_statement,) = [s for s in _statements(template) if s.get("Sid") == "Endpoint"]
    assert not any("-production" in json.dumps(r) for r in endpoint_statement["Resource"])
    # the other account's endpoint reads the model and its code from our bucket
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    reads = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]
             if s.get("Sid") == "ModelArtifactsFor222222222222"]  # fmt: skip
    assert len(reads) == 1 and reads[0]["Action"] == "s3:GetObject" and reads[0]["Effect"] == "Allow"
    assert reads[0]["Principal"] == {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                             ":iam::222222222222:root"]]}}  # fmt: skip
    objects = json.dumps(reads[0]["Resource"])
    assert "/diabetes-regression/models/*" in objects and "/diabetes-regression/code/*" in objects


def test_the_optional_promotion_roles_scope_stages_by_condition_key(synthesized, tmp_path: Path) -> None:
    from infra.app import build_app

    app, stack = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)}, overrides=("infra.promotion_roles=true",))
    template = app.synth().get_stack_by_name(stack.stack_name).template  # nag-clean, acknowledgements included
    updates = [s for s in _statements(template)
               if "sagemaker:UpdateModelPackage" in _listed(s["Action"]) and s["Effect"] == "Allow"]  # fmt: skip
    stages = sorted(tuple(s["Condition"]["StringEquals"]["sagemaker:ModelLifeCycle:stage"]) for s in updates)
    assert stages == [("Staging",), ("Staging", "Production")]
    assert {"DataScientistRoleArn", "ReleaseRoleArn"} <= set(template["Outputs"])
    assert "ReleaseRoleArn" not in synthesized[0]["Outputs"]  # off by default

    # Production protected by more than the target stage: IAM's sagemaker:ModelLifeCycle:stage
    # names where a package goes, so the data scientist is denied any change to a package the
    # bridge has tagged as being in Production, and any change to that tag (no IAM simulator
    # here: the statements are asserted exactly)
    (scientist,) = [r for r in resources(template, "AWS::IAM::Role") if "DataScientist" in r]
    (policy,) = [p for p in resources(template, "AWS::IAM::Policy").values()
                 if p["Properties"]["Roles"] == [{"Ref": scientist}]]  # fmt: skip
    denied = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    group = ":sagemaker:us-east-1:123456789012:model-package/diabetes-regression/*"
    packages = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, group]]}
    assert denied == [
        {"Sid": "NothingProductionIsChanged", "Effect": "Deny",
         "Action": ["sagemaker:UpdateModelPackage", "sagemaker:DeleteModelPackage"], "Resource": packages,
         "Condition": {"StringEquals": {"aws:ResourceTag/mlops:lifecycle-stage": "Production"}}},
        {"Sid": "NotTheStageTag", "Effect": "Deny", "Action": ["sagemaker:AddTags", "sagemaker:DeleteTags"],
         "Resource": packages, "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["mlops:lifecycle-stage"]}}},
    ]  # fmt: skip
    (release,) = [r for r in resources(template, "AWS::IAM::Role") if "Release" in r]
    (release_policy,) = [p for p in resources(template, "AWS::IAM::Policy").values()
                         if p["Properties"]["Roles"] == [{"Ref": release}]]  # fmt: skip
    assert all(s["Effect"] == "Allow" for s in release_policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_batch_model_role_reads_the_prefix_writes_the_scores_and_holds_no_secret(synthesized) -> None:
    template, _ = synthesized
    roles = resources(template, "AWS::IAM::Role")
    (batch_role,) = [name for name in roles if "BatchModelRole" in name]
    (policy,) = [p for p in resources(template, "AWS::IAM::Policy").values()
                 if p["Properties"]["Roles"] == [{"Ref": batch_role}]]  # fmt: skip
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert not {a for a in actions if a.startswith(("secretsmanager:", "sagemaker:", "iam:"))}
    (scores,) = [s for s in statements if s.get("Sid") == "WriteTheScores"]
    assert "/diabetes-regression/batch/output/*" in json.dumps(scores["Resource"])
    assert template["Outputs"]["BatchModelRoleArn"]["Description"] == "batch.model_role_arn"
    (passing,) = [s for s in _statements(template) if s.get("Sid") == "PassOnlyItselfToItsJobs"]
    assert {"Fn::GetAtt": [batch_role, "Arn"]} in passing["Resource"]


def test_a_stage_name_with_a_hyphen_makes_a_valid_statement_id() -> None:
    """IAM statement ids are letters and digits; a lifecycle stage may hold hyphens."""
    from infra.promotion_roles import protect_stage_statements

    (deny, _) = protect_stage_statements("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/*", "Pre-Prod")
    assert deny.sid == "NothingPreProdIsChanged"


def test_the_bridge_tags_packages_with_their_stage_and_a_demotion_raises_an_alarm(synthesized) -> None:
    template, _ = synthesized
    (tagging,) = [s for s in _statements(template) if s.get("Sid") == "TagPackagesWithTheirStage"]
    assert tagging["Action"] == "sagemaker:AddTags"
    assert tagging["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": ["mlops:lifecycle-stage"]}}
    assert "model-package/diabetes-regression/*" in json.dumps(tagging["Resource"])
    (endpoint,) = [s for s in _statements(template) if s.get("Sid") == "Endpoint"]
    assert "sagemaker:DeleteEndpoint" in endpoint["Action"]  # a Failed endpoint is deleted, then created
    (demoted,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                  if a["Properties"].get("MetricName") == "Demoted"]  # fmt: skip
    assert (demoted["Namespace"], demoted["Dimensions"], demoted["Threshold"]) == (
        "MLflowBridge", [{"Name": "service", "Value": "mlflow-bridge"}], 1,
    )  # fmt: skip
    assert demoted["AlarmActions"]  # to the stack's alarm topic
    assert "BridgeRoleArn" in template["Outputs"]  # what another account's trust policy names

"""The CDK app: security properties of the synthesized template, cdk-nag with zero
unacknowledged findings, cfn-lint, and `cdk synth` with the npm CLI, all offline."""

from __future__ import annotations

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

# Actions AWS does not let a policy scope to a resource.
STAR_ALLOWED = {
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
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


def test_no_star_resource_on_write_actions(synthesized) -> None:
    template, _ = synthesized
    offending = []
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow" or "*" not in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            offending += [(name, a) for a in actions if a not in STAR_ALLOWED and not READ_ONLY.match(a)]
    assert offending == []


def test_pass_role_is_scoped(synthesized) -> None:
    template, _ = synthesized
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "iam:PassRole" in actions:
                assert statement["Resource"] != "*"
                assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"


def test_bridge_rule_lambda_and_dead_letters(synthesized) -> None:
    template, _ = synthesized
    (rule,) = resources(template, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"] == {
        "ModelPackageGroupName": ["diabetes-regression"],
        "ModelApprovalStatus": ["Approved", "Rejected"],
    }
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    functions = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("PackageType") == "Image"
    ]
    (bridge,) = functions
    assert bridge["Properties"]["VpcConfig"]["SubnetIds"]
    assert bridge["Properties"]["Environment"]["Variables"]["BRIDGE_MODEL_PACKAGE_GROUPS"] == "diabetes-regression"
    (invoke,) = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2


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


def test_every_acknowledgement_has_a_reason_and_nag_still_bites(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from infra import acknowledgements as module
    from infra.app import build_app
    from pipeline.config_loader import load_config

    cfg = load_config(DEFAULT_CONFIG)
    found = module.acknowledgements(cfg, cfg.infra)
    assert all(len(reason) > 40 for reason in found.values())
    original = module.acknowledgements
    monkeypatch.setattr(
        module, "acknowledgements", lambda c, s: {k: v for k, v in original(c, s).items() if k != "AwsSolutions-RDS11"}
    )
    app, _ = build_app(DEFAULT_CONFIG, context={"outdir": str(tmp_path)})
    with pytest.raises(Exception, match=r"Validation failed|ValidationFailed"):
        app.synth()


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

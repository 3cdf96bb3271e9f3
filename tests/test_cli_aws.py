"""The AWS verbs against a moto server on loopback; every other address is blocked."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from pipeline.api_limits import enum_values
from pipeline.cli import main
from pipeline.code_bundle import code_bundle
from pipeline.config_loader import load_config
from tests.conftest import DEFAULT_CONFIG, needs_graphviz

INPUT_URI = load_config(DEFAULT_CONFIG).data.input_uri


def put_input(body: bytes = b"age,target\n1,2\n") -> None:
    """The table at InputDataUri: `start` refuses an input that holds nothing."""
    bucket, key = INPUT_URI.removeprefix("s3://").split("/", 1)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=body)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_real_aws_is_unreachable_from_tests() -> None:
    with pytest.raises(OSError):
        socket.create_connection(("sagemaker.us-east-1.amazonaws.com", 443), timeout=2)


def test_upsert_twice_start_and_describe(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "upsert")
    assert code == 0, err
    arn = out.strip()
    assert arn.startswith("arn:aws:sagemaker:us-east-1:") and arn.endswith(":pipeline/diabetes-regression")
    assert "created pipeline diabetes-regression" in err

    sm = boto3.client("sagemaker", region_name="us-east-1")
    stored = sm.describe_pipeline(PipelineName="diabetes-regression")
    assert stored["RoleArn"] == "arn:aws:iam::123456789012:role/mlops-sagemaker-pipeline"
    code, rendered, _ = run(capsys, "render")
    assert json.loads(stored["PipelineDefinition"]) == json.loads(rendered)

    # The code bundle is in S3 at its content address, byte for byte.
    bundle = code_bundle(load_config(DEFAULT_CONFIG))
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket, key = bundle.sourcedir_uri.removeprefix("s3://").split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bundle.tarball()

    code, out2, err2 = run(capsys, "upsert", "--set", "quality_gate.threshold=60")
    assert code == 0, err2
    assert out2.strip() == arn
    assert "updated pipeline" in err2 and "0 object(s) uploaded" in err2
    definition = json.loads(sm.describe_pipeline(PipelineName="diabetes-regression")["PipelineDefinition"])
    assert {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}["QualityGateThreshold"] == 60.0
    tags = sm.list_tags(ResourceArn=arn)["Tags"]
    assert {"Key": "team", "Value": "ml-platform"} in tags

    put_input()
    code, out, err = run(
        capsys, "start", "--param", "QualityGateThreshold=55.5", "--param", "ModelApprovalStatus=Approved"
    )
    assert code == 0, err
    execution_arn = out.strip()
    described = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    assert described["PipelineArn"] == arn
    params = {
        p["Name"]: p["Value"]
        for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)["PipelineParameters"]
    }
    identity = params.pop("InputDataIdentity")
    assert identity.startswith("etag:") and f"InputDataIdentity={identity}" in err
    assert params == {"QualityGateThreshold": "55.5", "ModelApprovalStatus": "Approved"}

    code, out, err = run(capsys, "describe")
    assert code == 0, err
    execution_id = execution_arn.rsplit("/", 1)[-1]
    assert execution_id in out

    for reference in (execution_arn, execution_id):
        code, out, err = run(capsys, "status", reference)
        assert code == 0, err
        assert "QualityGateThreshold = 55.5" in out


def test_start_wait_reports_the_final_status(
    aws: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the config's tracking server: nothing listens
    assert run(capsys, "upsert")[0] == 0
    put_input()
    code, _, err = run(capsys, "start", "--wait", "--poll-seconds", "0.1", "--timeout", "30")
    assert code == 0, err
    assert "execution Succeeded" in err
    # then the parent run ends with it; no server answers here: said in one line, still exit 0
    assert "not logged to MLflow (http://127.0.0.1:9)" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (  # the definition's EnumValues, botocore's list
            "ModelApprovalStatus=approved",
            f"--param ModelApprovalStatus: 'approved' is not one of {', '.join(enum_values('ModelApprovalStatus'))}",
        ),
        ("Nope=1", "--param Nope: unknown parameter"),
        ("QualityGateThreshold=high", "--param QualityGateThreshold: 'high' is not a valid Float"),
        ("missing-equals", "--param expects Name=value"),
        ("InputDataUri=./data/churn.csv", "local paths work with `run --local` only"),
    ],
)
def test_start_rejects_bad_parameters(aws: str, capsys: pytest.CaptureFixture[str], param: str, message: str) -> None:
    assert run(capsys, "upsert")[0] == 0
    code, _, err = run(capsys, "start", "--param", param)
    assert code == 2
    assert message in err
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_pipeline_executions(PipelineName="diabetes-regression")["PipelineExecutionSummaries"] == []


def _started_identity(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, "start", *argv)
    assert code == 0, err
    sm = boto3.client("sagemaker", region_name="us-east-1")
    listed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=out.strip())["PipelineParameters"]
    return {p["Name"]: p["Value"] for p in listed}["InputDataIdentity"]


def test_start_passes_what_the_input_holds_so_new_data_under_the_same_uri_misses_the_cache(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Preprocess carries InputDataIdentity in its Environment, a cache key attribute: the
    same object gives the same value (a cache hit), a rewritten one another (a rerun)."""
    assert run(capsys, "upsert")[0] == 0
    put_input(b"age,target\n1,2\n")
    first = _started_identity(capsys)
    assert _started_identity(capsys) == first  # unchanged: the same arguments, a cache hit
    put_input(b"age,target\n1,2\n3,4\n")  # last month's key, this month's rows
    changed = _started_identity(capsys)
    assert changed != first
    assert _started_identity(capsys, "--param", "InputDataIdentity=pinned") == "pinned"  # given: kept

    bucket, key = INPUT_URI.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", region_name="us-east-1")
    folder = INPUT_URI.rsplit("/", 1)[0] + "/"
    s3.put_object(Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/more.csv", Body=b"age,target\n5,6\n")
    of_folder = _started_identity(capsys, "--param", f"InputDataUri={folder}")
    assert of_folder.startswith("listing:")
    s3.put_object(Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/more.csv", Body=b"age,target\n7,8\n")
    assert _started_identity(capsys, "--param", f"InputDataUri={folder}") != of_folder


def test_start_refuses_an_input_that_holds_nothing(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "upsert")[0] == 0
    code, _, err = run(capsys, "start")
    assert code == 2
    assert f"InputDataUri {INPUT_URI} holds no object" in err
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_pipeline_executions(PipelineName="diabetes-regression")["PipelineExecutionSummaries"] == []


def test_aws_errors_exit_1_with_the_aws_message(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "start")  # never upserted
    assert code == 1
    assert "DescribePipeline failed" in err and "Traceback" not in err


def test_upsert_into_a_missing_bucket_fails_cleanly(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "upsert", "--set", "aws.default_bucket=no-such-bucket-here")
    assert code == 1
    assert "NoSuchBucket" in err
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_pipelines()["PipelineSummaries"] == []  # nothing half-created


def test_render_out_and_graph(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "def" / "definition.json"
    assert run(capsys, "render", "--out", str(out_file))[0] == 0
    definition = json.loads(out_file.read_text())
    assert definition["Version"] == "2020-12-01"
    code, out, _ = run(capsys, "graph")
    assert code == 0
    assert out.startswith("flowchart TD")
    assert "QualityGate -->|if| Register_RegisterModel" in out
    assert "QualityGate -->|else| QualityGateFailed" in out
    code, _, err = run(capsys, "graph", "--out", str(tmp_path / "g.pdf"))
    assert code == 2 and "write .mmd, .png or .svg" in err
    needs_graphviz()
    code, _, _ = run(capsys, "graph", "--out", str(tmp_path / "g.png"))  # Graphviz draws it
    assert code == 0 and (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    code, out, _ = run(capsys, "graph", "--format", "svg")
    assert code == 0 and "<svg" in out and ">Register&#45;RegisterModel<" in out


def test_render_and_upsert_refuse_what_sagemaker_would(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A 300-character script argument passes the config schema and moto, but SageMaker's
    CreateProcessingJob allows 256: refused at render, and upsert creates nothing."""
    too_long = "steps.preprocess.arguments.note=" + "x" * 300
    code, out, err = run(capsys, "render", "--set", too_long)
    assert code == 2 and out == ""
    assert "Preprocess: AppSpecification.ContainerArguments[" in err
    assert "300 characters, SageMaker allows at most 256" in err
    code, out, err = run(capsys, "upsert", "--set", too_long)
    assert code == 2 and out == ""
    assert "300 characters, SageMaker allows at most 256" in err
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_pipelines()["PipelineSummaries"] == []
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = load_config(DEFAULT_CONFIG).aws.default_bucket
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # the bundle was not uploaded either


def test_help_for_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("validate", "render", "upsert", "start", "describe", "graph"):
        with pytest.raises(SystemExit) as info:
            main([verb, "--help"])
        assert info.value.code == 0
        assert "--config" in capsys.readouterr().out


STAGES = ("deployment.stages=[{name: staging, lifecycle_stage: Staging, alias: staging, legacy_stage: Staging}, "
          "{name: production, lifecycle_stage: Production, alias: champion, legacy_stage: Production}]")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "lifecycle"),
    [
        (["3", "--to", "production"], {"Stage": "Production", "StageStatus": "Approved"}),
        (["3", "--to", "Staging", "--description", "smoke tests passed"],
         {"Stage": "Staging", "StageStatus": "Approved", "StageDescription": "smoke tests passed"}),
        (["3", "--to", "production", "--reject"], {"Stage": "Production", "StageStatus": "Rejected"}),
    ],
    ids=["promote", "by lifecycle stage, with a reason", "reject"],
)  # fmt: skip
def test_promote_sets_the_lifecycle_stage_through_the_sagemaker_api(
    argv: list[str], lifecycle: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto 5.2.5 has no ModelLifeCycle: botocore's Stubber checks the exact request."""
    from botocore.stub import Stubber

    from pipeline import cli

    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes-regression/3"
    with Stubber(client) as stubber:
        stubber.add_response("update_model_package", {"ModelPackageArn": arn},
                             {"ModelPackageArn": arn, "ModelLifeCycle": lifecycle})  # fmt: skip
        monkeypatch.setattr(cli, "_clients", lambda cfg: (client, None))
        code, out, err = run(capsys, "promote", *argv, "--config", str(DEFAULT_CONFIG), "--set", STAGES)
        stubber.assert_no_pending_responses()
    assert code == 0, err
    assert out.strip() == arn and f"{lifecycle['Stage']} {lifecycle['StageStatus']}" in err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--set", "deployment.stages=[]"], "promote needs deployment.stages in the config"),
        (["--set", STAGES, "--to", "qa"], "--to qa: no such stage (deployment.stages: staging, production)"),
    ],
)
def test_promote_without_the_stage_is_a_usage_error(
    overrides: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["promote", "1", "--config", str(DEFAULT_CONFIG), *overrides]
    if "--to" not in argv:
        argv += ["--to", "production"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_describe_stages_without_stages_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "describe", "--stages", "--config", str(DEFAULT_CONFIG), "--set", "deployment.stages=[]")
    assert code == 2 and "describe --stages needs deployment.stages in the config" in err


def test_the_batch_pipeline_upserts_and_starts_with_the_package_and_its_model_data(
    aws: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`start --pipeline batch` passes ModelDataUri from DescribeModelPackage (moto's) for
    the package given; without a package or a reachable alias it says what to do."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    code, out, err = run(capsys, "upsert", "--pipeline", "batch")
    assert code == 0 and out.strip().endswith(":pipeline/diabetes-regression-batch"), err
    sm.create_model_package_group(ModelPackageGroupName="diabetes-regression")
    model_data = "s3://mlops-artifacts-123456789012/models/m/output/model.tar.gz"
    package = sm.create_model_package(
        ModelPackageGroupName="diabetes-regression", ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                                                "ModelDataUrl": model_data}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"]  # fmt: skip
    code, out, err = run(capsys, "start", "--pipeline", "batch", "--param", f"ModelPackageArn={package}",
                         "--param", "BatchInputUri=s3://mlops-artifacts-123456789012/rows/")  # fmt: skip
    assert code == 0, err
    params = {
        p["Name"]: p["Value"]
        for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=out.strip())["PipelineParameters"]
    }
    assert params == {"ModelPackageArn": package, "ModelDataUri": model_data,
                      "BatchInputUri": "s3://mlops-artifacts-123456789012/rows/"}  # fmt: skip
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # nothing listens there: fail at once
    code, _, err = run(capsys, "start", "--pipeline", "batch", "--set", "mlflow.tracking_uri=http://127.0.0.1:9")
    assert code == 2 and "no model to score: diabetes-regression@champion" in err, err

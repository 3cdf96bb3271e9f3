"""The rendered definition: valid for the SageMaker API and the definition schema,
deterministic, and built from the config alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.config_loader import load_config
from pipeline.definition import render_definition
from pipeline.steps.context import StepNames
from tests.conftest import DEFAULT_CONFIG
from tests.definition_checks import api_request, api_request_errors, extended_schema, job_steps, schema_errors

VARIANTS = {
    "default": [],
    "tuning-on": ["tuning.enabled=true"],
    "tuning-off": ["tuning.enabled=false"],
    "vpc-secrets": [
        "network.subnets=[subnet-0123456789abcdef0]",
        "network.security_group_ids=[sg-0123456789abcdef0]",
        "mlflow.credentials={source: secrets_manager, secret_arn: "
        "'arn:aws:secretsmanager:us-east-1:123456789012:secret:mlflow-bridge-AbCdEf'}",
        "mlflow.tracking_uri=https://mlflow.mlops.internal",
        "mlflow.server_ca_arn=arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0a1b2c3d-4e5f",
    ],
}


def render(overrides: list[str]) -> str:
    return render_definition(load_config(DEFAULT_CONFIG, overrides=overrides))


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: render(overrides) for name, overrides in VARIANTS.items()}


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for step in definition["Steps"]:
        out[step["Name"]] = step
        if step["Type"] == "Condition":
            for child in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                out[child["Name"]] = child
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_job_step_is_a_valid_api_request(rendered: dict[str, str], variant: str) -> None:
    definition = json.loads(rendered[variant])
    assert len(job_steps(definition)) == 4  # preprocess, train|tune, evaluate, register
    assert api_request_errors(definition) == {}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_structure_validates_against_the_extended_public_schema(rendered: dict[str, str], variant: str) -> None:
    assert schema_errors(json.loads(rendered[variant])) == []


def test_schema_extensions_are_each_explained() -> None:
    _, reasons = extended_schema()
    assert len(reasons) >= 8 and all(len(r) > 40 for r in reasons)


def test_api_check_catches_an_integer_hyperparameter(rendered: dict[str, str]) -> None:
    """The check must be able to fail: SDK v3 sends integer hyperparameters; the API wants strings."""
    definition = json.loads(rendered["tuning-off"])
    train = steps_by_name(definition)[StepNames.TRAIN]
    train["Arguments"]["HyperParameters"]["n_estimators"] = 200
    assert StepNames.TRAIN in api_request_errors(definition)


def test_api_check_catches_a_float_parameter_where_a_string_is_required(rendered: dict[str, str]) -> None:
    definition = json.loads(rendered["tuning-off"])
    preprocess = steps_by_name(definition)[StepNames.PREPROCESS]
    preprocess["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = {
        "Get": "Parameters.QualityGateThreshold"
    }
    assert "Preprocess" in api_request_errors(definition)


def test_schema_check_catches_an_unlisted_field(rendered: dict[str, str]) -> None:
    definition = json.loads(rendered["default"])
    definition["Steps"][0]["Bogus"] = 1
    assert schema_errors(definition)


def test_expressions_are_replaced_by_parameter_defaults(rendered: dict[str, str]) -> None:
    definition = json.loads(rendered["tuning-off"])
    request, _ = api_request(steps_by_name(definition)[StepNames.TRAIN], definition)
    assert request["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].startswith("s3://")


def test_two_renders_are_byte_identical(rendered: dict[str, str]) -> None:
    assert render([]) == rendered["default"]
    assert render(["tuning.enabled=false"]) == rendered["tuning-off"]


@pytest.mark.parametrize(("variant", "changed_step"), [("tuning-on", StepNames.TUNE), ("tuning-off", StepNames.TRAIN)])
def test_changing_one_hyperparameter_changes_only_its_step(
    rendered: dict[str, str], variant: str, changed_step: str
) -> None:
    before = steps_by_name(json.loads(rendered[variant]))
    # min_samples_leaf is tuned in the default config; change a fixed one that is not tuned.
    after = steps_by_name(json.loads(render([*VARIANTS[variant], "training.hyperparameters.max_features=0.8"])))
    changed = sorted(name for name in before if before[name] != after[name])
    # The condition step embeds its branches, so compare it without them.
    assert changed in ([changed_step], sorted([changed_step]))


def test_definition_is_built_from_the_config(rendered: dict[str, str]) -> None:
    other = render(
        [
            "pipeline.name=churn",
            "data.target=churned",
            "data.features=[tenure, plan]",
            "registration.model_package_group=churn-models",
            "quality_gate.metric=regression_metrics.mae.value",
            "quality_gate.threshold=3.5",
            "training.objective.metric=validation:mae",
            "training.objective.regex='validation:mae=([0-9.]+)'",
            "aws.prefix=churn",
            "data.input_uri=s3://mlops-artifacts-123456789012/churn/data.csv",
            "mlflow.experiment=churn",
            "mlflow.registered_model=churn",
        ]
    )
    for literal in ("diabetes", "age,sex", "rmse"):
        assert literal not in other, f"{literal!r} leaked from the default config into another config's definition"
    definition = json.loads(other)
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert params["QualityGateThreshold"] == 3.5
    register = steps_by_name(definition)[StepNames.REGISTER]
    assert register["Arguments"]["ModelPackageGroupName"] == "churn-models"


def test_steps_parameters_and_graph_are_readable(rendered: dict[str, str]) -> None:
    definition = json.loads(rendered["default"])
    steps = steps_by_name(definition)
    assert set(steps) == {
        StepNames.PREPROCESS, StepNames.TUNE, StepNames.EVALUATE,
        StepNames.QUALITY_GATE, StepNames.REGISTER, StepNames.GATE_FAILED,
    }  # fmt: skip
    for step in steps.values():
        assert step["DisplayName"] and len(step["Description"]) > 30, step["Name"]
    assert {p["Name"] for p in definition["Parameters"]} == {
        "InputDataUri", "InputDataIdentity", "PreprocessInstanceType", "TrainInstanceType",
        "EvaluateInstanceType", "ModelApprovalStatus", "QualityGateThreshold",
    }  # fmt: skip


def test_preprocess_keys_its_cache_on_what_the_input_holds_not_only_its_uri(rendered: dict[str, str]) -> None:
    """SageMaker's processing cache key includes the Environment: InputDataIdentity there
    (resolved by `start`) makes new data under the same URI a miss; the default, for an
    execution started elsewhere, keys on the URI alone as SageMaker does."""
    definition = json.loads(rendered["default"])
    preprocess = steps_by_name(definition)[StepNames.PREPROCESS]
    assert preprocess["CacheConfig"]["Enabled"] is True
    assert preprocess["Arguments"]["Environment"]["MLOPS_INPUT_DATA_IDENTITY"] == {
        "Get": "Parameters.InputDataIdentity"
    }
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["InputDataIdentity"] == {"Name": "InputDataIdentity", "Type": "String",
                                               "DefaultValue": "not-resolved"}  # fmt: skip


def test_register_carries_the_mlflow_run_id_and_metrics(rendered: dict[str, str]) -> None:
    register = steps_by_name(json.loads(rendered["default"]))[StepNames.REGISTER]["Arguments"]
    run_id = register["CustomerMetadataProperties"]["mlflow_run_id"]["Std:JsonGet"]
    assert run_id["Path"] == "mlflow.run_id"
    assert run_id["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"


def test_gate_compares_the_configured_metric_with_the_threshold_parameter(rendered: dict[str, str]) -> None:
    gate = steps_by_name(json.loads(rendered["default"]))[StepNames.QUALITY_GATE]["Arguments"]
    (condition,) = gate["Conditions"]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "regression_metrics.rmse.value"
    assert condition["RightValue"] == {"Get": "Parameters.QualityGateThreshold"}
    assert [s["Name"] for s in gate["ElseSteps"]] == [StepNames.GATE_FAILED]


def test_retry_policies_follow_the_config(rendered: dict[str, str]) -> None:
    definition = json.loads(render(["retry.on=[Step.THROTTLING, SageMaker.RESOURCE_LIMIT]", "retry.max_attempts=5"]))
    policies = steps_by_name(definition)[StepNames.PREPROCESS]["RetryPolicies"]
    assert [p["ExceptionType"] for p in policies] == [["Step.THROTTLING"], ["SageMaker.RESOURCE_LIMIT"]]
    assert {p["MaxAttempts"] for p in policies} == {5}


def test_no_secret_and_no_tracking_uri_in_hyperparameters(rendered: dict[str, str]) -> None:
    text = rendered["vpc-secrets"]
    definition = json.loads(text)
    train_args = steps_by_name(definition)[StepNames.TUNE]["Arguments"]["TrainingJobDefinition"]
    assert not any("mlflow" in k.lower() or "tracking" in k.lower() for k in train_args["StaticHyperParameters"])
    assert train_args["Environment"]["MLOPS_TRACKING_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert train_args["Environment"]["MLOPS_TRACKING_CA_ARN"].endswith(":certificate-authority/0a1b2c3d-4e5f")
    assert train_args["VpcConfig"] == {
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
        "Subnets": ["subnet-0123456789abcdef0"],
    }
    assert "password" not in text.lower()


def test_code_is_referenced_by_content_address(rendered: dict[str, str]) -> None:
    from pipeline.code_bundle import code_bundle

    cfg = load_config(DEFAULT_CONFIG)
    bundle = code_bundle(cfg)
    assert bundle.sourcedir_uri in rendered["default"]
    assert f"/code/{bundle.digest}/" in bundle.sourcedir_uri
    assert bundle.tarball() == code_bundle(cfg).tarball()


def test_the_sdk_config_that_renders_skip_validating_is_valid() -> None:
    """Renders skip the SDK's validation of `SDK_CONFIG` (it is a constant): the SDK's
    own validator must accept it, and must still reject any other, invalid, config."""
    from pipeline.sdk_session import SDK_CONFIG, offline_build

    with offline_build("us-east-1"):
        from sagemaker.core.config.config import validate_sagemaker_config
        from sagemaker.core.config.config_manager import SageMakerConfig
        from sagemaker.core.helper import session_helper

        validate_sagemaker_config(SDK_CONFIG)  # the SDK's own, not replaced
        invalid = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": "maybe"}}}}
        for validate in (SageMakerConfig.validate_sagemaker_config, session_helper.validate_sagemaker_config):
            validate(SDK_CONFIG)
            with pytest.raises(Exception, match="TelemetryOptOut"):
                validate(invalid)


def test_a_build_leaves_the_sdk_and_the_process_as_it_found_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """`offline_build` patches the SDK and boto3 while it lasts (pipeline/sdk_session.py) and
    restores them: a team's own SDK use in the same process sees the SDK unchanged."""
    import os

    import boto3

    from pipeline.sdk_session import offline_build

    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    with offline_build("eu-west-1") as session:
        import sagemaker.core.config.config_manager as config_manager
        import sagemaker.core.helper.session_helper as session_helper
        import sagemaker.mlops.workflow.steps as steps_module

        assert boto3.DEFAULT_SESSION is session and session.region_name == "eu-west-1"
        assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"
        patched = (steps_module.LocalSagemakerClient, session_helper.validate_sagemaker_config,
                   config_manager.SageMakerConfig.__dict__["validate_sagemaker_config"])  # fmt: skip
    assert "SAGEMAKER_VALIDATE_ROLE" not in os.environ and boto3.DEFAULT_SESSION is not session
    from sagemaker.core.local.local_session import LocalSagemakerClient

    restored = (steps_module.LocalSagemakerClient, session_helper.validate_sagemaker_config,
                config_manager.SageMakerConfig.__dict__["validate_sagemaker_config"])  # fmt: skip
    assert restored[0] is LocalSagemakerClient
    assert all(before is not after for before, after in zip(patched, restored, strict=True))

    # and when the build fails: a config whose estimator lacks a configured hyperparameter
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    from pipeline.errors import ConfigError

    broken = load_config(DEFAULT_CONFIG, overrides=["training.hyperparameters.bogus=1", "tuning.enabled=false"])
    with pytest.raises(ConfigError, match="bogus"):
        render_definition(broken)
    assert "SAGEMAKER_VALIDATE_ROLE" not in os.environ and boto3.DEFAULT_SESSION is not session
    assert steps_module.LocalSagemakerClient is LocalSagemakerClient
    assert root.handlers == handlers and root.level == level


def test_render_cache_hits_only_for_the_same_config_builder_and_sdk(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.definition as definition

    renders: list[str] = []
    monkeypatch.setattr(definition, "render_definition", lambda cfg, which="training": renders.append(which) or "{}\n")
    cfg = load_config(DEFAULT_CONFIG)
    assert definition.render_definition_cached(cfg, tmp_path) == "{}\n"
    assert definition.render_definition_cached(cfg, tmp_path) == "{}\n"
    assert len(renders) == 1
    definition.render_definition_cached(load_config(DEFAULT_CONFIG, overrides=["tuning.max_jobs=3"]), tmp_path)
    assert len(renders) == 2
    monkeypatch.setattr(definition, "_builder_digest", lambda: "an edited step builder")
    definition.render_definition_cached(cfg, tmp_path)
    assert len(renders) == 3
    definition.render_definition_cached(cfg, tmp_path, "batch")  # the other pipeline of the same config
    assert renders[-1] == "batch" and len(renders) == 4
    import importlib.metadata

    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "1.28.0" if name == "sagemaker-mlops" else real_version(name)
    )
    definition.render_definition_cached(cfg, tmp_path)  # another SDK release
    assert len(renders) == 5


def test_building_a_definition_never_imports_the_cli_nor_local_mode_the_builder() -> None:
    """Once, `cli → definition → cli` and `local/driver → definition` were import circles."""
    import subprocess
    import sys

    entries = "{'pipeline.cli', 'pipeline.definition.__main__'}"
    probe = ("import sys, pipeline.definition, pipeline.local.driver, pipeline.local.approval; "
             f"print(sorted(m for m in sys.modules if m in {entries}))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    probe = "import sys, pipeline.local.driver; print('pipeline.definition' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"


BATCH_VARIANTS = {"fail": [], "flag-joined": ["batch.drift.action=flag", "batch.join_input=true"],
                  "flag-jsonlines": ["batch.drift.action=flag", "batch.accept=application/jsonlines"]}  # fmt: skip


@pytest.mark.parametrize("variant", list(BATCH_VARIANTS))
def test_the_batch_pipeline_passes_the_same_two_checks(variant: str) -> None:
    """CreateModel from the package, the drift check, its gate and the transform: each
    request valid by botocore's validator and the service model's limits, and the whole
    by the extended public schema."""
    from pipeline.definition.batch import BatchStepNames

    definition = json.loads(render_definition(load_config(DEFAULT_CONFIG, overrides=BATCH_VARIANTS[variant]),
                                              which="batch"))  # fmt: skip
    assert {s["Type"] for s in job_steps(definition)} == {"Model", "Processing", "Transform"}
    assert api_request_errors(definition) == {} and schema_errors(definition) == []
    steps = steps_by_name(definition)
    transform = steps[BatchStepNames.TRANSFORM]["Arguments"]
    assert transform["BatchStrategy"] == "MultiRecord" and transform["TransformInput"]["SplitType"] == "Line"
    assert transform["ModelName"] == {"Get": f"Steps.{BatchStepNames.CREATE_MODEL}.ModelName"}
    model = steps[BatchStepNames.CREATE_MODEL]["Arguments"]
    assert model["Containers"] == [{"ModelPackageName": {"Get": "Parameters.ModelPackageArn"}}]
    gate = steps[BatchStepNames.DRIFT_GATE]["Arguments"]
    if variant == "fail":  # the transform waits for the gate; drift fails the execution instead
        assert [s["Name"] for s in gate["IfSteps"]] == [BatchStepNames.TRANSFORM]
        assert [s["Name"] for s in gate["ElseSteps"]] == [BatchStepNames.DRIFT_FAILED]
    elif variant == "flag-joined":
        assert gate["IfSteps"] == gate["ElseSteps"] == []
        assert transform["DataProcessing"] == {"JoinSource": "Input"} and transform["TransformOutput"]["Accept"] == (
            "text/csv"
        )
    else:
        assert "DataProcessing" not in transform and transform["TransformOutput"]["Accept"] == "application/jsonlines"
    assert [p["Name"] for p in definition["Parameters"]] == [
        "BatchInputUri", "BatchOutputUri", "ModelPackageArn", "ModelDataUri",
    ]  # fmt: skip


def test_the_drift_gate_always_sees_the_batch_that_is_scored() -> None:
    """Read as SageMaker caches (the step's arguments, an input as its URI): neither the
    drift check nor the transform can be a cache hit, since both carry no CacheConfig; and
    the transform scores the records the drift check wrote in this execution, not the
    input prefix, whose content may have changed under the same URI."""
    from pipeline.definition.batch import BatchStepNames

    definition = json.loads(render_definition(load_config(DEFAULT_CONFIG), which="batch"))
    steps = steps_by_name(definition)
    drift, transform = steps[BatchStepNames.DRIFT_CHECK], steps[BatchStepNames.TRANSFORM]
    assert "CacheConfig" not in drift and "CacheConfig" not in transform
    assert transform["Arguments"]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": f"Steps.{BatchStepNames.DRIFT_CHECK}.ProcessingOutputConfig.Outputs['records'].S3Output.S3Uri"
    }
    records = next(o for o in drift["Arguments"]["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "records")
    assert {"Get": "Execution.PipelineExecutionId"} in records["S3Output"]["S3Uri"]["Std:Join"][
        "Values"
    ]  # per execution
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in drift["Arguments"]["ProcessingInputs"]}
    assert inputs["data"] == {"Get": "Parameters.BatchInputUri"}
    gate = steps[BatchStepNames.DRIFT_GATE]["Arguments"]["Conditions"][0]
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "gate_ratio"
    # the training pipeline still caches: only the steps that read a batch do not
    training = json.loads(render_definition(load_config(DEFAULT_CONFIG)))
    assert all(s.get("CacheConfig", {}).get("Enabled") for s in job_steps(training) if s["Type"] != "RegisterModel")


def test_the_batch_model_runs_as_its_own_role_not_the_pipelines() -> None:
    """A team's model code runs with the model's execution role (its transform job reads
    and writes S3 as it): the stack's batch model role, which cannot read the MLflow secret
    the pipeline role reads."""
    from pipeline.definition.batch import BatchStepNames

    cfg = load_config(DEFAULT_CONFIG)
    definition = json.loads(render_definition(cfg, which="batch"))
    create = next(s for s in definition["Steps"] if s["Name"].startswith(BatchStepNames.CREATE_MODEL))
    assert create["Arguments"]["ExecutionRoleArn"] == cfg.batch.model_role_arn != cfg.aws.role_arn
    assert cfg.batch.model_role_arn.endswith(":role/mlops-batch-model")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch.accept=application/json", "answers one object per request, not one per record"),
        ("batch.output_uri=s3://mlops-artifacts-123456789012/diabetes-regression/", "overlaps"),
    ],
)
def test_a_batch_whose_answers_cannot_line_up_or_would_overwrite_is_refused(override: str, message: str) -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        render_definition(load_config(DEFAULT_CONFIG, overrides=[override]), which="batch")
    with pytest.raises(ConfigError, match="with accept application/jsonlines SageMaker cannot join"):
        load_config(DEFAULT_CONFIG, overrides=["batch.join_input=true", "batch.accept=application/jsonlines"])


def test_the_environment_builds_with_the_pinned_sdk_v3_and_no_v2(caplog: pytest.LogCaptureFixture) -> None:
    """pyproject.toml pins the v3 packages the builder imports (`SDK_DISTRIBUTIONS`), and
    they are what is installed; SDK v2 (`sagemaker` 2.x) is not, since v2 and v3 cannot share
    an environment and v2's support ends 2027-07-06. The MLflow plugin sagemaker-train brings
    is the one that leaves requests to this project's server alone (pyproject.toml)."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement

    from pipeline.sdk_session import SDK_DISTRIBUTIONS
    from tests.conftest import REPO

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sagemaker"]
    pins = {Requirement(line).name: Requirement(line).specifier for line in extra}
    assert set(SDK_DISTRIBUTIONS) <= set(pins)
    for name, specifier in pins.items():
        assert str(specifier).startswith("=="), f"{name} is not pinned"
        assert metadata.version(name) in specifier
    try:
        installed = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        installed = None
    assert installed is None or not installed.startswith("2."), f"sagemaker {installed} (SDK v2) is installed"
    from mlflow.tracking.request_header.registry import resolve_request_headers

    with caplog.at_level("WARNING"):
        resolve_request_headers()
    assert caplog.records == []

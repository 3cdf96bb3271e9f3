"""The limits checker on hand-built requests: what SageMaker refuses at run time is
found from botocore's service model, and named by step and field."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from pipeline import api_limits
from pipeline.api_limits import definition_violations, request_violations
from pipeline.errors import UsageError
from pipeline.execution_parameters import parse_execution_parameters

ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker-pipeline"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
META = "Register: CustomerMetadataProperties"


def processing_request(arguments: list[str]) -> dict[str, Any]:
    cluster = {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    return {
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerArguments": arguments},
        "RoleArn": ROLE,
    }


def package_request(metadata: dict[str, str], status: str = "PendingManualApproval") -> dict[str, Any]:
    return {
        "ModelPackageGroupName": "diabetes-regression",
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": metadata,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }  # fmt: skip


def messages(found: list[api_limits.Violation]) -> list[str]:
    return [str(v) for v in found]


def test_a_valid_request_has_no_violations() -> None:
    assert request_violations("Preprocess", "Processing", processing_request(["--a", "1"])) == []
    assert request_violations("Register", "RegisterModel", package_request({"mlflow_run_id": "0123abcd"})) == []


def test_too_long_container_argument_names_step_index_and_limit() -> None:
    found = request_violations("Preprocess", "Processing", processing_request(["a", "b", "c", "x" * 391]))
    assert messages(found) == [
        "Preprocess: AppSpecification.ContainerArguments[3]: 391 characters, SageMaker allows at most 256"
    ]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"note": "bad!"}, f"{META}.note: 'bad!' does not match the pattern"),
        ({"bad!": "ok"}, f"{META} (key: bad!): 'bad!' does not match the pattern"),
        ({"note": "v" * 300}, f"{META}.note: 300 characters, SageMaker allows at most 256"),
        ({"k" * 129: "ok"}, f"{META} (key: {'k' * 129}): 129 characters, SageMaker allows at most 128"),
    ],
)
def test_customer_metadata_keys_and_values(metadata: dict[str, str], expected: str) -> None:
    (found,) = messages(request_violations("Register", "RegisterModel", package_request(metadata)))
    assert found.startswith(expected)


def test_pattern_message_quotes_the_pattern_and_allows_unicode_letters() -> None:
    (found,) = request_violations("Register", "RegisterModel", package_request({"note": "x!"}))
    assert "\\p{L}" in found.message  # the model's own Java-style pattern, not a copy
    assert request_violations("Register", "RegisterModel", package_request({"note": "Zürich run 7"})) == []


def test_bad_enum_lists_the_allowed_values() -> None:
    (found,) = messages(request_violations("Register", "RegisterModel", package_request({"a": "b"}, status="approved")))
    assert found.startswith("Register: ModelApprovalStatus: 'approved' is not one of ")
    assert all(v in found for v in ("Approved", "Rejected", "PendingManualApproval"))


def test_empty_map_is_below_the_models_minimum() -> None:
    """ParamValidator checks `min` of strings and lists, not of maps."""
    (found,) = messages(request_violations("Register", "RegisterModel", package_request({})))
    assert found == "Register: CustomerMetadataProperties: 0 entries, SageMaker needs at least 1"


def test_hyperparameter_value_over_the_limit_and_too_many_entries() -> None:
    limit = api_limits.service_model().shape_for("HyperParameterValue").metadata["max"]
    request = {
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"note": "x" * (limit + 1)},
    }
    assert messages(request_violations("Train", "Training", request)) == [
        f"Train: HyperParameters.note: {limit + 1} characters, SageMaker allows at most {limit}"
    ]
    request["HyperParameters"] = {f"k{i}": "1" for i in range(101)}
    assert messages(request_violations("Train", "Training", request)) == [
        "Train: HyperParameters: 101 entries, SageMaker allows at most 100"
    ]


def test_nested_list_index_and_number_maximum_in_the_path() -> None:
    request = package_request({"a": "b"})
    request["InferenceSpecification"]["Containers"].append(
        {"Image": "img", "ModelDataUrl": "ftp://nope", "Environment": {"1BAD": "x"}}
    )
    found = messages(request_violations("Register", "RegisterModel", request))
    assert any(m.startswith("Register: InferenceSpecification.Containers[1].ModelDataUrl: 'ftp://nope'") for m in found)
    assert any(m.startswith("Register: InferenceSpecification.Containers[1].Environment (key: 1BAD)") for m in found)
    processing = processing_request(["a"])
    processing["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] = 10**6
    (found_one,) = messages(request_violations("Preprocess", "Processing", processing))
    assert found_one.startswith(
        "Preprocess: ProcessingResources.ClusterConfig.VolumeSizeInGB: 1000000, SageMaker allows"
    )


def test_types_and_required_members_come_from_botocores_validator() -> None:
    request = processing_request(["a"])
    del request["RoleArn"]
    request["AppSpecification"]["ContainerArguments"] = [3]
    found = messages(request_violations("Preprocess", "Processing", request))
    assert 'Preprocess: Missing required parameter in input: "RoleArn"' in found
    assert any("Invalid type for parameter AppSpecification.ContainerArguments[0]" in m for m in found)


def _definition(arguments: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    register = {"Name": "Register", "Type": "RegisterModel", "Arguments": arguments}
    branches = {"Conditions": [], "IfSteps": [register], "ElseSteps": []}
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": branches}
    return {"Version": "2020-12-01", "Parameters": parameters, "Steps": [gate]}


def test_expressions_are_skipped_but_a_parameters_default_is_checked() -> None:
    arguments = package_request({"mlflow_run_id": {"Std:JsonGet": {"PropertyFile": {"Get": "x"}, "Path": "a"}}})
    arguments["ModelApprovalStatus"] = {"Get": "Parameters.ModelApprovalStatus"}
    arguments["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = {"Std:Join": {"On": "/", "Values": []}}
    good = [{"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"}]
    assert definition_violations(_definition(copy.deepcopy(arguments), good)) == []
    bad = [{**good[0], "DefaultValue": "approved"}]
    (found,) = messages(definition_violations(_definition(arguments, bad)))
    assert found.startswith(
        "Register: ModelApprovalStatus (default of parameter ModelApprovalStatus): 'approved' is not one of"
    )


def test_only_the_athena_catalog_pattern_goes_unchecked() -> None:
    """Every other pattern these four operations carry compiles (Java classes via `regex`)."""
    operations = [operation for operation, _ in api_limits.JOB_OPERATIONS.values()]
    assert set(api_limits.uncompilable_patterns(operations)) == {"AthenaCatalog"}


def test_approval_statuses_come_from_the_service_model() -> None:
    assert set(api_limits.enum_values("ModelApprovalStatus")) == {"Approved", "Rejected", "PendingManualApproval"}


def test_execution_parameters_outside_enum_values_are_refused() -> None:
    """`start --param` and `run --local --param` both parse through this function."""
    statuses = api_limits.enum_values("ModelApprovalStatus")
    definition = {"Parameters": [{"Name": "ModelApprovalStatus", "Type": "String", "EnumValues": statuses}]}
    assert parse_execution_parameters(["ModelApprovalStatus=Approved"], definition) == {
        "ModelApprovalStatus": "Approved"
    }
    with pytest.raises(UsageError, match=r"--param ModelApprovalStatus: 'approved' is not one of ") as info:
        parse_execution_parameters(["ModelApprovalStatus=approved"], definition)
    assert all(status in str(info.value) for status in statuses)


def test_execution_parameters_carrying_credentials_are_refused_unechoed() -> None:
    definition = {"Parameters": [{"Name": "InputDataUri", "Type": "String"}]}
    assert parse_execution_parameters(["InputDataUri=s3://bucket/x.csv"], definition)
    with pytest.raises(UsageError, match=r"--param InputDataUri: the value carries credentials \(user info") as info:
        parse_execution_parameters(["InputDataUri=https://me:Hunter2Hunter2@host/x.csv"], definition)
    assert "Hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("InputDataUri=", "--param InputDataUri: empty; give a value or leave the parameter out"),
        ("InputDataUri=s3://b/" + "k" * 1020, "--param InputDataUri: 1027 characters, SageMaker allows at most 1024"),
    ],
)
def test_an_empty_or_overlong_parameter_value_is_refused_before_an_execution(pair: str, message: str) -> None:
    definition = {"Parameters": [{"Name": "InputDataUri", "Type": "String"}]}
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_execution_parameters([pair], definition)

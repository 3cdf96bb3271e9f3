"""Local inputs: where local mode reads a job's input URI from (S3 in the workspace, or a
file or folder on this machine), what it says when one is missing, and why `start`
refuses local paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.execution_parameters import input_parameters, refuse_local_inputs
from pipeline.local.inputs import StepInput, UnsupportedInput, input_location, missing_input_message, step_inputs
from pipeline.local.workspace import Workspace

ROOT = Path("/home/me/project/.local")
BASE = Path("/home/me/project")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/x/data.csv", "/home/me/project/.local/s3/bucket/x/data.csv"),
        ("s3://bucket/x/", "/home/me/project/.local/s3/bucket/x"),
        ("file:///srv/data/churn.csv", "/srv/data/churn.csv"),
        ("file:/srv/data/churn.csv", "/srv/data/churn.csv"),
        ("file://data/churn.csv", "/home/me/project/data/churn.csv"),  # SageMaker's local mode: netloc + path
        ("FILE://./data/my%20churn.csv", "/home/me/project/data/my churn.csv"),
        ("./data/churn.csv", "/home/me/project/data/churn.csv"),
        ("data/churn.csv", "/home/me/project/data/churn.csv"),
        ("../common/churn.csv", "/home/me/common/churn.csv"),
        ("/srv/data/", "/srv/data"),
        ("data:2024.csv", "/home/me/project/data:2024.csv"),  # a colon without "/" is no scheme
    ],
)
def test_input_uris_map_to_local_paths(uri: str, expected: str) -> None:
    assert input_location(uri, ROOT, BASE) == Path(expected)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example.com/churn.csv", "local mode reads s3:// and file:// URIs and local paths, not http://"),
        ("gs://bucket/churn.csv", "not gs://"),
        ("s3:/bucket/churn.csv", "not an S3 URI"),
        ("s3://bucket/../../etc", "would leave the workspace"),
        ("s3:///etc/passwd", "'' is not an S3 bucket name"),
        ("s3://../etc", "'..' is not an S3 bucket name"),
        ("", "names no file or folder"),
        ("file://", "names no file or folder"),
        (".", "holds the local workspace /home/me/project/.local"),
        ("file:///home/me", "holds the local workspace"),
    ],
)
def test_what_local_mode_cannot_read_is_refused(uri: str, message: str) -> None:
    with pytest.raises(UnsupportedInput, match=message):
        input_location(uri, ROOT, BASE)


def test_no_s3_uri_writes_outside_the_workspace(tmp_path: Path) -> None:
    """`s3:///abs` once mapped to `/abs` (an empty bucket), and a run wrote there."""
    workspace = Workspace(tmp_path / ".local")
    outside = tmp_path / "outside" / "model.tar.gz"
    for uri in (f"s3://{outside}", "s3://bucket/./../../outside/model.tar.gz", f"s3://bucket/..{outside}"):
        with pytest.raises(UnsupportedInput, match=r"bucket name|leave the workspace"):
            workspace.put(uri, b"x")
    assert not (tmp_path / "outside").exists()
    assert workspace.put("s3://bucket/a//b/model.tar.gz", b"x") == tmp_path / ".local/s3/bucket/a/b/model.tar.gz"


def test_local_files_and_folders_are_copied_and_hashed_by_content(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("x\n1\n")
    (data / "part" / "b.csv").write_text("x\n2\n")
    workspace = Workspace(tmp_path / ".local", input_base=tmp_path)

    assert workspace.download("./data/a.csv", tmp_path / "one") == 1
    assert (tmp_path / "one" / "a.csv").read_text() == "x\n1\n"
    assert workspace.download(f"file://{data}", tmp_path / "all") == 2  # a folder: recursively, like a prefix
    assert (tmp_path / "all" / "part" / "b.csv").read_text() == "x\n2\n"

    before = workspace.content_hash("data/a.csv")
    assert workspace.content_hash(f"file://{data / 'a.csv'}") == before  # by content, not by spelling
    (data / "a.csv").write_text("x\n1\n")
    assert workspace.content_hash("./data/a.csv") == before
    (data / "a.csv").write_text("x\n3\n")
    assert workspace.content_hash("./data/a.csv") != before


RAW_PREPROCESS = {
    "ProcessingInputs": [
        {"InputName": "raw", "S3Input": {"S3Uri": {"Get": "Parameters.InputDataUri"}, "LocalPath": "/opt/ml/d"}},
        {"InputName": "code", "S3Input": {"S3Uri": "s3://b/code/entrypoint.sh", "LocalPath": "/opt/ml/c"}},
    ]
}


def resolved_preprocess(uri: str) -> dict:
    inputs = [{**item, "S3Input": dict(item["S3Input"])} for item in RAW_PREPROCESS["ProcessingInputs"]]
    inputs[0]["S3Input"]["S3Uri"] = uri
    return {"ProcessingInputs": inputs}


def test_step_inputs_know_the_parameter_a_uri_came_from() -> None:
    found = step_inputs("Processing", RAW_PREPROCESS, resolved_preprocess("./data.csv"))
    assert found == [
        StepInput("./data.csv", "raw", "InputDataUri"),
        StepInput("s3://b/code/entrypoint.sh", "code"),
    ]
    assert [item.label for item in found] == ["InputDataUri", "input code"]
    raw_tuning = {
        "TrainingJobDefinition": {
            "InputDataConfig": [
                {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": {"Get": "Steps.Pre.X"}}}}
            ]
        }
    }
    resolved_tuning = {
        "TrainingJobDefinition": {
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train"}}}]
        }
    }
    assert step_inputs("Tuning", raw_tuning, resolved_tuning) == [StepInput("s3://b/train", "train")]
    assert step_inputs("Condition", {}, {}) == []


def test_a_missing_input_is_named_as_given_with_where_local_mode_looked() -> None:
    s3 = StepInput("s3://bucket/x/data.csv", "raw", "InputDataUri")
    assert missing_input_message(s3, Path("/abs/.local/s3/bucket/x/data.csv")) == (
        "InputDataUri s3://bucket/x/data.csv: not found; local mode looks for it at "
        "/abs/.local/s3/bucket/x/data.csv (copy the file there, or pass --param InputDataUri=./data.csv)"
    )
    local = StepInput("./data.csv", "raw", "InputDataUri")
    assert missing_input_message(local, Path("/abs/data.csv")) == (
        "InputDataUri ./data.csv: not found; local mode looks for it at /abs/data.csv"
    )
    code = StepInput("s3://b/code/", "code")
    assert missing_input_message(code, Path("/w/s3/b/code"), empty_folder=True) == (
        "input code s3://b/code/: no files in the folder /w/s3/b/code (copy the file there)"
    )


DEFINITION = {
    "Parameters": [{"Name": "InputDataUri"}, {"Name": "ModelApprovalStatus"}],
    "Steps": [{"Name": "Preprocess", "Type": "Processing", "Arguments": RAW_PREPROCESS}],
}


def test_start_refuses_local_paths_for_input_parameters_only() -> None:
    assert input_parameters(DEFINITION) == {"InputDataUri"}
    refuse_local_inputs({"InputDataUri": "s3://b/x.csv", "ModelApprovalStatus": "Approved"}, DEFINITION)
    for value in ("./x.csv", "file:///tmp/x.csv", "/tmp/x.csv"):
        with pytest.raises(UsageError, match=r"local paths work with `run --local` only"):
            refuse_local_inputs({"InputDataUri": value}, DEFINITION)


def test_limits_are_checked_on_the_upload_a_local_input_stands_for() -> None:
    """SageMaker's S3Uri pattern would refuse `./data/churn.csv`; local mode reads it from
    disk, so the request is checked as it would be once the file is uploaded."""
    from pipeline.api_limits import request_violations
    from pipeline.local.inputs import as_uploaded

    request = {
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "AppSpecification": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "ProcessingInputs": [
            {"InputName": "raw", "S3Input": {"S3Uri": "./data/churn.csv", "LocalPath": "/opt/ml/processing/input/data",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        ],
    }  # fmt: skip
    assert request_violations("Preprocess", "Processing", request)  # the path itself breaks the pattern
    uploaded = as_uploaded(request)
    assert uploaded["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://local-mode-upload/churn.csv"
    assert request_violations("Preprocess", "Processing", uploaded) == []
    assert request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "./data/churn.csv"  # the run reads the file

"""The bridge's decisions, event parsing and deployment requests, without I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlflow_bridge.decisions import MlflowVersion, Package, Tags, choose_champion, ignore_reason, registry_actions
from mlflow_bridge.deployment import config_name, update_request
from mlflow_bridge.errors import MalformedEvent
from mlflow_bridge.events import parse_event
from mlflow_bridge.mlflow_registry import lost_upsert_race
from mlflow_bridge.settings import BridgeSettings, DeploymentSettings

EVENT = json.loads((Path(__file__).parent / "events" / "model_package_approved.json").read_text())


def version(number: int, package: int, status: str = "Approved", aliases=(), stage: str = "None", time: str = ""):
    tags = {Tags.PACKAGE_ARN: f"arn:p/{package}", Tags.PACKAGE_VERSION: str(package), Tags.APPROVAL: status}
    if time:
        tags[Tags.APPROVAL_TIME] = time
    return MlflowVersion(str(number), tags, tuple(aliases), stage)


def test_sample_event_parses() -> None:
    event = parse_event(EVENT)
    assert event.detail.model_package_arn.endswith("/diabetes-regression/1")
    assert event.detail.model_approval_status == "Approved"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("detail"), "detail"),
        (lambda e: e["detail"].update(ModelPackageArn=42), "ModelPackageArn"),
        (lambda e: e["detail"].update(ModelPackageArn="arn:aws:s3:::bucket"), "ModelPackageArn"),
        (lambda e: e.update(source="aws.s3"), "unexpected event"),
        (lambda e: e.update({"detail-type": "Something Else"}), "unexpected event"),
    ],
)
def test_malformed_events_are_rejected_with_the_field(mutate, message: str) -> None:
    event = json.loads(json.dumps(EVENT))
    mutate(event)
    with pytest.raises(MalformedEvent, match=message):
        parse_event(event)
    with pytest.raises(MalformedEvent, match="JSON object"):
        parse_event(["not", "an", "event"])


@pytest.mark.parametrize(
    ("package", "groups", "expected"),
    [
        (None, [], "no longer exists"),
        (Package("a", "other", 1, "Approved", "r"), ["mine"], "is not synced"),
        (Package("a", "mine", 1, "PendingManualApproval", "r"), ["mine"], "only Approved and Rejected"),
        (Package("a", "mine", 1, "Approved", ""), [], "no mlflow_run_id"),
        (Package("a", "mine", 1, "Approved", "r"), ["mine"], None),
        (Package("a", "mine", 1, "Rejected", ""), [], None),
    ],
)
def test_what_is_ignored(package, groups, expected) -> None:
    reason = ignore_reason(package, groups)
    assert (reason is None) if expected is None else (expected in reason)


def test_champion_is_the_highest_approved_package_version_or_latest_approval() -> None:
    versions = [version(1, 1, time="2026-01-03"), version(2, 3, time="2026-01-01"), version(3, 2, "Rejected")]
    assert choose_champion(versions, "highest_version").version == "2"
    assert choose_champion(versions, "latest_approval").version == "1"
    assert choose_champion([version(1, 1, "Rejected")], "highest_version") is None


def test_actions_move_alias_and_stages_to_the_champion() -> None:
    versions = [version(1, 1, aliases=["champion"], stage="Production"), version(2, 2)]
    champion, actions = registry_actions(versions, alias="champion", manage_stages=True, order="highest_version")
    assert champion.version == "2"
    assert [(a.kind, a.version, a.value) for a in actions] == [
        ("set_alias", "2", None),
        ("transition", "1", "Archived"),
        ("transition", "2", "Production"),
    ]
    settled = [version(1, 1, stage="Archived"), version(2, 2, aliases=["champion"], stage="Production")]
    assert registry_actions(settled, alias="champion", manage_stages=True, order="highest_version")[1] == []


def test_rejecting_the_only_approved_version_removes_alias_and_production() -> None:
    versions = [version(1, 1, "Rejected", aliases=["champion"], stage="Production")]
    _, actions = registry_actions(versions, alias="champion", manage_stages=True, order="highest_version")
    assert [(a.kind, a.value) for a in actions] == [("delete_alias", None), ("transition", "Archived")]
    _, without_stages = registry_actions(versions, alias="champion", manage_stages=False, order="highest_version")
    assert [a.kind for a in without_stages] == ["delete_alias"]


def test_deployment_names_are_stable_and_update_uses_blue_green_with_rollback() -> None:
    package = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", "g", 3, "Approved", "r")
    settings = DeploymentSettings(role_arn="arn:aws:iam::123456789012:role/e", rollback_alarms=["p99-latency"])
    assert config_name(package, settings) == config_name(package, settings)
    assert config_name(package, settings) != config_name(package, settings.model_copy(update={"instance_count": 2}))
    request = update_request(package, settings)
    assert request["EndpointName"] == "g"
    assert request["DeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "p99-latency"}]}
    serverless = update_request(package, settings.model_copy(update={"serverless_memory_mb": 2048}))
    assert "DeploymentConfig" not in serverless


def test_settings_from_environment() -> None:
    settings = BridgeSettings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://m",
            "BRIDGE_MODEL_PACKAGE_GROUPS": "a, b",
            "BRIDGE_MANAGE_STAGES": "false",
            "BRIDGE_ROLLBACK_ALARMS": "x,y",
            "BRIDGE_CHAMPION_ORDER": "latest_approval",
        }
    )
    assert settings.groups == ["a", "b"] and not settings.manage_stages
    assert settings.deployment.rollback_alarms == ["x", "y"] and settings.champion_order == "latest_approval"


@pytest.mark.parametrize(
    "message",
    [
        "(pymysql.err.IntegrityError) (1062, \"Duplicate entry 'default-m-champion' for key 'PRIMARY'\")",
        "(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.name",
        "(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint",
    ],
    ids=["mysql", "sqlite", "postgres"],
)
def test_a_lost_upsert_race_is_told_apart_from_other_bad_requests(message: str) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST, INTERNAL_ERROR, INVALID_PARAMETER_VALUE

    assert lost_upsert_race(MlflowException(message, error_code=BAD_REQUEST))
    assert not lost_upsert_race(MlflowException(message, error_code=INTERNAL_ERROR))
    assert not lost_upsert_race(MlflowException("Invalid alias name 'v1'", error_code=INVALID_PARAMETER_VALUE))
    assert not lost_upsert_race(MlflowException("Registered Model not found", error_code=BAD_REQUEST))
    foreign_key = "(pymysql.err.IntegrityError) (1452, 'Cannot add or update a child row')"
    assert not lost_upsert_race(MlflowException(foreign_key, error_code=BAD_REQUEST))
    assert not lost_upsert_race(ValueError(message))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BRIDGE_ALIAS", "latest", "'latest' alias name (case insensitive) is reserved"),
        ("BRIDGE_ALIAS", "V1", "Version alias name 'V1' is reserved"),
        ("BRIDGE_ALIAS", "champ ion", "Invalid alias name"),
        ("BRIDGE_CHAMPION_ORDER", "newest", "'newest' is not one of highest_version, latest_approval"),
        ("BRIDGE_ENDPOINT_INSTANCE_COUNT", "two", "'two' is not a whole number"),
        ("BRIDGE_ENDPOINT_INSTANCE_COUNT", "0", "0 is below 1"),
        ("BRIDGE_SERVERLESS_MEMORY_MB", "lots", "'lots' is not a whole number"),
        ("BRIDGE_DEPLOY", "maybe", "'maybe' is not a boolean"),
        ("BRIDGE_MANAGE_STAGES", "nope", "'nope' is not a boolean"),
        ("BRIDGE_ENDPOINT_INSTANCE_TYPE", "m5.large", "'m5.large' does not match"),
        (
            "BRIDGE_MODEL_PACKAGE_GROUPS",
            "churn, not a group!",
            "'not a group!' is neither a group name nor a group ARN",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(variable: str, value: str, message: str) -> None:
    from mlflow_bridge.errors import InvalidSettings

    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://m", variable: value})
    assert [name for name, _ in refused.value.problems] == [variable]
    assert message in str(refused.value)


def test_boolean_spellings_and_group_arns_are_read_not_guessed() -> None:
    yes = BridgeSettings.from_env({"BRIDGE_DEPLOY": "Yes", "BRIDGE_MANAGE_STAGES": "1"})
    no = BridgeSettings.from_env({"BRIDGE_DEPLOY": "off", "BRIDGE_MANAGE_STAGES": "NO"})
    assert (yes.deployment.enabled, yes.manage_stages, no.deployment.enabled, no.manage_stages) == (
        True, True, False, False,
    )  # fmt: skip
    arn = "arn:aws:sagemaker:eu-west-1:210987654321:model-package-group/churn-model"
    assert BridgeSettings.from_env({"BRIDGE_MODEL_PACKAGE_GROUPS": f"{arn}, fraud"}).groups == ["churn-model", "fraud"]


def test_bad_settings_exit_2_from_the_cli_and_are_not_retried_by_lambda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before the bridge is built: nothing reaches MLflow or SageMaker (no server
    listens at the tracking URI, and none is needed to refuse)."""
    from mlflow_bridge import handler
    from mlflow_bridge.__main__ import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("BRIDGE_ALIAS", "latest")
    monkeypatch.setenv("BRIDGE_ENDPOINT_INSTANCE_COUNT", "two")
    assert main(["sync", "--group", "g", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "error: BRIDGE_ALIAS: 'latest' alias name" in err and "BRIDGE_ENDPOINT_INSTANCE_COUNT" in err
    assert "Traceback" not in err
    monkeypatch.setattr(handler, "_bridge", None)
    event = json.loads((Path(__file__).parent / "events" / "model_package_approved.json").read_text())
    answer = handler.lambda_handler(event)  # returns instead of raising: Lambda does not retry it
    assert answer["status"] == "rejected" and "BRIDGE_ALIAS" in answer["reason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("café".encode("latin-1") + b'{"detail": {}}', "is not UTF-8 text"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b"{not json", "is not JSON"),
    ],
    ids=["not UTF-8", "deeply nested", "not JSON"],
)
def test_handle_refuses_unreadable_event_files_in_one_line(
    body: bytes, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow_bridge.__main__ import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    (tmp_path / "event.json").write_bytes(body)
    assert main(["handle", str(tmp_path / "event.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unreachable_tracking_server_is_one_line_and_exit_1(
    aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from mlflow_bridge.__main__ import main

    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model_package_group(ModelPackageGroupName="down")
    sm.create_model_package(
        ModelPackageGroupName="down",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://b/m"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"mlflow_run_id": "0123456789abcdef"},
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["sync", "--group", "down"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1


def test_long_log_fields_are_cut_saying_so(tmp_path: Path) -> None:
    from mlflow_bridge.logs import MAX_FIELD_CHARACTERS, PackageLogger, configure

    arn = "arn:" + "x" * 5_000_000
    log_file = tmp_path / "bridge.log"
    PackageLogger(configure(file=str(log_file)), arn).info("event seen")
    line = json.loads(log_file.read_text().strip().splitlines()[-1])
    assert len(line["package_arn"]) < MAX_FIELD_CHARACTERS + 40
    assert line["package_arn"].endswith("... (5000004 characters)")

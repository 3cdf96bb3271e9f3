"""The bridge's decisions, event parsing and deployment requests, without I/O."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlflow_bridge.decisions import (
    Action,
    MlflowVersion,
    Package,
    Sighting,
    Stage,
    Tags,
    after_plan,
    choose_champion,
    deployment_target,
    ignore_reason,
    iso_utc,
    new_version_tags,
    registry_actions,
    staged_registry_actions,
    status_record,
    tag_updates,
    versions_to_create,
)
from mlflow_bridge.deployment import config_name, update_request
from mlflow_bridge.errors import DeploymentError, InvalidSettings, MalformedEvent, PermissionRefused
from mlflow_bridge.events import parse_event
from mlflow_bridge.failures import permanent_failure
from mlflow_bridge.mlflow_registry import lost_upsert_race
from mlflow_bridge.settings import BridgeSettings, DeploymentSettings
from tests.lambda_context import LambdaContext

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
    answer = handler.lambda_handler(event, LambdaContext())  # returns instead of raising: no retry
    assert answer["status"] == "rejected" and "BRIDGE_ALIAS" in answer["reason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("café".encode("latin-1") + b'{"detail": {}}', "is not UTF-8 text"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b"{not json", "is not JSON"),
        ((Path(__file__).parent / "events" / "pipeline_execution_succeeded.json").read_bytes(), "describe ID --log"),
    ],
    ids=["not UTF-8", "deeply nested", "not JSON", "the recorder's event"],
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
    from mlflow_bridge.logs import MAX_FIELD_CHARACTERS, bridge_logger

    arn = "arn:" + "x" * 5_000_000
    log_file = tmp_path / "bridge.log"
    logger = bridge_logger(file=str(log_file))
    logger.thread_safe_append_keys(package_arn=arn)
    logger.info("event seen", detail={"nested": ["y" * 10_000]})
    logger.thread_safe_remove_keys(["package_arn"])
    line = json.loads(log_file.read_text().strip().splitlines()[-1])
    assert len(line["package_arn"]) < MAX_FIELD_CHARACTERS + 40
    assert line["package_arn"].endswith("... (5000004 characters)")
    assert line["detail"]["nested"][0].endswith("... (10000 characters)")
    assert line["message"] == "event seen" and line["level"] == "INFO"


# ---- what an approval is --------------------------------------------------------------

ARN_1 = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
SEEN = Sighting(now="2026-12-02T09:00:00.000+00:00", event_time="2026-12-01T08:00:00.000+00:00")


def recorded(status: str = "Approved", **tags: str) -> MlflowVersion:
    base = {Tags.PACKAGE_ARN: ARN_1, Tags.GROUP: "g", Tags.PACKAGE_VERSION: "1", Tags.APPROVAL: status}
    base.update({Tags.APPROVAL_TIME: "2026-11-01T00:00:00.000+00:00", Tags.APPROVED_BY: "alice"}, **tags)
    return MlflowVersion("1", base)


def test_an_edit_or_a_redelivery_of_an_approved_package_changes_no_tag() -> None:
    edited = Package(ARN_1, "g", 1, "Approved", "r", modified_by="bob-who-edited-metadata")
    assert tag_updates([edited], [recorded()], SEEN) == []
    assert tag_updates([edited], [recorded()], Sighting(now="2030-01-01T00:00:00.000+00:00")) == []


def test_a_status_change_is_recorded_once_with_the_events_time_and_author() -> None:
    rejected = Package(ARN_1, "g", 1, "Rejected", "r", modified_by="carol")
    (update,) = tag_updates([rejected], [recorded()], SEEN)
    assert update.value == {
        Tags.APPROVAL: "Rejected",
        Tags.APPROVAL_TIME: SEEN.event_time,
        Tags.APPROVAL_TIME_SOURCE: "event",
        Tags.APPROVED_BY: "carol",
    }
    after = after_plan([recorded()], [], [update])
    assert tag_updates([rejected], after, Sighting(now="2030-01-01T00:00:00.000+00:00")) == []


def test_the_approval_time_is_the_creation_for_an_unmodified_package_else_the_event_else_now() -> None:
    created = Package(ARN_1, "g", 1, "Approved", "r", created="2026-10-10T10:10:10.000+00:00", created_by="ci",
                      never_modified=True)  # fmt: skip
    assert status_record(created, SEEN) == {
        Tags.APPROVAL_TIME: created.created, Tags.APPROVAL_TIME_SOURCE: "created", Tags.APPROVED_BY: "ci"
    }  # fmt: skip
    later = Package(ARN_1, "g", 1, "Approved", "r", created="2026-10-10T10:10:10.000+00:00")
    assert status_record(later, SEEN)[Tags.APPROVAL_TIME_SOURCE] == "event"
    missed = status_record(later, Sighting(now=SEEN.now))
    assert (missed[Tags.APPROVAL_TIME], missed[Tags.APPROVAL_TIME_SOURCE], missed[Tags.APPROVED_BY]) == (
        SEEN.now, "observed", "unknown",
    )  # fmt: skip


def test_a_version_without_an_approval_record_gets_one_and_a_missing_version_is_created() -> None:
    bare = MlflowVersion("1", {Tags.PACKAGE_ARN: ARN_1, Tags.APPROVAL: "Approved"})
    package = Package(ARN_1, "g", 1, "Approved", "r")
    (update,) = tag_updates([package], [bare], SEEN)
    assert update.value[Tags.APPROVAL_TIME] == SEEN.event_time and update.value[Tags.GROUP] == "g"
    second = Package(ARN_1.replace("/1", "/2"), "g", 2, "Approved", "r")
    untracked = Package(ARN_1.replace("/1", "/3"), "g", 3, "Approved", "")
    assert versions_to_create([package, second, untracked], [bare]) == [second]


def test_a_dry_run_plans_the_alias_on_the_state_its_writes_leave() -> None:
    """The issue's case: an older approved package edited, a newer one's approval missed:
    the plan on the current state alone would list one change where the sync makes four."""
    old = MlflowVersion("1", recorded().tags, ("champion",), "Production")
    newer = Package(ARN_1.replace("/1", "/2"), "g", 2, "Approved", "r")
    planned = after_plan([old], [(newer, new_version_tags(newer, SEEN))], [])
    _, actions = registry_actions(planned, alias="champion", manage_stages=True, order="highest_version")
    assert [(a.kind, a.version, a.value) for a in actions] == [
        ("set_alias", "new:2", None), ("transition", "1", "Archived"), ("transition", "new:2", "Production"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "champion_package", "serves", "expected"),
    [
        ("Approved", 1, False, ARN_1),  # the approved package is the champion: deploy it
        ("Approved", 2, False, None),  # another package is the champion
        ("Rejected", 2, True, "arn:p/2"),  # the endpoint served the rejected package: the champion replaces it
        ("Rejected", 2, False, None),  # the endpoint serves something else: leave it
        ("Rejected", None, True, None),  # nothing approved remains: keep serving, never tear down
    ],
)
def test_what_the_endpoint_serves_after_an_event(status, champion_package, serves, expected) -> None:
    package = Package(ARN_1, "g", 1, status, "r")
    champion = None
    if champion_package == 1:
        champion = MlflowVersion("1", {Tags.PACKAGE_ARN: ARN_1, Tags.APPROVAL: "Approved"})
    elif champion_package:
        champion = version(2, champion_package)
    assert deployment_target(package, champion, serves) == expected


def test_times_are_compared_in_one_spelling() -> None:
    from datetime import datetime, timedelta, timezone

    paris = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert iso_utc(paris) == "2026-12-01T09:00:00.123+00:00"
    assert iso_utc(datetime(2026, 12, 1, 9)) == "2026-12-01T09:00:00.000+00:00"


# ---- which failures are retried --------------------------------------------------------


def _mlflow_error(code: str) -> Exception:
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    return MlflowException("refused", error_code=getattr(databricks_pb2, code))


def _aws_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda: _mlflow_error("PERMISSION_DENIED"), "MANAGE on the registered model"),
        (
            lambda: PermissionRefused(
                operation="set alias 'champion' of",
                resource="registered model 'churn'",
                permission="EDIT",
                user="mlflow-bridge",
                detail="Permission denied",
            ),
            "grant MLflow user mlflow-bridge EDIT (or more) on registered model 'churn'",
        ),
        (lambda: _mlflow_error("UNAUTHENTICATED"), "BRIDGE_MLFLOW_SECRET_ARN"),
        (lambda: _mlflow_error("RESOURCE_DOES_NOT_EXIST"), "mlflow_run_id"),
        (lambda: _mlflow_error("INVALID_PARAMETER_VALUE"), "refused the request"),
        (lambda: _aws_error("AccessDeniedException", 400), "IAM role"),
        (lambda: _aws_error("ValidationException", 400), "correct the request"),
        (lambda: MalformedEvent("no detail"), "State Change"),
        (lambda: InvalidSettings([("BRIDGE_ALIAS", "reserved")]), "configuration"),
        (lambda: _no_region(), "AWS_REGION"),
    ],
    ids=[
        "mlflow 403",
        "mlflow 403 named",
        "mlflow 401",
        "mlflow 404",
        "mlflow 400",
        "aws denied",
        "aws invalid",
        "malformed",
        "settings",
        "no region",
    ],
)
def test_permanent_failures_are_reported_with_what_to_fix(make, fix: str) -> None:
    problem = permanent_failure(make())
    assert problem is not None and fix in problem.fix


def test_a_403_names_the_model_the_user_and_the_permission_the_call_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """MlflowRegistry turns the server's 403 into PermissionRefused: the operation, the
    registered model, the MLflow user and the permission (MLflow's own auth rules)."""
    from mlflow_bridge.decisions import Action
    from mlflow_bridge.mlflow_registry import MlflowRegistry

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                raise _mlflow_error("PERMISSION_DENIED")

            return call

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mlflow-bridge")
    registry = MlflowRegistry(Refusing())
    cases = [
        (lambda: registry.apply("churn", "champion", Action("set_alias", "3")), "EDIT", "set alias 'champion' of"),
        (lambda: registry.apply("churn", "champion", Action("delete_alias", "3")), "MANAGE", "delete alias"),
        (lambda: registry.delete_version("churn", "3"), "MANAGE", "delete version 3 of"),
        (lambda: registry.versions("churn"), "READ", "may not read"),
    ]
    for call, permission, operation in cases:
        with pytest.raises(PermissionRefused) as refused:
            call()
        problem = permanent_failure(refused.value)
        assert problem is not None and operation in problem.reason and "user mlflow-bridge" in problem.reason
        assert f"grant MLflow user mlflow-bridge {permission} (or more) on registered model 'churn'" in problem.fix


def _no_region() -> Exception:
    from botocore.exceptions import NoRegionError

    return NoRegionError()


@pytest.mark.parametrize(
    "make",
    [
        lambda: _mlflow_error("INTERNAL_ERROR"),  # also how the client reports a refused connection
        lambda: _mlflow_error("TEMPORARILY_UNAVAILABLE"),
        lambda: _mlflow_error("REQUEST_LIMIT_EXCEEDED"),
        lambda: _aws_error("ThrottlingException", 400),
        lambda: _aws_error("ServiceUnavailable", 503),
        lambda: _aws_error("SomethingNew", 500),
        lambda: __import__("botocore.exceptions").exceptions.EndpointConnectionError(endpoint_url="https://x"),
        lambda: DeploymentError("endpoint is Updating"),
        lambda: RuntimeError("did not settle"),
    ],
    ids=[
        "mlflow 500",
        "mlflow 503",
        "mlflow 429",
        "aws throttled",
        "aws 503",
        "aws 500",
        "aws connection",
        "endpoint busy",
        "unknown",
    ],
)
def test_transient_failures_are_left_to_retry(make) -> None:
    assert permanent_failure(make()) is None


# ---- the Lambda handler ------------------------------------------------------------------


@pytest.fixture
def lambda_stdout(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """What the handler writes to stdout (its log lines and EMF), as CloudWatch gets it:
    the logger's stream was bound when the module was imported, so it writes to whatever
    stdout is when it writes (pytest swaps it between a test's phases)."""
    import sys

    from mlflow_bridge import handler

    class CurrentStdout:
        def write(self, text: str) -> int:
            return sys.stdout.write(text)

        def flush(self) -> None:
            sys.stdout.flush()

    monkeypatch.setattr(handler.logger.registered_handler, "stream", CurrentStdout())
    return lambda: capsys.readouterr().out


def _emf_counts(output: str) -> dict[str, float]:
    """The counts of the EMF lines Powertools Metrics printed (CloudWatch embedded metric format)."""
    counts: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' in line:
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                counts[metric["Name"]] = sum(record[metric["Name"]]) if isinstance(record[metric["Name"]], list) \
                    else record[metric["Name"]]  # fmt: skip
            assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLflowBridge"
    return counts


def test_a_malformed_event_is_rejected_before_settings_or_secrets_are_read(
    monkeypatch: pytest.MonkeyPatch, lambda_stdout
) -> None:
    """Secrets Manager is unreachable (nothing listens at its endpoint): the event is still
    rejected, with no retry, since it is parsed first."""
    from mlflow_bridge import handler

    monkeypatch.setattr(handler, "_bridge", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("BRIDGE_MLFLOW_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:b-AbCdEf")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    context = LambdaContext()
    answer = handler.lambda_handler({**EVENT, "detail": {"ModelPackageArn": "x" * 5_000_000}}, context)
    assert answer["status"] == "rejected" and "ModelPackageArn" in answer["reason"]
    assert handler._bridge is None  # nothing was set up
    out = lambda_stdout()
    (line,) = [json.loads(x) for x in out.splitlines() if '"event rejected"' in x]
    assert line["cold_start"] in (True, False) and line["function_request_id"] == context.aws_request_id
    assert line["package_arn"].endswith("(5000000 characters)") and line["fix"]
    assert len(max(out.splitlines(), key=len)) < 20_000  # no line carries the 5 MB value
    assert _emf_counts(out) == {"Rejected": 1}


def test_a_transient_failure_raises_for_a_retry_and_is_counted(monkeypatch: pytest.MonkeyPatch, lambda_stdout) -> None:
    from mlflow_bridge import handler

    class Down:
        def handle(self, event: object) -> dict:
            raise _mlflow_error("TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(handler, "_bridge", Down())
    with pytest.raises(Exception, match="refused"):
        handler.lambda_handler(EVENT, LambdaContext())
    out = lambda_stdout()
    assert _emf_counts(out) == {"Retried": 1}
    assert any('"event failed; Lambda retries it"' in x for x in out.splitlines())


def test_a_permission_error_is_rejected_once_not_retried(monkeypatch: pytest.MonkeyPatch, lambda_stdout) -> None:
    from mlflow_bridge import handler

    class Denied:
        def handle(self, event: object) -> dict:
            raise _mlflow_error("PERMISSION_DENIED")

    monkeypatch.setattr(handler, "_bridge", Denied())
    answer = handler.lambda_handler(EVENT, LambdaContext())
    assert answer["status"] == "rejected" and "MANAGE" in answer["fix"]
    assert _emf_counts(lambda_stdout()) == {"Rejected": 1}


def test_the_job_scripts_write_the_contracts_untracked_run_value() -> None:
    """evaluate.py runs in the job image and cannot import the contract: kept equal here."""
    from mlflow_bridge.contract import UNTRACKED_RUN
    from tests.test_data_handling import scripts_importable

    with scripts_importable():
        import evaluate

    assert evaluate.UNTRACKED == UNTRACKED_RUN


def test_the_register_step_writes_the_keys_the_bridge_reads() -> None:
    from mlflow_bridge.contract import CustomerMetadata
    from mlflow_bridge.sagemaker_registry import SageMakerRegistry

    class Client:
        def describe_model_package(self, ModelPackageName: str) -> dict:
            return {
                "ModelPackageArn": ModelPackageName, "ModelPackageGroupName": "g", "ModelPackageVersion": 1,
                "ModelApprovalStatus": "Approved",
                "CustomerMetadataProperties": {CustomerMetadata.RUN_ID: "abc", CustomerMetadata.REGISTERED_MODEL: "m"},
            }  # fmt: skip

    package = SageMakerRegistry(Client()).describe(ARN_1)
    assert (package.run_id, package.registered_model, package.never_modified) == ("abc", "m", True)


def test_racing_deliveries_keep_the_lowest_version_of_a_package() -> None:
    from mlflow_bridge.decisions import duplicate_versions

    versions = [version(3, 1), version(1, 1), version(2, 2), version(4, 1)]
    assert [v.version for v in duplicate_versions(versions, {"arn:p/1"})] == ["3", "4"]
    assert duplicate_versions(versions, {"arn:p/2"}) == []


@pytest.mark.parametrize(
    ("variables", "routing"),
    [
        ({}, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}),
        ({"BRIDGE_ROLLOUT": "canary"},
         {"Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}),
        ({"BRIDGE_ROLLOUT": "linear", "BRIDGE_ROLLOUT_PERCENT": "25", "BRIDGE_ROLLOUT_WAIT_SECONDS": "120"},
         {"Type": "LINEAR", "WaitIntervalInSeconds": 120, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}}),
    ],
    ids=["all at once", "canary 10 %", "linear 25 %"],
)  # fmt: skip
def test_rollouts_are_update_endpoint_requests_botocore_accepts(variables: dict[str, str], routing: dict) -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    env = {"MLFLOW_TRACKING_URI": "http://mlflow", "BRIDGE_ROLLBACK_ALARMS": "p99-latency,5xx", **variables}
    settings = BridgeSettings.from_env(env).deployment
    package = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", "g", 3, "Approved", "r")
    request = update_request(package, settings)
    policy = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "p99-latency"}, {"AlarmName": "5xx"},
    ]  # fmt: skip
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("UpdateEndpoint").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"BRIDGE_ROLLOUT": "canary", "BRIDGE_ROLLOUT_PERCENT": "60"}, ("BRIDGE_ROLLOUT_PERCENT", "60 is above 50")),
        ({"BRIDGE_ROLLOUT": "linear", "BRIDGE_ROLLOUT_PERCENT": "5"}, ("BRIDGE_ROLLOUT_PERCENT", "5 is below 10")),
        ({"BRIDGE_ROLLOUT": "canary", "BRIDGE_ROLLOUT_WAIT_SECONDS": "7200"},
         ("BRIDGE_ROLLOUT_WAIT_SECONDS", "7200 is above 3600")),
        ({"BRIDGE_ROLLOUT": "blue-green"},
         ("BRIDGE_ROLLOUT", "'blue-green' is not one of all_at_once, canary, linear")),
    ],
)  # fmt: skip
def test_rollouts_sagemaker_would_refuse_are_refused_by_name(variables: dict[str, str], problem: tuple) -> None:
    env = {"MLFLOW_TRACKING_URI": "http://mlflow", "BRIDGE_ROLLBACK_ALARMS": "p99-latency", **variables}
    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env(env)
    assert problem in refused.value.problems


def test_a_gradual_rollout_without_alarms_is_refused() -> None:
    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow", "BRIDGE_ROLLOUT": "canary"})
    assert ("BRIDGE_ROLLOUT", "canary needs BRIDGE_ROLLBACK_ALARMS to roll back on") in refused.value.problems


STAGES = [Stage("Staging", "staging", "Staging"), Stage("Production", "champion", "Production")]


def staged(number: int, lifecycle: str, stage_status: str = "Approved", aliases=(), stage: str = "None"):
    base = version(number, number, "Approved", aliases, stage)
    tags = {**base.tags, Tags.LIFECYCLE_STAGE: lifecycle, Tags.LIFECYCLE_STAGE_STATUS: stage_status}
    return MlflowVersion(base.version, tags, base.aliases, base.stage)


def kinds(actions) -> list[tuple[str, str, str]]:
    return [(a.kind, a.version, a.value) for a in actions]


def test_approved_into_staging_moves_the_staging_alias_only() -> None:
    champions, actions = staged_registry_actions([staged(1, "Staging")], STAGES, "highest_version")
    assert champions["Staging"].version == "1" and champions["Production"] is None
    assert kinds(actions) == [("set_alias", "1", "staging"), ("transition", "1", "Staging")]


def test_promotion_moves_production_and_leaves_staging_to_its_own_holder() -> None:
    versions = [staged(1, "Production", aliases=["staging"], stage="Staging"), staged(2, "Staging")]
    _, actions = staged_registry_actions(versions, STAGES, "highest_version")
    assert kinds(actions) == [
        ("set_alias", "2", "staging"), ("set_alias", "1", "champion"),
        ("transition", "2", "Staging"), ("transition", "1", "Production"),
    ]  # fmt: skip


def test_rejection_in_production_returns_production_to_the_previous_model_only() -> None:
    versions = [
        staged(1, "Production", stage="Archived"),
        staged(2, "Production", "Rejected", aliases=["champion"], stage="Production"),
        staged(3, "Staging", aliases=["staging"], stage="Staging"),
    ]
    champions, actions = staged_registry_actions(versions, STAGES, "highest_version")
    assert champions["Production"].version == "1" and champions["Staging"].version == "3"
    assert kinds(actions) == [
        ("set_alias", "1", "champion"), ("transition", "2", "Archived"), ("transition", "1", "Production"),
    ]  # fmt: skip
    alone = [staged(2, "Production", "Rejected", aliases=["champion"], stage="Production")]
    _, actions = staged_registry_actions(alone, STAGES, "highest_version")
    assert kinds(actions) == [("delete_alias", "2", "champion"), ("transition", "2", "Archived")]


def test_a_settled_staged_registry_needs_nothing_and_describes_each_alias() -> None:
    versions = [staged(1, "Production", aliases=["champion"], stage="Production"),
                staged(2, "Staging", aliases=["staging"], stage="Staging")]  # fmt: skip
    assert staged_registry_actions(versions, STAGES, "highest_version")[1] == []
    assert Action("set_alias", "2", "staging").describe("m", "champion") == "m: point alias 'staging' at version 2"
    assert Action("set_alias", "2").describe("m", "champion") == "m: point alias 'champion' at version 2"


def test_stages_from_the_environment_are_checked() -> None:
    stages = json.dumps([{"lifecycle_stage": s.lifecycle_stage, "alias": s.alias, "legacy_stage": s.legacy_stage}
                         for s in STAGES])  # fmt: skip
    settings = BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://m", "BRIDGE_STAGES": stages})
    assert settings.stages == STAGES
    bad = json.dumps([{"lifecycle_stage": "Staging", "alias": "latest"}, {"lifecycle_stage": "Staging", "alias": "x",
                                                                          "legacy_stage": "QA"}])  # fmt: skip
    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://m", "BRIDGE_STAGES": bad})
    messages = " ".join(message for _, message in refused.value.problems)
    assert "latest" in messages and "legacy_stage 'QA'" in messages and "share a lifecycle_stage" in messages
    elsewhere = json.dumps([{"lifecycle_stage": "Production", "alias": "champion",
                             "endpoint": {"deploy_role_arn": "arn:aws:iam::2222:role/x"}}])  # fmt: skip
    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://m", "BRIDGE_STAGES": elsewhere})
    (problem,) = refused.value.problems
    assert problem[0] == "BRIDGE_STAGES[0].endpoint: BRIDGE_ENDPOINT_DEPLOY_ROLE_ARN"


@pytest.mark.parametrize(
    ("stages", "where", "said"),
    [
        (
            [{"lifecycle_stage": "Production", "alias": "champion", "endpoint": "prod-endpoint"}],
            "BRIDGE_STAGES[0].endpoint",
            'expected an object, not "prod-endpoint"',
        ),
        (
            [{"lifecycle_stage": "Staging", "alias": "staging"}, ["Production", "champion"]],
            "BRIDGE_STAGES[1]",
            "expected an object",
        ),
        (
            [{"lifecycle_stage": "Pre Production", "alias": "pre"}],
            "BRIDGE_STAGES[0].lifecycle_stage",
            "'Pre Production' is not a SageMaker lifecycle stage name",
        ),
        ([{"lifecycle_stage": 3, "alias": "x"}], "BRIDGE_STAGES[0].lifecycle_stage", "expected a string, not 3"),
        (
            [{"lifecycle_stage": "QA", "alias": "qa", "endpoint": {"nme": "x"}}],
            "BRIDGE_STAGES[0].endpoint",
            "unknown key(s) nme",
        ),
        ({"lifecycle_stage": "QA"}, "BRIDGE_STAGES", "must be a JSON list"),
        (
            [{"lifecycle_stage": "QA", "alias": "qa", "endpoint": {"rollback_alarms": [1]}}],
            "BRIDGE_STAGES[0].endpoint.rollback_alarms",
            "expected a list of text, not [1]",
        ),
        (
            [{"lifecycle_stage": "QA", "alias": "qa", "endpoint": {"name": None}}],
            "BRIDGE_STAGES[0].endpoint.name",
            "expected text or a number, not null",
        ),
    ],
    ids=[
        "endpoint as text",
        "stage as a list",
        "stage name with a space",
        "number",
        "endpoint typo",
        "object",
        "alarm as a number",
        "null name",
    ],
)
def test_a_wrong_type_in_bridge_stages_is_a_settings_error_naming_its_path(
    stages: object, where: str, said: str
) -> None:
    """Refused when read (InvalidSettings: the Lambda rejects the event without retrying),
    never an AttributeError half-way through reading them."""
    with pytest.raises(InvalidSettings) as refused:
        BridgeSettings.from_env({"MLFLOW_TRACKING_URI": "http://m", "BRIDGE_STAGES": json.dumps(stages)})
    assert [(name, message) for name, message in refused.value.problems if name == where and said in message], (
        refused.value.problems
    )


def test_an_endpoint_serving_a_package_rejected_in_its_stage_goes_back_to_the_stage_champion() -> None:
    rejected_in_production = Package("arn:p/2", "g", 2, "Approved", "r", lifecycle_stage="Production",
                                     lifecycle_status="Rejected")  # fmt: skip
    previous = staged(1, "Production")
    assert deployment_target(rejected_in_production, previous, endpoint_serves_package=True) == "arn:p/1"
    assert deployment_target(rejected_in_production, previous, endpoint_serves_package=False) is None
    promoted = Package("arn:p/1", "g", 1, "Approved", "r", lifecycle_stage="Production", lifecycle_status="Approved")
    assert deployment_target(promoted, previous, endpoint_serves_package=False) == "arn:p/1"


def test_with_latest_approval_a_stage_follows_its_latest_promotion() -> None:
    """ "Highest version or latest promotion, as today": the promotion into the stage, not
    the approval, dates a package for a stage's alias."""
    earlier, later = "2026-12-01T08:00:00.000+00:00", "2026-12-02T08:00:00.000+00:00"
    promoted_late = staged(1, "Production")
    promoted_late.tags.update({Tags.LIFECYCLE_STAGE_TIME: later, Tags.APPROVAL_TIME: earlier})
    promoted_early = staged(2, "Production")
    promoted_early.tags.update({Tags.LIFECYCLE_STAGE_TIME: earlier, Tags.APPROVAL_TIME: later})
    versions = [promoted_late, promoted_early]
    assert staged_registry_actions(versions, STAGES, "latest_approval")[0]["Production"].version == "1"
    assert staged_registry_actions(versions, STAGES, "highest_version")[0]["Production"].version == "2"


def test_a_lifecycle_change_is_dated_once_and_a_redelivery_keeps_the_date() -> None:
    promoted = Package(ARN_1, "g", 1, "Approved", "r", lifecycle_stage="Production", lifecycle_status="Approved")
    in_staging = recorded(**{Tags.LIFECYCLE_STAGE: "Staging", Tags.LIFECYCLE_STAGE_STATUS: "Approved",
                             Tags.LIFECYCLE_STAGE_TIME: "2026-11-20T00:00:00.000+00:00"})  # fmt: skip
    (update,) = tag_updates([promoted], [in_staging], SEEN)
    assert update.value == {Tags.LIFECYCLE_STAGE: "Production", Tags.LIFECYCLE_STAGE_TIME: SEEN.event_time}
    after = after_plan([in_staging], [], [update])
    assert tag_updates([promoted], after, Sighting(now="2030-01-01T00:00:00.000+00:00")) == []
    assert new_version_tags(promoted, Sighting(now=SEEN.now))[Tags.LIFECYCLE_STAGE_TIME] == SEEN.now
    assert Tags.LIFECYCLE_STAGE_TIME not in new_version_tags(Package(ARN_1, "g", 1, "Approved", "r"), SEEN)


@pytest.mark.parametrize(
    ("approval", "stage", "stage_status", "demoted"),
    [
        ("Approved", "Staging", "Approved", "Production"),  # moved back a stage
        ("Approved", "Production", "Rejected", "Production"),  # rejected in production
        ("Rejected", "Production", "Approved", "Production"),  # its approval revoked
        ("Approved", "Production", "Approved", ""),  # still the champion: a redelivery
    ],
)
def test_a_package_leaving_the_last_stage_is_a_demotion(
    approval: str, stage: str, stage_status: str, demoted: str
) -> None:
    from mlflow_bridge.decisions import demotion

    champion = staged(1, "Production", aliases=["champion"], stage="Production")
    package = Package("arn:p/1", "g", 1, approval, "r", lifecycle_stage=stage, lifecycle_status=stage_status)
    assert demotion(package, [champion], STAGES) == demoted
    other = Package("arn:p/2", "g", 2, "Approved", "r", lifecycle_stage="Staging", lifecycle_status="Approved")
    assert demotion(other, [champion], STAGES) == ""  # it never held production
    assert demotion(package, [champion], []) == ""  # without stages there is no last stage to leave


EXECUTION_EVENT = json.loads((Path(__file__).parent / "events" / "pipeline_execution_succeeded.json").read_text())


class _EndedExecution:
    """SageMaker's answers about an execution that ended just now with `status`, no steps and
    no parameters; its ARN as asked, or `arn`."""

    def __init__(self, status: str, arn: str = "") -> None:
        self.status, self.arn = status, arn

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        return {"PipelineExecutionArn": self.arn or PipelineExecutionArn, "PipelineExecutionStatus": self.status,
                "CreationTime": now, "LastModifiedTime": now}  # fmt: skip

    def get_paginator(self, operation: str) -> Any:
        key = {"list_pipeline_execution_steps": "PipelineExecutionSteps"}.get(operation, "PipelineParameters")
        return type("Pages", (), {"paginate": lambda self, **_: [{key: []}]})()


def test_a_malformed_execution_event_is_rejected_naming_the_field(lambda_stdout) -> None:
    from mlflow_bridge import handler
    from mlflow_bridge.events import parse_execution_event

    assert parse_execution_event(EXECUTION_EVENT).detail.current_status == "Succeeded"
    event = json.loads(json.dumps(EXECUTION_EVENT))
    event["detail"]["pipelineExecutionArn"] = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn"
    answer = handler.lambda_handler(event, LambdaContext())
    assert answer["status"] == "rejected" and "pipelineExecutionArn" in answer["reason"]
    assert "SageMaker Model Building Pipeline Execution Status Change" in answer["fix"]
    (line,) = [json.loads(x) for x in lambda_stdout().splitlines() if '"event rejected"' in x]
    assert line["execution_arn"] == event["detail"]["pipelineExecutionArn"]


def test_the_recorders_settings_name_every_missing_or_bad_variable() -> None:
    from mlflow_bridge.settings import RecorderSettings

    with pytest.raises(InvalidSettings) as caught:
        RecorderSettings.from_env({})
    assert [name for name, _ in caught.value.problems] == [
        "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "BRIDGE_PIPELINES"]  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": "http://mlflow", "MLFLOW_EXPERIMENT_NAME": "churn",
           "BRIDGE_PIPELINES": "churn,bad_name"}  # fmt: skip
    with pytest.raises(InvalidSettings, match="BRIDGE_PIPELINES: 'bad_name' is not a pipeline name"):
        RecorderSettings.from_env(env)
    settings = RecorderSettings.from_env({**env, "BRIDGE_PIPELINES": "churn, churn-batch"})
    assert settings.pipelines == ["churn", "churn-batch"] and settings.experiment == "churn"


def test_a_recorder_mlflow_refuses_is_rejected_naming_the_experiment_user_and_permission(
    monkeypatch: pytest.MonkeyPatch, lambda_stdout
) -> None:
    """The recorder runs as the pipeline's MLflow user; a 403 on the parent run says what to grant."""
    from mlflow_bridge import handler
    from mlflow_bridge.execution_runs import ExecutionRecorder

    class Mlflow:
        def get_experiment_by_name(self, name: str) -> Any:
            return type("Experiment", (), {"experiment_id": "1"})()

        def search_runs(self, *args: Any, **kwargs: Any) -> list[Any]:
            info = type("Info", (), {"run_id": "parent", "start_time": 1})()
            return [type("Run", (), {"info": info})()]

        def log_batch(self, *args: Any, **kwargs: Any) -> None:
            raise _mlflow_error("PERMISSION_DENIED")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "pipeline")
    recorder = ExecutionRecorder(_EndedExecution("Failed"), Mlflow(), "churn", ["diabetes-regression"])
    monkeypatch.setattr(handler, "_recorder", recorder)
    answer = handler.lambda_handler(EXECUTION_EVENT, LambdaContext())
    assert answer["status"] == "rejected"
    assert "user pipeline may not edit the runs of on experiment 'churn'" in answer["reason"]
    assert "grant MLflow user pipeline EDIT (or more) on experiment 'churn'" in answer["fix"]
    assert _emf_counts(lambda_stdout()) == {"Rejected": 1}


@pytest.mark.parametrize(("execution", "parent", "leftover"), [
    ("Succeeded", "FINISHED", "KILLED"), ("Failed", "FAILED", "FAILED"), ("Stopped", "KILLED", "KILLED")])  # fmt: skip
def test_an_ended_execution_ends_its_parent_and_leftover_runs_in_mlflows_terms(
    execution: str, parent: str, leftover: str
) -> None:
    """A stopped execution is KILLED in MLflow's words; a run still running when the execution
    ended did not finish (KILLED), unless the execution failed (FAILED with it)."""
    from mlflow_bridge.execution_runs import ExecutionResult, record_on_parent_run

    ended: dict[str, str] = {}

    class Mlflow:
        def log_batch(self, *args: Any, **kwargs: Any) -> None: ...

        def get_run(self, run_id: str) -> Any:
            return type("Run", (), {"info": type("Info", (), {"experiment_id": "1"})()})()

        def search_runs(self, *args: Any, **kwargs: Any) -> list[Any]:
            return [type("Run", (), {"info": type("Info", (), {"run_id": r})()})() for r in ("parent", "trial")]

        def set_terminated(self, run_id: str, status: str, end_time: int) -> None:
            ended[run_id] = status

    record_on_parent_run(Mlflow(), "parent", ExecutionResult("arn", execution, started=1.0, ended=2.0), None)
    assert ended == {"parent": parent, "trial": leftover}


def test_the_recorder_takes_either_case_of_its_pipelines_arn_and_finds_the_parent_by_sagemakers() -> None:
    """SageMaker writes some pipeline ARNs lower-cased and the rule lets either case through:
    the recorder takes the event for its pipeline `Churn-Model`, and finds the parent by the
    ARN DescribePipelineExecution gives (the one the jobs tagged it with)."""
    from mlflow_bridge.execution_runs import ExecutionRecorder

    canonical = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/Churn-Model/execution/abc123"
    searched: list[str] = []

    class Mlflow:
        def get_experiment_by_name(self, name: str) -> Any:
            return type("Experiment", (), {"experiment_id": "1"})()

        def search_runs(self, experiments: list[str], filter_string: str, **kwargs: Any) -> list[Any]:
            searched.append(filter_string)
            info = type("Info", (), {"run_id": "parent", "start_time": 1, "experiment_id": "1"})()
            return [type("Run", (), {"info": info})()] if f"'{canonical}'" in filter_string else []

        def log_batch(self, run_id: str, metrics: list[Any], tags: list[Any]) -> None:
            assert {t.key: t.value for t in tags}["mlops.failure_reason"] == ""  # a retried failure is not kept

        def get_run(self, run_id: str) -> Any:
            return type("Run", (), {"info": type("Info", (), {"experiment_id": "1"})()})()

        def set_terminated(self, *args: Any) -> None: ...

    recorder = ExecutionRecorder(_EndedExecution("Succeeded", canonical), Mlflow(), "churn", ["Churn-Model"])
    answer = recorder.record(canonical.lower())
    assert answer == {"status": "synced", "run_id": "parent", "execution_status": "Succeeded"}
    assert f"'{canonical}'" in searched[0]

"""The bridge against a real MLflow server (sqlite and MariaDB) and moto."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlflow_bridge import handler
from mlflow_bridge.contract import PACKAGE_STAGE_TAG
from mlflow_bridge.decisions import Action, Package, Tags
from mlflow_bridge.deployment import EndpointDeployer, config_name, production_variant, update_request
from mlflow_bridge.errors import DeploymentError, MalformedEvent
from mlflow_bridge.mlflow_registry import MlflowRegistry, versions_filter
from mlflow_bridge.sagemaker_registry import SageMakerRegistry
from mlflow_bridge.service import Bridge
from mlflow_bridge.settings import BridgeSettings, DeploymentSettings
from pipeline.tracking_server import TrackingServer
from tests.lambda_context import LambdaContext
from tests.tracking_fixtures import small_model_dir, tracking_server  # noqa: F401 - fixtures

EVENT = json.loads((Path(__file__).parent / "events" / "model_package_approved.json").read_text())
ROLE = "arn:aws:iam::123456789012:role/mlops-endpoint"


class World:
    """One test's group, registered model, SageMaker client and MLflow client."""

    def __init__(self, uri: str, model_dir: Path, model: str = "") -> None:
        from mlflow import MlflowClient

        self.group = f"g-{uuid.uuid4().hex[:8]}"
        self.model = model or f"m-{self.group}"
        self.uri = uri
        self.model_dir = model_dir
        self.sm = boto3.client("sagemaker", region_name="us-east-1")
        self.mlflow = MlflowClient(uri)
        self.sm.create_model_package_group(ModelPackageGroupName=self.group)
        self.experiment = self.mlflow.create_experiment(f"exp-{self.group}")

    def settings(self, **changes: Any) -> BridgeSettings:
        base = BridgeSettings(tracking_uri=self.uri, groups=[self.group], deployment=DeploymentSettings(role_arn=ROLE))
        return base.model_copy(update=changes)

    def bridge(self, clock: Callable[[], datetime] | None = None, **changes: Any) -> Bridge:
        settings = self.settings(**changes)
        return Bridge(
            settings,
            SageMakerRegistry(self.sm),
            MlflowRegistry.connect(self.uri),
            EndpointDeployer(self.sm, settings.deployment),
            **({"clock": clock} if clock else {}),
        )

    def package(self, status: str = "PendingManualApproval", group: str | None = None, logged: str = "folder") -> str:
        """A package whose run holds the model as this project's jobs log it (`folder`), as
        `mlflow.sklearn.log_model` does in MLflow 3 (`logged_model`), or not at all (`none`)."""
        run = self.mlflow.create_run(self.experiment)
        if logged == "folder":
            self.mlflow.log_artifacts(run.info.run_id, str(self.model_dir), "model")
        elif logged == "logged_model":
            import mlflow

            mlflow.set_tracking_uri(self.uri)
            with mlflow.start_run(run_id=run.info.run_id):
                mlflow.sklearn.log_model(
                    mlflow.sklearn.load_model(str(self.model_dir)), name="model", pip_requirements=["scikit-learn"]
                )
        return self.sm.create_model_package(
            ModelPackageGroupName=group or self.group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [
                    {"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://b/m.tar.gz"}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"mlflow_run_id": run.info.run_id, "mlflow_registered_model": self.model},
        )["ModelPackageArn"]

    def set_status(self, arn: str, status: str) -> None:
        # moto 5.2.5 drops CustomerMetadataProperties on any update that omits them (SageMaker keeps them)
        metadata = self.sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
        self.sm.update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus=status, CustomerMetadataProperties=metadata
        )

    def edit(self, arn: str, **metadata: str) -> None:
        """An edit that is not an approval: a customer-metadata key added, status unchanged."""
        current = self.sm.describe_model_package(ModelPackageName=arn)
        # moto 5.2.5 drops the status too on an update that omits it (SageMaker keeps it)
        self.sm.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=current["ModelApprovalStatus"],
            CustomerMetadataProperties={**current["CustomerMetadataProperties"], **metadata},
        )

    def event(self, arn: str, status: str = "Approved") -> dict[str, Any]:
        """The state-change event, timed now (EventBridge's `time` of the change)."""
        event = json.loads(json.dumps(EVENT))
        event["time"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        event["detail"].update(ModelPackageArn=arn, ModelPackageGroupName=self.group, ModelApprovalStatus=status)
        return event

    def versions(self) -> list[Any]:
        found = self.mlflow.search_model_versions(versions_filter(self.model))
        return sorted((v for v in found if v.name == self.model), key=lambda v: int(v.version))

    def assert_serves(self, arn: str, alias: str = "champion") -> None:
        """`models:/NAME@ALIAS` points at the package's version, loads, and predicts."""
        import mlflow.pyfunc

        assert self.alias_target(alias) == self.version_of(arn).version
        mlflow.set_tracking_uri(self.uri)
        model = mlflow.pyfunc.load_model(f"models:/{self.model}@{alias}")
        assert model.predict([[1.0, 2.0]])[0] == pytest.approx(3.0)

    def alias_target(self, alias: str = "champion") -> str | None:
        return self.mlflow.get_registered_model(self.model).aliases.get(alias)

    def version_of(self, arn: str) -> Any:
        (found,) = [v for v in self.versions() if v.tags.get(Tags.PACKAGE_ARN) == arn]
        return found


@pytest.fixture
def world(aws: str, tracking_server: TrackingServer, small_model_dir: Path) -> World:  # noqa: F811
    return World(tracking_server.uri, small_model_dir)


def test_approval_syncs_version_alias_stage_and_deploys(world: World) -> None:
    arn = world.package()
    world.set_status(arn, "Approved")
    result = world.bridge().handle(world.event(arn))
    assert result["status"] == "synced"
    version = world.version_of(arn)
    assert version.tags[Tags.APPROVAL] == "Approved" and version.tags[Tags.PACKAGE_VERSION] == "1"
    assert version.tags[Tags.GROUP] == world.group
    assert world.alias_target() == version.version
    assert version.current_stage == "Production"
    endpoint = world.sm.describe_endpoint(EndpointName=world.group)
    assert endpoint["EndpointStatus"] == "InService"
    assert version.tags[Tags.ENDPOINT] == world.group
    assert version.tags[Tags.APPROVAL_TIME_SOURCE] == "event"
    world.assert_serves(arn)


def test_duplicate_deliveries_change_nothing_further(world: World) -> None:
    arn = world.package("Approved")
    bridge = world.bridge()
    results = [bridge.handle(world.event(arn)) for _ in range(5)]
    assert len(world.versions()) == 1
    assert all(r["changes"] == [] for r in results[1:])
    assert "endpoint" in " ".join(results[0]["changes"])
    world.assert_serves(arn)


def test_rejection_removes_alias_and_archives(world: World) -> None:
    arn = world.package("Approved")
    bridge = world.bridge()
    bridge.handle(world.event(arn))
    world.assert_serves(arn)
    world.set_status(arn, "Rejected")
    bridge.handle(world.event(arn, "Rejected"))
    version = world.version_of(arn)
    assert version.tags[Tags.APPROVAL] == "Rejected"
    assert world.alias_target() is None
    assert version.current_stage == "Archived"
    assert world.sm.describe_endpoint(EndpointName=world.group)["EndpointStatus"] == "InService"  # not torn down


# A registered model name holding both quote characters, spaces and non-ASCII: any name
# MLflow accepts (it refuses only `/` and `:`) works end to end.
ODD_NAME = """team's "churn" model (α)"""


@pytest.mark.parametrize("odd_name", [False, True], ids=["plain name", "any characters"])
def test_rejecting_the_champion_falls_back_to_the_newest_remaining_approved(
    aws: str,
    tracking_server: TrackingServer,  # noqa: F811
    small_model_dir: Path,  # noqa: F811
    odd_name: bool,
) -> None:
    world = World(tracking_server.uri, small_model_dir, model=f"{ODD_NAME} {uuid.uuid4().hex[:6]}" if odd_name else "")
    first, second = world.package("Approved"), world.package("Approved")
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
    bridge.handle(world.event(first))
    bridge.handle(world.event(second))
    world.assert_serves(second)
    world.set_status(second, "Rejected")
    bridge.handle(world.event(second, "Rejected"))
    world.assert_serves(first)
    assert world.version_of(first).current_stage == "Production"
    assert world.version_of(second).current_stage == "Archived"
    assert bridge.sync_groups([world.group], dry_run=False) == []


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["v1-then-v2", "v2-then-v1"])
def test_either_order_leaves_the_alias_on_the_highest_version(world: World, order: tuple[int, int]) -> None:
    arns = [world.package("Approved"), world.package("Approved")]
    # moto cannot update an endpoint: the update after v1-then-v2 is covered with a Stubber below
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
    for index in order:
        bridge.handle(world.event(arns[index]))
    world.assert_serves(arns[1])
    assert world.version_of(arns[1]).current_stage == "Production"
    assert world.version_of(arns[0]).current_stage != "Production"


def test_late_approval_of_an_older_version_does_not_redeploy(world: World) -> None:
    arns = [world.package("Approved"), world.package("Approved")]
    bridge = world.bridge()
    bridge.handle(world.event(arns[1]))
    served = world.sm.describe_endpoint(EndpointName=world.group)["EndpointConfigName"]
    result = bridge.handle(world.event(arns[0]))
    assert not any("endpoint" in change for change in result["changes"])
    assert world.sm.describe_endpoint(EndpointName=world.group)["EndpointConfigName"] == served
    assert served == config_name(Package(arns[1], world.group, 2, "Approved"), DeploymentSettings(role_arn=ROLE))
    world.assert_serves(arns[1])


def raised_by_concurrent(calls: list[Callable[[], object]]) -> list[BaseException]:
    """Run the calls in threads released at once, as racing deliveries would; what they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:  # returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_approvals_converge(world: World) -> None:
    arns = [world.package("Approved"), world.package("Approved")]
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
    assert raised_by_concurrent([partial(bridge.handle, world.event(arn)) for arn in arns * 3]) == []
    assert sorted(v.tags[Tags.PACKAGE_ARN] for v in world.versions()) == sorted(arns)
    world.assert_serves(arns[1])
    assert [v.current_stage for v in world.versions()].count("Production") == 1


def test_racing_first_writes_of_an_alias_and_a_tag_all_succeed(world: World) -> None:
    """MLflow writes aliases and tags by read-then-insert, so writers that race on a row
    that does not exist yet collide on its key. Every write is one the bridge may race on
    (concurrent deliveries); each must succeed, and the last value must stand."""
    arn = world.package("Approved")
    registry = MlflowRegistry.connect(world.uri)
    registry.ensure_model(world.model)
    run_id = world.sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]["mlflow_run_id"]
    version = registry.create_version(world.model, run_id, registry.model_source(run_id), {})
    writers, rounds = 8, 4

    def write(alias: str, key: str) -> None:
        registry.apply(world.model, alias, Action("set_alias", version))
        registry.set_tags(world.model, version, {key: "same"})

    for round_ in range(rounds):
        assert raised_by_concurrent([partial(write, f"race{round_}", f"race_{round_}")] * writers) == []
    model = world.mlflow.get_registered_model(world.model)
    assert {f"race{r}": version for r in range(rounds)}.items() <= model.aliases.items()
    tags = world.mlflow.get_model_version(world.model, version).tags
    assert all(tags[f"race_{r}"] == "same" for r in range(rounds))
    import mlflow.pyfunc

    mlflow.set_tracking_uri(world.uri)
    assert mlflow.pyfunc.load_model(f"models:/{world.model}@race0").predict([[1.0, 2.0]])[0] == pytest.approx(3.0)


def test_other_groups_pending_and_vanished_packages_are_ignored(world: World) -> None:
    other = f"other-{world.group}"
    world.sm.create_model_package_group(ModelPackageGroupName=other)
    bridge = world.bridge()
    foreign = world.package("Approved", group=other)
    assert bridge.handle(world.event(foreign))["reason"].startswith(f"package group {other} is not synced")
    pending = world.package()
    assert "PendingManualApproval" in bridge.handle(world.event(pending, "PendingManualApproval"))["reason"]
    missing = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{world.group}/99"
    assert bridge.handle(world.event(missing))["reason"] == "the model package no longer exists"
    assert world.versions() == []


def test_malformed_events_are_rejected_not_retried(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler, "_bridge", world.bridge())
    for event in ({"source": "aws.sagemaker"}, {**EVENT, "detail": {"ModelPackageArn": 7}}, "nonsense"):
        result = handler.lambda_handler(event, LambdaContext())
        assert result["status"] == "rejected"
    with pytest.raises(MalformedEvent):
        world.bridge().handle({"detail-type": "x"})


def test_tracking_outage_raises_and_redelivery_converges(
    aws: str,
    small_model_dir: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("bridge-outage")
    server = TrackingServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts").start()
    try:
        world = World(server.uri, small_model_dir)
        arn = world.package("Approved")
        server.stop()
        bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, Lambda must retry
            bridge.handle(world.event(arn))
        server.start()
        bridge.handle(world.event(arn))
        bridge.handle(world.event(arn))
        assert len(world.versions()) == 1
        world.assert_serves(arn)
    finally:
        server.stop()


def test_existing_endpoint_gets_a_blue_green_update_with_rollback_alarms() -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    settings = DeploymentSettings(role_arn=ROLE, rollback_alarms=["diabetes-p99-latency", "diabetes-5xx"])
    package = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes/2", "diabetes", 2, "Approved")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_model",
            {
                "ModelName": "diabetes-v2",
                "ExecutionRoleArn": ROLE,
                "CreationTime": "2026-11-27",
                "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/diabetes-v2",
            },
            {"ModelName": "diabetes-v2"},
        )
        stub.add_client_error(
            "describe_endpoint_config", "ValidationException", "Could not find endpoint configuration"
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
        )
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "diabetes",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/diabetes",
                "EndpointConfigName": "diabetes-v1-00000000",
                "EndpointStatus": "InService",
                "CreationTime": "2026-11-27",
                "LastModifiedTime": "2026-11-27",
            },
            {"EndpointName": "diabetes"},
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/diabetes"},
            update_request(package, settings),
        )
        assert EndpointDeployer(client, settings).deploy(package) == ("diabetes", "updated")
        stub.assert_no_pending_responses()
    request = update_request(package, settings)
    assert request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"


def test_endpoint_busy_is_a_retryable_error() -> None:

    client = boto3.client("sagemaker", region_name="us-east-1")
    package = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/d/1", "d", 1, "Approved")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "d",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/d",
                "EndpointStatus": "Updating",
                "CreationTime": "2026-11-27",
                "LastModifiedTime": "2026-11-27",
            },
        )
        with pytest.raises(DeploymentError, match="Updating"):
            EndpointDeployer(client, DeploymentSettings(role_arn=ROLE)).current_config(package)


def _existing(stub: Stubber, package: Package, settings: DeploymentSettings, model: str) -> None:
    """The package's model and endpoint config exist already (an earlier delivery made them)."""
    stub.add_response(
        "describe_model",
        {"ModelName": model, "ExecutionRoleArn": ROLE, "CreationTime": "2026-11-27",
         "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{model}"},
        {"ModelName": model},
    )  # fmt: skip
    config = config_name(package, settings)
    stub.add_response(
        "describe_endpoint_config",
        {"EndpointConfigName": config, "CreationTime": "2026-11-27",
         "ProductionVariants": [production_variant(package, settings)],
         "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{config}"},
        {"EndpointConfigName": config},
    )  # fmt: skip


def test_a_failed_endpoint_is_deleted_then_created_again_with_its_holders_config() -> None:
    """DeleteEndpoint is the only operation SageMaker accepts on a Failed endpoint (API
    Reference, EndpointSummary), so the repair deletes it (retry: DeploymentError) and the
    retry creates it with the holder's config; before, a Failed endpoint whose config was
    the holder's counted as "unchanged" and was never repaired."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    settings = DeploymentSettings(role_arn=ROLE, endpoint_name="diabetes-production")
    package = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/diabetes/2", "diabetes", 2, "Approved")
    config = config_name(package, settings)
    endpoint = {"EndpointName": "diabetes-production", "CreationTime": "2026-11-27", "LastModifiedTime": "2026-11-27",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/diabetes-production"}  # fmt: skip
    with Stubber(client) as stub:
        _existing(stub, package, settings, "diabetes-v2")
        stub.add_response(
            "describe_endpoint",
            {**endpoint, "EndpointConfigName": config, "EndpointStatus": "Failed",
             "FailureReason": "The primary container for production variant AllTraffic did not pass the ping "
                              "health check."},
            {"EndpointName": "diabetes-production"},
        )  # fmt: skip
        stub.add_response("delete_endpoint", {}, {"EndpointName": "diabetes-production"})
        with pytest.raises(DeploymentError, match=r"was Failed \(The primary container .*\): deleted"):
            EndpointDeployer(client, settings).deploy(package)
        stub.assert_no_pending_responses()

        _existing(stub, package, settings, "diabetes-v2")  # the retry: the endpoint is gone
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": endpoint["EndpointArn"]},
            {"EndpointName": "diabetes-production", "EndpointConfigName": config},
        )
        assert EndpointDeployer(client, settings).deploy(package) == ("diabetes-production", "created")
        stub.assert_no_pending_responses()


def test_sync_dry_run_lists_the_repairs_and_sync_applies_them(world: World) -> None:
    first, second = world.package("Approved"), world.package("Approved")
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
    bridge.handle(world.event(first))
    world.set_status(first, "Rejected")  # the rejection event was missed, as was second's approval
    planned = bridge.sync_groups([world.group], dry_run=True)
    text = "\n".join(planned)
    assert f"create a version for {second}" in text
    assert "sagemaker_approval_status" in text and "Rejected" in text
    assert len(world.versions()) == 1 and world.alias_target() == world.version_of(first).version  # untouched
    applied = bridge.sync_groups([world.group], dry_run=False)
    assert applied
    world.assert_serves(second)
    assert world.version_of(first).tags[Tags.APPROVAL] == "Rejected"
    assert bridge.sync_groups([world.group], dry_run=False) == []


def test_sync_command_line(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow_bridge.__main__ import main as bridge_main

    arn = world.package("Approved")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)
    monkeypatch.setenv("BRIDGE_DEPLOY", "false")
    assert bridge_main(["sync", "--group", world.group, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would {world.model}: create a version for {arn}" in out and "MLflow unchanged" in out
    assert world.versions() == []
    assert bridge_main(["sync", "--group", world.group]) == 0
    assert "MLflow repaired" in capsys.readouterr().out
    world.assert_serves(arn)
    monkeypatch.delenv("BRIDGE_MODEL_PACKAGE_GROUPS", raising=False)
    assert bridge_main(["sync"]) == 2


RACE_PACKAGE = Package("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1", "churn", 1, "Approved")
RACE_SETTINGS = DeploymentSettings(role_arn=ROLE)


def _lost_race_stubs(stub: Stubber, variant: dict) -> None:
    """Another delivery created the model first (between our look and our create); the
    endpoint config was already there when we looked; then it created the endpoint too."""
    name, config = "churn-v1", config_name(RACE_PACKAGE, RACE_SETTINGS)
    exists = 'Cannot create already existing {} "arn:aws:sagemaker:us-east-1:123456789012:{}".'
    stub.add_client_error(
        "describe_model", "ValidationException", "Could not find model", expected_params={"ModelName": name}
    )
    stub.add_client_error("create_model", "ValidationException", exists.format("model", f"model/{name}"))
    stub.add_response(
        "describe_model",
        {"ModelName": name, "ExecutionRoleArn": ROLE, "CreationTime": "2026-11-30",
         "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}",
         "Containers": [{"ModelPackageName": RACE_PACKAGE.arn, "Environment": {}}]},
        {"ModelName": name},
    )  # fmt: skip
    stub.add_response(
        "describe_endpoint_config",
        {"EndpointConfigName": config, "CreationTime": "2026-11-30", "ProductionVariants": [variant],
         "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{config}"},
        {"EndpointConfigName": config},
    )  # fmt: skip


def test_a_racing_first_deployment_that_made_the_same_resources_is_success() -> None:
    from mlflow_bridge.deployment import production_variant

    client = boto3.client("sagemaker", region_name="us-east-1")
    config = config_name(RACE_PACKAGE, RACE_SETTINGS)
    endpoint = {"EndpointName": "churn", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn",
                "CreationTime": "2026-11-30", "LastModifiedTime": "2026-11-30"}  # fmt: skip
    with Stubber(client) as stub:
        _lost_race_stubs(stub, {**production_variant(RACE_PACKAGE, RACE_SETTINGS), "InitialVariantWeight": 1.0})
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_client_error("create_endpoint", "ValidationException", "Cannot create already existing endpoint")
        stub.add_response("describe_endpoint", {**endpoint, "EndpointConfigName": config, "EndpointStatus": "Creating"})
        assert EndpointDeployer(client, RACE_SETTINGS).deploy(RACE_PACKAGE) == ("churn", "unchanged")
        stub.assert_no_pending_responses()
    with Stubber(client) as stub:  # the other order: the racer's endpoint serves another config
        _lost_race_stubs(stub, {**production_variant(RACE_PACKAGE, RACE_SETTINGS), "InitialVariantWeight": 1.0})
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_client_error("create_endpoint", "ValidationException", "Cannot create already existing endpoint")
        stub.add_response(
            "describe_endpoint", {**endpoint, "EndpointConfigName": "churn-v2-0a1b2c3d", "EndpointStatus": "Creating"}
        )
        with pytest.raises(DeploymentError, match="endpoint churn was just created with other settings"):
            EndpointDeployer(client, RACE_SETTINGS).deploy(RACE_PACKAGE)
        stub.assert_no_pending_responses()


def test_a_racing_model_with_another_package_is_an_error_not_success() -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    name = "churn-v1"
    with Stubber(client) as stub:
        stub.add_client_error("describe_model", "ValidationException", "Could not find model")
        stub.add_client_error("create_model", "ValidationException", "Cannot create already existing model")
        stub.add_response(
            "describe_model",
            {"ModelName": name, "ExecutionRoleArn": ROLE, "CreationTime": "2026-11-30",
             "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}",
             "Containers": [{"ModelPackageName": RACE_PACKAGE.arn.replace("/1", "/9")}]},
        )  # fmt: skip
        with pytest.raises(DeploymentError, match="model churn-v1 was just created with other settings"):
            EndpointDeployer(client, RACE_SETTINGS).deploy(RACE_PACKAGE)
        stub.assert_no_pending_responses()


def test_a_model_logged_the_ordinary_way_gets_a_loadable_version(world: World) -> None:
    """MLflow 3 keeps `log_model`'s model as a logged model, not under the run's artifacts:
    the version points at it, and `models:/NAME@champion` loads and predicts."""
    arn = world.package("Approved", logged="logged_model")
    world.bridge(deployment=DeploymentSettings(enabled=False)).handle(world.event(arn))
    version = world.version_of(arn)
    assert version.source.startswith("models:/m-")  # the logged model, not the run's artifacts
    world.assert_serves(arn)


def test_a_run_without_a_model_is_ignored_alike_by_sync_and_its_dry_run(world: World) -> None:
    empty = world.package("Approved", logged="none")
    good = world.package("Approved")
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False))
    planned = bridge.sync_groups([world.group], dry_run=True)
    applied = bridge.sync_groups([world.group], dry_run=False)
    # a dry run cannot know the number MLflow will give a new version ("new:2")
    same = [re.sub(r"version (new:)?\d+", "version N", change) for change in planned]
    assert same == [re.sub(r"version \d+", "version N", change) for change in applied]
    assert not any(empty in change for change in applied)
    assert [v.tags[Tags.PACKAGE_ARN] for v in world.versions()] == [good]
    world.assert_serves(good)


def test_a_package_whose_run_the_server_lost_is_rejected_naming_run_server_and_fix(world: World) -> None:
    """A reset or restored tracking server at the same URI: the package's mlflow_run_id is
    not there. Once "unexpected RestException: RESOURCE_DOES_NOT_EXIST" locally."""
    from mlflow_bridge.errors import MissingRun
    from mlflow_bridge.failures import permanent_failure

    arn = world.package("Approved")
    lost = "0" * 32
    metadata = world.sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    world.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                                  CustomerMetadataProperties={**metadata, "mlflow_run_id": lost})  # fmt: skip
    with pytest.raises(MissingRun) as raised:
        world.bridge(deployment=DeploymentSettings(enabled=False)).handle(world.event(arn))
    assert f"the tracking server {world.uri} has no run {lost}" in str(raised.value)
    problem = permanent_failure(raised.value)  # the Lambda rejects it once instead of retrying
    assert problem is not None and "run --local --no-cache" in problem.fix and lost in problem.reason


def test_an_edit_of_an_approved_package_is_not_an_approval(world: World) -> None:
    """With `latest_approval`, a metadata edit of the older approved package once moved the
    alias and Production back to it, by handle and by sync alike."""
    older, newer = world.package(), world.package()
    bridge = world.bridge(deployment=DeploymentSettings(enabled=False), champion_order="latest_approval")
    for arn in (older, newer):
        world.set_status(arn, "Approved")
        bridge.handle(world.event(arn))
    world.assert_serves(newer)
    before = world.version_of(older).tags
    world.edit(older, review="reviewed-by-ops")
    assert bridge.handle(world.event(older))["changes"] == []
    assert bridge.sync_groups([world.group], dry_run=True) == []
    assert bridge.sync_groups([world.group], dry_run=False) == []
    assert world.version_of(older).tags == before
    world.assert_serves(newer)
    assert world.version_of(newer).current_stage == "Production"


def test_a_dry_run_lists_exactly_what_the_sync_then_does(world: World) -> None:
    """Drift of every kind at once: an approved package edited, a rejection and two
    approvals missed (one of a run with no model). Both runs see the same clock."""
    noon = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    edited, rejected = world.package("Approved"), world.package("Approved")
    bridge = world.bridge(lambda: noon, deployment=DeploymentSettings(enabled=False))
    for arn in (edited, rejected):
        bridge.handle(world.event(arn))
    world.edit(edited, review="ok")
    world.set_status(rejected, "Rejected")
    missed, empty = world.package(), world.package("Approved", logged="none")
    world.set_status(missed, "Approved")  # an approval whose event was lost: dated when first seen
    planned = bridge.sync_groups([world.group], dry_run=True)
    applied = bridge.sync_groups([world.group], dry_run=False)
    numbers = {f"new:{world.version_of(missed).tags[Tags.PACKAGE_VERSION]}": world.version_of(missed).version}
    assert [re.sub(r"new:\d+", lambda m: numbers[m.group(0)], change) for change in planned] == applied
    assert len(applied) >= 4 and not any(empty in change for change in applied)
    assert bridge.sync_groups([world.group], dry_run=True) == []
    world.assert_serves(missed)
    assert world.version_of(missed).tags[Tags.APPROVAL_TIME] == "2026-12-02T12:00:00.000+00:00"
    assert world.version_of(missed).tags[Tags.APPROVAL_TIME_SOURCE] == "observed"


class StagedRegistry:
    """SageMaker as the bridge sees it once lifecycle stages are used. moto 5.2.5 has no
    `ModelLifeCycle`, so each DescribeModelPackage is answered by botocore's Stubber, which
    checks the exact request and that the answer fits the service model's output shape:
    moto's package, plus the lifecycle stage SageMaker would report."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client = boto3.client("sagemaker", region_name="us-east-1")
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.lifecycle: dict[str, dict[str, str]] = {}

    def move(self, arn: str, stage: str, status: str = "Approved") -> None:
        self.lifecycle[arn] = {"Stage": stage, "StageStatus": status}

    def deliver(self, bridge: Bridge, arn: str, *, then: tuple[str, ...] = ()) -> dict[str, Any]:
        """One state-change event for the package: the bridge describes it (and `then` the
        packages it deploys instead), then syncs."""
        self._describe_response(arn)
        # the bridge tags the package with where it is (the production-protecting policy reads it)
        tag = {"Key": PACKAGE_STAGE_TAG, "Value": self.lifecycle[arn]["Stage"]}
        self.stubber.add_response("add_tags", {"Tags": [tag]}, {"ResourceArn": arn, "Tags": [tag]})
        for described_arn in then:
            self._describe_response(described_arn)
        result = bridge.handle(self.world.event(arn))
        self.stubber.assert_no_pending_responses()
        return result

    def _describe_response(self, arn: str) -> None:
        described = self.world.sm.describe_model_package(ModelPackageName=arn)
        described.pop("ResponseMetadata")
        described.setdefault("ModelPackageName", described["ModelPackageGroupName"])  # moto omits it
        self.stubber.add_response(
            "describe_model_package", {**described, "ModelLifeCycle": self.lifecycle[arn]}, {"ModelPackageName": arn}
        )

    def sync(self, bridge: Bridge, arns: list[str], *, then: tuple[str, ...] = (), dry_run: bool = False) -> list[str]:
        """`sync --group`: the bridge lists the group's packages and describes each (and
        `then` each stage's holder, to check its endpoint)."""
        summaries = self.world.sm.list_model_packages(ModelPackageGroupName=self.world.group)
        summaries.pop("ResponseMetadata")
        self.stubber.add_response(
            "list_model_packages",
            summaries,
            {"ModelPackageGroupName": self.world.group, "ModelPackageType": "Versioned"},
        )
        for arn in arns:
            self._describe_response(arn)
        for arn in arns if not dry_run else ():  # each package tagged with where it is
            tag = {"Key": PACKAGE_STAGE_TAG, "Value": self.lifecycle[arn]["Stage"]}
            self.stubber.add_response("add_tags", {"Tags": [tag]}, {"ResourceArn": arn, "Tags": [tag]})
        for arn in then:
            self._describe_response(arn)
        changes = bridge.sync_groups([self.world.group], dry_run=dry_run)
        self.stubber.assert_no_pending_responses()
        return changes


def test_lifecycle_stages_drive_one_alias_each_and_a_rejection_returns_only_its_stage(world: World) -> None:
    from mlflow_bridge.decisions import Stage

    sagemaker = StagedRegistry(world)
    stages = [Stage("Staging", "staging", "Staging"), Stage("Production", "champion", "Production")]
    settings = world.settings(stages=stages, deployment=DeploymentSettings(enabled=False))
    bridge = Bridge(settings, SageMakerRegistry(sagemaker.client), MlflowRegistry.connect(world.uri), None)
    first, second, third = (world.package("Approved") for _ in range(3))

    sagemaker.move(first, "Staging")  # approved into staging: the staging alias and stage only
    assert sagemaker.deliver(bridge, first)["status"] == "synced"
    world.assert_serves(first, "staging")
    assert world.alias_target("champion") is None and world.version_of(first).current_stage == "Staging"

    for arn in (first, second):  # promoted in turn; the second is the latest in production
        sagemaker.move(arn, "Production")
        sagemaker.deliver(bridge, arn)
    sagemaker.move(third, "Staging")
    sagemaker.deliver(bridge, third)
    world.assert_serves(second, "champion")
    world.assert_serves(third, "staging")

    sagemaker.move(second, "Production", "Rejected")  # rejected in production: back to the previous model
    result = sagemaker.deliver(bridge, second)
    world.assert_serves(first, "champion")
    world.assert_serves(third, "staging")  # the other stage is untouched
    assert {v.tags[Tags.PACKAGE_ARN]: v.current_stage for v in world.versions()} == {
        first: "Production", second: "Archived", third: "Staging",
    }  # fmt: skip
    assert world.version_of(second).tags[Tags.LIFECYCLE_STAGE_STATUS] == "Rejected"
    assert any("point alias 'champion' at version" in change for change in result["changes"])

    for arn in (first, second, third, second):  # redelivered and out of order: nothing changes
        assert not [c for c in sagemaker.deliver(bridge, arn)["changes"] if "alias" in c or "stage" in c]
    world.assert_serves(first, "champion")
    world.assert_serves(third, "staging")

    world.mlflow.set_registered_model_alias(world.model, "staging", world.version_of(first).version)  # drift
    changes = sagemaker.sync(bridge, [first, second, third])
    assert f"point alias 'staging' at version {world.version_of(third).version}" in " ".join(changes)
    world.assert_serves(third, "staging")
    world.assert_serves(first, "champion")


class AppliedUpdates:
    """UpdateEndpoint for moto 5.2.5, which lacks it: each request is checked by botocore's
    validator (the client validates before sending), recorded, and applied as its end state:
    the endpoint re-created on the new config, which a blue/green update leaves."""

    def __init__(self, client: Any) -> None:
        from botocore.awsrequest import AWSResponse

        self.client = client
        self.requests: list[dict[str, Any]] = []

        def apply(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
            request = json.loads(params["body"])
            self.requests.append(request)
            client.delete_endpoint(EndpointName=request["EndpointName"])
            client.create_endpoint(
                EndpointName=request["EndpointName"], EndpointConfigName=request["EndpointConfigName"]
            )
            arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{request['EndpointName'].lower()}"
            return AWSResponse("https://sagemaker", 200, {}, None), {"EndpointArn": arn}

        client.meta.events.register("before-call.sagemaker.UpdateEndpoint", apply)


def test_each_stage_serves_its_champion_on_its_endpoint_with_its_rollout(world: World) -> None:
    from mlflow_bridge.decisions import Stage
    from mlflow_bridge.settings import Rollout

    sagemaker = StagedRegistry(world)
    updates = AppliedUpdates(world.sm)
    stages = [Stage("Staging", "staging", "Staging"), Stage("Production", "champion", "Production")]
    staging = DeploymentSettings(role_arn=ROLE, endpoint_name=f"{world.group}-staging")
    production = DeploymentSettings(role_arn=ROLE, endpoint_name=f"{world.group}-production",
                                    rollback_alarms=["p99", "5xx"], rollout=Rollout(kind="canary", percent=10,
                                                                                    wait_seconds=600))  # fmt: skip
    settings = world.settings(stages=stages, stage_deployments={"Staging": staging, "Production": production})
    deployers = {"Staging": EndpointDeployer(world.sm, staging), "Production": EndpointDeployer(world.sm, production)}
    bridge = Bridge(settings, SageMakerRegistry(sagemaker.client), MlflowRegistry.connect(world.uri), None,
                    stage_deployers=deployers)  # fmt: skip
    first, second = world.package("Approved"), world.package("Approved")

    def serving(endpoint: DeploymentSettings) -> str | None:
        found = world.sm.list_endpoints(NameContains=endpoint.endpoint_name)["Endpoints"]
        if not found:
            return None
        config = world.sm.describe_endpoint(EndpointName=endpoint.endpoint_name)["EndpointConfigName"]
        return next(arn for arn in (first, second) if config.startswith(f"{world.group}-v{arn.rsplit('/', 1)[1]}-"))

    sagemaker.move(first, "Staging")
    sagemaker.deliver(bridge, first)
    assert (serving(staging), serving(production)) == (first, None)  # approve: the staging endpoint only

    sagemaker.move(first, "Production")
    sagemaker.deliver(bridge, first)
    sagemaker.move(second, "Staging")
    sagemaker.deliver(bridge, second)
    assert (serving(staging), serving(production)) == (second, first)
    assert [r["EndpointName"] for r in updates.requests] == [staging.endpoint_name]
    routing = updates.requests[0]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE"

    sagemaker.move(second, "Production")
    sagemaker.deliver(bridge, second)
    assert (serving(staging), serving(production)) == (second, second)  # staging keeps serving until replaced
    canary = updates.requests[-1]["DeploymentConfig"]
    assert canary["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"] == {
        "Type": "CAPACITY_PERCENT", "Value": 10,
    }  # fmt: skip
    assert canary["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "p99"}, {"AlarmName": "5xx"}]}

    sagemaker.move(second, "Production", "Rejected")  # production goes back to the previous model
    result = sagemaker.deliver(bridge, second, then=(first,))
    assert (serving(staging), serving(production)) == (second, first)
    assert f"endpoint {production.endpoint_name} updated with {first}" in result["changes"]
    assert world.version_of(first).tags[Tags.endpoint_of("Production")] == production.endpoint_name
    world.assert_serves(first, "champion")


def test_a_stage_endpoint_in_another_account_is_deployed_as_that_accounts_role(world: World) -> None:
    """ "The account/role to deploy with when it lives in another account": the bridge
    assumes the stage's deploy role (moto's STS) and the endpoint is made in that account,
    with that account's execution role; nothing is deployed at home."""
    from mlflow_bridge.cross_account import assumed_role_client

    other = "222222222222"
    deploy_role, execution_role = (f"arn:aws:iam::{other}:role/{n}" for n in ("mlflow-bridge-deploy", "endpoint"))
    stages = [
        {"lifecycle_stage": "Staging", "alias": "staging", "legacy_stage": "Staging"},
        {"lifecycle_stage": "Production", "alias": "champion", "legacy_stage": "Production",
         "endpoint": {"name": f"{world.group}-production", "deploy_role_arn": deploy_role, "role_arn": execution_role}},
    ]  # fmt: skip
    settings = BridgeSettings.from_env({
        "MLFLOW_TRACKING_URI": world.uri, "BRIDGE_MODEL_PACKAGE_GROUPS": world.group,
        "BRIDGE_ENDPOINT_ROLE_ARN": ROLE, "BRIDGE_STAGES": json.dumps(stages),
    })  # fmt: skip
    assert settings.stage_deployments["Production"].deploy_role_arn == deploy_role
    sagemaker = StagedRegistry(world)
    bridge = Bridge.from_settings(settings, sagemaker_client=sagemaker.client)
    package = world.package("Approved")
    sagemaker.move(package, "Production")
    assert sagemaker.deliver(bridge, package)["status"] == "synced"

    there = assumed_role_client("sagemaker", deploy_role, "us-east-1")
    endpoint = there.describe_endpoint(EndpointName=f"{world.group}-production")
    assert endpoint["EndpointArn"].split(":")[4] == other
    model = there.describe_model(ModelName=endpoint["EndpointConfigName"].rsplit("-", 1)[0])
    assert model["ExecutionRoleArn"] == execution_role
    assert world.sm.list_endpoints(NameContains=world.group)["Endpoints"] == []  # nothing at home
    assert world.version_of(package).tags[Tags.endpoint_of("Production")] == f"{world.group}-production"


class DeniedClient:
    """A stage client in an account whose deploy role does not trust the bridge's role: its
    first call fails as botocore's assume-role credential refresh fails there."""

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            from botocore.exceptions import ClientError

            message = (
                "User: arn:aws:sts::123456789012:assumed-role/mlflow-bridge/x is not authorized to perform: "
                "sts:AssumeRole on resource: arn:aws:iam::222222222222:role/mlflow-bridge-deploy"
            )
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole")

        return call


def test_a_stage_whose_role_cannot_be_assumed_is_rejected_alone_and_sync_deploys_it_later(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One event deploys two stages: production's account does not trust the bridge yet.
    Staging is deployed anyway, the event is rejected (no retry) naming the account and role
    to fix, and once the trust policy is fixed `sync` deploys production (`--dry-run` lists
    it first). Then a data scientist moves the champion back to Staging: a demotion, logged
    and counted (EMF `Demoted`)."""
    from mlflow_bridge.decisions import Stage
    from mlflow_bridge.errors import StagesUnreachable
    from mlflow_bridge.failures import permanent_failure

    sagemaker = StagedRegistry(world)
    AppliedUpdates(world.sm)
    stages = [Stage("Staging", "staging", "Staging"), Stage("Production", "champion", "Production")]
    deploy_role = "arn:aws:iam::222222222222:role/mlflow-bridge-deploy"
    staging = DeploymentSettings(role_arn=ROLE, endpoint_name=f"{world.group}-staging")
    production = DeploymentSettings(role_arn=ROLE, endpoint_name=f"{world.group}-production",
                                    deploy_role_arn=deploy_role)  # fmt: skip
    settings = world.settings(stages=stages, stage_deployments={"Staging": staging, "Production": production})
    deployers = {"Staging": EndpointDeployer(world.sm, staging), "Production": EndpointDeployer(world.sm, production)}
    bridge = Bridge(settings, SageMakerRegistry(sagemaker.client), MlflowRegistry.connect(world.uri), None,
                    stage_deployers=deployers)  # fmt: skip
    first, second = world.package("Approved"), world.package("Approved")

    def serving(endpoint: str) -> str:
        config = world.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        return next(arn for arn in (first, second) if config.startswith(f"{world.group}-v{arn.rsplit('/', 1)[1]}-"))

    sagemaker.move(first, "Staging")
    sagemaker.deliver(bridge, first)
    sagemaker.move(second, "Staging")
    sagemaker.deliver(bridge, second)
    assert serving(staging.endpoint_name) == second
    # production's account is changed, and its role does not trust the bridge's (yet)
    bridge.stage_deployers["Production"] = EndpointDeployer(DeniedClient(), production)
    sagemaker.move(second, "Production")  # staging goes back to first; production cannot be reached
    with pytest.raises(StagesUnreachable) as refused:
        sagemaker.deliver(bridge, second, then=(first,))
    assert serving(staging.endpoint_name) == first  # the other stage deployed anyway
    assert f"endpoint {staging.endpoint_name} updated with {first}" in refused.value.changes
    problem = permanent_failure(refused.value)  # a rejection: Lambda does not retry it
    assert problem is not None and "stage Production: could not assume " + deploy_role in problem.reason
    assert "in account 222222222222" in problem.fix and deploy_role in problem.fix and "BridgeRoleArn" in problem.fix
    world.assert_serves(second, "champion")  # MLflow is in step: only the endpoint waits

    bridge.stage_deployers["Production"] = EndpointDeployer(world.sm, production)  # the trust policy is fixed
    planned = sagemaker.sync(bridge, [first, second], then=(first, second), dry_run=True)
    assert f"stage Production: deploy {second} (its endpoint serves another package, or none)" in planned
    assert world.sm.list_endpoints(NameContains=f"{world.group}-production")["Endpoints"] == []  # only listed
    repaired = sagemaker.sync(bridge, [first, second], then=(first, second))
    assert f"stage Production: endpoint {production.endpoint_name} created with {second}" in repaired
    assert serving(production.endpoint_name) == second
    assert sagemaker.sync(bridge, [first, second], then=(first, second)) == []  # in step: nothing to do
    # someone points the staging endpoint at another package by hand: sync puts its holder back
    stray = Package(second, world.group, int(second.rsplit("/", 1)[1]), "Approved")
    world.sm.update_endpoint(EndpointName=staging.endpoint_name, EndpointConfigName=config_name(stray, staging))
    assert serving(staging.endpoint_name) == second
    repaired = sagemaker.sync(bridge, [first, second], then=(first, second))
    assert f"stage Staging: endpoint {staging.endpoint_name} updated with {first}" in repaired
    assert serving(staging.endpoint_name) == first

    sagemaker.move(second, "Staging")  # a data scientist takes the champion out of production
    sagemaker._describe_response(second)
    tag = {"Key": PACKAGE_STAGE_TAG, "Value": "Staging"}
    sagemaker.stubber.add_response("add_tags", {"Tags": [tag]}, {"ResourceArn": second, "Tags": [tag]})
    monkeypatch.setattr(handler, "_bridge", bridge)
    capsys.readouterr()
    result = handler.lambda_handler(world.event(second), LambdaContext())
    assert result["status"] == "synced" and result["demoted_from"] == "Production"
    printed = capsys.readouterr().out
    metrics = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    assert any(m.get("Demoted") == [1.0] or m.get("Demoted") == 1.0 for m in metrics), printed

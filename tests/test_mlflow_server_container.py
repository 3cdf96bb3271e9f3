"""The MLflow server container's entrypoint, run on the host (no Docker) against MariaDB
and a moto S3 server: health, authentication, artifacts in S3, no secret on a command line."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.child_process import free_port
from tests.conftest import REPO
from tests.server_entrypoint import (
    ENTRYPOINT,
    entrypoint_env,
    mariadb_service_user,
    running_entrypoint,
    server_certificate,
    server_uri,
)
from tests.tracking_fixtures import small_model_dir  # noqa: F401 - fixture

SERVER_DIR = REPO / "infra" / "mlflow_server"
DB_PASSWORD = "db-pa55word-" + uuid.uuid4().hex[:8]
ADMIN_PASSWORD = "admin-pa55word-" + uuid.uuid4().hex[:8]
PIPELINE_PASSWORD = "pipeline-pa55word-" + uuid.uuid4().hex[:8]
BRIDGE_PASSWORD = "bridge-pa55word-" + uuid.uuid4().hex[:8]
SCIENTIST_PASSWORD = "scientist-pa55word-" + uuid.uuid4().hex[:8]


@pytest.fixture
def mariadb_user() -> Iterator[tuple[str, str]]:
    with mariadb_service_user(DB_PASSWORD) as user_and_database:
        yield user_and_database


def server_env(
    home: Path,
    mariadb_user: tuple[str, str],
    s3_endpoint: str,
    users: dict[str, str],
    model_managers: dict[str, list[str]] | None = None,
    admin_password: str = ADMIN_PASSWORD,
    tls: bool = False,
) -> dict[str, str]:
    """The container's environment for one worker on this test's database and moto S3."""
    user, database = mariadb_user
    return entrypoint_env(
        home=home,
        port=free_port(),
        workers=1,
        database=(user, DB_PASSWORD, database),
        artifacts="s3://mlops-artifacts-123456789012/mlflow",
        s3_endpoint=s3_endpoint,
        admin_password=admin_password,
        service_users=users,
        model_managers=model_managers,
        tls=tls,
    )


def approved_package_event(sm: Any, run_id: str, **metadata: str) -> dict[str, Any]:
    """An Approved package of group `churn` trained by `run_id`, and its state-change event."""
    from tests.test_bridge import EVENT

    arn = sm.create_model_package(
        ModelPackageGroupName="churn", ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://b/m"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"mlflow_run_id": run_id, **metadata},
    )["ModelPackageArn"]  # fmt: skip
    return {**EVENT, "detail": {**EVENT["detail"], "ModelPackageArn": arn, "ModelPackageGroupName": "churn"}}


def act_as(monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> None:
    """The MLflow client's basic-auth credentials, from here on."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_dockerfile_pins_the_same_mlflow_as_pyproject() -> None:
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tracking"]
    (pinned,) = [p for p in pins if p.startswith("mlflow")]
    dockerfile = (SERVER_DIR / "Dockerfile").read_text()
    version = pinned.split("==")[1]
    assert f'"mlflow[auth]=={version}"' in dockerfile
    requirements = (REPO / "pipeline" / "steps" / "scripts" / "requirements.txt").read_text()
    assert f"mlflow-skinny=={version}" in requirements
    lambda_dockerfile = (REPO / "infra" / "bridge_lambda" / "Dockerfile").read_text()
    assert f"mlflow-skinny=={version}" in lambda_dockerfile
    (powertools,) = [p for p in pins if p.startswith("aws-lambda-powertools")]
    assert f'"{powertools}"' in lambda_dockerfile


def test_entrypoint_serves_authenticated_mlflow_on_mariadb_and_s3(
    aws: str,
    mariadb_user: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_model_dir: Path,  # noqa: F811
) -> None:
    env = server_env(tmp_path, mariadb_user, aws, {"pipeline": PIPELINE_PASSWORD})
    log = tmp_path / "server.log"
    with running_entrypoint(env, log) as process:
        uri = f"http://127.0.0.1:{env['PORT']}"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert denied.value.code == 401

        from mlflow import MlflowClient

        act_as(monkeypatch, "pipeline", PIPELINE_PASSWORD)
        client = MlflowClient(uri)
        experiment = client.create_experiment(f"container-{uuid.uuid4().hex[:6]}")
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(small_model_dir), "model")
        keys = [
            o["Key"]
            for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(
                Bucket="mlops-artifacts-123456789012", Prefix="mlflow/"
            )["Contents"]
        ]
        assert any(key.endswith(f"{run.info.run_id}/artifacts/model/MLmodel") for key in keys), keys

        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
        with pytest.raises(Exception, match=r"401|Unauthorized|credentials"):
            MlflowClient(uri).search_experiments()

        command_lines = _session_command_lines(process.pid)
        assert command_lines and any("mlflow" in line for line in command_lines)
        for secret in (DB_PASSWORD, ADMIN_PASSWORD, PIPELINE_PASSWORD):
            assert not any(secret in line for line in command_lines)
        assert DB_PASSWORD not in log.read_text() and ADMIN_PASSWORD not in log.read_text()
        # the server keeps a connection per request in flight instead of reconnecting (bench/tracking_load.py)
        server_environments = [e for e in _session_files(process.pid, "environ") if "MLFLOW_BACKEND_STORE_URI" in e]
        assert server_environments
        assert all(" MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=16 " in f" {e} " for e in server_environments)


def test_the_bridge_manages_a_model_someone_else_created_under_production_auth(
    aws: str,
    mariadb_user: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_model_dir: Path,  # noqa: F811
) -> None:
    """The server as deployed (basic auth, default READ, a non-admin bridge user): a data
    scientist creates the registered models first. The model the deployment names is
    granted to the bridge at start, so it syncs; another model refuses the bridge with 403,
    which the Lambda reports once with the fix instead of retrying it."""
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from mlflow_bridge import handler
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.sagemaker_registry import SageMakerRegistry
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings, DeploymentSettings
    from tests.lambda_context import LambdaContext

    managed, unmanaged = "churn-managed", "churn-unmanaged"
    users = {"pipeline": PIPELINE_PASSWORD, "mlflow-bridge": BRIDGE_PASSWORD, "ds": SCIENTIST_PASSWORD}
    env = server_env(tmp_path, mariadb_user, aws, users, {"mlflow-bridge": [managed]})
    with running_entrypoint(env, tmp_path / "server.log"):
        uri = f"http://127.0.0.1:{env['PORT']}"

        act_as(monkeypatch, "ds", SCIENTIST_PASSWORD)
        scientist = MlflowClient(uri)
        for name in (managed, unmanaged):
            scientist.create_registered_model(name)
        act_as(monkeypatch, "pipeline", PIPELINE_PASSWORD)
        pipeline = MlflowClient(uri)
        run = pipeline.create_run(pipeline.create_experiment("churn"))
        pipeline.log_artifacts(run.info.run_id, str(small_model_dir), "model")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName="churn")
        events = {
            name: approved_package_event(sm, run.info.run_id, mlflow_registered_model=name)
            for name in (managed, unmanaged)
        }

        act_as(monkeypatch, "mlflow-bridge", BRIDGE_PASSWORD)
        settings = BridgeSettings(tracking_uri=uri, groups=["churn"], deployment=DeploymentSettings(enabled=False))
        bridge = Bridge(settings, SageMakerRegistry(sm), MlflowRegistry.connect(uri))
        monkeypatch.setattr(handler, "_bridge", bridge)
        assert handler.lambda_handler(events[managed], LambdaContext())["status"] == "synced"
        mlflow.set_tracking_uri(uri)
        model = mlflow.pyfunc.load_model(f"models:/{managed}@champion")
        assert model.predict([[1.0, 2.0]])[0] == pytest.approx(3.0)

        answer = handler.lambda_handler(events[unmanaged], LambdaContext())  # returns: no retry
        assert answer["status"] == "rejected" and "403" in answer["reason"]
        # issue #23: the rejection names the model, the bridge's MLflow user and the permission it lacks
        assert f"registered model {unmanaged!r}" in answer["fix"] and "user mlflow-bridge EDIT" in answer["fix"]
        assert "may not create a version of" in answer["reason"]
        act_as(monkeypatch, "ds", SCIENTIST_PASSWORD)
        assert scientist.search_model_versions(f"name = '{unmanaged}'") == []  # nothing half-written
        assert scientist.get_registered_model(managed).aliases == {"champion": "1"}


def test_the_execution_recorder_ends_the_jobs_parent_run_as_the_pipeline_user_under_production_auth(
    aws: str, mariadb_user: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #23: the jobs log as the pipeline's MLflow user, which creates the experiment and
    so holds MANAGE on it; every other user reads it only (default READ). The execution
    recorder therefore runs as the pipeline user (infra/bridge.py): as the bridge's user it is
    refused, and says what to grant; as the pipeline's it ends the parent run."""
    import datetime

    from botocore.stub import Stubber
    from mlflow import MlflowClient

    from mlflow_bridge import handler
    from mlflow_bridge.execution_runs import ExecutionRecorder
    from pipeline.job_scripts import script_module
    from tests.lambda_context import LambdaContext
    from tests.test_execution_run import EXECUTION_EVENT

    execution_run = script_module("execution_run")
    arn = EXECUTION_EVENT["detail"]["pipelineExecutionArn"]
    users = {"pipeline": PIPELINE_PASSWORD, "mlflow-bridge": BRIDGE_PASSWORD}
    env = server_env(tmp_path, mariadb_user, aws, users, {"mlflow-bridge": ["diabetes-regression"]})
    with running_entrypoint(env, tmp_path / "server.log"):
        uri = f"http://127.0.0.1:{env['PORT']}"
        act_as(monkeypatch, "pipeline", PIPELINE_PASSWORD)
        client = MlflowClient(uri)
        experiment = client.create_experiment("diabetes-regression")
        parent = execution_run.find_or_create(client, experiment, key=execution_run.PARENT_TAG, value=arn,
                                              run_name="p", tags={execution_run.EXECUTION_TAG: arn})  # fmt: skip

        sm = boto3.client("sagemaker", region_name="us-east-1")
        stubber = Stubber(sm)
        started = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
        for _ in range(2):
            stubber.add_response("describe_pipeline_execution", {
                "PipelineExecutionArn": arn, "PipelineExecutionStatus": "Failed", "CreationTime": started,
                "LastModifiedTime": started + datetime.timedelta(minutes=3),
                "FailureReason": "Step Train failed"})  # fmt: skip
            stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": []})
            stubber.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": []})
        stubber.activate()
        recorder = ExecutionRecorder(sm, client, "diabetes-regression", ["diabetes-regression"])
        monkeypatch.setattr(handler, "_recorder", recorder)

        act_as(monkeypatch, "mlflow-bridge", BRIDGE_PASSWORD)
        answer = handler.lambda_handler(EXECUTION_EVENT, LambdaContext())
        assert answer["status"] == "rejected"
        assert "grant MLflow user mlflow-bridge EDIT (or more) on experiment 'diabetes-regression'" in answer["fix"]

        act_as(monkeypatch, "pipeline", PIPELINE_PASSWORD)
        assert handler.lambda_handler(EXECUTION_EVENT, LambdaContext())["status"] == "synced"
        run = client.get_run(parent)
        assert run.info.status == "FAILED" and run.data.metrics["execution_seconds"] == 180
        assert run.data.tags["mlops.failure_reason"] == "Step Train failed"


def test_each_start_converges_users_on_their_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's reproduction: the same call with a new password once left the old one working."""
    import importlib.util

    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    spec = importlib.util.spec_from_file_location("prepare", SERVER_DIR / "prepare.py")
    assert spec and spec.loader
    prepare = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "prepare", prepare)
    spec.loader.exec_module(prepare)
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    prepare.migrate_and_create_users(uri, {"mlflow-bridge": "OldPassword111"})
    prepare.migrate_and_create_users(uri, {"mlflow-bridge": "NewPassword222"})
    store = SqlAlchemyStore()
    store.init_db(uri)
    assert store.authenticate_user("mlflow-bridge", "NewPassword222")
    assert not store.authenticate_user("mlflow-bridge", "OldPassword111")

    store.update_user("mlflow-bridge", is_admin=True)  # drift someone made by hand
    prepare.migrate_and_create_users(uri, {"admin": prepare.Credentials("AdminPassword333", is_admin=True)})
    prepare.migrate_and_create_users(uri, {"mlflow-bridge": "NewPassword222"})
    assert store.get_user("admin").is_admin and not store.get_user("mlflow-bridge").is_admin


def _answers(uri: str, user: str, password: str) -> int:
    """The HTTP status of one authenticated request (200, or 401 for refused credentials)."""
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_rotated_secrets_reach_mlflow_at_the_next_start_and_the_bridge_rereads_its_own(
    aws: str,
    mariadb_user: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_model_dir: Path,  # noqa: F811
) -> None:
    """Rotation once locked clients out: users were created only when missing, so a new
    password in a secret never reached MLflow (the admin's neither: MLflow's own start-up
    creates the admin only once). Now each start converges every secret-backed user; a warm
    bridge still holding the old password reads its secret again on the 401."""
    import json

    from mlflow import MlflowClient

    from mlflow_bridge import handler
    from tests.lambda_context import LambdaContext

    old = {"admin": ADMIN_PASSWORD, "pipeline": PIPELINE_PASSWORD, "mlflow-bridge": BRIDGE_PASSWORD}
    new = {name: f"rotated-{name}-" + uuid.uuid4().hex[:10] for name in old}
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    bridge_secret = secrets.create_secret(
        Name="mlflow-bridge", SecretString=json.dumps({"username": "mlflow-bridge", "password": old["mlflow-bridge"]})
    )["ARN"]
    port = free_port()
    uri = f"http://127.0.0.1:{port}"

    def server(passwords: dict[str, str], log: str):  # the container's real start-up path, on one port
        services = {name: password for name, password in passwords.items() if name != "admin"}
        env = server_env(tmp_path, mariadb_user, aws, services, {"mlflow-bridge": ["churn"]}, passwords["admin"])
        return running_entrypoint({**env, "PORT": str(port)}, tmp_path / log)

    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model_package_group(ModelPackageGroupName="churn")

    for name, value in {"MLFLOW_TRACKING_URI": uri, "BRIDGE_MLFLOW_SECRET_ARN": bridge_secret,
                        "BRIDGE_MODEL_PACKAGE_GROUPS": "churn", "BRIDGE_DEPLOY": "false"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_bridge", None)
    with server(old, "first.log"):
        assert {name: _answers(uri, name, password) for name, password in old.items()} == dict.fromkeys(old, 200)
        act_as(monkeypatch, "pipeline", old["pipeline"])
        pipeline = MlflowClient(uri)
        run = pipeline.create_run(pipeline.create_experiment("churn"))
        pipeline.log_artifacts(run.info.run_id, str(small_model_dir), "model")
        answer = handler.lambda_handler(approved_package_event(sm, run.info.run_id), LambdaContext())
        assert answer["status"] == "synced"
        warm = handler._bridge
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == old["mlflow-bridge"]  # what the secret held

    secrets.put_secret_value(
        SecretId=bridge_secret, SecretString=json.dumps({"username": "mlflow-bridge", "password": new["mlflow-bridge"]})
    )
    with server(new, "second.log"):
        assert {name: _answers(uri, name, password) for name, password in new.items()} == dict.fromkeys(new, 200)
        assert {name: _answers(uri, name, password) for name, password in old.items()} == dict.fromkeys(old, 401)
        log = (tmp_path / "second.log").read_text()
        for name in old:
            assert f"prepare: MLflow user {name}: password updated" in log
        assert not any(password in log for password in [*old.values(), *new.values()])

        answer = handler.lambda_handler(approved_package_event(sm, run.info.run_id), LambdaContext())
        assert answer["status"] == "synced", answer
        assert handler._bridge is not warm  # rebuilt on the secret's new password
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == new["mlflow-bridge"]
        assert MlflowClient(uri).get_registered_model("churn").aliases == {"champion": "2"}

    with server(new, "third.log"):  # nothing rotated: nothing rewritten
        assert "prepare: MLflow user admin: unchanged" in (tmp_path / "third.log").read_text()


def test_the_server_speaks_tls_and_jobs_and_the_bridge_trust_its_ca_through_acm_pca(
    aws: str,
    mariadb_user: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_model_dir: Path,  # noqa: F811
) -> None:
    """Basic-auth passwords once crossed the VPC in clear text. The task now serves HTTPS
    with a certificate it makes at start; a client that does not trust it is refused, and
    the jobs and the bridge trust the CA they fetch from ACM Private CA by its ARN."""
    import json
    import ssl

    from mlflow import MlflowClient

    from mlflow_bridge import handler
    from tests.lambda_context import LambdaContext

    users = {"pipeline": PIPELINE_PASSWORD, "mlflow-bridge": BRIDGE_PASSWORD}
    env = server_env(tmp_path, mariadb_user, aws, users, {"mlflow-bridge": ["churn"]}, tls=True)
    with running_entrypoint(env, tmp_path / "server.log"):
        uri, certificate = server_uri(env), server_certificate(env)
        assert uri.startswith("https://") and certificate
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{uri}/health", timeout=10)  # not trusted: refused before any password
        context = ssl.create_default_context(cafile=certificate)
        assert urllib.request.urlopen(f"{uri}/health", timeout=10, context=context).status == 200
        assert stat.S_IMODE(os.stat(Path(certificate).with_name("key.pem")).st_mode) == 0o600

        # The CA as ACM Private CA hands it out (here: the task's own certificate, imported).
        pca = boto3.client("acm-pca", region_name="us-east-1")
        ca_arn = pca.create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA",
                "Subject": {"CommonName": "mlflow test CA"},
            },
            CertificateAuthorityType="ROOT",
        )["CertificateAuthorityArn"]  # fmt: skip
        pca.import_certificate_authority_certificate(
            CertificateAuthorityArn=ca_arn, Certificate=Path(certificate).read_bytes()
        )

        # A job: the definition's environment names the CA; tracking.connect fetches and trusts it.
        sys.path.insert(0, str(REPO / "pipeline" / "steps" / "scripts"))
        try:
            import tracking
        finally:
            sys.path.pop(0)
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH", raising=False)
        job_env = {"MLFLOW_TRACKING_URI": uri, "MLOPS_TRACKING_CREDENTIALS": "env", "MLOPS_TRACKING_CA_ARN": ca_arn,
                   "MLFLOW_EXPERIMENT_NAME": "churn", "AWS_REGION": "us-east-1"}  # fmt: skip
        act_as(monkeypatch, "pipeline", PIPELINE_PASSWORD)
        job = tracking.connect(job_env)
        assert job.enabled and job.experiment_id
        run = job.client.create_run(job.experiment_id)
        job.client.log_artifacts(run.info.run_id, str(small_model_dir), "model")

        # The bridge: BRIDGE_MLFLOW_CA_ARN, fetched at cold start.
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="bridge-tls", SecretString=json.dumps({"username": "mlflow-bridge", "password": BRIDGE_PASSWORD})
        )["ARN"]
        bridge_env = {"MLFLOW_TRACKING_URI": uri, "BRIDGE_MLFLOW_SECRET_ARN": secret, "BRIDGE_MLFLOW_CA_ARN": ca_arn,
                      "BRIDGE_MODEL_PACKAGE_GROUPS": "churn", "BRIDGE_DEPLOY": "false"}  # fmt: skip
        for name, value in bridge_env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler, "_bridge", None)
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName="churn")
        event = approved_package_event(sm, run.info.run_id)
        assert handler.lambda_handler(event, LambdaContext())["status"] == "synced"
        assert MlflowClient(uri).get_registered_model("churn").aliases == {"champion": "1"}


def test_the_permission_cache_keeps_answers_for_its_ttl_only_and_never_errors() -> None:
    from mlflow_auth_cache import cached

    calls: list[str] = []

    def lookup(name: str) -> str:
        calls.append(name)
        if name == "broken":
            raise RuntimeError("database down")
        return name.upper()

    fast = cached(lookup, 0.3, lambda name: name)
    assert [fast("ds"), fast("ds"), fast("bridge")] == ["DS", "DS", "BRIDGE"]
    assert calls == ["ds", "bridge"]
    for _ in range(2):
        with pytest.raises(RuntimeError):
            fast("broken")
    assert calls.count("broken") == 2  # a failure is not remembered
    time.sleep(0.35)
    assert fast("ds") == "DS" and calls.count("ds") == 2  # expired: asked again


def test_a_revoked_permission_is_honoured_within_the_cache_bound(
    aws: str, mariadb_user: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server caches users and grants per worker (bench/tracking_load.py: 1.7x the CPU
    per call without it); a revocation must still reach every worker within the bound."""
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

    env = {**server_env(tmp_path, mariadb_user, aws, {"ds": SCIENTIST_PASSWORD}),
           "MLFLOW_AUTH_PERMISSION_CACHE_SECONDS": "3", "WORKERS": "2"}  # fmt: skip
    with running_entrypoint(env, tmp_path / "server.log"):
        uri = server_uri(env)
        act_as(monkeypatch, "admin", ADMIN_PASSWORD)
        experiment = MlflowClient(uri).create_experiment("revocable")
        run = MlflowClient(uri).create_run(experiment)
        act_as(monkeypatch, "ds", SCIENTIST_PASSWORD)
        scientist = MlflowClient(uri)
        for _ in range(6):  # default READ: both workers have cached that ds may read
            assert scientist.get_run(run.info.run_id).info.run_id == run.info.run_id
        act_as(monkeypatch, "admin", ADMIN_PASSWORD)
        get_app_client("basic-auth", tracking_uri=uri).grant_user_permission("ds", "experiment", experiment, "DENY")
        revoked = time.monotonic()
        act_as(monkeypatch, "ds", SCIENTIST_PASSWORD)
        assert scientist.get_run(run.info.run_id)  # the documented staleness: the cached grant, for now
        time.sleep(max(0.0, 3.1 - (time.monotonic() - revoked)))
        for _ in range(6):  # every worker, past the bound
            with pytest.raises(Exception, match=r"403|PERMISSION_DENIED|Permission denied"):
                scientist.get_run(run.info.run_id)
        assert time.monotonic() - revoked < 10


def test_entrypoint_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DB_HOST": "127.0.0.1"}
    result = subprocess.run(["bash", str(ENTRYPOINT)], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "DB_NAME is not set" in result.stderr


def _session_command_lines(session_leader: int) -> list[str]:
    return _session_files(session_leader, "cmdline")


def _session_files(session_leader: int, name: str) -> list[str]:
    """`/proc/<pid>/<name>` of every process in the session, NULs as spaces."""
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) != session_leader:
                continue
            lines.append((proc / name).read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ProcessLookupError):
            continue
    return lines

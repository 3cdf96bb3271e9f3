"""Local jobs in the SageMaker image's libraries (pipeline/local/job_environment.py): the
environment is built from the image's pins and the bundle's requirements, reused, and
local model servers refuse a model trained under another scikit-learn minor version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlflow_bridge.contract import Tags
from mlflow_bridge.decisions import Package
from pipeline.code_bundle import code_bundle
from pipeline.config_loader import load_config
from pipeline.errors import LocalModeError, UsageError
from pipeline.job_scripts import SCRIPTS_DIR
from pipeline.local.job_environment import (
    ImageEnvironments,
    ProjectEnvironment,
    environment_key,
    image_libraries,
    job_environments,
)
from pipeline.local.serving import LocalModelServer, ServingError
from tests.conftest import default_raw_config
from tests.tracking_fixtures import start_server

CONSTRAINTS = "sklearn-1.4-2-constraints.txt"


def test_the_image_libraries_are_its_pins_less_the_harness_local_mode_stands_in_for() -> None:
    libraries = image_libraries((SCRIPTS_DIR / CONSTRAINTS).read_text())
    assert {"numpy==2.1.0", "scikit-learn==1.4.2", "pandas==2.3.2", "pyarrow==17.0.0", "protobuf==3.20.2"} <= set(
        libraries
    )
    assert not [line for line in libraries if line.split("==")[0] in {"sagemaker-training", "gunicorn", "flask"}]


def test_an_environment_is_keyed_by_what_decides_its_content() -> None:
    base = environment_key("numpy==2.1.0\n", "mlflow-skinny==3.17.2\n", "3.11")
    assert base == environment_key("numpy==2.1.0\n", "mlflow-skinny==3.17.2\n", "3.11")
    assert base != environment_key("numpy==2.1.0\n", "mlflow-skinny==3.17.2\nxgboost==2.1.4\n", "3.11")
    assert base != environment_key("numpy==2.2.0\n", "mlflow-skinny==3.17.2\n", "3.11")
    assert base != environment_key("numpy==2.1.0\n", "mlflow-skinny==3.17.2\n", "3.12")


def test_the_default_is_the_image_and_a_custom_image_falls_back_to_the_project_saying_so(write_config) -> None:
    cfg = load_config(write_config(default_raw_config()))
    environments, where = job_environments(cfg, None)
    assert isinstance(environments, ImageEnvironments) and "scikit-learn 1.4-2" in where
    environments, where = job_environments(cfg, "project")
    assert isinstance(environments, ProjectEnvironment)

    raw = default_raw_config()
    raw.setdefault("runtime", {})["image_uri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team:1"
    custom = load_config(write_config(raw, "custom.yaml"))
    environments, where = job_environments(custom, None)
    assert isinstance(environments, ProjectEnvironment) and "team:1" in where and "unknown" in where
    with pytest.raises(UsageError, match=r"runtime.image_uri .*team:1.*--job-env project"):
        job_environments(custom, "image")


def test_the_image_environment_has_the_image_versions_and_is_built_once(write_config) -> None:
    """Built in the machine's cache (as `run --local` does; a second test run reuses it)."""
    cfg = load_config(write_config(default_raw_config()))
    environments, _ = job_environments(cfg, "image")
    assert isinstance(environments, ImageEnvironments)
    environment = environments.for_bundle(code_bundle(cfg).files)
    script = "import sklearn, numpy, pandas, pyarrow, google.protobuf, mlflow; print(sklearn.__version__, numpy.__version__, pandas.__version__, pyarrow.__version__, google.protobuf.__version__)"  # noqa: E501
    versions = subprocess.run([str(environment.python), "-c", script], capture_output=True, text=True, check=True)
    assert versions.stdout.split() == ["1.4.2", "2.1.0", "2.3.2", "17.0.0", "3.20.2"]
    assert environment.version("scikit-learn") == "1.4.2" and environment.version("mlflow-skinny") == "3.17.2"

    again, _ = job_environments(cfg, "image")
    assert again.for_bundle(code_bundle(cfg).files).python == environment.python
    assert again.built_seconds == 0.0  # type: ignore[attr-defined]


def test_requirements_the_image_pins_refuse_are_a_clear_error_and_leave_nothing_half_built(tmp_path: Path) -> None:
    environments = ImageEnvironments(CONSTRAINTS, "scikit-learn 1.4-2", cache_root=tmp_path)
    constraints = (SCRIPTS_DIR / CONSTRAINTS).read_text()
    refused = r"could not build .*scikit-learn 1.4-2 image.*--job-env project"
    with pytest.raises(LocalModeError, match=refused) as caught:
        environments.for_files(constraints, f"-c {CONSTRAINTS}\nscikit-learn==1.5.0\n")
    assert "scikit-learn" in str(caught.value)
    built = tmp_path / "job-environments"
    assert not [p for p in built.iterdir() if not p.name.startswith(".")]  # no environment, no staging folder


def test_a_job_code_without_the_image_pins_is_refused(tmp_path: Path) -> None:
    environments = ImageEnvironments(CONSTRAINTS, "scikit-learn 1.4-2", cache_root=tmp_path)
    (tmp_path / "code").mkdir()
    with pytest.raises(LocalModeError, match=CONSTRAINTS):
        environments.for_code(tmp_path / "code")


def test_a_local_model_server_refuses_a_model_of_another_scikit_learn_minor_version(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    server, cleanup = start_server("sqlite", tmp_path / "mlflow")
    try:
        client = MlflowClient(server.uri)
        run = client.create_run(client.create_experiment("e"), tags={"mlops.trained_with.scikit-learn": "1.4.2"})
        client.create_registered_model("m")
        arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
        source = f"runs:/{run.info.run_id}/model"
        client.create_model_version("m", source, run_id=run.info.run_id, tags={Tags.PACKAGE_ARN: arn})
        project = ProjectEnvironment().for_bundle({})
        serving = LocalModelServer(server.uri, "m", tmp_path / "serve.log", tmp_path, project)
        with pytest.raises(ServingError) as refused:
            serving.deploy(Package(arn=arn, group="g", version=1, status="Approved"))
        message = str(refused.value)
        assert "trained with scikit-learn 1.4.2" in message and project.version("scikit-learn") in message
        assert "--job-env" in message and serving.process is None
        assert not (tmp_path / "endpoints.json").exists()
    finally:
        server.stop()
        cleanup()


def test_the_manifest_lists_what_the_environment_has(write_config) -> None:
    cfg = load_config(write_config(default_raw_config()))
    environments, _ = job_environments(cfg, "image")
    environment = environments.for_bundle(code_bundle(cfg).files)
    manifest = json.loads((environment.python.parents[1] / "environment.json").read_text())
    assert manifest["packages"]["pandas"] == "2.3.2"
    assert "sagemaker-training" not in manifest["packages"]


def vermin(*paths: Path) -> subprocess.CompletedProcess[str]:
    import sys

    command = [
        str(Path(sys.executable).parent / "vermin"),
        "-t=3.10-",
        "--no-tips",
        "--violations",
        "--no-parse-comments",
    ]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_the_job_scripts_are_python_3_10_code_as_the_image_runs() -> None:
    """Python 3.10 cannot be installed here, so the scripts run under 3.11 locally; vermin
    checks they use nothing newer than the image's 3.10."""
    checked = vermin(SCRIPTS_DIR)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_310_check_fails_on_311_code(tmp_path: Path) -> None:
    (tmp_path / "newer.py").write_text("import tomllib\n\nfrom datetime import UTC\n")
    checked = vermin(tmp_path / "newer.py")
    assert checked.returncode != 0 and "tomllib" in checked.stdout

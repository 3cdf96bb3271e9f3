"""Issue #10, "the team's own code": `steps.train.source_dir` puts a team's training script
(examples/custom_training) into the one code bundle, and the pipeline runs it end to end
under the bundled scripts' contract: the bundled Evaluate scores its model, the bundled
inference.py serves it, its MLflow run is tagged like ours and the package is registered."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.code_bundle import SCRIPTS_DIR, code_bundle
from pipeline.config_loader import load_config
from pipeline.local.runner import load_execution
from tests.conftest import REPO
from tests.job_python import job_environment_of
from tests.test_local_mode import registered, shared_tracking, statuses, tracking_env  # noqa: F401 - fixtures

EXAMPLE = REPO / "examples" / "custom_training"
CONFIG = EXAMPLE / "pipeline.yaml"
TEAM_FILES = ("train_custom.py", "ratio_features.py")


@pytest.fixture
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """`source_dir` is relative to where the command runs: the repository root, as documented."""
    monkeypatch.chdir(REPO)


def test_the_bundle_holds_the_team_files_beside_the_untouched_bundled_scripts(at_repo_root: None) -> None:
    bundle = code_bundle(load_config(CONFIG))
    for name in TEAM_FILES:
        assert bundle.files[name] == (EXAMPLE / "train" / name).read_bytes()
    for name in ("train.py", "evaluate.py", "inference.py", "tabular_model.py", "tracking.py"):
        assert bundle.files[name] == (SCRIPTS_DIR / name).read_bytes()


def test_the_bundle_address_follows_the_team_code(tmp_path: Path, at_repo_root: None) -> None:
    folder = shutil.copytree(EXAMPLE / "train", tmp_path / "train")
    settings = [f"steps.train.source_dir={folder}"]
    first = code_bundle(load_config(CONFIG, overrides=settings))
    assert first.digest == code_bundle(load_config(CONFIG)).digest  # the same files wherever they are
    (folder / "ratio_features.py").write_text((folder / "ratio_features.py").read_text() + "\n# edited\n")
    assert code_bundle(load_config(CONFIG, overrides=settings)).digest != first.digest  # step cache misses


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("steps.train.source_dir=examples/no_such_folder", "steps.train.source_dir: 'examples/no_such_folder' is not"),
        ("steps.train.script=fit.py", "steps.train.script: 'fit.py' is not in examples/custom_training/train"),
    ],
)
def test_render_refuses_a_source_dir_or_script_that_is_not_there(
    capsys: pytest.CaptureFixture[str], at_repo_root: None, override: str, message: str
) -> None:
    assert main(["render", "--config", str(CONFIG), "--set", override]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert message in err


SERVE = """
import sys, tarfile
scripts, archive, into = sys.argv[1:]
sys.path.insert(0, scripts)
import inference
with tarfile.open(archive) as tar:
    tar.extractall(into, filter="data")
model = inference.model_fn(into)
print(inference.output_fn(inference.predict_fn((sys.stdin.read(), "text/csv"), model), "application/json")[0])
"""


def test_the_example_runs_end_to_end_with_the_team_training_script(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
    at_repo_root: None,
) -> None:
    from mlflow import MlflowClient

    workspace = tmp_path / ".local"
    code = main(["run", "--local", "--config", str(CONFIG), "--example-data", "breast-cancer",
                 "--workspace", str(workspace)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    record = load_execution(workspace / "executions" / out.strip().rsplit("/", 1)[-1] / "execution.json")
    assert record.status == "Succeeded"
    assert statuses(record) == {
        "Preprocess": "Succeeded", "Train": "Succeeded", "Evaluate": "Succeeded", "QualityGate": "Succeeded",
        "QualityGateFailed": "Skipped", "Register-RegisterModel": "Succeeded",
    }  # fmt: skip

    train = record.steps["Train"]
    log = Path(train.log).read_text()
    assert "engineered feature: mean area / mean perimeter" in log  # train_custom.py ran, not train.py
    assert "validation:auc=" in log

    outputs = record.steps["Evaluate"].properties["ProcessingOutputConfig"]["Outputs"]
    report_dir = workspace / "s3" / outputs["evaluation"]["S3Output"]["S3Uri"].removeprefix("s3://")
    report = json.loads((report_dir / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] >= 0.9
    run_id = report["mlflow"]["run_id"]

    client = MlflowClient(tracking_env)
    run = client.get_run(run_id)
    assert run.data.tags["mlops.script"] == "train_custom.py"
    assert run.data.tags["mlops.step"] == "train"
    assert run.data.tags["mlops.pipeline"] == "breast-cancer-custom"
    assert run.data.tags["sagemaker.job_name"] == train.job_name
    assert run.data.tags["sagemaker.pipeline_execution_arn"] == record.arn
    assert run.data.params["engineered_feature"] == "mean area / mean perimeter"
    assert {"validation_auc", "test_auc"} <= set(run.data.metrics)  # Evaluate logged to the team's run
    assert {a.path for a in client.list_artifacts(run_id, "model")} >= {"model/MLmodel", "model/code"}

    [package] = registered(workspace)
    assert package["request"]["ModelPackageGroupName"] == "breast-cancer-custom"
    assert package["request"]["CustomerMetadataProperties"]["mlflow_run_id"] == run_id

    # The bundled inference.py serves the model from the bundle: a headerless CSV row in feature order.
    bundle = code_bundle(load_config(CONFIG))
    scripts = workspace / "s3" / bundle.scripts_uri.removeprefix("s3://")
    archive = workspace / "s3" / train.properties["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://")
    row = "17,20,110,1001,0.1,0.1,0.1,0.05,north,yes\n"
    # in the jobs' environment: the serving container is the image the model was trained in
    python = job_environment_of(load_config(CONFIG)).python
    served = subprocess.run(
        [str(python), "-c", SERVE, str(scripts), str(archive), str(tmp_path / "serving")],
        input=row, capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path,
    )  # fmt: skip
    answer = json.loads(served.stdout)
    assert answer["predictions"][0] in {"benign", "malignant"}
    assert answer["classes"] == ["benign", "malignant"] and len(answer["probabilities"][0]) == 2

"""Issue #10's acceptance: a team's own problem goes through the whole local lifecycle
(preprocess, tuning, evaluate, gate, register, approve, serve) for each task, on messy
tables built from scikit-learn's bundled data (string categories, missing values in
several spellings, string labels, column names with spaces and non-ASCII), ending in
predictions from the served champion for raw rows with missing values and categories
never seen in training. One run uses XGBoost."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.local.runner import load_execution
from pipeline.local.services import stop_services
from tests.conftest import DEFAULT_CONFIG
from tests.test_local_mode import shared_tracking, tracking_env  # noqa: F401 - fixtures

CLASSIFICATION = {
    "breast-cancer": {
        "task": "binary_classification",
        "target": "diagnosis",
        "classes": {"benign", "malignant"},
        "gate": "binary_classification_metrics.auc.value",
        # raw rows as a client sends them: ints for floats, nulls, an unseen clinic, odd spellings
        "rows": [
            {"mean radius": 17, "mean texture": None, "clinic": "west", "smoker": "Yes", "mean area": 1001},
            {"mean radius": 12.5, "mean texture": 20, "clinic": None, "smoker": None},
        ],
    },
    "wine": {
        "task": "multiclass_classification",
        "target": "cultivar",
        "classes": {"barolo", "grignolino", "barbera"},
        "gate": "multiclass_classification_metrics.weighted_f1.value",
        "rows": [
            {"alcohol": 13, "malic_acid": 1.7, "région": "Provence", "proline": 1065},
            {"alcohol": None, "région": "Rhône", "color_intensity": 3.2, "magnesium": None},
        ],
    },
}


def run_lifecycle(
    capsys: pytest.CaptureFixture[str], workspace: Path, example: str, name: str, *overrides: str
) -> tuple[int, Any, str]:
    spec = CLASSIFICATION[example]
    settings = {
        "pipeline.name": name,
        "registration.model_package_group": name,
        "mlflow.experiment": name,
        "mlflow.registered_model": name,
        "data.input_uri": f"s3://mlops-artifacts-123456789012/{name}/{example}.csv",
        "data.target": spec["target"],
        "data.features": "null",
        "training.task": spec["task"],
        "training.objective": "null",
        "training.hyperparameters": "{n_estimators: 50}",
        "tuning.max_jobs": "2",
        "tuning.max_parallel_jobs": "2",
        "quality_gate": f"{{metric: {spec['gate']}, operator: GreaterThanOrEqualTo, threshold: 0.5}}",
        "deployment.stages": "[]",  # the approval makes the champion at once: these tests are about tasks
    }
    args = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    code = main(["run", "--local", "--example-data", example, "--approve", "--keep-services",
                 "--config", str(DEFAULT_CONFIG), "--workspace", str(workspace), *args, *overrides])  # fmt: skip
    out, err = capsys.readouterr()
    execution_id = out.strip().rsplit("/", 1)[-1]
    record = load_execution(workspace / "executions" / execution_id / "execution.json") if code == 0 else None
    return code, record, err


def ask_served_model(workspace: Path, rows: list[dict[str, Any]]) -> list[Any]:
    url = json.loads((workspace / "services.json").read_text())["serving_url"]
    body = json.dumps({"dataframe_records": rows}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


def evaluation_report(record: Any, workspace: Path) -> dict[str, Any]:
    uri = record.steps["Evaluate"].properties["ProcessingOutputConfig"]["Outputs"]["evaluation"]["S3Output"]["S3Uri"]
    return json.loads((workspace / "s3" / uri.removeprefix("s3://") / "evaluation.json").read_text())


XGBOOST = [
    "--set", "training.estimator=xgboost.XGBClassifier", "--set", "tuning.enabled=false",
    "--set", "training.hyperparameters={n_estimators: 30, max_depth: 3}",
]  # fmt: skip


@pytest.mark.parametrize(
    ("example", "overrides"),
    [("breast-cancer", []), ("wine", ["--set", "training.estimator=random_forest"]), ("breast-cancer", XGBOOST)],
    ids=["binary", "multiclass", "binary-xgboost"],
)
def test_lifecycle_per_task_ends_in_predictions_for_raw_rows(
    example: str,
    overrides: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    from mlflow import MlflowClient

    spec = CLASSIFICATION[example]
    workspace = tmp_path / ".local"
    name = f"{example}-{tmp_path.name[-12:]}".replace("_", "-")
    try:
        code, record, err = run_lifecycle(capsys, workspace, example, name, *overrides)
        assert code == 0, err
        assert record.status == "Succeeded"
        fit = "Train" if "tuning.enabled=false" in overrides else "Tune"
        assert {n: s.status for n, s in record.steps.items()} == {
            "Preprocess": "Succeeded", fit: "Succeeded", "Evaluate": "Succeeded", "QualityGate": "Succeeded",
            "QualityGateFailed": "Skipped", "Register-RegisterModel": "Succeeded",
        }  # fmt: skip

        report = evaluation_report(record, workspace)
        section = report[f"{spec['task']}_metrics"]
        assert set(section["confusion_matrix"]) == spec["classes"]
        assert 0.5 < section["accuracy"]["value"] <= 1.0
        if spec["task"] == "binary_classification":
            assert 0.5 < section["auc"]["value"] <= 1.0 and "precision_recall_curve" in section

        client = MlflowClient(tracking_env)
        version = client.get_model_version_by_alias(name, "champion")
        run = client.get_run(version.run_id)
        assert run.data.tags["mlops.task"] == spec["task"]
        if "xgboost" in " ".join(overrides):
            assert run.data.params["estimator"] == "xgboost.XGBClassifier"
            requirements = client.download_artifacts(version.run_id, "model/requirements.txt", str(tmp_path))
            assert "xgboost" in Path(requirements).read_text()

        served = [line for line in err.splitlines() if line.startswith("served model http://127.0.0.1:")]
        assert len(served) == 3
        predictions = ask_served_model(workspace, spec["rows"])
        assert len(predictions) == len(spec["rows"]) and set(predictions) <= spec["classes"]
    finally:
        stop_services(workspace)

"""The job scripts, run as the containers run them, against a real MLflow server
(sqlite and MariaDB backends); what they recorded is read back with the MLflow client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.child_process import free_port
from pipeline.code_bundle import SCRIPTS_DIR
from pipeline.example_data import write_diabetes_csv
from pipeline.tracking_server import TrackingServer
from tests.job_python import in_job_environment, job_environment
from tests.tracking_fixtures import start_server, tracking_server  # noqa: F401 - fixture

FEATURES = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"
TUNING_JOB = "diabetes-tune-250101-0000"


def script_env(uri: str, experiment: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_", "SM_"))}
    env.update(
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_EXPERIMENT_NAME=experiment,
        MLOPS_TRACKING_CREDENTIALS="none",
        MLOPS_TRACKING_ON_UNAVAILABLE="fail",
        MLOPS_PIPELINE_NAME="diabetes-regression",
        MLOPS_SCRIPTS_DIR=str(SCRIPTS_DIR),
        MLOPS_SKIP_REQUIREMENTS="1",  # the job environment already has them
        MLOPS_TRACKING_CONNECT_ATTEMPTS="2",
        MLOPS_TRACKING_CONNECT_DELAY="0.2",
    )
    env["PATH"] = job_environment().path(env.get("PATH", ""))  # python3 = the job environment's
    env.update(extra)
    return env


def processing(script: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """As a processing job starts it: `bash entrypoint.sh SCRIPT ARGS`."""
    return subprocess.run(
        ["bash", str(SCRIPTS_DIR / "entrypoint.sh"), script, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def training(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """As the SageMaker training toolkit starts it: `python train.py --hp value ...`."""
    return subprocess.run(
        [str(job_environment().python), str(SCRIPTS_DIR / "train.py"), *args], env=env, cwd=cwd, capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def trial_env(base: dict[str, str], work: Path, trial: int) -> dict[str, str]:
    job = f"{TUNING_JOB}-{trial:03d}-{uuid.uuid4().hex[:8]}"
    return {
        **base,
        "SM_CHANNEL_TRAIN": str(work / "splits" / "train"),
        "SM_CHANNEL_VALIDATION": str(work / "splits" / "validation"),
        "SM_MODEL_DIR": str(work / f"model-{trial}"),
        "TRAINING_JOB_NAME": job,
        "SM_TRAINING_ENV": json.dumps({"job_name": job, "hyperparameters": {"_tuning_objective_metric": "x"}}),
    }


RANDOM_FOREST = ["--estimator", "sklearn.ensemble.RandomForestRegressor"]


def write_spec(folder: Path, **fields: Any) -> Path:
    """A dataset_spec.json as `pipeline/dataset_spec.py` writes it into the code bundle."""
    spec = {"task": "regression", "target": "target", "features": FEATURES.split(","), **fields}
    path = folder / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(spec))
    return path


def preprocess_args(source: Path, out: Path, features: str = FEATURES, fmt: str = "csv") -> list[str]:
    spec = write_spec(out.parent, features=features.split(","), format=fmt)
    return ["--input", str(source), "--output-dir", str(out), "--spec", str(spec)]


def preprocess(work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = preprocess_args(work / "raw", work / "splits")
    return processing("preprocess.py", args, {**env, "MLOPS_JOB_NAME": "diabetes-preprocess-1"}, work)


def pack(model_dir: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    return archive


@pytest.fixture
def work(tmp_path: Path) -> Path:
    write_diabetes_csv(tmp_path / "raw" / "diabetes.csv")
    return tmp_path


def test_scripts_record_everything_in_mlflow(tracking_server: TrackingServer, work: Path) -> None:  # noqa: F811
    import mlflow
    from mlflow import MlflowClient

    experiment = f"scripts-{uuid.uuid4().hex[:8]}"
    env = script_env(tracking_server.uri, experiment)

    result = preprocess(work, env)
    assert result.returncode == 0, result.stderr
    rows = {s: len(pd.read_csv(work / "splits" / s / f"{s}.csv")) for s in ("train", "validation", "test")}
    assert rows == {"train": 309, "validation": 66, "test": 67}

    trials = []
    for trial, (n_estimators, depth) in enumerate([(40, 4), (60, 6)], start=1):
        trial_environment = trial_env(env, work, trial)
        hyperparameters = ["--n_estimators", str(n_estimators), "--max_depth", str(depth)]
        args = [*RANDOM_FOREST, *hyperparameters]
        result = training(args, trial_environment, work)
        assert result.returncode == 0, result.stderr
        objective = [line for line in result.stdout.splitlines() if line.startswith("validation:rmse=")]
        assert len(objective) == 1 and float(objective[0].split("=")[1]) > 0
        trials.append(trial_environment)

    model_dir = Path(trials[0]["SM_MODEL_DIR"])
    archive = pack(model_dir, work / "model.tar.gz")
    result = processing(
        "evaluate.py",
        ["--model", str(archive), "--test", str(work / "splits" / "test"), "--output-dir", str(work / "eval")],
        env, work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((work / "eval" / "evaluation.json").read_text())

    client = MlflowClient(tracking_server.uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    by_step = {}
    for run in runs:
        by_step.setdefault(run.data.tags.get("mlops.step"), []).append(run)
    assert len(by_step["preprocess"]) == 1 and len(by_step["train"]) == 2

    pre = by_step["preprocess"][0]
    assert pre.data.params["rows_train"] == "309" and len(pre.data.params["dataset_sha256"]) == 64
    assert pre.data.params["features"] == "10" and pre.data.params["numeric_features"] == "10"

    model_run_id = json.loads((model_dir / "mlflow_run.json").read_text())["run_id"]
    model_run = client.get_run(model_run_id)
    assert model_run.data.tags["sagemaker.job_name"] == trials[0]["TRAINING_JOB_NAME"]
    assert model_run.data.tags["sagemaker.tuning_job_name"] == TUNING_JOB
    assert {r.data.tags["sagemaker.tuning_job_name"] for r in by_step["train"]} == {TUNING_JOB}
    assert model_run.data.params["n_estimators"] == "40" and model_run.data.params["max_depth"] == "4"
    for key in ("validation_rmse", "validation_mae", "validation_r2", "test_rmse", "test_ae_p90"):
        assert key in model_run.data.metrics, key
    assert model_run.data.metrics["test_rmse"] == pytest.approx(report["regression_metrics"]["rmse"]["value"])

    assert report["mlflow"]["run_id"] == model_run_id
    artifacts = {a.path for a in client.list_artifacts(model_run_id, "evaluation")}
    assert {"evaluation/predicted_vs_actual.png", "evaluation/residuals.png", "evaluation/evaluation.json"} <= artifacts
    png = client.download_artifacts(model_run_id, "evaluation/residuals.png", str(work / "dl"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the training split's baseline, inside the model archive and in the model's run (drift checks read it)
    baseline = json.loads((model_dir / "baseline" / "baseline.json").read_text())
    assert baseline["n_rows"] == 309 and set(baseline["features"]) == set(json.loads(
        (work / "splits" / "train" / "schema.json").read_text())["features"])  # fmt: skip
    features = baseline["features"]
    assert all(len(f["bin_shares"]) == len(f["bin_edges"]) + 1 for f in features.values() if "bin_edges" in f)
    assert features["sex"]["values"] and len(features["sex"]["value_shares"]) == len(features["sex"]["values"])
    assert baseline["version"] == 2  # few distinct values (sex: 2) are compared value by value
    assert [a.path for a in client.list_artifacts(model_run_id, "baseline")] == ["baseline/baseline.json"]
    # where it was trained, beside the pickle and on the run (serving refuses another scikit-learn minor)
    trained_in = job_environment().version("scikit-learn")
    trained_with = json.loads((model_dir / "training_environment.json").read_text())
    assert trained_with["scikit-learn"] == trained_in
    assert client.get_run(model_run_id).data.tags["mlops.trained_with.scikit-learn"] == trained_in

    mlflow.set_tracking_uri(tracking_server.uri)
    assert mlflow.models.get_model_info(f"runs:/{model_run_id}/model").signature is not None
    # loaded where it was trained, on the test split as pandas reads it
    answered = in_job_environment(
        PREDICT, f"runs:/{model_run_id}/model", str(work / "splits" / "test" / "test.csv"),
        env={"MLFLOW_TRACKING_URI": tracking_server.uri},
    )  # fmt: skip
    assert len(answered) == len(pd.read_csv(work / "splits" / "test" / "test.csv"))
    # the MLflow model's requirements pin the versions it was trained with: the image's
    requirements = Path(mlflow.artifacts.download_artifacts(f"runs:/{model_run_id}/model/requirements.txt"))
    assert f"scikit-learn=={trained_in}" in requirements.read_text().splitlines()


# Load an MLflow model (argv[1]) and predict the CSV files argv[2:] as pandas reads them.
PREDICT = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
answers = [v for path in sys.argv[2:] for v in model.predict(pd.read_csv(path))]
print(json.dumps([a.item() if hasattr(a, "item") else a for a in answers]))
"""

# The serving container's handlers (inference.py, from argv[1]) on a model folder (argv[2]):
# three test rows (argv[3], columns argv[4]) as text/csv, then a record of three fields.
SERVE_THREE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd
import inference
model = inference.model_fn(sys.argv[2])
rows = pd.read_csv(sys.argv[3])[sys.argv[4].split(",")].head(3)
body = rows.to_csv(header=False, index=False).encode()
predictions = inference.predict_fn(inference.input_fn(body, "text/csv"), model)
text, content_type = inference.output_fn(predictions, "text/csv")
try:
    inference.predict_fn(inference.input_fn(b"1,2,3\\n", "text/csv"), model)
    refused = ""
except ValueError as exc:
    refused = str(exc)
print(json.dumps({"content_type": content_type, "lines": len(text.strip().splitlines()),
                  "same": bool(np.allclose(predictions["predictions"], model.predict(rows))), "refused": refused}))
"""


def test_model_dir_loads_with_the_sagemaker_serving_convention(work: Path) -> None:
    env = script_env("", "unused")
    assert preprocess(work, env).returncode == 0
    trial = trial_env(env, work, 1)
    result = training([*RANDOM_FOREST, "--n_estimators", "20"], trial, work)
    assert result.returncode == 0, result.stderr

    # in the job environment, as the serving container (the same image) loads it
    served = in_job_environment(
        SERVE_THREE, str(SCRIPTS_DIR), trial["SM_MODEL_DIR"], str(work / "splits" / "test" / "test.csv"), FEATURES
    )
    assert served["content_type"] == "text/csv" and served["lines"] == 3 and served["same"]
    assert "record 1 has 3 fields, 10 expected" in served["refused"]


@pytest.mark.parametrize("mode", ["fail", "continue"])
def test_tracking_outage_before_train(work: Path, tmp_path_factory: pytest.TempPathFactory, mode: str) -> None:
    server, cleanup = start_server("sqlite", tmp_path_factory.mktemp("doomed"))
    uri = server.uri
    server.stop()  # killed before train starts
    cleanup()
    env = script_env(uri, "outage", MLOPS_TRACKING_ON_UNAVAILABLE=mode)
    assert preprocess(work, script_env("", "x")).returncode == 0
    trial = trial_env(env, work, 1)
    result = training([*RANDOM_FOREST, "--n_estimators", "10"], trial, work)
    model_file = Path(trial["SM_MODEL_DIR"]) / "model.joblib"
    assert model_file.exists(), "the model must survive a tracking outage"
    if mode == "fail":
        assert result.returncode == 1
        assert f"MLflow tracking server {uri} is unreachable" in result.stderr
        assert "mlflow.on_unavailable: continue" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "continuing without tracking" in result.stderr
        assert "validation:rmse=" in result.stdout


def test_preprocess_names_missing_columns(work: Path) -> None:
    env = script_env("", "x")
    result = processing("preprocess.py", preprocess_args(work / "raw", work / "out", "age,height"), env, work)
    assert result.returncode == 1
    assert "feature column(s) height not in the data" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "out" / "train").exists()


def test_preprocess_split_is_deterministic_and_reads_parquet(work: Path) -> None:
    env = script_env("", "x")
    frame = pd.read_csv(work / "raw" / "diabetes.csv")
    (work / "pq").mkdir()
    frame.to_parquet(work / "pq" / "part.parquet")
    outputs = []
    for run, (source, fmt) in enumerate([(work / "raw", "csv"), (work / "raw", "csv"), (work / "pq", "parquet")]):
        out = work / f"out{run}"
        assert processing("preprocess.py", preprocess_args(source, out, fmt=fmt), env, work).returncode == 0
        outputs.append((out / "test" / "test.csv").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_train_rejects_unknown_hyperparameters(work: Path) -> None:
    env = script_env("", "x")
    assert preprocess(work, env).returncode == 0
    result = training([*RANDOM_FOREST, "--n_trees", "5"], trial_env(env, work, 1), work)
    assert result.returncode == 1
    assert "sklearn.ensemble.RandomForestRegressor has no hyperparameter(s) n_trees" in result.stderr


def test_rerunning_a_training_job_leaves_one_run(work: Path, tracking_server: TrackingServer) -> None:  # noqa: F811
    from mlflow import MlflowClient

    experiment = f"rerun-{uuid.uuid4().hex[:8]}"
    env = script_env(tracking_server.uri, experiment)
    assert preprocess(work, env).returncode == 0
    trial = trial_env(env, work, 1)
    for _ in range(2):
        result = training([*RANDOM_FOREST, "--n_estimators", "10"], trial, work)
        assert result.returncode == 0, result.stderr
    client = MlflowClient(tracking_server.uri)
    exp = client.get_experiment_by_name(experiment)
    train_runs = client.search_runs([exp.experiment_id], filter_string="tags.`mlops.step` = 'train'")
    assert len(train_runs) == 1


def test_secrets_manager_credentials_reach_the_client_only(monkeypatch: pytest.MonkeyPatch, aws: str) -> None:
    import boto3

    sys.path.insert(0, str(SCRIPTS_DIR))
    try:
        import tracking
    finally:
        sys.path.remove(str(SCRIPTS_DIR))
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="mlflow-pipeline-user", SecretString=json.dumps({"username": "pipeline", "password": "s3cr3t-pa55word"})
    )["ARN"]
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    port = free_port()
    result = tracking.connect(
        {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",  # nothing listens: continue without tracking
            "MLOPS_TRACKING_CREDENTIALS": "secrets_manager",
            "MLOPS_TRACKING_SECRET_ARN": arn,
            "MLOPS_TRACKING_ON_UNAVAILABLE": "continue",
            "MLOPS_TRACKING_CONNECT_ATTEMPTS": "1",
        }
    )
    assert result.enabled is False
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "pipeline"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cr3t-pa55word"

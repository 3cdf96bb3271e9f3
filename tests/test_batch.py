"""The batch inference pipeline, run locally end to end (`run --local --pipeline batch`):
the champion scores the example rows after a drift check against its training baseline;
a shifted copy (a feature's mean moved by two standard deviations and a category training
never saw) is flagged, and with `batch.drift.action: fail` the execution fails naming the
feature. Also: the transform job's batching and its report of a failing line (pure)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.local.runner import ExecutionRecord, load_execution
from tests.conftest import DEFAULT_CONFIG
from tests.test_local_mode import shared_tracking, tracking_env  # noqa: F401 - fixtures

NAME = "batch-cancer"
BINARY = {
    "pipeline.name": NAME, "registration.model_package_group": NAME, "mlflow.experiment": NAME,
    "mlflow.registered_model": NAME, "data.input_uri": f"s3://mlops-artifacts-123456789012/{NAME}/train.csv",
    "data.target": "diagnosis", "data.features": "null", "training.task": "binary_classification",
    "training.objective": "null", "training.hyperparameters": "{n_estimators: 50}", "tuning.enabled": "false",
    "quality_gate": "{metric: binary_classification_metrics.auc.value, operator: GreaterThanOrEqualTo, threshold: 0.5}",
    "deployment.stages": "[]",
}  # fmt: skip
SETTINGS = [item for key, value in BINARY.items() for item in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_tracking: str) -> Iterator[Path]:  # noqa: F811
    """A workspace whose champion is an approved breast-cancer classifier."""
    workspace = tmp_path_factory.mktemp("batch") / ".local"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", shared_tracking)
        code = main(["run", "--local", "--example-data", "breast-cancer", "--approve", "--config", str(DEFAULT_CONFIG),
                     "--workspace", str(workspace), *SETTINGS])  # fmt: skip
    assert code == 0
    yield workspace


def run_batch(capsys: pytest.CaptureFixture[str], workspace: Path, *extra: str) -> tuple[int, ExecutionRecord, str]:
    code = main(["run", "--local", "--pipeline", "batch", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(workspace), *SETTINGS, *extra])  # fmt: skip
    out, err = capsys.readouterr()
    execution = out.strip().rsplit("/", 1)[-1]
    return code, load_execution(workspace / "executions" / execution / "execution.json"), err


def example_rows() -> pd.DataFrame:
    from pipeline.example_data import example_frame

    return example_frame("breast-cancer").drop(columns=["diagnosis"])


def test_the_champion_scores_the_batch_as_its_served_model_would(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    import mlflow

    rows = example_rows()
    batch = tmp_path / "rows.csv"
    rows.to_csv(batch, index=False)
    scored = f"BatchOutputUri=s3://mlops-artifacts-123456789012/{NAME}/scored/"
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", "--param", scored)
    assert code == 0, err
    assert record.pipeline == f"{NAME}-batch" and record.steps["DriftGate"].properties == {"Outcome": "True"}
    assert record.steps["Transform"].status == "Succeeded" and "drift gate  passed" in err
    out = trained / "s3" / "mlops-artifacts-123456789012" / NAME / "scored" / "rows.csv.out"
    predicted = out.read_text().splitlines()
    # what the served model answers for the same rows, as a client sends them (missing values as nulls)
    mlflow.set_tracking_uri(tracking_env)  # another test may have set a global one
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(pd.read_csv(batch))
    assert predicted == [str(v) for v in served] and len(predicted) == len(rows)

    from mlflow import MlflowClient

    client = MlflowClient(tracking_env)
    experiment = client.get_experiment_by_name(NAME)
    (drift_run,) = client.search_runs([experiment.experiment_id], "tags.`mlops.step` = 'drift'", max_results=5)[:1]
    assert drift_run.data.metrics["drift_worst_ratio"] < 1 and "drift_clinic_unseen_share" in drift_run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(drift_run.info.run_id, "drift")}
    assert {"drift/drift_report.json", "drift/constraint_violations.json", "drift/drift_report.png"} <= artifacts


def shifted(tmp_path: Path) -> Path:
    rows = example_rows()
    radius = pd.to_numeric(rows["mean radius"], errors="coerce")  # some are spelled missing
    rows["mean radius"] = radius + 2 * radius.std()
    rows.loc[rows.index[:60], "clinic"] = "west"  # a clinic training never saw
    path = tmp_path / "shifted.csv"
    rows.to_csv(path, index=False)
    return path


def test_drift_fails_the_execution_naming_the_feature_or_only_flags_it(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    path = shifted(tmp_path)
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={path}")
    assert code == 1 and record.status == "Failed"
    assert record.failure_reason.startswith("Drift detected: feature mean radius psi = "), record.failure_reason
    assert record.steps["Transform"].status == "Skipped"
    drift_output = Path(record.steps["DriftCheck"].properties["ProcessingOutputConfig"]["Outputs"]["drift"]["S3Output"]
                        ["S3Uri"].replace("s3://", str(trained / "s3") + "/"))  # fmt: skip
    violations = json.loads((drift_output / "constraint_violations.json").read_text())["violations"]
    assert {("mean radius", "baseline_drift_check"), ("clinic", "categorical_values_check")} <= {
        (v["feature_name"], v["constraint_check_type"]) for v in violations
    }

    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={path}", "--set",
                                  "batch.drift.action=flag")  # fmt: skip
    assert code == 0 and record.steps["DriftGate"].properties == {"Outcome": "False"}, err
    assert record.steps["Transform"].status == "Succeeded" and "drift gate  failed" in err


def test_without_a_champion_the_batch_says_what_to_do(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    code = main(["run", "--local", "--pipeline", "batch", "--example-data", "--config", str(DEFAULT_CONFIG),
                 "--workspace", str(tmp_path / ".local"), "--set", "mlflow.registered_model=nobody-here"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no model to score: nobody-here@champion does not exist" in err, err


# ---- the transform job's own logic -----------------------------------------------------


@pytest.fixture(scope="module")
def transform_job() -> Any:
    from pipeline.local.jobs import TRANSFORM_JOB

    spec = importlib.util.spec_from_file_location("transform_job", TRANSFORM_JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_multi_record_batches_fill_the_payload_and_single_record_sends_one(transform_job: Any) -> None:
    data = b"\n".join([b"x" * 9] * 10) + b"\n"  # 10 bytes a record with its newline
    assert [(i, b.count(b"\n") + 1, len(b)) for i, b in transform_job.batches(data, "MultiRecord", 35)] == [
        (0, 3, 29), (3, 3, 29), (6, 3, 29), (9, 1, 9),
    ]  # fmt: skip
    assert len(list(transform_job.batches(data, "SingleRecord", 35))) == 10
    assert [i for i, _ in transform_job.batches(b"y" * 100 + b"\nz\n", "MultiRecord", 35)] == [0, 1]  # alone
    assert list(transform_job.batches(b"", "MultiRecord", 35)) == []


def test_a_failing_record_is_named_by_its_line(transform_job: Any, tmp_path: Path) -> None:
    class Program:  # a model's inference code that cannot read "oops"
        @staticmethod
        def input_fn(body: bytes, content_type: str) -> list[str]:
            return body.decode().split("\n")

        @staticmethod
        def predict_fn(rows: list[str], model: Any) -> list[float]:
            return [float(r) * 2 for r in rows]

        @staticmethod
        def output_fn(prediction: list[float], accept: str) -> str:
            return "\n".join(f"{p:g}" for p in prediction)

    spec = {"split": "Line", "strategy": "MultiRecord", "max_payload_mb": 1, "content_type": "text/csv",
            "accept": "text/csv", "join_input": True}  # fmt: skip
    source = tmp_path / "in.csv"
    source.write_text("1\n2\n3\n")
    assert transform_job.transform_file(Program, None, source, tmp_path / "out" / "in.csv.out", spec) == 3
    assert (tmp_path / "out" / "in.csv.out").read_text() == "1,2\n2,4\n3,6\n"
    source.write_text("1\n2\noops\n4\n")
    with pytest.raises(RuntimeError, match=r"in.csv: line 3: ValueError: could not convert string to float: 'oops'"):
        transform_job.transform_file(Program, None, source, tmp_path / "out2" / "in.csv.out", spec)
    assert not (tmp_path / "out2" / "in.csv.out").exists()  # no half-written output

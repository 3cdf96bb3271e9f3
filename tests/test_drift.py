"""Drift statistics (pipeline/steps/scripts/drift.py) on the example data: a copy of the
training split does not drift; a feature's mean moved by two standard deviations and a
new category do, named in Model Monitor's violation layout."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.code_bundle import SCRIPTS_DIR
from tests.tracking_fixtures import tracking_server  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def drift():
    spec = importlib.util.spec_from_file_location("drift", SCRIPTS_DIR / "drift.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(50, 10, n).round(1),
        "bmi": rng.normal(26, 4, n),
        "sex": rng.choice(["F", "M"], n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip


TYPES = {"age": "numeric", "bmi": "numeric", "sex": "categorical", "plan": "categorical"}


def test_a_fresh_sample_of_the_same_population_does_not_drift(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    report = drift.compare(reference, frame(n=1000, seed=1), ["NA"])
    assert report["violations"] == [] and report["worst_ratio"] < 1, report["worst_feature"]
    assert all(report["features"][f]["psi"] < 0.05 for f in ("age", "bmi"))
    assert report["features"]["sex"]["unseen_share"] == 0


def test_a_shifted_mean_and_a_new_category_are_violations_named_by_feature(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    shifted = frame(n=1000, seed=1)
    shifted["age"] = shifted["age"] + 2 * 10  # two standard deviations
    shifted.loc[:99, "plan"] = "enterprise"  # 10 % of rows: a category training never saw
    shifted["bmi"] = shifted["bmi"].astype(object)
    shifted.loc[:299, "bmi"] = "NA"  # 30 % missing
    report = drift.compare(reference, shifted, ["NA"])
    by_feature = {(v["feature_name"], v["constraint_check_type"]) for v in report["violations"]}
    assert ("age", "baseline_drift_check") in by_feature
    assert ("plan", "categorical_values_check") in by_feature and ("bmi", "completeness_check") in by_feature
    assert ("sex", "baseline_drift_check") not in by_feature
    age = report["features"]["age"]
    assert age["psi"] > 1 and age["mean_shift_in_std"] == pytest.approx(2, rel=0.1)
    assert report["features"]["plan"]["unseen_share"] == pytest.approx(0.1)
    assert (report["worst_feature"], report["worst_statistic"]) == ("age", "psi") and report["worst_ratio"] > 1
    unseen = next(v for v in report["violations"] if v["constraint_check_type"] == "categorical_values_check")
    assert "enterprise" in unseen["description"]


def test_a_missing_column_and_statistics_at_their_edges(drift) -> None:
    reference = drift.baseline(frame(seed=0), TYPES, ["NA"])
    report = drift.compare(reference, frame(n=100).drop(columns=["sex"]), ["NA"])
    assert {"feature_name": "sex", "constraint_check_type": "missing_column_check",
            "description": "the batch has no column sex"} in report["violations"]  # fmt: skip
    assert report["worst_feature"] == "sex" and math.isfinite(report["worst_ratio"])
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0 and drift.psi([1.0, 0.0], [0.0, 1.0]) > 10  # smoothed, finite
    assert drift.js_distance({"a": 1.0}, {"a": 1.0}) == 0 and drift.js_distance({"a": 1.0}, {"b": 1.0}) == 1


def test_the_drift_job_writes_the_report_violations_and_picture_and_logs_a_run(
    drift,
    tmp_path,
    tracking_server,  # noqa: F811 - fixture
) -> None:
    """As a processing job runs it (entrypoint.sh), against a real MLflow server."""
    import json

    from mlflow import MlflowClient

    from tests.test_step_scripts import processing, script_env

    model = tmp_path / "model"
    (model / "baseline").mkdir(parents=True)
    (model / "baseline" / "baseline.json").write_text(json.dumps(drift.baseline(frame(seed=0), TYPES, ["NA"])))
    data = tmp_path / "data"
    data.mkdir()
    shifted = frame(n=500, seed=1)
    shifted["age"] = shifted["age"] + 20
    shifted.to_csv(data / "batch.csv", index=False)
    experiment = f"drift-{tmp_path.name}"[-60:]
    env = script_env(tracking_server.uri, experiment, MLOPS_PIPELINE_EXECUTION_ARN="arn:execution/x")
    result = processing("drift_check.py", ["--model", str(model), "--data", str(data), "--output-dir",
                                           str(tmp_path / "out")], env, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "drift: worst age psi=" in result.stdout
    report = json.loads((tmp_path / "out" / "drift_report.json").read_text())
    assert report["worst_feature"] == "age" and report["worst_ratio"] > 1 and report["mlflow_run_id"]
    violations = json.loads((tmp_path / "out" / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == {"age"}
    assert (tmp_path / "out" / "drift_report.png").read_bytes().startswith(b"\x89PNG")
    client = MlflowClient(tracking_server.uri)
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.tags["mlops.step"] == "drift" and run.data.metrics["drift_age_psi"] > 1
    assert {a.path for a in client.list_artifacts(run.info.run_id, "drift")} >= {
        "drift/drift_report.json", "drift/constraint_violations.json", "drift/drift_report.png",
    }  # fmt: skip

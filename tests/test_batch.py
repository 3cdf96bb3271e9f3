"""The batch inference pipeline, run locally end to end (`run --local --pipeline batch`):
the champion scores the example rows after a drift check against its training baseline;
a shifted copy (a feature's mean moved by two standard deviations and a category training
never saw) is flagged, and with `batch.drift.action: fail` the execution fails naming the
feature. Then each finding of issue #19, on files large enough to be cut into several
requests (`batch.max_payload_mb=1`) where it depends on that: columns in another order,
blank lines, outputs that overlap, a bad value, formats and encodings, small batches."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.local.runner import ExecutionRecord, load_execution
from tests.conftest import DEFAULT_CONFIG
from tests.job_python import predictions
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
    served = predictions(f"models:/{NAME}@champion", str(batch), tracking_env)
    assert predicted == served and len(predicted) == len(rows)

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
    assert record.failure_reason.startswith("Drift gate failed: drift detected: feature mean radius "), (
        record.failure_reason
    )
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


# ---- issue #19: every row scored as its own ------------------------------------------------

BUCKET_BASE = f"s3://mlops-artifacts-123456789012/{NAME}"
SMALL_REQUESTS = ["--set", "batch.max_payload_mb=1"]


def many_rows(n: int, seed: int = 3) -> pd.DataFrame:
    """`n` rows drawn from the example rows (so they do not drift): ~90 bytes a row."""
    rows = example_rows()
    return rows.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)


def output_file(workspace: Path, prefix: str, name: str) -> Path:
    return workspace / "s3" / prefix.removeprefix("s3://") / name


def served_predictions(tracking_uri: str, frame: pd.DataFrame) -> list[str]:
    """What the served model answers for the rows, as a client reads them from CSV (missing
    spellings such as "null" as nulls: the MLflow signature takes numbers as numbers)."""
    with tempfile.TemporaryDirectory() as folder:
        frame.to_csv(Path(folder) / "rows.csv", index=False)
        return predictions(f"models:/{NAME}@champion", str(Path(folder) / "rows.csv"), tracking_uri)


def test_columns_in_another_order_are_scored_by_name_in_every_request_and_joined_to_their_row(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    rows = many_rows(40_000)
    batch = tmp_path / "reversed.csv"
    rows[list(reversed(rows.columns))].to_csv(batch, index=False, float_format="%.10g")
    assert batch.stat().st_size > 2 * 1024 * 1024  # three requests of 1 MB
    output = f"{BUCKET_BASE}/scored-reversed/"
    joined = ["--set", "batch.join_input=true", *SMALL_REQUESTS]
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", "--param",
                                  f"BatchOutputUri={output}", *joined)  # fmt: skip
    assert code == 0, err
    assert record.steps["Transform"].detail == "transformed 40000 records from 1 file(s)"
    lines = output_file(trained, output, "reversed.csv.out").read_text().splitlines()
    assert len(lines) == 40_000
    joined = pd.read_csv(output_file(trained, output, "reversed.csv.out"), header=None, dtype=str,
                         keep_default_na=False)  # fmt: skip
    as_written = pd.read_csv(batch, dtype=str, keep_default_na=False)[list(rows.columns)]  # training order
    assert (joined.iloc[:, : rows.shape[1]].to_numpy() == as_written.to_numpy()).all()  # each answer on its row
    expected = served_predictions(tracking_env, rows)
    assert joined.iloc[:, -1].tolist() == expected


def test_blank_lines_and_quoted_newlines_are_refused_by_line_before_anything_is_scored(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    rows = many_rows(20_000)
    text = rows.to_csv(index=False, float_format="%.10g").splitlines()
    batch = tmp_path / "gappy.csv"
    batch.write_text("\n".join([*text[:5001], "", *text[5001:]]) + "\n")  # line 5002 is blank
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", *SMALL_REQUESTS)
    assert code == 1 and record.steps["Transform"].status in {"Pending", "Skipped"}, err
    assert "gappy.csv: line 5002 is blank" in record.failure_reason, record.failure_reason
    rows.loc[6999, "clinic"] = "north\nside"  # line 7001: a quoted value over two lines
    rows.to_csv(batch, index=False, float_format="%.10g")
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", *SMALL_REQUESTS)
    assert code == 1 and "gappy.csv: line 7001 opens a quoted value" in record.failure_reason, record.failure_reason


def test_an_output_over_the_input_or_the_workspace_is_refused_and_other_answers_are_kept(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    def refused(*extra: str) -> str:
        code = main(["run", "--local", "--pipeline", "batch", "--config", str(DEFAULT_CONFIG),
                     "--workspace", str(trained), *SETTINGS, *extra])  # fmt: skip
        assert code == 2
        return " ".join(capsys.readouterr().err.split())  # rich wraps long lines

    before = sorted(p.relative_to(trained) for p in (trained / "s3").rglob("*"))
    err = refused("--param", "BatchOutputUri=s3://mlops-artifacts-123456789012/diabetes-regression/")  # aws.prefix
    assert "BatchOutputUri" in err and "the code bundles" in err and "the trained models" in err, err
    inputs = f"{BUCKET_BASE}/nightly/"
    err = refused("--param", f"BatchInputUri={inputs}", "--param", f"BatchOutputUri={inputs}scored/")
    assert "BatchInputUri (the batch it scores)" in err, err
    assert sorted(p.relative_to(trained) for p in (trained / "s3").rglob("*")) == before  # nothing written

    output = f"{BUCKET_BASE}/scored-daily/"
    for day in ("monday", "tuesday"):
        path = tmp_path / f"{day}.csv"
        many_rows(200, seed=len(day)).to_csv(path, index=False)
        code, _, err = run_batch(capsys, trained, "--param", f"BatchInputUri={path}", "--param",
                                 f"BatchOutputUri={output}")  # fmt: skip
        assert code == 0, err
    assert len(output_file(trained, output, "monday.csv.out").read_text().splitlines()) == 200  # kept
    assert len(output_file(trained, output, "tuesday.csv.out").read_text().splitlines()) == 200


def test_a_bad_value_is_named_by_file_line_column_and_value(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    rows = many_rows(20_000).astype(object)
    rows.loc[12_344, "mean radius"] = "abc"  # record 12345 (line 12346 with the header)
    batch = tmp_path / "typo.csv"
    rows.to_csv(batch, index=False)
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", *SMALL_REQUESTS)
    assert code == 1 and "feature mean radius" in record.failure_reason, record.failure_reason  # the gate names it
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", "--set",
                                  "batch.drift.action=flag", *SMALL_REQUESTS)  # fmt: skip
    assert code == 1 and record.steps["Transform"].status == "Failed", err
    failure = record.steps["Transform"].failure
    assert "typo.csv: record 12345" in failure and "mean radius" in failure and "abc" in failure, failure


def test_json_lines_other_separators_encodings_and_parquet_are_scored_one_answer_per_record(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    rows = many_rows(300)
    rows.loc[rows.index[:40], "clinic"] = "südost, alt"  # a separator and an accent inside a value
    output = f"{BUCKET_BASE}/scored-formats/"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(rows.to_csv(index=False, sep=";").encode("latin-1"))
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={latin}", "--param",
                                  f"BatchOutputUri={output}", "--set", "batch.drift.action=flag")  # fmt: skip
    assert code == 1 and "latin.csv: line" in record.failure_reason and "not utf-8 text" in record.failure_reason
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={latin}", "--param",
                                  f"BatchOutputUri={output}", "--set", "data.csv.separator=;", "--set",
                                  "data.csv.encoding=latin-1", "--set", "batch.drift.action=flag", "--set",
                                  "batch.accept=application/jsonlines")  # fmt: skip
    assert code == 0, err
    answers = [json.loads(line) for line in output_file(trained, output, "latin.csv.out").read_text().splitlines()]
    assert len(answers) == 300 and set(answers[0]) == {"prediction", "probabilities"}
    assert [a["prediction"] for a in answers] == served_predictions(tracking_env, rows)
    assert all(abs(sum(a["probabilities"].values()) - 1) < 1e-9 for a in answers)

    parquet = tmp_path / "rows.parquet"
    pd.read_csv(io.StringIO(many_rows(300).to_csv(index=False))).to_parquet(parquet)  # typed, nulls as nulls
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={parquet}", "--param",
                                  f"BatchOutputUri={output}")  # fmt: skip
    assert code == 0, err
    assert output_file(trained, output, "rows.parquet.out").read_text().splitlines() == served_predictions(
        tracking_env, many_rows(300)
    )


def test_a_small_batch_follows_the_small_batch_setting(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tracking_env: str,  # noqa: F811
) -> None:
    batch = tmp_path / "few.csv"
    many_rows(10).to_csv(batch, index=False)
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}")
    assert code == 1 and record.steps["Transform"].status == "Skipped"
    assert "the batch has 10 records, fewer than batch.drift.min_rows (30)" in record.failure_reason
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={batch}", "--set",
                                  "batch.drift.small_batch=score")  # fmt: skip
    assert code == 0 and record.steps["Transform"].detail == "transformed 10 records from 1 file(s)", err
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(example_rows().columns) + "\n")
    code, record, err = run_batch(capsys, trained, "--param", f"BatchInputUri={header_only}")
    assert code == 1 and "the batch has 0 records" in record.failure_reason, record.failure_reason

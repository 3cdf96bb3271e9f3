"""The batch record contract, piece by piece: how a batch file is read and checked
(`batch_records.py`), how a request is read and answered (`inference.py`), how the local
transform job cuts, bisects and joins (`transform_job.py`), where answers may go
(`pipeline/batch_output.py`) and which package a batch may score (`pipeline/batch_model.py`).
The same rules run end to end in tests/test_batch.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.code_bundle import SCRIPTS_DIR
from pipeline.config_loader import load_config
from pipeline.errors import UsageError
from tests.conftest import DEFAULT_CONFIG

FEATURES = ["a", "b", "c"]


def _script(name: str) -> Any:
    """A job script's module as its neighbours import it (one `dataset.DataError` for all)."""
    if str(SCRIPTS_DIR) not in sys.path:
        sys.path.insert(0, str(SCRIPTS_DIR))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def records() -> Any:
    return _script("batch_records")


@pytest.fixture(scope="module")
def dataset() -> Any:
    return _script("dataset")


@pytest.fixture(scope="module")
def inference() -> Any:
    return _script("inference")


def spec(dataset: Any, **options: Any) -> Any:
    return dataset.DatasetSpec(task="regression", target="y", **options)


# ---- reading a batch file --------------------------------------------------------------


def test_a_header_in_another_order_is_mapped_by_name(records: Any, dataset: Any, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("c,a,b\n3,1,2\n6,4,\n")
    frame = records.read_batch_file(path, spec(dataset), FEATURES)
    assert list(frame.columns) == FEATURES
    assert frame.fillna("-").values.tolist() == [["1", "2", "3"], ["4", "-", "6"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,d\n1,2,3\n", r"rows.csv: its header \(line 1\) lacks feature\(s\) c and names unknown column\(s\) d"),
        ("a,b,c\n1,2,3\n\n4,5,6\n", r"rows.csv: line 3 is blank"),
        ("\na,b,c\n1,2,3\n", r"rows.csv: line 1 is blank"),
        ("a,b,c\n1,2,3\n\n", r"rows.csv: line 3 is blank"),
        ('a,b,c\n1,"two\nlines",3\n', r"rows.csv: line 2 opens a quoted value that runs on"),
        ("a,b,c\n1,2,3\n4,5\n", r"rows.csv: line 3 has 2 fields, 3 expected"),
        ("a,b,c\n1,2,3\n4,5,6,7\n", r"rows.csv: line 3 has 4 fields, 3 expected"),
        ("", r"rows.csv: the file is empty"),
        ("a,a,b\n1,2,3\n", r"names a more than once"),
    ],
)
def test_what_would_misalign_is_refused_naming_file_and_line(
    records: Any, dataset: Any, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(dataset.DataError, match=message):
        records.read_batch_file(path, spec(dataset), FEATURES)


def test_the_configured_csv_options_and_parquet_are_read(records: Any, dataset: Any, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("b;a;c\nmünchen;1;2\n".encode("latin-1"))
    with pytest.raises(dataset.DataError, match=r"latin.csv: line 2, byte 7 is not utf-8 text \(set data.csv.encoding"):
        records.read_batch_file(latin, spec(dataset, separator=";"), FEATURES)
    frame = records.read_batch_file(latin, spec(dataset, separator=";", encoding="latin-1"), FEATURES)
    assert frame.values.tolist() == [["1", "münchen", "2"]]

    headless = tmp_path / "headless.csv"
    headless.write_text("1,2,3\n")
    assert records.read_batch_file(headless, spec(dataset, header=False), FEATURES).values.tolist() == [["1", "2", "3"]]
    named = spec(dataset, header=False, column_names=["c", "y", "b", "a"])  # the target dropped, the rest by name
    headless.write_text("3,2,1\n")
    assert records.read_batch_file(headless, named, FEATURES).values.tolist() == [["1", "2", "3"]]
    headless.write_text("3,9,2,1\n")
    with pytest.raises(dataset.DataError, match=r"4 fields a line, data.csv.column_names has 3 \(c, b, a\)"):
        records.read_batch_file(headless, named, FEATURES)

    parquet = tmp_path / "rows.parquet"
    pd.DataFrame({"c": [3.5, None], "a": [1, 2], "b": ["x", "y"]}).to_parquet(parquet)
    frame = records.read_batch_file(parquet, spec(dataset), FEATURES)
    assert frame.fillna("-").values.tolist() == [["1", "x", "3.5"], ["2", "y", "-"]]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"\xc8 not parquet")
    with pytest.raises(dataset.DataError, match=r"broken.parquet: not a readable Parquet file"):
        records.read_batch_file(broken, spec(dataset), FEATURES)


def test_records_are_written_in_training_order_and_a_record_over_the_payload_is_refused(
    records: Any, dataset: Any, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "sub" / "rows.csv"
    source.parent.mkdir(parents=True)
    source.write_text('b,c,a\n"x,y",3,1\n,6,4\n')
    (batch_file,) = records.read_batch(tmp_path / "in", spec(dataset), FEATURES)
    written = records.write_records(batch_file, tmp_path / "out", 1024)
    assert written == tmp_path / "out" / "sub" / "rows.csv"
    assert written.read_text() == '1,"x,y",3\n4,,6\n'
    with pytest.raises(dataset.DataError, match=r"sub/rows.csv: record 1 is 9 bytes, more than a request may carry"):
        records.write_records(batch_file, tmp_path / "small", 8)


# ---- a request, read and answered -------------------------------------------------------


def test_a_request_maps_its_header_by_name_and_answers_it_as_a_record(inference: Any) -> None:
    frame, header = inference.parse_rows("c,a,b\n3,1,2\n", "text/csv", FEATURES)
    assert header and frame.values.tolist() == [["1", "2", "3"]]
    answer = inference.output_fn({"predictions": [0.1 + 0.2, 2.0], "header": True}, "text/csv")
    assert answer == ("prediction\n0.30000000000000004\n2.0\n", "text/csv")  # full precision
    with pytest.raises(ValueError, match=r"the header lacks feature\(s\) c and names unknown column\(s\) d"):
        inference.parse_rows("a,b,d\n1,2,3\n", "text/csv", FEATURES)
    with pytest.raises(ValueError, match="unknown column"):
        inference.parse_rows(json.dumps({"instances": [{"a": 1, "zz": 2}]}), "application/json", FEATURES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n\n4,5,6\n", "record 2 is blank"),
        ("1,2,3\n4,5\n", "record 2 has 2 fields, 3 expected"),
        ("1,2,3,4\n4,5,6\n", "record 1 has 4 fields"),
        ('1,"x\ny",3\n', "record 1 opens a quoted value"),
    ],
)
def test_a_request_that_would_misalign_is_refused_by_record(inference: Any, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inference.parse_rows(text, "text/csv", FEATURES)


def test_a_quoted_comma_is_one_field_in_any_record(inference: Any) -> None:
    frame, header = inference.parse_rows('1,"x,y",3\n4,"5",6\n', "text/csv", FEATURES)
    assert not header and frame.values.tolist() == [["1", "x,y", "3"], ["4", "5", "6"]]


def test_json_lines_answer_one_object_per_record(inference: Any) -> None:
    prediction = {"predictions": ["yes", "no"], "classes": ["no", "yes"], "probabilities": [[0.25, 0.75], [0.9, 0.1]],
                  "header": False}  # fmt: skip
    text, content_type = inference.output_fn(prediction, "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert [json.loads(line) for line in text.splitlines()] == [
        {"prediction": "yes", "probabilities": {"no": 0.25, "yes": 0.75}},
        {"prediction": "no", "probabilities": {"no": 0.9, "yes": 0.1}},
    ]


# ---- the local transform job ------------------------------------------------------------


@pytest.fixture(scope="module")
def transform_job() -> Any:
    from pipeline.local.jobs import TRANSFORM_JOB

    spec = importlib.util.spec_from_file_location("transform_job", TRANSFORM_JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Doubling:
    """A model's inference code that doubles numbers, counting its calls."""

    calls = 0

    @classmethod
    def input_fn(cls, body: bytes, content_type: str) -> list[str]:
        cls.calls += 1
        return body.decode().split("\n")

    @staticmethod
    def predict_fn(rows: list[str], model: Any) -> list[float]:
        return [float(r) * 2 for r in rows]

    @staticmethod
    def output_fn(prediction: list[float], accept: str) -> str:
        return "\n".join(repr(p) for p in prediction)


TRANSFORM = {"split": "Line", "strategy": "MultiRecord", "max_payload_mb": 1, "content_type": "text/csv",
             "accept": "text/csv", "join_input": True}  # fmt: skip


def test_a_failing_record_is_found_by_bisection(transform_job: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    lines = [str(i) for i in range(20_000)]
    lines[12_345] = "oops"
    source.write_text("\n".join(lines) + "\n")
    Doubling.calls = 0
    with pytest.raises(transform_job.TransformFailed, match=r"in.csv: record 12346 \('oops'\): ValueError: could not "):
        transform_job.transform_file(Doubling, None, source, tmp_path / "out" / "in.csv.out", TRANSFORM)
    assert Doubling.calls <= 2 + int(np.ceil(np.log2(20_000))) + 1  # the request, log2 halves, the record
    assert not (tmp_path / "out" / "in.csv.out").exists()  # no half-written output


def test_every_record_gets_one_joined_answer_across_requests(transform_job: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("".join(f"{i}\n" for i in range(400_000)))  # 2.7 MB: three 1 MB requests
    target = tmp_path / "in.csv.out"
    Doubling.calls = 0
    assert transform_job.transform_file(Doubling, None, source, target, TRANSFORM) == 400_000
    assert Doubling.calls == 3
    out = target.read_text().splitlines()
    assert len(out) == 400_000 and out[0] == "0,0.0" and out[-1] == "399999,799998.0"
    assert all(line.split(",")[1] == repr(float(line.split(",")[0]) * 2) for line in out[::997])


def test_answers_that_do_not_line_up_and_records_over_the_payload_fail_the_job(
    transform_job: Any, tmp_path: Path
) -> None:
    class OneObject(Doubling):  # application/json: one object for the whole request
        @staticmethod
        def output_fn(prediction: list[float], accept: str) -> str:
            return json.dumps({"predictions": prediction})

    source = tmp_path / "in.csv"
    source.write_text("1\n2\n3\n")
    with pytest.raises(transform_job.TransformFailed, match=r"in.csv: records 1-3: 3 records gave 1 answer lines"):
        transform_job.transform_file(OneObject, None, source, tmp_path / "a.out", {**TRANSFORM, "join_input": False})
    source.write_text("1\n" + "9" * (1024 * 1024 + 1) + "\n")
    with pytest.raises(transform_job.TransformFailed, match=r"in.csv: record 2 is 1048577 bytes, more than"):
        transform_job.transform_file(Doubling, None, source, tmp_path / "b.out", TRANSFORM)


# ---- where answers go, which package scores ----------------------------------------------


def test_an_output_that_overlaps_what_the_config_keeps_is_refused() -> None:
    from pipeline.batch_output import output_overlap, overlaps

    cfg = load_config(DEFAULT_CONFIG)
    base = cfg.s3_base
    assert (
        overlaps("s3://b/x", "s3://b/x/y/")
        and overlaps("s3://b/x/y", "s3://b/x")
        and not overlaps("s3://b/out", "s3://b/output")
    )
    assert output_overlap(cfg, f"{base}/batch/input/", f"{base}/batch/output/") == ""
    message = output_overlap(cfg, f"{base}/batch/input/", f"{base}/")
    for what in ("BatchInputUri", "the code bundles", "the trained models", "the executions' step outputs"):
        assert what in message, message
    assert "BatchInputUri" in output_overlap(cfg, f"{base}/batch/", f"{base}/batch/scored/")


def test_a_batch_scores_only_an_approved_package_with_its_own_model_data() -> None:
    from pipeline.batch_model import model_parameters

    cfg = load_config(DEFAULT_CONFIG)
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1"

    def package(status: str) -> Any:
        containers = [{"ModelDataUrl": "s3://b/m/model.tar.gz"}]
        return lambda _: {"ModelApprovalStatus": status, "InferenceSpecification": {"Containers": containers}}

    def no_tracking() -> str:
        raise AssertionError("the alias is not asked when the package is given")

    given = {"ModelPackageArn": arn}
    assert model_parameters(cfg, given, package("Approved"), no_tracking) == {
        "ModelPackageArn": arn, "ModelDataUri": "s3://b/m/model.tar.gz",
    }  # fmt: skip
    with pytest.raises(UsageError, match="is PendingManualApproval: a batch scores only an Approved package"):
        model_parameters(cfg, given, package("PendingManualApproval"), no_tracking)
    with pytest.raises(UsageError, match=r"ModelDataUri s3://b/other\.tar\.gz is not model package"):
        model_parameters(cfg, {**given, "ModelDataUri": "s3://b/other.tar.gz"}, package("Approved"), no_tracking)


# ---- the drift check job's edges ----------------------------------------------------------


@pytest.fixture
def model_archive(tmp_path: Path, dataset: Any) -> Path:
    """A model.tar.gz as Train writes it, but without `baseline/` (a package trained before
    baselines existed)."""
    import tarfile

    import joblib

    tabular_model = _script("tabular_model")
    model = tabular_model.build_model(
        task="regression", features=FEATURES, column_types=dict.fromkeys(FEATURES, "numeric"), na_values=[],
        estimator_path="sklearn.linear_model.Ridge", hyperparameters={},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    model.fit(pd.DataFrame(rng.normal(size=(50, 3)), columns=FEATURES), rng.normal(size=50))
    joblib.dump(model, tmp_path / "model.joblib")
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "model.joblib", arcname="model.joblib")
    return archive


def drift_check_args(tmp_path: Path, model: Path, data: Path, dataset: Any, *extra: str) -> list[str]:
    spec_file = tmp_path / "dataset_spec.json"
    spec_file.write_text(json.dumps({"task": "regression", "target": "y"}))
    return ["--model", str(model.parent), "--data", str(data), "--output-dir", str(tmp_path / "drift"),
            "--records-dir", str(tmp_path / "records"), "--spec", str(spec_file), *extra]  # fmt: skip


def test_a_package_without_a_baseline_is_refused_with_the_fix_or_scored_unchecked(
    tmp_path: Path, dataset: Any, model_archive: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    drift_check = _script("drift_check")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tmp_path / "batch"
    data.mkdir()
    (data / "rows.csv").write_text("b,a,c\n2,1,3\n5,4,6\n")
    assert drift_check.main(drift_check_args(tmp_path, model_archive, data, dataset)) == 1
    assert "has no training baseline" in capsys.readouterr().err
    assert drift_check.main(drift_check_args(tmp_path, model_archive, data, dataset, "--missing-baseline", "skip")) == 0
    report = json.loads((tmp_path / "drift" / "drift_report.json").read_text())
    assert report["baseline"] == "missing" and report["gate_ratio"] == 0 and not report["judged"]
    assert report["files"] == [{"file": "rows.csv", "records": 2}]
    assert (tmp_path / "records" / "rows.csv").read_text() == "1,2,3\n4,5,6\n"


def test_a_corrupt_model_archive_fails_the_check_naming_it(
    tmp_path: Path, dataset: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    drift_check = _script("drift_check")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"\x1f\x8b not really gzip")
    data = tmp_path / "rows.csv"
    data.write_text("a,b,c\n1,2,3\n")
    assert drift_check.main(drift_check_args(tmp_path, archive, data, dataset)) == 1
    assert "cannot be unpacked" in capsys.readouterr().err


def test_metric_names_are_valid_for_mlflow_whatever_the_column() -> None:
    from mlflow.utils.validation import _validate_metric_name

    drift_check = _script("drift_check")
    names = drift_check.metric_names(["weight (kg)", "weight [kg]", "bmi", "größe"])
    assert names["weight (kg)"] != names["weight [kg]"] and names["bmi"] == "bmi"
    for name in names.values():
        _validate_metric_name(f"drift_{name}_psi")  # raises on a name the server refuses


def test_a_corrupt_model_archive_fails_a_local_job_naming_its_uri(tmp_path: Path) -> None:
    from pipeline.local.jobs import ArchiveUnreadable, LocalJobRunner
    from pipeline.local.workspace import Workspace

    workspace = Workspace(tmp_path / ".local")
    workspace.put("s3://b/models/job/output/model.tar.gz", b"\x1f\x8b truncated")
    runner = LocalJobRunner(workspace, tmp_path / "jobs")
    with pytest.raises(ArchiveUnreadable, match=r"s3://b/models/job/output/model\.tar\.gz is not a readable tar\.gz"):
        runner._unpack("s3://b/models/job/output/model.tar.gz", tmp_path / "into")


def test_a_transform_adds_its_answers_beside_what_the_prefix_holds(tmp_path: Path) -> None:
    from pipeline.local.workspace import Workspace

    workspace = Workspace(tmp_path / ".local")
    workspace.put("s3://b/scored/monday.csv.out", b"1\n")
    produced = tmp_path / "job-output"
    (produced / "sub").mkdir(parents=True)
    (produced / "sub" / "tuesday.csv.out").write_text("2\n")
    assert workspace.add_files(produced, "s3://b/scored/") == 1
    assert workspace.path("s3://b/scored/monday.csv.out").read_text() == "1\n"
    assert workspace.path("s3://b/scored/sub/tuesday.csv.out").read_text() == "2\n"


def test_a_model_trained_under_another_scikit_learn_minor_version_is_refused_naming_both(
    tmp_path: Path, inference: Any
) -> None:
    """Train writes training_environment.json beside model.joblib; the serving code refuses
    a model of another minor version before unpickling it (a ColumnTransformer of 1.6.1 fails
    in 1.4.2 on '_RemainderColsList')."""
    import joblib
    import sklearn

    training_environment = _script("training_environment")
    joblib.dump({"a": "model"}, tmp_path / "model.joblib")
    assert inference.model_fn(str(tmp_path)) == {"a": "model"}  # a model from before the file: loaded
    written = training_environment.write(tmp_path)
    assert written["scikit-learn"] == sklearn.__version__ and set(written) == {"python", "scikit-learn", "numpy",
                                                                                 "pandas"}  # fmt: skip
    assert inference.model_fn(str(tmp_path)) == {"a": "model"}  # trained here: loaded
    (tmp_path / "training_environment.json").write_text(json.dumps({**written, "scikit-learn": "1.4.2"}))
    with pytest.raises(RuntimeError) as raised:
        inference.model_fn(str(tmp_path))
    assert f"trained with scikit-learn 1.4.2 and this environment runs {sklearn.__version__}" in str(raised.value)

"""Data as it comes: each input that used to break the pipeline (issue #10's list), the
table of data faults Preprocess refuses before anything is paid for, and the contracts
between the config side and the job scripts (dataset spec, metric names)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.code_bundle import SCRIPTS_DIR
from pipeline.config_loader import load_config
from pipeline.dataset_spec import dataset_spec
from pipeline.example_data import write_example_csv
from tests.conftest import DEFAULT_CONFIG
from tests.job_python import in_job_environment
from tests.test_step_scripts import FEATURES, RANDOM_FOREST, processing, script_env, training, trial_env, write_spec


@contextmanager
def scripts_importable() -> Iterator[None]:
    """The job scripts' modules importable here, as they are beside each other in a job."""
    sys.path.insert(0, str(SCRIPTS_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(SCRIPTS_DIR))


def run_preprocess(work: Path, frame_or_text: pd.DataFrame | bytes, **spec: Any) -> Any:
    raw = work / "raw"
    raw.mkdir(exist_ok=True)
    if isinstance(frame_or_text, bytes):
        (raw / "data.csv").write_bytes(frame_or_text)
    else:
        frame_or_text.to_csv(raw / "data.csv", index=False)
    args = ["--input", str(raw), "--output-dir", str(work / "splits"), "--spec", str(write_spec(work, **spec))]
    return processing("preprocess.py", args, script_env("", "x"), work)


def run_training(work: Path, *args: str) -> Any:
    return training([*RANDOM_FOREST, *args], trial_env(script_env("", "x"), work, 1), work)


@pytest.fixture
def diabetes(tmp_path: Path) -> pd.DataFrame:
    return pd.read_csv(write_example_csv(tmp_path / "diabetes.csv", "diabetes"))


def test_a_text_column_is_a_category_inside_the_model(tmp_path: Path, diabetes: pd.DataFrame) -> None:
    diabetes["sex"] = diabetes["sex"].map(lambda v: "female" if v > 0 else "male")
    assert run_preprocess(tmp_path, diabetes).returncode == 0
    schema = json.loads((tmp_path / "splits" / "train" / "schema.json").read_text())
    assert schema["column_types"]["sex"] == "categorical"
    result = run_training(tmp_path, "--n_estimators", "10")
    assert result.returncode == 0, result.stderr


def test_missing_cells_with_gradient_boosting_are_imputed(tmp_path: Path, diabetes: pd.DataFrame) -> None:
    diabetes = diabetes.astype(object)
    diabetes.loc[::7, "bmi"] = "NA"
    diabetes.loc[::11, "s1"] = ""
    diabetes.loc[::13, "bp"] = "?"
    assert run_preprocess(tmp_path, diabetes).returncode == 0
    trial = trial_env(script_env("", "x"), tmp_path, 1)
    result = training(["--estimator", "sklearn.ensemble.GradientBoostingRegressor", "--n_estimators", "10"], trial,
                      tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_model_takes_the_table_as_pandas_reads_it(tmp_path: Path, diabetes: pd.DataFrame) -> None:
    """The MLflow model accepts its own training table as `read_csv` and `read_parquet` read
    it: integer columns (int64, nullable Int64 with gaps), booleans, strings; a signature of
    `double` refused an int64 column ("Can not safely convert int64 to float64")."""
    import mlflow

    diabetes["age"] = (diabetes["age"] * 100).round().astype(int)  # an integer column
    diabetes["smoker"] = np.where(diabetes["bp"] > 0, "True", "False")  # read back as bool
    assert run_preprocess(tmp_path, diabetes, features=[*FEATURES.split(","), "smoker"]).returncode == 0
    assert run_training(tmp_path, "--n_estimators", "10").returncode == 0
    model = str(tmp_path / "model-1" / "mlflow-model")
    inputs = mlflow.models.get_model_info(model).signature.inputs
    assert [c.name for c in inputs.inputs] == list(diabetes.columns.drop("target"))
    assert all(not c.required for c in inputs.inputs)
    features = diabetes.drop(columns=["target"])
    rows = tmp_path / "rows.csv"
    features.to_csv(rows, index=False)
    parquet = tmp_path / "rows.parquet"
    with_gaps = pd.read_csv(rows).astype({"age": "Int64", "smoker": "boolean"})
    with_gaps.loc[::5, ["age", "smoker"]] = pd.NA
    with_gaps.to_parquet(parquet)
    # loaded and asked where it was trained (the job environment: a pickle loads under its own scikit-learn)
    answers = in_job_environment(PREDICT_AS_READ, model, str(rows), str(parquet))
    assert answers["csv_dtypes"]["age"] == "int64" and answers["csv_dtypes"]["smoker"] == "bool"
    assert answers["parquet_dtypes"]["age"] == "Int64" and answers["parquet_dtypes"]["smoker"] == "boolean"
    assert len(answers["csv"]) == len(answers["parquet"]) == len(features)
    assert answers["parquet_rows_1_to_4"] == answers["csv"][1:5]  # rows without gaps
    # a float where training saw integers, and a row with most values missing
    assert answers["odd_rows"] == 2


# An MLflow model (argv[1]) asked for the rows of a CSV (argv[2]) and a Parquet file (argv[3])
# as pandas reads them, and for two odd rows.
PREDICT_AS_READ = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
csv, parquet = pd.read_csv(sys.argv[2]), pd.read_parquet(sys.argv[3])
print(json.dumps({
    "csv_dtypes": {c: str(t) for c, t in csv.dtypes.items()},
    "parquet_dtypes": {c: str(t) for c, t in parquet.dtypes.items()},
    "csv": [float(v) for v in model.predict(csv)],
    "parquet": [float(v) for v in model.predict(parquet)],
    "parquet_rows_1_to_4": [float(v) for v in model.predict(parquet.iloc[1:5])],
    "odd_rows": len(model.predict(pd.DataFrame([{"age": 1.5, "bmi": 0.02}, {"age": None}]))),
}))
"""


def test_many_features_never_become_an_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """36 columns of a house-prices table: 391 characters as one argument, which SageMaker
    refuses (256 at most). They now travel in dataset_spec.json."""
    names = [f"{n}_square_feet" for n in ("first_floor", "second_floor", "basement", "garage", "porch", "deck")] * 6
    names = [f"{name}_{i}" for i, name in enumerate(names)]
    listed = "[" + ", ".join(names) + "]"
    out = tmp_path / "definition.json"
    assert main(["render", "--config", str(DEFAULT_CONFIG), "--set", f"data.features={listed}",
                 "--set", "tuning.enabled=false", "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    definition = out.read_text()
    assert names[-1] not in definition  # not in any argument, hyperparameter or environment
    preprocess = next(s for s in json.loads(definition)["Steps"] if s["Name"] == "Preprocess")
    assert all(len(arg) <= 256 for arg in preprocess["Arguments"]["AppSpecification"]["ContainerArguments"])


def test_semicolons_latin1_and_no_header(tmp_path: Path, diabetes: pd.DataFrame) -> None:
    """The UCI wine-quality layout (semicolons), a legacy encoding and a file without a header."""
    diabetes["sex"] = diabetes["sex"].map(lambda v: "fémme" if v > 0 else "hômme")
    text = diabetes.to_csv(sep=";", index=False, header=False).encode("latin-1")
    columns = [*FEATURES.split(","), "target"]
    result = run_preprocess(tmp_path, text, separator=";", encoding="latin-1", header=False, column_names=columns)
    assert result.returncode == 0, result.stderr
    train = pd.read_csv(tmp_path / "splits" / "train" / "train.csv")
    assert set(train["sex"]) == {"fémme", "hômme"} and len(train.columns) == 11


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda f: f.assign(comment=[f"note {i}" for i in range(len(f))]),
            "column comment holds text with 442 distinct values (more than data.max_categories=50)",
        ),
        (lambda f: f.assign(s4=None), "all-missing column(s): s4"),
        (lambda f: f.assign(s5=1.0), "constant column(s): s5"),
        (lambda f: f.head(5), "5 rows give too few rows per split"),
        (lambda f: f.assign(target="x"), "target column target must be numeric for regression (it holds 'x')"),
    ],
    ids=["free text with no rule", "all-missing", "constant", "5 rows", "text target for regression"],
)
def test_data_faults_fail_preprocess_naming_the_columns(
    tmp_path: Path, diabetes: pd.DataFrame, mutate: Any, expected: str
) -> None:
    frame = mutate(diabetes)
    features = [c for c in frame.columns if c != "target"]
    result = run_preprocess(tmp_path, frame, features=features)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "splits").exists()


@pytest.mark.parametrize(
    ("labels", "task", "expected"),
    [
        (["yes"] * 442, "binary_classification", "target column target has one class ('yes')"),
        (["a", "b", "c"] * 147 + ["a"], "binary_classification", "has 3 classes"),
        (["a"] * 440 + ["b"] * 2, "binary_classification", "target class(es) with fewer than 3 rows"),
    ],
    ids=["single class", "three classes for binary", "class too rare to split"],
)
def test_classification_target_faults(
    tmp_path: Path, diabetes: pd.DataFrame, labels: list[str], task: str, expected: str
) -> None:
    result = run_preprocess(tmp_path, diabetes.assign(target=labels), task=task)
    assert result.returncode == 1 and expected in result.stderr


def test_classification_split_is_stratified(tmp_path: Path, diabetes: pd.DataFrame) -> None:
    labels = ["rare" if i % 10 == 0 else "common" for i in range(len(diabetes))]
    assert run_preprocess(tmp_path, diabetes.assign(target=labels), task="binary_classification").returncode == 0
    shares = {
        split: pd.read_csv(tmp_path / "splits" / split / f"{split}.csv")["target"].eq("rare").mean()
        for split in ("train", "validation", "test")
    }
    assert all(abs(share - 0.1) < 0.03 for share in shares.values()), shares


def test_dataset_spec_is_what_the_script_reads() -> None:
    with scripts_importable():
        from dataset import DatasetSpec
    spec = dataset_spec(load_config(DEFAULT_CONFIG))
    assert DatasetSpec(**spec).target == "target"  # every key is a field of the reading side


def test_config_metric_names_are_what_the_scripts_compute() -> None:
    import numpy as np

    from pipeline.tasks import REPORT_METRICS, TRAINING_METRICS

    with scripts_importable():
        import model_quality
        from tabular_model import build_model
    assert model_quality.TRAINING_METRICS == TRAINING_METRICS
    rng = np.random.RandomState(0)
    x = pd.DataFrame({"a": rng.rand(300), "b": rng.rand(300)})
    targets = {
        "regression": x["a"] * 3,
        "binary_classification": np.where(x["a"] > 0.5, "yes", "no"),
        "multiclass_classification": np.array(["p", "q", "r"])[(x["a"] * 3).astype(int)],
    }
    for task, y in targets.items():
        estimator = "sklearn.linear_model.Ridge" if task == "regression" else "sklearn.linear_model.LogisticRegression"
        model = build_model(task=task, features=["a", "b"], column_types={}, na_values=[], estimator_path=estimator,
                            hyperparameters={}).fit(x, y)  # fmt: skip
        report = model_quality.evaluation_report(task, model, x, y)[model_quality.REPORT_SECTION[task]]
        scalars = [k for k, v in report.items() if isinstance(v, dict) and "value" in v]
        assert scalars == list(REPORT_METRICS[task]), task
        assert set(model_quality.validation_metrics(task, model, x, y)) == set(TRAINING_METRICS[task])


def test_median_imputer_gives_simple_imputers_statistics() -> None:
    """Our MedianImputer exists for memory only (see its docstring): same numbers as
    SimpleImputer(strategy="median", keep_empty_features=True), an empty column included."""
    import numpy as np
    from sklearn.impute import SimpleImputer

    with scripts_importable():
        from tabular_model import MedianImputer
    rng = np.random.RandomState(0)
    x = pd.DataFrame(rng.rand(500, 4), columns=list("abcd")).mask(lambda f: f > 0.8).assign(d=np.nan)
    expected = SimpleImputer(strategy="median", keep_empty_features=True).fit(x)
    ours = MedianImputer().fit(x)
    assert np.allclose(ours.statistics_, expected.statistics_)
    unseen = x.sample(frac=1.0, random_state=1)
    assert np.allclose(ours.transform(unseen), expected.transform(unseen))


# model.joblib (in argv[2], scripts in argv[1]) asked for the test split's labels (argv[3]).
PREDICT_LABELS = """
import json, sys
sys.path.insert(0, sys.argv[1])
import joblib, pandas as pd
model = joblib.load(sys.argv[2] + "/model.joblib")
predicted = model.predict(pd.read_csv(sys.argv[3] + "/test/test.csv").drop(columns="target"))
print(json.dumps({"types": sorted({type(v).__name__ for v in predicted}), "labels": predicted.tolist()}))
"""


@pytest.mark.parametrize(
    ("labels", "positive"),
    [([True, False], True), ([1, 0], 1), (["churned", "stayed"], "churned")],
    ids=["boolean", "integer", "string"],
)
def test_labels_of_any_type_come_back_as_themselves(
    tmp_path: Path, diabetes: pd.DataFrame, labels: list[Any], positive: Any
) -> None:
    """Encoded inside the model, so a boolean, integer or string label is predicted as the
    same value, and the positive class of the report is the configured one."""
    from tests.test_step_scripts import pack

    target = [labels[0] if value > 140 else labels[1] for value in diabetes["target"]]
    result = run_preprocess(tmp_path, diabetes.assign(target=target), task="binary_classification",
                            positive_class=positive)  # fmt: skip
    assert result.returncode == 0, result.stderr
    trial = trial_env(script_env("", "x"), tmp_path, 1)
    train = training(["--estimator", "sklearn.linear_model.LogisticRegression", "--objective_metric",
                      "validation:auc"], trial, tmp_path)  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "validation:auc=" in train.stdout
    test = pd.read_csv(tmp_path / "splits" / "test" / "test.csv")
    # unpickled where it was trained, with the scripts beside it as in a job
    answer = in_job_environment(PREDICT_LABELS, str(SCRIPTS_DIR), trial["SM_MODEL_DIR"], str(tmp_path / "splits"))
    assert set(answer["types"]) <= {type(labels[0]).__name__, "bool_", "int64", "str_", "str"}
    predicted = answer["labels"]
    assert set(predicted) <= set(labels)
    archive = pack(Path(trial["SM_MODEL_DIR"]), tmp_path / "model.tar.gz")
    paths = [
        "--model",
        str(archive),
        "--test",
        str(tmp_path / "splits" / "test"),
        "--output-dir",
        str(tmp_path / "eval"),
    ]
    evaluate = processing("evaluate.py", paths, script_env("", "x"), tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    section = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["binary_classification_metrics"]
    assert set(section["confusion_matrix"]) == {str(v) for v in labels}
    truth = test["target"].astype(str) == str(positive)
    assert section["recall"]["value"] == pytest.approx(
        float(((pd.Series(predicted).astype(str) == str(positive)) & truth).sum() / truth.sum())
    )

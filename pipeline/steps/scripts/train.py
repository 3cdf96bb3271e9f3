"""Training job: fit the configured estimator inside the tabular model (tabular_model.py),
save it for SageMaker serving, log it to MLflow, and print the validation metrics for the
tuner.

Training contract: hyperparameters arrive as `--name value` arguments; data and the
`schema.json` Preprocess wrote in SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION; the model goes
to SM_MODEL_DIR (packed by SageMaker into model.tar.gz). The model is written to SM_MODEL_DIR before anything is
sent to MLflow, so a tracking outage can never lose it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import training_environment
from container_paths import opt_ml
from dataset import DataError, TableSchema, read_split
from drift import BASELINE_FILE, baseline
from hyperparameter_values import parse_value
from model_quality import validation_metrics
from run_inputs import dataset_input
from tabular_model import LabelEncodedClassifier, build_model
from tracking import Tracking, TrackingUnavailable, connect, job_tags, warn

MODEL_FILE = "model.joblib"
MLFLOW_MODEL_DIR = "mlflow-model"  # the same model as an MLflow model, inside model.tar.gz too
RUN_FILE = "mlflow_run.json"
BASELINE_DIR = "baseline"  # the training split's statistics (drift.py), inside model.tar.gz and in MLflow
_TRIAL_SUFFIX = re.compile(r"-\d{3}-[0-9a-f]{8}$")  # tuning trials are <tuning job>-NNN-xxxxxxxx


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--estimator", default="sklearn.ensemble.RandomForestRegressor")
    parser.add_argument("--objective_metric", default="validation:rmse")
    parser.add_argument("--categorical_encoding", choices=["auto", "onehot", "ordinal"], default="auto")
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", opt_ml("input", "data", "train")))
    parser.add_argument(
        "--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", opt_ml("input", "data", "validation"))
    )
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", opt_ml("model")))
    args, rest = parser.parse_known_args(argv)
    if len(rest) % 2:
        parser.error(f"hyperparameters must come as --name value pairs, got {rest}")
    hyperparameters = {}
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        if not flag.startswith("--"):
            parser.error(f"expected --name before {value!r}")
        name = flag[2:].replace("-", "_")
        if not name.startswith("_"):  # SageMaker adds _tuning_objective_metric etc.
            hyperparameters[name] = parse_value(value)
    return args, hyperparameters


def job_identity(env: dict[str, str]) -> dict[str, str]:
    """SageMaker job name, and the tuning job name when this is a trial."""
    training_env = json.loads(env.get("SM_TRAINING_ENV", "{}") or "{}")
    name = env.get("TRAINING_JOB_NAME") or training_env.get("job_name") or env.get("MLOPS_JOB_NAME", "local-train")
    identity = {"sagemaker.job_name": name}
    hyperparameters = training_env.get("hyperparameters", {})
    if "_tuning_objective_metric" in hyperparameters or env.get("MLOPS_TUNING_JOB_NAME"):
        identity["sagemaker.tuning_job_name"] = env.get("MLOPS_TUNING_JOB_NAME") or _TRIAL_SUFFIX.sub("", name)
    return identity


def model_signature(schema: TableSchema, model: Any, example: Any) -> Any:
    """Inputs as the model accepts them: every feature by name, optional (missing values are
    imputed), of MLflow's `AnyType`. MLflow's schema enforcement will not cast what
    `pandas.read_csv` and `read_parquet` make of a table: an int64 or nullable Int64 column
    against `double` fails ("Can not safely convert int64 to float64"), a bool column against
    `string` too. The model's own first step (`RawRowNormalizer`) types every column as in
    training and names a column that is not what it should be, so the signature leaves the
    types to it. Class probabilities come from the sklearn flavour's `predict_proba`
    (`mlflow.sklearn.load_model`), which the pyfunc signature does not describe."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = Schema([ColSpec(AnyType(), c, required=False) for c in schema.features])
    outputs = infer_signature(example, model.predict(example)).outputs
    return ModelSignature(inputs=inputs, outputs=outputs)


def pinned_requirements(estimator_path: str) -> list[str]:
    """The libraries the model needs to load, at the versions that trained it."""
    from importlib.metadata import packages_distributions, version

    import pandas
    import sklearn

    pins = {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pandas.__version__}
    top = estimator_path.split(".", 1)[0]
    for distribution in packages_distributions().get(top, []):
        pins.setdefault(distribution, version(distribution))
    return [f"{name}=={pin}" for name, pin in sorted(pins.items())]


def save_mlflow_model(
    model: Any, schema: TableSchema, example: Any, estimator_path: str, into: Path, extra_code: tuple[str, ...] = ()
) -> None:
    """The MLflow model, written locally (no server involved) with an explicit environment:
    requirement inference costs seconds and guesses wrong. The model is a scikit-learn
    Pipeline (preprocessing + estimator), so the sklearn flavour is the right one whatever
    the estimator; `tabular_model.py` travels with it as code, and so do `extra_code`
    modules (a team's own classes inside the model)."""
    import shutil

    import mlflow
    import tabular_model

    if into.exists():
        shutil.rmtree(into)  # a rerun of the same job
    mlflow.sklearn.save_model(
        model,
        str(into),
        signature=model_signature(schema, model, example),
        input_example=example,
        pip_requirements=pinned_requirements(estimator_path),
        code_paths=[tabular_model.__file__, *extra_code],
        serialization_format="cloudpickle",
    )


def log_to_mlflow(
    tracking: Tracking,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    model_dir: Path,
    datasets: Callable[[], list[Any]] | None = None,
) -> str | None:
    """One run: params and metrics in one batch, then the MLflow model's files."""
    with tracking.run(run_name=tags["sagemaker.job_name"], tags=tags, resume_key="sagemaker.job_name") as run_id:
        tracking.log(run_id, params=params, metrics=metrics)
        if datasets is not None:
            tracking.log_inputs(run_id, datasets)
        tracking.log_artifacts(run_id, str(model_dir / MLFLOW_MODEL_DIR), "model")
        tracking.log_artifacts(run_id, str(model_dir / BASELINE_DIR), BASELINE_DIR)
        if not (run_id and tracking.enabled):
            return None
        record = {
            "run_id": run_id,
            "tracking_uri": tracking.client.tracking_uri,
            "experiment": tracking.experiment_name,
        }
        if tags.get("sagemaker.tuning_job_name") and tracking.parent_of.get(run_id):
            record["tuning_run_id"] = tracking.parent_of[run_id]  # Evaluate ends it, naming the best trial
        (model_dir / RUN_FILE).write_text(json.dumps(record))
        return run_id


def fitted_estimator_params(model: Any) -> dict[str, Any]:
    """The estimator's own parameters (not the whole Pipeline's nested ones) for MLflow."""
    estimator = model.named_steps["estimator"]
    if isinstance(estimator, LabelEncodedClassifier):
        estimator = estimator.estimator_
    return {k: v for k, v in estimator.get_params(deep=False).items() if not callable(v)}


def main(argv: list[str] | None = None) -> int:
    args, hyperparameters = parse_args(argv)
    try:
        schema = TableSchema.read(args.train)
        x_train, y_train = read_split(args.train, schema)
        x_val, y_val = read_split(args.validation, schema)
        model = build_model(
            task=schema.task,
            features=schema.features,
            column_types=schema.column_types,
            na_values=schema.na_values,
            estimator_path=args.estimator,
            hyperparameters=hyperparameters,
            encoding=args.categorical_encoding,
        )
    except (DataError, ValueError, ImportError, AttributeError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    model.fit(x_train, y_train)
    validation = validation_metrics(schema.task, model, x_val, y_val, schema.positive_class)
    metrics = {f"validation_{k}": v for k, v in validation.items()}

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    trained_with = training_environment.write(model_dir)  # what the pickle needs to load
    save_mlflow_model(model, schema, x_train.head(5), args.estimator, model_dir / MLFLOW_MODEL_DIR)
    (model_dir / BASELINE_DIR).mkdir(exist_ok=True)  # what a batch's drift is measured against
    statistics = baseline(x_train, {f: schema.column_types[f] for f in schema.features}, schema.na_values)
    (model_dir / BASELINE_DIR / BASELINE_FILE).write_text(json.dumps(statistics, indent=1, ensure_ascii=False))

    # The tuner reads these lines with the configured regex; keep their format stable.
    for name, value in validation.items():
        print(f"validation:{name}={value:.6f}", flush=True)
    if args.objective_metric.split(":", 1)[-1] not in validation:
        warn(f"objective {args.objective_metric} is not a computed metric ({', '.join(validation)})")

    try:
        tracking = connect()
        prefix = training_environment.TAG_PREFIX
        tags = {**job_tags(), **job_identity(dict(os.environ)), "mlops.step": "train", "mlops.task": schema.task,
                **{f"{prefix}{name}": version for name, version in trained_with.items()}}  # fmt: skip
        params = {"estimator": args.estimator, **fitted_estimator_params(model), "n_train": len(x_train)}
        splits = {
            "train": (args.train, x_train, y_train, "training"),
            "validation": (args.validation, x_val, y_val, "validation"),
        }

        def datasets() -> list[Any]:  # made only when tracking is on
            return [
                dataset_input(x.assign(**{schema.target: y}), name=split, context=context, target=schema.target,
                              source=schema.sources.get(split, str(Path(path).resolve())))
                for split, (path, x, y, context) in splits.items()
            ]  # fmt: skip

        run_id = log_to_mlflow(
            tracking, params=params, metrics=metrics, tags=tags, model_dir=model_dir, datasets=datasets
        )
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc} (the model was saved to {model_dir / MODEL_FILE})", file=sys.stderr)
        return 1
    if run_id:
        print(f"mlflow run {run_id}", flush=True)
    else:
        warn(f"model saved to {model_dir / MODEL_FILE} without an MLflow run")
    return 0


if __name__ == "__main__":
    sys.exit(main())

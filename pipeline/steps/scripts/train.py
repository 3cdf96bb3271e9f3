"""Training job: fit the configured scikit-learn regressor, save it for SageMaker serving,
log it to MLflow, and print the objective metric for the tuner.

Training contract: hyperparameters arrive as `--name value` arguments; data in
SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION; the model goes to SM_MODEL_DIR (packed by
SageMaker into model.tar.gz). The model is written to SM_MODEL_DIR before anything is
sent to MLflow, so a tracking outage can never lose it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from container_paths import opt_ml
from dataset import DataError, features_and_target, read_table
from tracking import Tracking, TrackingUnavailable, connect, job_tags, warn

MODEL_FILE = "model.joblib"
MLFLOW_MODEL_DIR = "mlflow-model"  # the same model as an MLflow model, inside model.tar.gz too
RUN_FILE = "mlflow_run.json"
SCRIPT_ARGS = {"algorithm", "target", "features", "objective_metric"}
_TRIAL_SUFFIX = re.compile(r"-\d{3}-[0-9a-f]{8}$")  # tuning trials are <tuning job>-NNN-xxxxxxxx


def parse_value(text: str) -> Any:
    """Hyperparameters arrive as strings: turn '200', '0.5', 'true', 'None' into values."""
    lowered = text.strip().lower()
    if lowered in {"none", "null"}:
        return None
    if lowered in {"true", "false"}:
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithm", default="random_forest")
    parser.add_argument("--target", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--objective_metric", default="validation:rmse")
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


def make_estimator(algorithm: str, hyperparameters: dict[str, Any]) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge

    classes = {"random_forest": RandomForestRegressor, "gradient_boosting": GradientBoostingRegressor, "ridge": Ridge}
    if algorithm not in classes:
        raise ValueError(f"unknown algorithm {algorithm!r} (choose from {', '.join(classes)})")
    estimator = classes[algorithm]()
    accepted = estimator.get_params()
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise ValueError(f"{algorithm} has no hyperparameter(s) {', '.join(unknown)}")
    params = dict(hyperparameters)
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = 0  # reproducible trials
    return estimator.set_params(**params)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def job_identity(env: dict[str, str]) -> dict[str, str]:
    """SageMaker job name, and the tuning job name when this is a trial."""
    training_env = json.loads(env.get("SM_TRAINING_ENV", "{}") or "{}")
    name = env.get("TRAINING_JOB_NAME") or training_env.get("job_name") or env.get("MLOPS_JOB_NAME", "local-train")
    identity = {"sagemaker.job_name": name}
    hyperparameters = training_env.get("hyperparameters", {})
    if "_tuning_objective_metric" in hyperparameters or env.get("MLOPS_TUNING_JOB_NAME"):
        identity["sagemaker.tuning_job_name"] = env.get("MLOPS_TUNING_JOB_NAME") or _TRIAL_SUFFIX.sub("", name)
    return identity


def save_mlflow_model(model: Any, example: Any, into: Path) -> None:
    """The MLflow model, written locally (no server involved) with an explicit environment:
    requirement inference costs seconds and guesses wrong."""
    import shutil

    import mlflow
    import pandas
    import sklearn
    from mlflow.models import infer_signature

    if into.exists():
        shutil.rmtree(into)  # a rerun of the same job
    mlflow.sklearn.save_model(
        model,
        str(into),
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        pip_requirements=[
            f"scikit-learn=={sklearn.__version__}",
            f"numpy=={np.__version__}",
            f"pandas=={pandas.__version__}",
        ],
        serialization_format="cloudpickle",
    )


def log_to_mlflow(
    tracking: Tracking,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    model_dir: Path,
) -> str | None:
    """One run: params and metrics in one batch, then the MLflow model's files."""
    with tracking.run(run_name=tags["sagemaker.job_name"], tags=tags, resume_key="sagemaker.job_name") as run_id:
        tracking.log(run_id, params=params, metrics=metrics)
        tracking.log_artifacts(run_id, str(model_dir / MLFLOW_MODEL_DIR), "model")
        if not (run_id and tracking.enabled):
            return None
        record = {
            "run_id": run_id,
            "tracking_uri": tracking.client.tracking_uri,
            "experiment": tracking.experiment_name,
        }
        (model_dir / RUN_FILE).write_text(json.dumps(record))
        return run_id


def main(argv: list[str] | None = None) -> int:
    args, hyperparameters = parse_args(argv)
    features = [f for f in args.features.split(",") if f]
    try:
        x_train, y_train = features_and_target(read_table(args.train), features, args.target)
        x_val, y_val = features_and_target(read_table(args.validation), features, args.target)
        model = make_estimator(args.algorithm, hyperparameters)
    except (DataError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    model.fit(x_train, y_train)
    metrics = {f"validation_{k}": v for k, v in regression_metrics(y_val, model.predict(x_val)).items()}

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    save_mlflow_model(model, x_train.head(5), model_dir / MLFLOW_MODEL_DIR)

    # The tuner reads this line with the configured regex; keep its format stable.
    objective_key = args.objective_metric.split(":", 1)[-1]
    objective = metrics.get(f"validation_{objective_key}")
    if objective is None:
        warn(f"objective {args.objective_metric} is not a computed metric ({', '.join(metrics)})")
    else:
        print(f"{args.objective_metric}={objective:.6f}", flush=True)

    try:
        tracking = connect()
        tags = {**job_tags(), **job_identity(dict(os.environ)), "mlops.step": "train"}
        run_id = log_to_mlflow(
            tracking,
            params={"algorithm": args.algorithm, **model.get_params(), "n_train": len(x_train)},
            metrics=metrics,
            tags=tags,
            model_dir=model_dir,
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

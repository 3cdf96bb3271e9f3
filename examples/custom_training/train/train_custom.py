"""A team's own training step: the project's tabular model with one engineered feature, the
ratio of two numeric columns (`steps.train.arguments`: numerator, denominator).

It runs where the bundled train.py runs, under the same contract (README, "Your own code"):

- arguments: `--name value` pairs: this script's own (--numerator, --denominator), then
  --estimator, --objective_metric, --categorical_encoding and training.hyperparameters;
- input: the splits and the schema.json Preprocess wrote, in SM_CHANNEL_TRAIN and
  SM_CHANNEL_VALIDATION;
- output: in SM_MODEL_DIR, `model.joblib`, a scikit-learn model that takes raw rows with the
  original column names (the bundled evaluate.py and inference.py load it and call predict
  and predict_proba; inference.py reads the expected columns from its `normalize` step),
  and `mlflow_run.json` naming its MLflow run (Evaluate logs the test metrics there and
  Register links the model package to it);
- stdout: `validation:<metric>=<value>` lines, the objective's among them.

This folder is overlaid on the bundled scripts, so their helpers are imported, not copied.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import joblib
import ratio_features
import train  # the bundled train.py: argument parsing, MLflow model and run
from dataset import DataError, TableSchema, read_split
from model_quality import validation_metrics
from sklearn.pipeline import Pipeline
from tabular_model import NUMERIC, RawRowNormalizer, build_model
from tracking import TrackingUnavailable, connect, job_tags


def with_ratio(schema: TableSchema, own: argparse.Namespace, args: argparse.Namespace, hyperparameters: dict) -> Any:
    """Raw rows -> typed columns -> + the ratio -> the project's encoders and estimator,
    built for the schema's features plus the ratio (one more numeric column)."""
    for column in (own.numerator, own.denominator):
        if schema.column_types.get(column) != NUMERIC:
            raise ValueError(f"{column!r} is not a numeric feature (features: {', '.join(schema.features)})")
    ratio = f"{own.numerator} / {own.denominator}"
    project = build_model(
        task=schema.task,
        features=[*schema.features, ratio],
        column_types={**schema.column_types, ratio: NUMERIC},
        na_values=schema.na_values,
        estimator_path=args.estimator,
        hyperparameters=hyperparameters,
        encoding=args.categorical_encoding,
    )
    return Pipeline(
        [
            ("normalize", RawRowNormalizer(schema.features, schema.column_types, list(schema.na_values))),
            ("ratio", ratio_features.RatioFeature(own.numerator, own.denominator, ratio)),
            *project.steps[1:],  # the project's "encode" and "estimator"
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numerator", required=True)
    parser.add_argument("--denominator", required=True)
    own, rest = parser.parse_known_args(argv)
    args, hyperparameters = train.parse_args(rest)
    try:
        schema = TableSchema.read(args.train)
        x_train, y_train = read_split(args.train, schema)
        x_val, y_val = read_split(args.validation, schema)
        model = with_ratio(schema, own, args, hyperparameters)
    except (DataError, ValueError, ImportError, AttributeError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"engineered feature: {model.named_steps['ratio'].name}", flush=True)
    model.fit(x_train, y_train)
    validation = validation_metrics(schema.task, model, x_val, y_val, schema.positive_class)

    model_dir = Path(args.model_dir)  # the model first: a tracking outage must not lose it
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / train.MODEL_FILE)
    train.save_mlflow_model(
        model, schema, x_train.head(5), args.estimator, model_dir / train.MLFLOW_MODEL_DIR, (ratio_features.__file__,)
    )
    for name, value in validation.items():  # the objective line(s) the pipeline reads
        print(f"validation:{name}={value:.6f}", flush=True)

    try:
        tags = {**job_tags(), **train.job_identity(dict(os.environ)), "mlops.step": "train", "mlops.task": schema.task}
        tags["mlops.script"] = Path(__file__).name
        params = {
            "estimator": args.estimator,
            "engineered_feature": model.named_steps["ratio"].name,
            **train.fitted_estimator_params(model),
            "n_train": len(x_train),
        }
        metrics = {f"validation_{k}": v for k, v in validation.items()}
        run_id = train.log_to_mlflow(connect(), params=params, metrics=metrics, tags=tags, model_dir=model_dir)
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc} (the model was saved to {model_dir})", file=sys.stderr)
        return 1
    print(f"mlflow run {run_id or 'none: tracking is off'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

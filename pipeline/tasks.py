"""The tasks the pipeline carries, and what the bundled job scripts compute for each.

Written once here and read by the config schema (`pipeline/config.py`, which checks the
objective and the quality gate against these names before anything is built); the job
scripts compute them in `pipeline/steps/scripts/model_quality.py`, and a test keeps the two
equal (the scripts run in SageMaker's image and cannot import this package). Pure
constants: importing this module costs nothing.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_OBJECTIVE",
    "ESTIMATOR_SHORTCUTS",
    "REPORT_METRICS",
    "SCRIPT_HYPERPARAMETERS",
    "TRAINING_METRICS",
    "Task",
]

Task = Literal["regression", "binary_classification", "multiclass_classification"]

# What the bundled train.py prints as `validation:<name>=<value>` per task, and what the
# bundled evaluate.py reports under `<task>_metrics.<name>.value`
# (pipeline/steps/scripts/model_quality.py computes them; a test keeps the two equal).
TRAINING_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "r2"),
    "binary_classification": ("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "log_loss"),
    "multiclass_classification": ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1", "log_loss"),
}
REPORT_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "rmse", "mae", "r2", "ae_p10", "ae_p50", "ae_p90"),
    "binary_classification": (
        "accuracy", "precision", "recall", "true_positive_rate", "true_negative_rate", "false_positive_rate",
        "false_negative_rate", "f0_5", "f1", "f2", "auc", "pr_auc", "log_loss", "accuracy_best_constant_classifier",
        "precision_best_constant_classifier", "recall_best_constant_classifier", "f1_best_constant_classifier",
    ),
    "multiclass_classification": (
        "accuracy", "weighted_precision", "weighted_recall", "weighted_f0_5", "weighted_f1", "weighted_f2", "log_loss",
        "auc", "accuracy_best_constant_classifier", "weighted_precision_best_constant_classifier",
        "weighted_recall_best_constant_classifier", "weighted_f1_best_constant_classifier",
    ),
}  # fmt: skip
DEFAULT_OBJECTIVE: dict[str, tuple[str, Literal["Minimize", "Maximize"]]] = {
    "regression": ("validation:rmse", "Minimize"),
    "binary_classification": ("validation:auc", "Maximize"),
    "multiclass_classification": ("validation:weighted_f1", "Maximize"),
}
# Today's names, as shortcuts per task; anything else is an import path.
ESTIMATOR_SHORTCUTS: dict[str, dict[str, str]] = {
    "random_forest": {
        "regression": "sklearn.ensemble.RandomForestRegressor",
        "classification": "sklearn.ensemble.RandomForestClassifier",
    },
    "gradient_boosting": {
        "regression": "sklearn.ensemble.GradientBoostingRegressor",
        "classification": "sklearn.ensemble.GradientBoostingClassifier",
    },
    "hist_gradient_boosting": {
        "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
        "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    },
    "ridge": {"regression": "sklearn.linear_model.Ridge"},
    "logistic_regression": {"classification": "sklearn.linear_model.LogisticRegression"},
}
# Hyperparameters train.py takes for itself, not the estimator's.
SCRIPT_HYPERPARAMETERS = ("estimator", "objective_metric", "categorical_encoding")

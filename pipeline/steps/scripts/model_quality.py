"""Model quality per task: the validation metrics a training job prints for the tuner, and
the evaluation report in SageMaker Model Monitor's model-quality statistics layout.

Report layout (source: SageMaker Developer Guide, "Model Quality Metrics",
docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html):
`{"regression_metrics" | "binary_classification_metrics" | "multiclass_classification_metrics":
{name: {"value": float, "standard_deviation": float | "NaN"}, "confusion_matrix": {actual:
{predicted: count}}, ...}}`. As Model Monitor does, the standard deviation is that of the
metric over 5 random 80 % samples, given only when there are at least 200 rows. We add
metrics users expect that Model Monitor lacks (`pr_auc`, `log_loss`, `auc` for multiclass,
absolute-error percentiles), under the same layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = ["REPORT_SECTION", "TRAINING_METRICS", "evaluation_report", "plots", "validation_metrics"]

REPORT_SECTION = {
    "regression": "regression_metrics",
    "binary_classification": "binary_classification_metrics",
    "multiclass_classification": "multiclass_classification_metrics",
}
# What train.py prints as `validation:<name>=<value>` (the objective may be any of them).
TRAINING_METRICS = {
    "regression": ("rmse", "mae", "r2"),
    "binary_classification": ("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "log_loss"),
    "multiclass_classification": ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1", "log_loss"),
}
_MIN_ROWS_FOR_DEVIATION = 200


def _probabilities_of(model: Any, x: Any) -> np.ndarray | None:
    return np.asarray(model.predict_proba(x)) if hasattr(model, "predict_proba") else None


def _positive_index(classes: list[Any], positive_class: Any) -> int:
    """The positive class: the configured one, else the second in sorted order (scikit-learn's
    convention: 1 over 0, True over False, "yes" over "no")."""
    if positive_class is None:
        return 1
    as_text = [str(c) for c in classes]
    if str(positive_class) not in as_text:
        raise ValueError(f"positive class {positive_class!r} is not among the classes {classes}")
    return as_text.index(str(positive_class))


def _scalar_metrics(
    task: str, y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, classes: list[Any], positive: int
) -> dict[str, float]:
    if task == "regression":
        errors = predicted.astype(float) - y.astype(float)
        mse = float(np.mean(errors**2))
        values = {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(errors)))}
        values["r2"] = float(skm.r2_score(y, predicted)) if len(y) > 1 else float("nan")
        return values
    values = {"accuracy": float(skm.accuracy_score(y, predicted))}
    if task == "binary_classification":
        label = classes[positive]
        truth, guess = (y == label), (predicted == label)
        tp, fp = int(np.sum(truth & guess)), int(np.sum(~truth & guess))
        fn, tn = int(np.sum(truth & ~guess)), int(np.sum(~truth & ~guess))
        values |= {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "true_positive_rate": tp / (tp + fn) if tp + fn else 0.0,
            "true_negative_rate": tn / (tn + fp) if tn + fp else 0.0,
            "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
            "false_negative_rate": fn / (fn + tp) if fn + tp else 0.0,
        }
        for beta, name in ((0.5, "f0_5"), (1.0, "f1"), (2.0, "f2")):
            values[name] = float(skm.fbeta_score(truth, guess, beta=beta, zero_division=0))
        if proba is not None and len(np.unique(truth)) == 2:
            score = proba[:, positive]
            values["auc"] = float(skm.roc_auc_score(truth, score))
            values["pr_auc"] = float(skm.average_precision_score(truth, score))
            values["log_loss"] = float(skm.log_loss(truth, score, labels=[False, True]))
        return values
    for average_name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score)):
        values[f"weighted_{average_name}"] = float(fn(y, predicted, average="weighted", zero_division=0))
    for beta, name in ((0.5, "weighted_f0_5"), (1.0, "weighted_f1"), (2.0, "weighted_f2")):
        values[name] = float(skm.fbeta_score(y, predicted, beta=beta, average="weighted", zero_division=0))
    if proba is not None:
        values["log_loss"] = float(skm.log_loss(y, proba, labels=classes))
        if len(np.unique(y)) == len(classes):
            values["auc"] = float(skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes))
    return values


def validation_metrics(task: str, model: Any, x: Any, y: Any, positive_class: Any = None) -> dict[str, float]:
    """What a training job reports: `TRAINING_METRICS[task]`, computed on the validation split."""
    y = np.asarray(y)
    classes = list(getattr(model, "classes_", []))
    values = _scalar_metrics(task, y, np.asarray(model.predict(x)), _probabilities_of(model, x), classes,
                             _positive_index(classes, positive_class) if classes else 0)  # fmt: skip
    return {name: values[name] for name in TRAINING_METRICS[task] if name in values}


def _deviations(compute: Callable[[np.ndarray], dict[str, float]], n_rows: int, seed: int = 0) -> dict[str, Any]:
    if n_rows < _MIN_ROWS_FOR_DEVIATION:
        return {}
    rng = np.random.RandomState(seed)
    samples = [compute(rng.choice(n_rows, size=int(n_rows * 0.8), replace=False)) for _ in range(5)]
    return {name: float(np.std([s[name] for s in samples if name in s])) for name in samples[0]}


def _confusion_matrix(y: np.ndarray, predicted: np.ndarray, classes: list[Any]) -> dict[str, dict[str, int]]:
    matrix = skm.confusion_matrix(y, predicted, labels=classes)
    return {str(a): {str(p): int(matrix[i, j]) for j, p in enumerate(classes)} for i, a in enumerate(classes)}


def evaluation_report(task: str, model: Any, x: Any, y: Any, positive_class: Any = None) -> dict[str, Any]:
    """`{REPORT_SECTION[task]: {...}}` for the test split (see the module docstring)."""
    y = np.asarray(y)
    predicted = np.asarray(model.predict(x))
    proba = _probabilities_of(model, x) if task != "regression" else None
    classes = list(getattr(model, "classes_", []))
    positive = _positive_index(classes, positive_class) if classes else 0

    def compute(rows: np.ndarray) -> dict[str, float]:
        return _scalar_metrics(task, y[rows], predicted[rows], None if proba is None else proba[rows], classes,
                               positive)  # fmt: skip

    values = compute(np.arange(len(y)))
    deviations = _deviations(compute, len(y))
    section: dict[str, Any] = {
        name: {"value": value, "standard_deviation": deviations.get(name, "NaN")} for name, value in values.items()
    }
    if task == "regression":
        absolute = np.abs(predicted.astype(float) - y.astype(float))
        for q in (10, 50, 90):
            section[f"ae_p{q}"] = {"value": float(np.percentile(absolute, q)), "standard_deviation": "NaN"}
        return {REPORT_SECTION[task]: section}
    section["confusion_matrix"] = _confusion_matrix(y, predicted, classes)
    section |= _best_constant_classifier(task, y, classes, positive)
    if task == "binary_classification" and proba is not None and len(np.unique(y)) == 2:
        truth = y == classes[positive]
        fpr, tpr, _ = skm.roc_curve(truth, proba[:, positive])
        precision, recall, _ = skm.precision_recall_curve(truth, proba[:, positive])
        section["receiver_operating_characteristic_curve"] = {
            "false_positive_rates": _thin(fpr), "true_positive_rates": _thin(tpr)
        }  # fmt: skip
        section["precision_recall_curve"] = {"precisions": _thin(precision), "recalls": _thin(recall)}
    return {REPORT_SECTION[task]: section}


def _thin(values: np.ndarray, points: int = 101) -> list[float]:
    """At most `points` points of a curve, so the report stays small at any test size."""
    if len(values) > points:
        values = values[np.linspace(0, len(values) - 1, points).round().astype(int)]
    return [round(float(v), 6) for v in values]


def _best_constant_classifier(task: str, y: np.ndarray, classes: list[Any], positive: int) -> dict[str, Any]:
    """The baseline Model Monitor reports: always predicting the most frequent class."""
    labels, counts = np.unique(y, return_counts=True)
    constant = np.full(len(y), labels[np.argmax(counts)], dtype=y.dtype)
    values = _scalar_metrics(task, y, constant, None, classes, positive)
    names = ("accuracy", "precision", "recall", "f1") if task == "binary_classification" else (
        "accuracy", "weighted_precision", "weighted_recall", "weighted_f1")  # fmt: skip
    return {f"{n}_best_constant_classifier": {"value": values[n], "standard_deviation": "NaN"} for n in names}


def plots(task: str, model: Any, x: Any, y: Any, into: Any, positive_class: Any = None) -> list[Any]:
    """PNG files for the MLflow run: predicted-vs-actual and residuals for regression;
    confusion matrix, and ROC and precision-recall curves for binary classification."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.asarray(y)
    predicted = np.asarray(model.predict(x))
    paths = []

    def save(fig: Any, name: str) -> None:
        paths.append(into / name)
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)

    if task == "regression":
        actual, guess = y.astype(float), predicted.astype(float)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(actual, guess, s=10, alpha=0.7)
        low, high = float(min(actual.min(), guess.min())), float(max(actual.max(), guess.max()))
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test)")
        save(fig, "predicted_vs_actual.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(guess, guess - actual, s=10, alpha=0.7)
        ax.axhline(0, color="grey", linestyle="--", linewidth=1)
        ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title="Residuals (test)")
        save(fig, "residuals.png")
        return paths
    classes = list(model.classes_)
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.ConfusionMatrixDisplay.from_predictions(y, predicted, labels=classes, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (test)")
    save(fig, "confusion_matrix.png")
    if task == "binary_classification" and hasattr(model, "predict_proba"):
        positive = _positive_index(classes, positive_class)
        truth, score = y == classes[positive], np.asarray(model.predict_proba(x))[:, positive]
        fig, ax = plt.subplots(figsize=(5, 5))
        skm.RocCurveDisplay.from_predictions(truth, score, ax=ax)
        ax.set_title(f"ROC curve (test, positive class {classes[positive]!r})")
        save(fig, "roc_curve.png")
        fig, ax = plt.subplots(figsize=(5, 5))
        skm.PrecisionRecallDisplay.from_predictions(truth, score, ax=ax)
        ax.set_title(f"Precision-recall curve (test, positive class {classes[positive]!r})")
        save(fig, "precision_recall_curve.png")
    return paths

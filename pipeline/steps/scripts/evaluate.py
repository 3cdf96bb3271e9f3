"""Evaluation job: score the chosen model on the test split and write evaluation.json.

Processing contract: the model.tar.gz in /opt/ml/processing/input/model, the test split in
/opt/ml/processing/input/test, the report to /opt/ml/processing/output/evaluation. The
report follows SageMaker's model-quality layout (`regression_metrics.<name>.value`) and
carries the MLflow run id of the model, which the register step copies into the model
package's customer metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from container_paths import opt_ml
from dataset import DataError, features_and_target, read_table
from tracking import TrackingUnavailable, connect, warn

MODEL_FILE = "model.joblib"
RUN_FILE = "mlflow_run.json"
REPORT_FILE = "evaluation.json"
UNTRACKED = "untracked"  # customer metadata values may not be empty


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=opt_ml("processing", "input", "model"))
    parser.add_argument("--test", default=opt_ml("processing", "input", "test"))
    parser.add_argument("--output-dir", default=opt_ml("processing", "output", "evaluation"))
    parser.add_argument("--target", required=True)
    parser.add_argument("--features", required=True)
    return parser.parse_args(argv)


def unpack_model(path: Path, into: Path) -> Path:
    """The model folder: a model.tar.gz (as SageMaker delivers it) is unpacked first."""
    archive = path if path.is_file() else next(iter(sorted(path.glob("*.tar.gz"))), None)
    if archive is None:
        return path
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python 3.10 before 3.10.12 (older framework images): refuse unsafe members
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts or member.islnk() or member.issym():
                    raise tarfile.TarError(f"unsafe member {member.name!r} in {archive}")
            tar.extractall(into)
    return into


def evaluation_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """SageMaker model-quality statistics for regression, plus absolute-error percentiles."""
    errors = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    absolute = np.abs(errors)
    mse = float(np.mean(errors**2))
    total = float(np.sum((np.asarray(y_true) - np.mean(y_true)) ** 2))
    metrics = {
        "mse": {"value": mse, "standard_deviation": float(np.std(errors**2))},
        "rmse": {"value": float(np.sqrt(mse)), "standard_deviation": float(np.std(errors))},
        "mae": {"value": float(np.mean(absolute)), "standard_deviation": float(np.std(absolute))},
        "r2": {"value": 1.0 - float(np.sum(errors**2)) / total if total else 0.0, "standard_deviation": "NaN"},
    }
    for q in (10, 50, 90):
        metrics[f"ae_p{q}"] = {"value": float(np.percentile(absolute, q)), "standard_deviation": "NaN"}
    return {"regression_metrics": metrics}


def plots(y_true: Any, y_pred: Any, into: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=10, alpha=0.7)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test)")
    paths.append(into / "predicted_vs_actual.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(y_pred, y_pred - y_true, s=10, alpha=0.7)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title="Residuals (test)")
    paths.append(into / "residuals.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    features = [f for f in args.features.split(",") if f]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model_dir = unpack_model(Path(args.model), Path(scratch))
            model = joblib.load(model_dir / MODEL_FILE)
            x_test, y_test = features_and_target(read_table(args.test), features, args.target)
        except (DataError, FileNotFoundError, tarfile.TarError) as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
        run_file = model_dir / RUN_FILE
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
    predictions = model.predict(x_test)
    report = evaluation_report(y_test, predictions)
    report["mlflow"] = {"run_id": run.get("run_id") or UNTRACKED, "experiment": run.get("experiment") or ""}
    report["n_test"] = len(y_test)

    try:
        tracking = connect()
        if run.get("run_id") and tracking.enabled:
            # The model's own run: metrics, plots and the report land beside the model.
            with tempfile.TemporaryDirectory() as figures:
                plots(y_test, predictions, Path(figures))
                (Path(figures) / REPORT_FILE).write_text(json.dumps(report, indent=2))
                values = {f"test_{k}": v["value"] for k, v in report["regression_metrics"].items()}
                tracking.log(run["run_id"], metrics=values)
                tracking.log_artifacts(run["run_id"], figures, "evaluation")
        elif not run.get("run_id"):
            warn("the model carries no MLflow run id: evaluation metrics are not tracked")
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1

    tmp = out / f".{REPORT_FILE}.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out / REPORT_FILE)
    print(json.dumps({k: v["value"] for k, v in report["regression_metrics"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

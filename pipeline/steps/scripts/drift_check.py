"""Drift check job: compare the batch being scored with the model's training baseline.

Processing contract: the model.tar.gz (with `baseline/baseline.json`, written by Train) in
/opt/ml/processing/input/model, the batch (CSV, with a header row naming the features or
in the training feature order, as the model's inference accepts it) in
/opt/ml/processing/input/data; to /opt/ml/processing/output/drift: `drift_report.json`
(the pipeline's property file: `worst_ratio` above 1 means drift, `worst_feature` names
it), `constraint_violations.json` (Model Monitor's layout) and `drift_report.png`. The
same go to a new MLflow run (`mlops.step=drift`, tagged with the model's run), with one
metric per feature and statistic.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from container_paths import opt_ml
from dataset import EXTRA_MISSING, DataError
from drift import BASELINE_FILE, DEFAULT_THRESHOLDS, compare
from evaluate import RUN_FILE, unpack_model, write_report
from tracking import TrackingUnavailable, connect, job_tags

REPORT_FILE = "drift_report.json"
VIOLATIONS_FILE = "constraint_violations.json"
PICTURE_FILE = "drift_report.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=opt_ml("processing", "input", "model"))
    parser.add_argument("--data", default=opt_ml("processing", "input", "data"))
    parser.add_argument("--output-dir", default=opt_ml("processing", "output", "drift"))
    for name, value in DEFAULT_THRESHOLDS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=value, dest=name)
    return parser.parse_args(argv)


def read_batch(folder: Path, features: list[str]) -> pd.DataFrame:
    """Every CSV of the batch as one frame of the baseline's features (text, missing values
    as NaN): a header row naming features is used, else the columns are taken in the
    training feature order, as the model's inference reads a request."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"the batch {folder} holds no file")
    frames = []
    for file in files:
        # pandas' own missing spellings (NA, null, empty...) as Train read the split; the rest by na_values
        frame = pd.read_csv(io.StringIO(file.read_text()), header=None, dtype=str)
        first = [str(v).strip() for v in frame.iloc[0]] if len(frame) else []
        if first and set(first) <= set(features):
            frame = frame.iloc[1:].set_axis(first, axis=1)
        elif frame.shape[1] == len(features):
            frame.columns = features
        else:
            raise DataError(
                f"{file}: {frame.shape[1]} columns, the model takes {len(features)} ({', '.join(features)})"
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def draw(report: dict[str, Any], path: Path) -> None:
    """One bar per feature: its worst statistic over its threshold (1 = the threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["features"])
    ratios = [min(report["features"][n]["ratio"], 10.0) for n in names]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    axes.barh(names, ratios, color=["#c62828" if r > 1 else "#2e7d32" for r in ratios])
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("worst statistic / its threshold (above 1: drift; capped at 10)")
    axes.set_title(f"Drift of {report['n_rows']} rows against the training baseline")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    thresholds = {name: getattr(args, name) for name in DEFAULT_THRESHOLDS}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model_dir = unpack_model(Path(args.model), Path(scratch))
            baseline = json.loads((model_dir / "baseline" / BASELINE_FILE).read_text())
            run_file = model_dir / RUN_FILE
            model_run = json.loads(run_file.read_text()).get("run_id", "") if run_file.exists() else ""
            batch = read_batch(Path(args.data), list(baseline["features"]))
        except (DataError, OSError, ValueError) as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    report = compare(baseline, batch, baseline.get("na_values", list(EXTRA_MISSING)), thresholds)
    report["thresholds"] = thresholds
    draw(report, out / PICTURE_FILE)
    (out / VIOLATIONS_FILE).write_text(json.dumps({"violations": report["violations"]}, indent=2))
    try:
        tracking = connect()
        tags = {**job_tags(), "mlops.step": "drift", **({"mlops.model_run_id": model_run} if model_run else {})}
        job = tags.get("sagemaker.job_name") or "drift-check"
        with tracking.run(run_name=job, tags=tags, resume_key="sagemaker.job_name") as run_id:
            report["mlflow_run_id"] = run_id or ""
            metrics = {
                f"drift_{feature}_{name}": float(value)
                for feature, stats in report["features"].items()
                for name, value in stats.items()
                if name != "ratio" and math.isfinite(value)
            }
            metrics["drift_worst_ratio"] = report["worst_ratio"]
            tracking.log(run_id, params={"n_rows": report["n_rows"], **thresholds}, metrics=metrics)
            write_report(out / REPORT_FILE, report)  # once, with its run: the property file and the artifact
            tracking.log_artifacts(run_id, str(out), "drift")
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    worst = f"{report['worst_feature']} {report['worst_statistic']}={report['worst_value']:.4g}"
    print(f"drift: worst {worst} (ratio {report['worst_ratio']:.3g}), {len(report['violations'])} violation(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

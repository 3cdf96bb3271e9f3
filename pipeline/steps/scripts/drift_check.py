"""Drift check job: the batch read as Transform will score it, checked, and compared with
the model's training baseline.

Processing contract: the model.tar.gz (with `baseline/baseline.json`, written by Train) in
/opt/ml/processing/input/model; the batch (CSV by the config's `data.csv` options, or
Parquet; a file or a folder) in /opt/ml/processing/input/data; `dataset_spec.json` beside
this script. Writes to /opt/ml/processing/output/drift `drift_report.json` (the pipeline's
property file, strict JSON: `gate_ratio` above 1 fails the gate, `worst_feature` names
why), `constraint_violations.json` (Model Monitor's layout) and `drift_report.png`; and to
/opt/ml/processing/output/records each batch file's records as Transform scores them
(`batch_records.py`: the features in training order, CSV without a header, one record a
line). Transform reads that output, never the input itself, so what the gate judged is
what gets scored. The same report goes to a new MLflow run (`mlops.step=drift`, tagged
with the model's run), one metric per feature and statistic.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from batch_records import BatchFile, read_batch, write_records
from container_paths import opt_ml
from dataset import EXTRA_MISSING, PANDAS_MISSING, DataError, DatasetSpec
from drift import BASELINE_FILE, DEFAULT_THRESHOLDS, SMALL_BATCH, compare
from evaluate import RUN_FILE, unpack_model, write_report
from run_inputs import dataset_input, processing_uris
from tracking import TrackingUnavailable, connect, job_tags

REPORT_FILE = "drift_report.json"
VIOLATIONS_FILE = "constraint_violations.json"
PICTURE_FILE = "drift_report.png"
SPEC_FILE = Path(__file__).with_name("dataset_spec.json")
MB = 1024 * 1024
_METRIC_NAME_UNSAFE = re.compile(r"[^\w.\- /]")  # MLflow's metric names: letters, digits, _ - . space /


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=opt_ml("processing", "input", "model"))
    parser.add_argument("--data", default=opt_ml("processing", "input", "data"))
    parser.add_argument("--output-dir", default=opt_ml("processing", "output", "drift"))
    parser.add_argument("--records-dir", default=opt_ml("processing", "output", "records"))
    parser.add_argument("--spec", default=str(SPEC_FILE))
    parser.add_argument("--min-rows", type=int, default=30)
    parser.add_argument("--small-batch", choices=SMALL_BATCH, default="fail")
    parser.add_argument("--missing-baseline", choices=["fail", "skip"], default="fail")
    parser.add_argument("--max-payload-mb", type=int, default=6)
    for name, value in DEFAULT_THRESHOLDS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=value, dest=name)
    return parser.parse_args(argv)


def model_features(model_dir: Path) -> list[str]:
    """The features the model reads, from the model itself (for a package without a baseline)."""
    import joblib  # the model's classes (tabular_model.py) load from this script's folder, on sys.path

    return list(joblib.load(model_dir / "model.joblib").named_steps["normalize"].features)


def metric_names(features: list[str]) -> dict[str, str]:
    """A valid, distinct MLflow metric name part for every feature (`weight (kg)` ->
    `weight _kg_`); MLflow refuses other characters (mlflow.utils.validation)."""
    names: dict[str, str] = {}
    for feature in features:
        name = _METRIC_NAME_UNSAFE.sub("_", feature)[:200] or "_"
        while name in names.values():
            name += "_"
        names[feature] = name
    return names


def without_baseline(n_rows: int) -> dict[str, Any]:
    """The report of a batch scored without a drift check (`batch.drift.missing_baseline: skip`)."""
    return {"n_rows": n_rows, "features": {}, "violations": [], "worst_feature": "", "worst_statistic": "",
            "worst_value": 0.0, "worst_ratio": 0.0, "gate_ratio": 0.0, "judged": False, "flagged": True,
            "small_batch": False, "baseline": "missing"}  # fmt: skip


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


def _load(args: argparse.Namespace, scratch: Path) -> tuple[dict[str, Any] | None, str, list[BatchFile]]:
    """(the baseline or None, the model's MLflow run id, the batch's files). Raises DataError."""
    try:
        model_dir = unpack_model(Path(args.model), scratch)
    except (OSError, EOFError, ValueError, tarfile.TarError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"the model archive {args.model} cannot be unpacked: {reason}") from None
    baseline_path = model_dir / "baseline" / BASELINE_FILE
    run_file = model_dir / RUN_FILE
    model_run = json.loads(run_file.read_text()).get("run_id", "") if run_file.exists() else ""
    if baseline_path.exists():
        baseline: dict[str, Any] | None = json.loads(baseline_path.read_text())
        features = list(baseline["features"])
    elif args.missing_baseline == "skip":
        baseline, features = None, model_features(model_dir)
    else:
        raise DataError(
            "the model package has no training baseline (baseline/baseline.json in its model.tar.gz: it was "
            "trained before baselines existed); retrain it, or set batch.drift.missing_baseline: skip to score "
            "without a drift check"
        )
    return baseline, model_run, read_batch(Path(args.data), DatasetSpec.load(args.spec), features)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    thresholds = {name: getattr(args, name) for name in DEFAULT_THRESHOLDS}
    out, records_dir = Path(args.output_dir), Path(args.records_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            baseline, model_run, files = _load(args, Path(scratch))
            for batch_file in files:
                write_records(batch_file, records_dir, args.max_payload_mb * MB)
        except (DataError, OSError, ValueError) as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    batch = pd.concat([f.records for f in files], ignore_index=True)
    if baseline is None:
        report = without_baseline(len(batch))
        print("WARNING: the model has no training baseline; the batch is scored without a drift check", flush=True)
    else:
        na_values = [*PANDAS_MISSING, *baseline.get("na_values", EXTRA_MISSING)]
        report = compare(baseline, batch, na_values, thresholds, min_rows=args.min_rows, small_batch=args.small_batch)
        report["baseline"] = "present"
    report["thresholds"] = thresholds
    report["gate_message"] = gate_message(report)
    report["files"] = [{"file": f.relative, "records": len(f.records)} for f in files]
    draw(report, out / PICTURE_FILE)
    (out / VIOLATIONS_FILE).write_text(json.dumps({"violations": report["violations"]}, indent=2))
    try:
        tracking = connect()
        names = metric_names(list(report["features"]))
        renamed = {names[f]: f for f in names if names[f] != f}
        tags = {**job_tags(), "mlops.step": "drift", **({"mlops.model_run_id": model_run} if model_run else {}),
                **({"mlops.drift_metric_features": json.dumps(renamed)[:5000]} if renamed else {})}  # fmt: skip
        job = tags.get("sagemaker.job_name") or "drift-check"
        with tracking.run(run_name=job, tags=tags, resume_key="sagemaker.job_name") as run_id:
            report["mlflow_run_id"] = run_id or ""
            metrics = {
                f"drift_{names[feature]}_{name}": float(value)
                for feature, stats in report["features"].items()
                for name, value in stats.items()
                if name != "ratio" and isinstance(value, int | float) and math.isfinite(value)
            }
            metrics["drift_worst_ratio"] = report["worst_ratio"]
            metrics["drift_gate_ratio"] = report["gate_ratio"]
            tracking.log(run_id, params={"n_rows": report["n_rows"], **thresholds}, metrics=metrics)
            source = processing_uris().get("data", str(Path(args.data).resolve()))
            tracking.log_inputs(run_id, lambda: [dataset_input(batch, name="batch", source=source, context="input")])
            write_report(out / REPORT_FILE, report, strict=True)  # once, with its run id: property file and artifact
            tracking.log_artifacts(run_id, str(out), "drift")
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(summary(report), flush=True)
    return 0


def gate_message(report: dict[str, Any]) -> str:
    """Why the gate fails (the Fail step's message), or would."""
    if report.get("small_batch") and not report.get("judged", True):
        return f"the batch has {report['n_rows']} records, drift is not judged below {report['min_rows']}"
    if report.get("small_batch"):
        return f"the batch has {report['n_rows']} records, fewer than batch.drift.min_rows ({report['min_rows']})"
    if not report["worst_feature"]:
        return "no drift"
    return (f"drift detected: feature {report['worst_feature']} {report['worst_statistic']} = "
            f"{report['worst_value']:.4g}, {report['worst_ratio']:.3g} times its threshold")  # fmt: skip


def summary(report: dict[str, Any]) -> str:
    """The job's last line (local mode shows it as the step's detail)."""
    if not report["judged"]:
        why = "no training baseline" if report.get("baseline") == "missing" else f"{report['n_rows']} rows"
        return f"drift not judged ({why}); {report['n_rows']} records to score"
    worst = f"{report['worst_feature']} {report['worst_statistic']}={report['worst_value']:.4g}"
    return (f"drift: worst {worst} (ratio {report['worst_ratio']:.3g}), {len(report['violations'])} violation(s), "
            f"{report['n_rows']} records")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

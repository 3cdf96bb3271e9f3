"""Evaluation job: score the chosen model on the test split and write evaluation.json.

Processing contract: the model.tar.gz in /opt/ml/processing/input/model, the test split in
/opt/ml/processing/input/test, the report to /opt/ml/processing/output/evaluation. The
report follows SageMaker's model-quality layout (`regression_metrics.<name>.value`,
`binary_classification_metrics.auc.value`, ...; see model_quality.py) and
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
from container_paths import opt_ml
from dataset import DataError, TableSchema, read_split
from model_quality import REPORT_SECTION, evaluation_report, plots
from run_inputs import dataset_input
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
    return parser.parse_args(argv)


def write_report(path: Path, report: dict[str, Any], *, strict: bool = False) -> None:
    """Beside the target, then renamed over it: a pipeline reads it as a property file, and
    must never see half of one. `strict`: refuse NaN and infinities (ValueError), which
    are not JSON and which SageMaker's JsonGet may not parse."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=not strict))
    tmp.replace(path)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model_dir = unpack_model(Path(args.model), Path(scratch))
            model = joblib.load(model_dir / MODEL_FILE)
            schema = TableSchema.read(args.test)
            x_test, y_test = read_split(args.test, schema)
        except (DataError, FileNotFoundError, tarfile.TarError) as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
        run_file = model_dir / RUN_FILE
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
    report = evaluation_report(schema.task, model, x_test, y_test, schema.positive_class)
    section = report[REPORT_SECTION[schema.task]]
    scalars = {k: v["value"] for k, v in section.items() if isinstance(v, dict) and "value" in v}
    report["mlflow"] = {"run_id": run.get("run_id") or UNTRACKED, "experiment": run.get("experiment") or ""}
    report["n_test"] = len(y_test)

    try:
        tracking = connect()
        if run.get("run_id") and tracking.enabled:
            # The model's own run: metrics, plots and the report land beside the model.
            with tempfile.TemporaryDirectory() as figures:
                plots(schema.task, model, x_test, y_test, Path(figures), schema.positive_class)
                (Path(figures) / REPORT_FILE).write_text(json.dumps(report, indent=2))
                tracking.log(run["run_id"], metrics={f"test_{k}": v for k, v in scalars.items()})
                tracking.log_artifacts(run["run_id"], figures, "evaluation")
            source = schema.sources.get("test", str(Path(args.test).resolve()))
            tracking.log_inputs(run["run_id"], lambda: [dataset_input(x_test.assign(**{schema.target: y_test}),
                                name="test", source=source, context="test", target=schema.target)])  # fmt: skip
            if run.get("tuning_run_id"):  # the tuning step is over: its run ends, naming the trial chosen
                tuning_run = run["tuning_run_id"]
                tracking.log(tuning_run, tags={"mlops.best_trial_run_id": run["run_id"]})
                tracking.call("end the tuning run", lambda: tracking.client.set_terminated(tuning_run, "FINISHED"))
        elif not run.get("run_id"):
            warn("the model carries no MLflow run id: evaluation metrics are not tracked")
    except TrackingUnavailable as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1

    write_report(out / REPORT_FILE, report)
    print(json.dumps(scalars))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Local batch scoring of 1M rows (issue #14 target: at least 0.8 of the throughput of
scoring the same rows by loading the model in one bare Python process).

Fits the bundled tabular model (HistGradientBoosting, the diabetes columns scaled up to a
1M-row CSV with 3% of the cells missing), then, alternating rounds:
  - local: `LocalJobRunner.transform`, as a local Transform step runs it on the records the
    drift check writes (training order, no header): the model's own inference code
    (`inference.py`: input_fn/predict_fn/output_fn, with its per-request checks of the
    record boundaries), split by line, multi-record batches of `batch.max_payload_mb`
    (6 MB), each answer checked to give one line per record, one `.out` file;
  - bare: one Python process that loads model.joblib, reads the CSV with pandas, predicts
    and writes one prediction per line at the same full precision.
Both are started through pipeline/local/measured_child.py, which reports each one's own
seconds and peak memory. Prints rows per second, peak memory and the ratio, per round and
the median.

    .venv/bin/python bench/batch.py
    BENCH_BATCH_ROWS=20000 BENCH_BATCH_ROUNDS=1 .venv/bin/python bench/batch.py   # a quick check
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "pipeline" / "steps" / "scripts"))

ROWS = int(os.environ.get("BENCH_BATCH_ROWS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_BATCH_ROUNDS", "3"))

BARE = """
import sys
sys.path.insert(0, sys.argv[4])  # the model's classes (tabular_model.py)
import joblib, numpy as np, pandas as pd
model = joblib.load(sys.argv[1])
frame = pd.read_csv(sys.argv[2], header=None, names=model.named_steps["normalize"].features)
predictions = np.asarray(model.predict(frame))
with open(sys.argv[3], "w") as out:
    out.write("\\n".join(map(repr, predictions.tolist())) + "\\n")  # full precision, as inference.py
"""


def table(rows: int) -> object:
    import pandas as pd
    from sklearn import datasets

    base = datasets.load_diabetes(as_frame=True).frame
    rng = np.random.default_rng(0)
    picked = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    noise = rng.normal(0, 0.005, (rows, 10))
    features = picked.drop(columns="target") + noise
    features = features.mask(rng.random(features.shape) < 0.03)
    return pd.concat([features, picked["target"]], axis=1)


def fit_model(folder: Path, frame: object) -> None:
    import joblib
    from tabular_model import NUMERIC, build_model

    features = [c for c in frame.columns if c != "target"]
    model = build_model(task="regression", features=features, column_types=dict.fromkeys(features, NUMERIC),
                        na_values=[], estimator_path="sklearn.ensemble.HistGradientBoostingRegressor",
                        hyperparameters={"max_iter": 100})  # fmt: skip
    sample = frame.sample(20000, random_state=0)
    model.fit(sample[features], sample["target"])
    joblib.dump(model, folder / "model.joblib")


def measured(command: list[str], usage: Path, cwd: Path) -> dict[str, float]:
    from pipeline.local.jobs import MEASURED_CHILD

    subprocess.run([sys.executable, "-I", "-S", str(MEASURED_CHILD), str(usage), *command], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return json.loads(usage.read_text())


def main() -> None:
    from pipeline.code_bundle import code_bundle
    from pipeline.config_loader import load_config
    from pipeline.local.jobs import LocalJobRunner
    from pipeline.local.workspace import Workspace

    cfg = load_config(REPO / "config" / "pipeline.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        frame = table(ROWS)
        csv = root / "rows.csv"
        # the records as the drift check hands them to Transform: training order, no header
        frame.drop(columns="target").to_csv(csv, index=False, header=False, float_format="%.6g")
        model_dir = root / "model"
        model_dir.mkdir()
        fit_model(model_dir, frame)
        workspace = Workspace(root / "ws")
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            tar.add(model_dir / "model.joblib", arcname="model.joblib")
        model_uri = "s3://bench/model/model.tar.gz"
        workspace.put(model_uri, archive.getvalue())
        bundle = code_bundle(cfg)
        for uri, body in bundle.objects().items():
            workspace.put(uri, body)
        serving = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": bundle.sourcedir_uri}
        container = {"ModelDataUrl": model_uri, "Environment": serving}
        request = {
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(csv)}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": "s3://bench/out/", "Accept": "text/csv", "AssembleWith": "Line"},
            "BatchStrategy": "MultiRecord", "MaxPayloadInMB": cfg.batch.max_payload_mb,
        }  # fmt: skip
        runner = LocalJobRunner(workspace, root / "jobs")
        print(f"{ROWS} rows x 10 columns ({csv.stat().st_size / 1e6:.0f} MB CSV), {ROUNDS} alternating rounds")
        ratios = []
        for round_number in range(1, ROUNDS + 1):
            name = f"transform-{round_number}"
            started = time.perf_counter()
            runner.transform(name, request, container)
            wall = time.perf_counter() - started
            local = json.loads(runner.usage_path(name).read_text())
            out_lines = sum(1 for _ in workspace.path("s3://bench/out/rows.csv.out").open())
            scripts = str(REPO / "pipeline" / "steps" / "scripts")
            command = [sys.executable, "-c", BARE, str(model_dir / "model.joblib"), str(csv), str(root / "bare.out")]
            bare = measured([*command, scripts], root / f"bare-{round_number}.json", root)
            bare_lines = sum(1 for _ in (root / "bare.out").open())
            assert out_lines == bare_lines == ROWS, (out_lines, bare_lines)
            local_rate, bare_rate = ROWS / local["seconds"], ROWS / bare["seconds"]
            ratios.append(local_rate / bare_rate)
            print(
                f"round {round_number}: local {local_rate:,.0f} rows/s (job {local['seconds']:.1f} s, "
                f"step {wall:.1f} s, peak {local['peak_memory_mb']:.0f} MB) | bare {bare_rate:,.0f} rows/s "
                f"({bare['seconds']:.1f} s, peak {bare['peak_memory_mb']:.0f} MB) | ratio {ratios[-1]:.2f}"
            )
        median = statistics.median(ratios)
        print(f"throughput local / bare: median {median:.2f} (target >= 0.8: {'met' if median >= 0.8 else 'NOT met'})")
        preparation(frame, root)


def preparation(frame: object, root: Path) -> None:
    """The drift check's own pass before Transform (not in the ratio above): the user's file,
    with a header and its columns in another order, read, checked and written as the
    records Transform scores (batch_records.py), in this process."""
    from batch_records import read_batch, write_records
    from dataset import DatasetSpec

    features = [c for c in frame.columns if c != "target"]
    source = root / "batch" / "user.csv"
    source.parent.mkdir()
    frame[list(reversed(features))].to_csv(source, index=False, float_format="%.6g")
    started = time.perf_counter()
    (batch_file,) = read_batch(source.parent, DatasetSpec(task="regression", target="target"), features)
    write_records(batch_file, root / "records", 6 * 1024 * 1024)
    seconds = time.perf_counter() - started
    print(
        f"drift check's record preparation (read by name, checked, written): {seconds:.1f} s, "
        f"{len(batch_file.records) / seconds:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()

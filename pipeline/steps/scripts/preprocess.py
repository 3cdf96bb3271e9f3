"""Preprocess job: check columns, split train/validation/test deterministically.

Processing contract: reads /opt/ml/processing/input/data, writes
/opt/ml/processing/output/{train,validation,test}/<split>.csv. Every path is an argument,
so the same script runs on a laptop.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from container_paths import opt_ml
from dataset import DataError, dataset_hash, features_and_target, read_table
from tracking import TrackingUnavailable, connect, job_tags

SPLITS = ("train", "validation", "test")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default=opt_ml("processing", "input", "data"))
    parser.add_argument("--output-dir", default=opt_ml("processing", "output"))
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--target", required=True)
    parser.add_argument("--features", required=True, help="comma-separated")
    parser.add_argument("--train-ratio", type=float, required=True)
    parser.add_argument("--validation-ratio", type=float, required=True)
    parser.add_argument("--test-ratio", type=float, required=True)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def split_indices(n_rows: int, ratios: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Seeded shuffle cut by ratio: the same data and seed always give the same split."""
    order = np.random.RandomState(seed).permutation(n_rows)
    n_train = round(n_rows * ratios[0])
    n_validation = round(n_rows * ratios[1])
    cuts = (order[:n_train], order[n_train : n_train + n_validation], order[n_train + n_validation :])
    return {name: np.sort(idx) for name, idx in zip(SPLITS, cuts, strict=True)}


def job_name() -> str:
    """The processing job's name from the container config (or MLOPS_JOB_NAME locally)."""
    import os

    if os.environ.get("MLOPS_JOB_NAME"):
        return os.environ["MLOPS_JOB_NAME"]
    config = Path(opt_ml("config", "processingjobconfig.json"))
    if config.exists():
        return json.loads(config.read_text()).get("ProcessingJobName", "")
    return "local-preprocess"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    features = [f for f in args.features.split(",") if f]
    try:
        tracking = connect()
        frame = read_table(args.input, args.format)
        x, y = features_and_target(frame, features, args.target)
    except (DataError, TrackingUnavailable) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    data = x.assign(**{args.target: y})
    ratios = (args.train_ratio, args.validation_ratio, args.test_ratio)
    parts = split_indices(len(data), ratios, args.seed)
    counts = {}
    for name, rows in parts.items():
        out = Path(args.output_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        data.iloc[rows].to_csv(out / f"{name}.csv", index=False)
        counts[name] = len(rows)
    summary = {
        "rows": len(data),
        "columns": ",".join(data.columns),
        "dataset_sha256": dataset_hash(data),
        **{f"rows_{k}": v for k, v in counts.items()},
    }
    print(json.dumps(summary))
    with tracking.run(
        run_name=f"preprocess {job_name()}",
        tags={**job_tags(), "sagemaker.job_name": job_name(), "mlops.step": "preprocess"},
        resume_key="sagemaker.job_name",
    ) as run_id:
        tracking.log(run_id, params={**summary, "seed": args.seed, "target": args.target, "input": args.input})
    return 0


if __name__ == "__main__":
    sys.exit(main())

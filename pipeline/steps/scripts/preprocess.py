"""Preprocess job: read the raw table as the config describes it, check it, split it.

Processing contract: reads /opt/ml/processing/input/data (a file or a folder of CSV or
Parquet files), writes /opt/ml/processing/output/{train,validation,test}/<split>.csv, each
beside the `schema.json` the later jobs read. The data checks run first and report every
fault at once, naming the columns, so a bad table fails here, before any training is
paid for. How to read the table comes from `dataset_spec.json` beside this script (see
dataset.py); every path is an argument, so the same script runs on a laptop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from container_paths import opt_ml
from dataset import (
    SPEC_FILE,
    DataError,
    DatasetSpec,
    TableSchema,
    classify_columns,
    data_faults,
    dataset_hash,
    read_table,
    require_columns,
    split_size_faults,
    split_sizes,
)
from run_inputs import dataset_input, processing_uris
from tabular_model import NUMERIC
from tracking import TrackingUnavailable, connect, job_tags, warn

SPLITS = ("train", "validation", "test")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default=opt_ml("processing", "input", "data"))
    parser.add_argument("--output-dir", default=opt_ml("processing", "output"))
    parser.add_argument("--spec", default=str(Path(__file__).with_name(SPEC_FILE)))
    return parser.parse_args(argv)


def split_indices(target: pd.Series | None, n_rows: int, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Seeded shuffle cut by ratio; for classification the cut is made within each class
    (stratified), so every split keeps the class balance. Same data and seed, same split."""
    rng = np.random.RandomState(spec.seed)
    groups = [np.arange(n_rows)] if target is None else [np.flatnonzero(target == c) for c in target.unique()]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for group in groups:
        order = group[rng.permutation(len(group))]
        sizes = split_sizes(len(order), spec.split)
        if target is not None:  # one row per split at least, guaranteed by MIN_ROWS_PER_CLASS
            sizes = _at_least_one_each(sizes)
        start = 0
        for name in SPLITS:
            parts[name].append(order[start : start + sizes[name]])
            start += sizes[name]
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def _at_least_one_each(sizes: dict[str, int]) -> dict[str, int]:
    sizes = dict(sizes)
    for name in ("validation", "test"):
        if sizes[name] == 0:
            sizes[name], sizes["train"] = 1, sizes["train"] - 1
    return sizes


def write_rows(frame: pd.DataFrame, rows: np.ndarray, path: Path, chunk_rows: int = 100_000) -> None:
    """`frame.iloc[rows].to_csv(path, index=False)`, the same file, written a chunk of rows
    at a time: copying the whole train split first was the job's memory peak."""
    with path.open("w", encoding="utf-8", newline="") as out:
        for start in range(0, max(len(rows), 1), chunk_rows):
            frame.iloc[rows[start : start + chunk_rows]].to_csv(out, index=False, header=start == 0)


def job_name() -> str:
    """The processing job's name from the container config (or MLOPS_JOB_NAME locally)."""
    import os

    if os.environ.get("MLOPS_JOB_NAME"):
        return os.environ["MLOPS_JOB_NAME"]
    config = Path(opt_ml("config", "processingjobconfig.json"))
    if config.exists():
        return json.loads(config.read_text()).get("ProcessingJobName", "")
    return "local-preprocess"


def checked_table(spec: DatasetSpec, source: str) -> tuple[pd.DataFrame, TableSchema, list[str]]:
    """The rows to split, their schema and warnings; DataError listing every fault."""
    declared_text = [c for c, kind in spec.column_types.items() if kind != NUMERIC]
    frame = read_table(source, spec, dtype=dict.fromkeys(declared_text, str) or None)
    require_columns(frame, [spec.target], "target")
    features = spec.features or [c for c in frame.columns if c != spec.target]
    require_columns(frame, features, "feature")
    require_columns(frame, list(spec.column_types), "data.column_types")
    warnings = []
    unlabeled = int(frame[spec.target].isna().sum())
    if unlabeled:
        frame = frame[frame[spec.target].notna()].reset_index(drop=True)
        warnings.append(f"{unlabeled} row(s) without a value in target column {spec.target} were left out")
    kinds = classify_columns(frame, features, spec.column_types)
    faults = data_faults(frame, spec, kinds) + split_size_faults(len(frame), spec.split)
    if faults:
        raise DataError("the data cannot train a model:\n  - " + "\n  - ".join(faults))
    classes = None
    if spec.task != "regression":
        classes = sorted(frame[spec.target].unique().tolist(), key=str)
    schema = TableSchema(
        task=spec.task,
        target=spec.target,
        features=features,
        column_types=kinds,
        classes=classes,
        positive_class=spec.positive_class,
        na_values=spec.missing_spellings,  # the model reads requests as text: it needs pandas' spellings too
    )
    return frame[[*features, spec.target]], schema, warnings


def class_balance(target: pd.Series) -> dict[str, float]:
    """Rows per class and the largest-to-smallest ratio (imbalance is reported, not fixed:
    stratified splits keep it, and the report's best-constant-classifier baseline shows it)."""
    counts = target.value_counts()
    return {
        "class_rows": {str(label): int(n) for label, n in counts.items()},
        "class_imbalance_ratio": round(float(counts.max() / counts.min()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = DatasetSpec.load(args.spec)
        data, schema, warnings = checked_table(spec, args.input)
        tracking = connect()
    except (DataError, TrackingUnavailable) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    for message in warnings:
        warn(message)
    uris = processing_uris()
    schema = dataclasses.replace(
        schema, sources={name: uris[name] for name in ("train", "validation", "test") if name in uris}
    )
    stratify = data[spec.target] if spec.task != "regression" else None
    parts = split_indices(stratify, len(data), spec)
    counts = {}
    for name, rows in parts.items():
        out = Path(args.output_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        write_rows(data, rows, out / f"{name}.csv")
        schema.write(out)
        counts[name] = len(rows)
    kinds = schema.column_types
    summary = {
        "rows": len(data),
        "features": len(schema.features),
        "dataset_sha256": dataset_hash(data),
        **{f"rows_{k}": v for k, v in counts.items()},
        **{f"{kind}_features": sum(1 for v in kinds.values() if v == kind) for kind in sorted(set(kinds.values()))},
    }
    balance = class_balance(data[spec.target]) if spec.task != "regression" else {}
    if balance and balance["class_imbalance_ratio"] >= 10:
        warn(
            f"imbalanced classes: the largest class has {balance['class_imbalance_ratio']:g}x the rows of the smallest"
        )
    print(json.dumps({**summary, **balance}, ensure_ascii=False))
    with tracking.run(
        run_name=f"preprocess {job_name()}",
        tags={
            **job_tags(),
            "sagemaker.job_name": job_name(),
            "mlops.step": "preprocess",
            # what InputDataUri held, as `start` resolved it (its S3 VersionId, ETag or listing digest)
            "mlops.input_data_identity": os.environ.get("MLOPS_INPUT_DATA_IDENTITY", "not-resolved"),
        },
        resume_key="sagemaker.job_name",
    ) as run_id:
        params = {**summary, "task": spec.task, "seed": spec.seed, "target": spec.target, "input": args.input}
        metrics = {"class_imbalance_ratio": balance["class_imbalance_ratio"]} if balance else {}
        tracking.log(run_id, params=params, metrics=metrics)
        tracking.log_dict(run_id, {"column_types": kinds, **balance}, "data/schema.json")
        source = uris.get("raw", str(Path(args.input).resolve()))
        tracking.log_inputs(run_id, lambda: [dataset_input(data, name="input", source=source, context="input",
                                                           target=spec.target)])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

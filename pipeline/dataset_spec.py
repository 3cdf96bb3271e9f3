"""`dataset_spec.json`: the config's data section as the Preprocess job reads it.

It ships in the code bundle beside the scripts instead of on the command line: SageMaker
allows 256 characters per container argument (botocore's `ContainerArgument` shape), and a
table of 36 columns already needs more. Its keys are the fields of `DatasetSpec` in
`pipeline/steps/scripts/dataset.py`, the reading side of this contract (a test round-trips
them).
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.config import PipelineConfig

__all__ = ["SPEC_FILE", "dataset_spec", "dataset_spec_bytes"]

SPEC_FILE = "dataset_spec.json"


def dataset_spec(cfg: PipelineConfig) -> dict[str, Any]:
    data = cfg.data
    return {
        "task": cfg.training.task,
        "target": data.target,
        "features": data.features,
        "column_types": dict(data.column_types),
        "format": data.format,
        "separator": data.csv.separator,
        "header": data.csv.header,
        "encoding": data.csv.encoding,
        "column_names": data.csv.column_names,
        "missing_values": list(data.missing_values),
        "max_categories": data.max_categories,
        "positive_class": cfg.training.positive_class,
        "split": {"train": data.split.train, "validation": data.split.validation, "test": data.split.test},
        "seed": data.split.seed,
    }


def dataset_spec_bytes(cfg: PipelineConfig) -> bytes:
    """Canonical JSON, so equal configs give equal bundles (and equal content addresses)."""
    return (json.dumps(dataset_spec(cfg), sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode()

"""The data a run read, as MLflow dataset inputs: a name, the source URI, a content digest,
the schema and the row count, never the rows (MLflow's `mlflow.data` datasets, the records
`mlflow.log_input` makes; MLflow's UI lists them on the run and on the model).

Where a table came from is what SageMaker gave the job: a processing job's inputs and
outputs are in /opt/ml/config/processingjobconfig.json (the CreateProcessingJob request;
local mode writes the same file), and Preprocess records each split's S3 URI in the
schema.json beside it for the jobs that read the split.
"""

from __future__ import annotations

import json
from typing import Any

from container_paths import opt_ml

__all__ = ["dataset_input", "processing_uris"]


def processing_uris() -> dict[str, str]:
    """Input and output name -> S3 URI of this processing job; {} outside one."""
    try:
        with open(opt_ml("config", "processingjobconfig.json")) as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return {}
    uris = {
        item["InputName"]: item["S3Input"]["S3Uri"] for item in config.get("ProcessingInputs", []) if "S3Input" in item
    }
    outputs = config.get("ProcessingOutputConfig", {}).get("Outputs", [])
    uris |= {item["OutputName"]: item["S3Output"]["S3Uri"] for item in outputs if "S3Output" in item}
    return uris


def dataset_input(frame: Any, *, name: str, source: str, context: str, target: str | None = None) -> Any:
    """An MLflow DatasetInput of a pandas table. `context`: "training", "validation",
    "test", "input" (MLflow's `mlflow.data.context` tag)."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag

    if "://" not in source:  # a local path: a file URI, which MLflow reads one way only
        source = f"file://{source}"

    dataset = from_pandas(frame, source=source, name=name, targets=target)
    entity = Dataset(
        name=dataset.name,
        digest=dataset.digest,
        source_type="s3" if source.startswith("s3://") else "local",
        source=json.dumps({"uri": source}),
        schema=json.dumps({"mlflow_colspec": dataset.schema.to_dict()}) if dataset.schema else None,
        profile=json.dumps(dataset.profile),
    )
    return DatasetInput(dataset=entity, tags=[InputTag(key="mlflow.data.context", value=context)])

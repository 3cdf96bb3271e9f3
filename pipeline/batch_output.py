"""Where a batch's answers may go: never over its input, the code, the models or anything
else a pipeline of this config keeps.

A batch transform job writes `<file>.out` objects under `S3OutputPath` (SageMaker
Developer Guide, "Batch transform"): an output prefix that holds, or lies inside, the
input would score its own answers on the next run, and one at the workspace's base prefix
would mix answers with the code bundles and the registered models. Checked at render
(the config's `batch.output_uri`) and at `start` and `run` (the `BatchOutputUri` the
execution gets), before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.errors import UsageError

__all__ = ["output_overlap", "overlaps", "protected_prefixes", "refuse_overlapping_output"]


def _parts(uri: str) -> list[str]:
    return [p for p in uri.removeprefix("s3://").split("/") if p]


def overlaps(a: str, b: str) -> bool:
    """Whether two S3 prefixes share objects: one is the other, or lies inside it (by whole
    path segments: `s3://b/out` and `s3://b/output` do not overlap)."""
    left, right = _parts(a), _parts(b)
    shorter = min(len(left), len(right))
    return left[:shorter] == right[:shorter]


def protected_prefixes(cfg: PipelineConfig, input_uri: str) -> dict[str, str]:
    """What a batch output must not overlap, by what it is (only S3 locations: a local input
    path of `run --local` is no S3 prefix)."""
    base = cfg.s3_base
    places = {
        "BatchInputUri (the batch it scores)": input_uri,
        "the training data (data.input_uri)": cfg.data.input_uri,
        "the code bundles": f"{base}/code",
        "the trained models": f"{base}/models",
        "the executions' step outputs": f"{base}/executions",
    }
    return {what: uri for what, uri in places.items() if isinstance(uri, str) and uri.startswith("s3://")}


def output_overlap(cfg: PipelineConfig, input_uri: str, output_uri: str) -> str:
    """'' when `output_uri` overlaps nothing protected; else a sentence naming what it overlaps."""
    clashes = [f"{what} at {uri}" for what, uri in protected_prefixes(cfg, input_uri).items()
               if overlaps(output_uri, uri)]  # fmt: skip
    if not clashes:
        return ""
    return (
        f"{output_uri} overlaps {'; '.join(clashes)}: a transform job writes its .out files under it, so give "
        "the answers a prefix of their own (default <s3 base>/batch/output/)"
    )


def refuse_overlapping_output(cfg: PipelineConfig, parameters: Mapping[str, str], definition: dict[str, Any]) -> None:
    """Before an execution of the batch pipeline starts: raises UsageError naming
    BatchOutputUri when the execution's output (given, else the definition's default)
    overlaps its input or what the config keeps."""
    defaults = {p["Name"]: p.get("DefaultValue", "") for p in definition.get("Parameters", [])}
    values = {**defaults, **parameters}
    if "BatchOutputUri" not in values:
        return
    if overlap := output_overlap(cfg, values.get("BatchInputUri", ""), values["BatchOutputUri"]):
        raise UsageError(f"BatchOutputUri {overlap}")

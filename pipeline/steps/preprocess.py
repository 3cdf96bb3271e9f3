"""Preprocess: read the raw data, check columns, split train/validation/test."""

from __future__ import annotations

from typing import Any

from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.processing import processing_step

__all__ = ["SPLITS", "preprocess_step"]

SPLITS = ("train", "validation", "test")
INPUT_MOUNT = "/opt/ml/processing/input/data"
OUTPUT_MOUNT = "/opt/ml/processing/output"


def preprocess_step(ctx: BuildContext) -> Any:
    from sagemaker.processing import ProcessingInput, ProcessingOutput

    data = ctx.cfg.data
    outputs = [
        ProcessingOutput(
            output_name=split,
            source=f"{OUTPUT_MOUNT}/{split}",
            destination=ctx.output_uri(StepNames.PREPROCESS, split),
        )
        for split in SPLITS
    ]
    arguments = [
        "--target", data.target,
        "--features", ",".join(data.features),
        "--format", data.format,
        "--train-ratio", str(data.split.train),
        "--validation-ratio", str(data.split.validation),
        "--test-ratio", str(data.split.test),
        "--seed", str(data.split.seed),
    ]  # fmt: skip
    return processing_step(
        ctx,
        name=StepNames.PREPROCESS,
        settings_key="preprocess",
        instance_type=ctx.params.preprocess_instance_type,
        inputs=[ProcessingInput(source=ctx.params.input_data_uri, destination=INPUT_MOUNT, input_name="raw")],
        outputs=outputs,
        arguments=arguments,
        display_name="Preprocess-Data",
        description=(
            f"Checks that target {data.target!r} and {len(data.features)} feature columns exist, then splits "
            f"the data {data.split.train:g}/{data.split.validation:g}/{data.split.test:g} "
            f"(seed {data.split.seed}) into train, validation and test sets."
        ),
    )

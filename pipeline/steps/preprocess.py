"""Preprocess: read the raw data, check columns, split train/validation/test."""

from __future__ import annotations

from typing import Any

from pipeline.input_identity import INPUT_IDENTITY_ENV
from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.processing import processing_input, processing_output, processing_step

__all__ = ["SPLITS", "preprocess_step"]

SPLITS = ("train", "validation", "test")
INPUT_MOUNT = "/opt/ml/processing/input/data"
OUTPUT_MOUNT = "/opt/ml/processing/output"


def preprocess_step(ctx: BuildContext) -> Any:
    data = ctx.cfg.data
    outputs = [
        processing_output(split, f"{OUTPUT_MOUNT}/{split}", ctx.output_uri(StepNames.PREPROCESS, split))
        for split in SPLITS
    ]
    return processing_step(
        ctx,
        name=StepNames.PREPROCESS,
        settings_key="preprocess",
        instance_type=ctx.params.preprocess_instance_type,
        inputs=[processing_input("raw", ctx.params.input_data_uri, INPUT_MOUNT)],
        outputs=outputs,
        arguments=[],  # the columns and reading options are in dataset_spec.json (see pipeline/dataset_spec.py)
        # a cache key attribute that changes with the data behind InputDataUri (pipeline/input_identity.py)
        environment={INPUT_IDENTITY_ENV: ctx.params.input_data_identity},
        display_name="Preprocess-Data",
        description=(
            f"Reads the {data.format} table, checks target {data.target!r} and "
            f"{f'{len(data.features)} feature columns' if data.features else 'every other column'} "
            f"(types, missing values, classes) and splits it {data.split.train:g}/{data.split.validation:g}/"
            f"{data.split.test:g} (seed {data.split.seed}"
            f"{', stratified' if ctx.cfg.training.task != 'regression' else ''}) into train, validation and test sets."
        ),
    )

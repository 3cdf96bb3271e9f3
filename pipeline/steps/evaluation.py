"""Evaluate: score the chosen model on the test split and write `evaluation.json`."""

from __future__ import annotations

from typing import Any

from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.processing import processing_input, processing_output, processing_step

__all__ = ["REPORT_FILE", "REPORT_NAME", "evaluation_step", "report_uri"]

REPORT_NAME = "EvaluationReport"
REPORT_FILE = "evaluation.json"
OUTPUT_NAME = "evaluation"


def evaluation_step(ctx: BuildContext, preprocess: Any, model_uri: Any) -> tuple[Any, Any]:
    """Returns the step and its PropertyFile (the gate and the register step read it)."""
    from sagemaker.core.workflow.properties import PropertyFile

    report = PropertyFile(name=REPORT_NAME, output_name=OUTPUT_NAME, path=REPORT_FILE)
    test_uri = preprocess.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri
    step = processing_step(
        ctx,
        name=StepNames.EVALUATE,
        settings_key="evaluate",
        instance_type=ctx.params.evaluate_instance_type,
        inputs=[
            processing_input("model", model_uri, "/opt/ml/processing/input/model"),
            processing_input("test", test_uri, "/opt/ml/processing/input/test"),
        ],
        outputs=[
            processing_output(
                OUTPUT_NAME, "/opt/ml/processing/output/evaluation", ctx.output_uri(StepNames.EVALUATE, OUTPUT_NAME)
            )
        ],
        arguments=[],  # the columns come from the schema.json beside the test split
        display_name="Evaluate-Model",
        description=(
            f"Scores the selected model on the held-out test split ({ctx.cfg.training.task.replace('_', ' ')} "
            f"metrics), writes {REPORT_FILE} and logs metrics and plots to the model's MLflow run."
        ),
        property_files=[report],
    )
    return step, report


def report_uri(step: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    output = step.properties.ProcessingOutputConfig.Outputs[OUTPUT_NAME].S3Output.S3Uri
    return Join(on="/", values=[output, REPORT_FILE])

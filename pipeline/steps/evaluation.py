"""Evaluate: score the chosen model on the test split and write `evaluation.json`."""

from __future__ import annotations

from typing import Any

from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.processing import processing_step

__all__ = ["REPORT_FILE", "REPORT_NAME", "evaluation_step", "report_uri"]

REPORT_NAME = "EvaluationReport"
REPORT_FILE = "evaluation.json"
OUTPUT_NAME = "evaluation"


def evaluation_step(ctx: BuildContext, preprocess: Any, model_uri: Any) -> tuple[Any, Any]:
    """Returns the step and its PropertyFile (the gate and the register step read it)."""
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.workflow.properties import PropertyFile

    report = PropertyFile(name=REPORT_NAME, output_name=OUTPUT_NAME, path=REPORT_FILE)
    test_uri = preprocess.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri
    step = processing_step(
        ctx,
        name=StepNames.EVALUATE,
        settings_key="evaluate",
        instance_type=ctx.params.evaluate_instance_type,
        inputs=[
            ProcessingInput(source=model_uri, destination="/opt/ml/processing/input/model", input_name="model"),
            ProcessingInput(source=test_uri, destination="/opt/ml/processing/input/test", input_name="test"),
        ],
        outputs=[
            ProcessingOutput(
                output_name=OUTPUT_NAME,
                source="/opt/ml/processing/output/evaluation",
                destination=ctx.output_uri(StepNames.EVALUATE, OUTPUT_NAME),
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
    from sagemaker.workflow.functions import Join

    output = step.properties.ProcessingOutputConfig.Outputs[OUTPUT_NAME].S3Output.S3Uri
    return Join(on="/", values=[output, REPORT_FILE])

"""QualityGate: compare one metric of the evaluation report with a threshold; on failure
end in a FailStep whose message names the metric, the value and the threshold."""

from __future__ import annotations

from typing import Any

from pipeline.steps.context import BuildContext, StepNames

__all__ = ["OPERATOR_SYMBOLS", "quality_gate_step"]

OPERATOR_SYMBOLS = {
    "LessThan": "<",
    "LessThanOrEqualTo": "<=",
    "GreaterThan": ">",
    "GreaterThanOrEqualTo": ">=",
    "Equals": "==",
}


def quality_gate_step(ctx: BuildContext, evaluate: Any, report: Any, if_steps: list[Any]) -> Any:
    from sagemaker.core.workflow import conditions
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    gate = ctx.cfg.quality_gate
    condition_class = {
        "LessThan": conditions.ConditionLessThan,
        "LessThanOrEqualTo": conditions.ConditionLessThanOrEqualTo,
        "GreaterThan": conditions.ConditionGreaterThan,
        "GreaterThanOrEqualTo": conditions.ConditionGreaterThanOrEqualTo,
        "Equals": conditions.ConditionEquals,
    }[gate.operator]
    metric = JsonGet(step_name=evaluate.name, property_file=report, json_path=gate.metric)
    symbol = OPERATOR_SYMBOLS[gate.operator]
    fail = FailStep(
        name=StepNames.GATE_FAILED,
        display_name="Quality-Gate-Failed",
        description="Stops the execution without registering a model.",
        error_message=Join(
            on=" ",
            values=[
                f"Quality gate failed: {gate.metric} =",
                metric,
                f"but the gate requires {symbol}",
                ctx.params.gate_threshold,
            ],
        ),
    )
    return ConditionStep(
        name=StepNames.QUALITY_GATE,
        display_name="Quality-Gate",
        description=f"Registers the model only if {gate.metric} {symbol} the QualityGateThreshold parameter.",
        conditions=[condition_class(left=metric, right=ctx.params.gate_threshold)],
        if_steps=if_steps,
        else_steps=[fail],
    )

"""Tune: a hyperparameter tuning job whose trials are the Train step's training job."""

from __future__ import annotations

import json
from typing import Any

from pipeline.config import ParameterRange
from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.job_policies import cache_config, retry_policies
from pipeline.steps.training import model_trainer, training_inputs

__all__ = ["best_model_uri", "sdk_range", "tuning_step"]


def sdk_range(spec: ParameterRange) -> Any:
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

    if spec.type == "categorical":
        # JSON text, as the framework image reads every hyperparameter (and as the static
        # ones are written, pipeline/steps/training.py): "1" is the string '"1"'
        values = [str(v).lower() if isinstance(v, bool) else str(v) for v in spec.values or []]
        return CategoricalParameter([json.dumps(value) for value in values])
    assert spec.min is not None and spec.max is not None  # guaranteed by the schema
    if spec.type == "integer":
        return IntegerParameter(int(spec.min), int(spec.max), scaling_type=spec.scaling)
    return ContinuousParameter(spec.min, spec.max, scaling_type=spec.scaling)


def tuning_step(ctx: BuildContext, preprocess: Any) -> Any:
    from sagemaker.mlops.workflow.steps import TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    cfg = ctx.cfg
    tuning, objective = cfg.tuning, cfg.training.resolved_objective
    fixed = {k: v for k, v in cfg.training.hyperparameters.items() if k not in tuning.ranges}
    tuner = HyperparameterTuner(
        model_trainer=model_trainer(ctx, fixed),
        objective_metric_name=objective.metric,
        objective_type=objective.type,
        metric_definitions=[{"Name": objective.metric, "Regex": objective.metric_regex}],
        hyperparameter_ranges={name: sdk_range(spec) for name, spec in sorted(tuning.ranges.items())},
        strategy=tuning.strategy,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type=tuning.early_stopping,
        base_tuning_job_name=f"{cfg.pipeline.name[:20]}-tune",
    )
    return TuningStep(
        name=StepNames.TUNE,
        step_args=tuner.tune(inputs=training_inputs(preprocess)),
        display_name="Tune-Hyperparameters",
        description=(
            f"{tuning.strategy} search over {', '.join(sorted(tuning.ranges))}: up to {tuning.max_jobs} trials, "
            f"{tuning.max_parallel_jobs} at a time, {objective.type.lower()} {objective.metric}. "
            "Each trial is an MLflow run; the best one is evaluated."
        ),
        cache_config=cache_config(ctx.cfg),
        retry_policies=retry_policies(ctx.cfg),
    )


def best_model_uri(ctx: BuildContext, tune: Any) -> Any:
    """S3 URI of the best trial's model.tar.gz (the training job's S3OutputPath layout)."""
    return tune.get_top_model_s3_uri(
        top_k=0, s3_bucket=ctx.cfg.aws.default_bucket, prefix=f"{ctx.cfg.aws.prefix.strip('/')}/models"
    )

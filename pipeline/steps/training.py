"""Train: one scikit-learn framework training job (used when tuning is off, and as the
estimator the tuner clones for its trials)."""

from __future__ import annotations

from typing import Any

from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.job_policies import cache_config, retry_policies

__all__ = ["estimator", "training_inputs", "training_step"]


def estimator(ctx: BuildContext, hyperparameters: dict[str, Any]) -> Any:
    """The SKLearn estimator. `source_dir` is the content-addressed tarball in S3, so
    the SDK uploads nothing and the code URI is stable across builds."""
    from sagemaker.sklearn.estimator import SKLearn

    cfg = ctx.cfg
    settings = cfg.steps.train
    objective = cfg.training.resolved_objective
    return SKLearn(
        entry_point=settings.script,
        source_dir=ctx.code.sourcedir_uri,
        framework_version=cfg.runtime.framework_version,
        py_version=cfg.runtime.py_version,
        image_uri=ctx.image_uri,
        role=cfg.aws.role_arn,
        instance_type=ctx.params.train_instance_type,
        instance_count=settings.instance_count,
        volume_size=settings.volume_size_gb,
        max_run=settings.max_runtime_seconds,
        output_path=f"{cfg.s3_base}/models",
        base_job_name=f"{cfg.pipeline.name}-train",
        hyperparameters={**hyperparameters, **_script_args(ctx)},
        metric_definitions=[{"Name": objective.metric, "Regex": objective.metric_regex}],
        environment=ctx.job_environment(),
        subnets=cfg.network.subnets or None,
        security_group_ids=cfg.network.security_group_ids or None,
        encrypt_inter_container_traffic=cfg.network.encrypt_inter_container_traffic,
        disable_profiler=True,
        sagemaker_session=ctx.session,
    )


def _script_args(ctx: BuildContext) -> dict[str, Any]:
    """What train.py takes for itself (config.SCRIPT_HYPERPARAMETERS); the columns come from
    the schema.json Preprocess writes beside the splits, never as arguments."""
    training = ctx.cfg.training
    return {
        "estimator": training.estimator_path,
        "objective_metric": training.resolved_objective.metric,
        "categorical_encoding": training.categorical_encoding,
        **ctx.cfg.steps.train.arguments,
    }


def training_inputs(ctx: BuildContext, preprocess: Any) -> dict[str, Any]:
    from sagemaker.inputs import TrainingInput

    outputs = preprocess.properties.ProcessingOutputConfig.Outputs
    return {
        channel: TrainingInput(s3_data=outputs[channel].S3Output.S3Uri, content_type="text/csv")
        for channel in ("train", "validation")
    }


def training_step(ctx: BuildContext, preprocess: Any) -> Any:
    from sagemaker.workflow.steps import TrainingStep

    hyperparameters = ctx.cfg.training.hyperparameters
    listed = ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items())) or "defaults"
    return TrainingStep(
        name=StepNames.TRAIN,
        step_args=estimator(ctx, dict(hyperparameters)).fit(inputs=training_inputs(ctx, preprocess)),
        display_name="Train-Model",
        description=(
            f"Trains {ctx.cfg.training.estimator_path} for {ctx.cfg.training.task.replace('_', ' ')} ({listed}) "
            "and logs it to MLflow."
        ),
        cache_config=cache_config(ctx.cfg),
        retry_policies=retry_policies(ctx.cfg),
    )

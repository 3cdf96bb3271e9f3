"""Train: one training job on the scikit-learn framework image (used when tuning is off, and
as the job definition the tuner runs for its trials)."""

from __future__ import annotations

import json
from typing import Any

from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.job_policies import cache_config, retry_policies

__all__ = ["model_trainer", "training_inputs", "training_step"]


# What SageMaker's scikit-learn container reads to find and run the training script
# (sagemaker-training-toolkit's `sagemaker_program`, `sagemaker_submit_directory`, ...),
# set here rather than by the SDK's `SourceCode`, which uploads the SDK's driver files to a
# timestamped S3 key on every build (`ModelTrainer._create_training_job_args`,
# sagemaker/train/model_trainer.py) and would change the step's cache key each time
CONTAINER_LOG_LEVEL = 20  # logging.INFO


def _job_hyperparameters(ctx: BuildContext, hyperparameters: dict[str, Any]) -> dict[str, str]:
    """Every value JSON text, as the training toolkit decodes it (`"\\"auto\\""` -> auto) and as
    SDK v2 sent it: v3's `safe_serialize` passes strings unquoted, so a string that reads as
    JSON (`"200"`, `"true"`) would reach the script as another type."""
    cfg = ctx.cfg
    values = {
        **hyperparameters,
        **_script_args(ctx),
        "sagemaker_program": cfg.steps.train.script,
        "sagemaker_submit_directory": ctx.code.sourcedir_uri,
        "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
        "sagemaker_region": cfg.aws.region,
    }
    return {name: json.dumps(value) for name, value in values.items()}


def model_trainer(ctx: BuildContext, hyperparameters: dict[str, Any]) -> Any:
    """The training job on the scikit-learn image. The code is the content-addressed
    tarball in S3, named by hyperparameters, so the SDK uploads nothing and the step's
    arguments change only when the code does."""
    from sagemaker.core.shapes import MetricDefinition, OutputDataConfig, StoppingCondition
    from sagemaker.core.training.configs import Compute, Networking
    from sagemaker.train.model_trainer import ModelTrainer

    cfg = ctx.cfg
    settings = cfg.steps.train
    objective = cfg.training.resolved_objective
    network = cfg.network
    trainer = ModelTrainer(
        training_image=ctx.image_uri,
        role=cfg.aws.role_arn,
        base_job_name=f"{cfg.pipeline.name}-train",
        compute=Compute(
            instance_type=ctx.params.train_instance_type,
            instance_count=settings.instance_count,
            volume_size_in_gb=settings.volume_size_gb,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=settings.max_runtime_seconds),
        output_data_config=OutputDataConfig(s3_output_path=f"{cfg.s3_base}/models"),
        hyperparameters=_job_hyperparameters(ctx, hyperparameters),
        environment=ctx.job_environment(),
        networking=Networking(
            subnets=network.subnets or None,
            security_group_ids=network.security_group_ids or None,
            # True or left out (SageMaker's default is off), as SDK v2 sent it
            enable_inter_container_traffic_encryption=network.encrypt_inter_container_traffic or None,
        ),
        sagemaker_session=ctx.session,
    )
    return trainer.with_metric_definitions([MetricDefinition(name=objective.metric, regex=objective.metric_regex)])


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


def training_inputs(preprocess: Any) -> list[Any]:
    """The train and validation channels: the folders Preprocess wrote (CSV)."""
    from sagemaker.core.shapes import Channel, DataSource, S3DataSource

    outputs = preprocess.properties.ProcessingOutputConfig.Outputs
    return [
        Channel(
            channel_name=channel,
            content_type="text/csv",
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_uri=outputs[channel].S3Output.S3Uri,
                    s3_data_type="S3Prefix",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
        )
        for channel in ("train", "validation")
    ]


def training_step(ctx: BuildContext, preprocess: Any) -> Any:
    from sagemaker.mlops.workflow.steps import TrainingStep

    hyperparameters = ctx.cfg.training.hyperparameters
    listed = ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items())) or "defaults"
    return TrainingStep(
        name=StepNames.TRAIN,
        step_args=model_trainer(ctx, dict(hyperparameters)).train(input_data_config=training_inputs(preprocess)),
        display_name="Train-Model",
        description=(
            f"Trains {ctx.cfg.training.estimator_path} for {ctx.cfg.training.task.replace('_', ' ')} ({listed}) "
            "and logs it to MLflow."
        ),
        cache_config=cache_config(ctx.cfg),
        retry_policies=retry_policies(ctx.cfg),
    )

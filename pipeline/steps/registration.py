"""Register: a model package in the configured group, carrying the evaluation report as
model metrics and the MLflow run id as customer metadata (the bridge's link back)."""

from __future__ import annotations

from typing import Any

from mlflow_bridge.contract import CustomerMetadata
from pipeline.steps.context import BuildContext, StepNames
from pipeline.steps.evaluation import report_uri

__all__ = ["MLFLOW_RUN_ID_PATH", "register_step"]

MLFLOW_RUN_ID_PATH = "mlflow.run_id"  # where evaluate.py writes it in evaluation.json
INFERENCE_SCRIPT = "inference.py"


def register_step(ctx: BuildContext, evaluate: Any, report: Any, model_uri: Any) -> Any:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.mlops.workflow.model_step import ModelStep

    from pipeline.sdk_session import model_builder

    cfg = ctx.cfg
    reg = cfg.registration
    # No source code: the serving code is named through the environment and points at the
    # same content-addressed tarball, so the step is identical across builds.
    model = model_builder(
        ctx.session,
        image_uri=ctx.image_uri,
        model_data_uri=model_uri,
        role=cfg.aws.role_arn,
        environment={
            "SAGEMAKER_PROGRAM": INFERENCE_SCRIPT,
            "SAGEMAKER_SUBMIT_DIRECTORY": ctx.code.sourcedir_uri,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": cfg.aws.region,
        },
    )
    metrics = ModelMetrics(model_statistics=MetricsSource(s3_uri=report_uri(evaluate), content_type="application/json"))
    step_args = model.register(
        content_types=reg.content_types,
        response_types=reg.response_types,
        inference_instances=reg.inference_instance_types,
        transform_instances=reg.transform_instance_types,
        model_package_group_name=reg.model_package_group,
        approval_status=ctx.params.approval_status,
        model_metrics=metrics,
        description=reg.description or f"{cfg.pipeline.name}: {cfg.training.estimator_path} ({cfg.training.task})",
        customer_metadata_properties={
            CustomerMetadata.RUN_ID: JsonGet(
                step_name=evaluate.name, property_file=report, json_path=MLFLOW_RUN_ID_PATH
            ),
            CustomerMetadata.EXPERIMENT: cfg.mlflow.experiment,
            CustomerMetadata.REGISTERED_MODEL: cfg.mlflow.registered_model,
        },
        domain="MACHINE_LEARNING",
        task="REGRESSION" if cfg.training.task == "regression" else "CLASSIFICATION",
    )
    return ModelStep(
        name=StepNames.REGISTER,
        step_args=step_args,
        display_name="Register-Model",
        description=(
            f"Registers the model in package group {reg.model_package_group} with status from the "
            "ModelApprovalStatus parameter; approval syncs it to MLflow and deploys it."
        ),
    )

"""What every step builder needs, computed once per build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.code_bundle import CodeBundle
from pipeline.config import PipelineConfig, StepSettings

__all__ = ["BuildContext", "Parameters", "StepNames"]


class StepNames:
    """Step names as they appear in the definition and the Studio graph (stable API: the
    local runner, the bridge and the tests refer to them).

    Display names follow the definition schema's pattern `^[A-Za-z0-9\\-_]{1,64}$`
    (no spaces: "Evaluate-Model"); the readable prose goes into each step's description.
    """

    PREPROCESS = "Preprocess"
    TRAIN = "Train"
    TUNE = "Tune"
    EVALUATE = "Evaluate"
    QUALITY_GATE = "QualityGate"
    REGISTER = "Register-RegisterModel"  # as SDK v2 named it (it appended "-RegisterModel"), kept for v3
    GATE_FAILED = "QualityGateFailed"


@dataclass(frozen=True)
class Parameters:
    """Pipeline parameters: what a user overrides per execution without re-upserting."""

    input_data_uri: Any
    input_data_identity: Any  # what InputDataUri holds, resolved by `start` (pipeline/input_identity.py)
    preprocess_instance_type: Any
    train_instance_type: Any
    evaluate_instance_type: Any
    approval_status: Any
    gate_threshold: Any

    def all(self) -> list[Any]:
        return [
            self.input_data_uri,
            self.input_data_identity,
            self.preprocess_instance_type,
            self.train_instance_type,
            self.evaluate_instance_type,
            self.approval_status,
            self.gate_threshold,
        ]


@dataclass(frozen=True)
class BuildContext:
    cfg: PipelineConfig
    session: Any  # sagemaker.core.workflow.pipeline_context.PipelineSession
    params: Parameters
    code: CodeBundle
    image_uri: str

    def job_environment(self) -> dict[str, str]:
        """Environment of every job: where to track, never how to authenticate.

        The secret ARN is a pointer the job resolves at run time with its own role; the
        credentials themselves never enter the definition.
        """
        mlflow = self.cfg.mlflow
        env = {
            "MLFLOW_TRACKING_URI": mlflow.tracking_uri,
            "MLFLOW_EXPERIMENT_NAME": mlflow.experiment,
            "MLOPS_TRACKING_CREDENTIALS": mlflow.credentials.source,
            "MLOPS_TRACKING_ON_UNAVAILABLE": mlflow.on_unavailable,
            "MLOPS_PIPELINE_NAME": self.cfg.pipeline.name,
        }
        if mlflow.credentials.secret_arn:
            env["MLOPS_TRACKING_SECRET_ARN"] = mlflow.credentials.secret_arn
        if mlflow.server_ca_arn:
            env["MLOPS_TRACKING_CA_ARN"] = mlflow.server_ca_arn
        return env

    def step_settings(self, key: str) -> StepSettings:
        return getattr(self.cfg.steps, key)

    def output_uri(self, step: str, name: str) -> Any:
        """Per-execution output location under the configured prefix.

        Outputs are not part of SageMaker's cache key, so the execution id here does not
        stop a step from being cached.
        """
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(
            on="/", values=[self.cfg.s3_base, "executions", ExecutionVariables.PIPELINE_EXECUTION_ID, step, name]
        )

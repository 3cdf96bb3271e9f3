"""Config in, batch inference pipeline out: `build_batch_pipeline` (pure, offline).

CreateModel (a ModelStep from the model package) → DriftCheck (a processing job that
reads and checks the batch and compares it with the model's training baseline,
`drift_check.py`) → DriftGate (a condition on the drift report's `gate_ratio`) →
Transform (a batch transform job: split by line, multi-record batches) of the records
DriftCheck wrote, never of the input itself: what the gate judged is what is scored.
With `batch.drift.action: fail` the transform runs only when the gate passes and a `Fail`
step names the drifting feature otherwise; with `flag` the transform does not wait for
the gate, which only records its outcome.

Neither DriftCheck nor Transform is cached: SageMaker's cache key holds an input's S3
URI, not its content ("Default cache key attributes by pipeline step type"), so a new
batch under the same prefix would reuse the old drift report. Every execution checks and
scores the batch it is given.

Parameters: `BatchInputUri`, `BatchOutputUri`, `ModelPackageArn` and `ModelDataUri` (the
package's model.tar.gz, which holds the baseline). `start --pipeline batch` fills the last
two from the package the alias holds when none is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import PipelineConfig

__all__ = ["BatchParameters", "BatchStepNames", "build_batch_pipeline"]

DRIFT_REPORT_NAME = "DriftReport"
DRIFT_REPORT_FILE = "drift_report.json"
DRIFT_OUTPUT = "drift"
RECORDS_OUTPUT = "records"  # the batch's records as Transform scores them


class BatchStepNames:
    CREATE_MODEL = "CreateModel-CreateModel"  # as SDK v2 named it (it appended "-CreateModel"), kept for v3
    DRIFT_CHECK = "DriftCheck"
    DRIFT_GATE = "DriftGate"
    DRIFT_FAILED = "DriftDetected"
    TRANSFORM = "Transform"


@dataclass(frozen=True)
class BatchParameters:
    input_uri: Any
    output_uri: Any
    model_package_arn: Any
    model_data_uri: Any

    def all(self) -> list[Any]:
        return [self.input_uri, self.output_uri, self.model_package_arn, self.model_data_uri]


def _parameters(cfg: PipelineConfig) -> BatchParameters:
    from sagemaker.core.workflow.parameters import ParameterString

    return BatchParameters(
        input_uri=ParameterString("BatchInputUri", default_value=cfg.batch_input_uri),
        output_uri=ParameterString("BatchOutputUri", default_value=cfg.batch_output_uri),
        model_package_arn=ParameterString("ModelPackageArn", default_value="resolved-at-start"),
        model_data_uri=ParameterString("ModelDataUri", default_value="s3://resolved-at-start/model.tar.gz"),
    )


def build_batch_pipeline(cfg: PipelineConfig, ctx: Any) -> Any:
    """The batch Pipeline. `ctx` is the training build's `BuildContext` (session, image,
    code bundle, job environment); its parameters are the training pipeline's and unused."""
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import TransformStep

    from pipeline.batch_output import output_overlap
    from pipeline.errors import ConfigError
    from pipeline.sdk_session import package_model_step_args
    from pipeline.steps.processing import processing_input, processing_output, processing_step

    batch = cfg.batch
    params = _parameters(cfg)
    if overlap := output_overlap(cfg, params.input_uri.default_value, params.output_uri.default_value):
        raise ConfigError([("batch.output_uri", overlap)])
    # the model's code runs as this role: the batch model role, not the pipeline's (which reads the MLflow secret)
    role = batch.model_role_arn or cfg.aws.role_arn
    create_model = ModelStep(
        name=BatchStepNames.CREATE_MODEL,
        step_args=package_model_step_args(ctx.session, package_arn=params.model_package_arn, role=role),
        display_name="Create-Model",
        description="The model of the package being scored (CreateModel from the model package).",
    )
    report = PropertyFile(name=DRIFT_REPORT_NAME, output_name=DRIFT_OUTPUT, path=DRIFT_REPORT_FILE)
    drift_settings = batch.drift
    arguments = [item for name, value in drift_settings.thresholds().items()
                 for item in (f"--{name.replace('_', '-')}", f"{value:g}")]  # fmt: skip
    arguments += ["--min-rows", str(drift_settings.min_rows), "--small-batch", drift_settings.small_batch,
                  "--missing-baseline", drift_settings.missing_baseline,
                  "--max-payload-mb", str(batch.max_payload_mb)]  # fmt: skip
    drift = processing_step(
        ctx,
        name=BatchStepNames.DRIFT_CHECK,
        settings_key="evaluate",
        instance_type=cfg.steps.evaluate.instance_type,
        inputs=[
            processing_input("model", params.model_data_uri, "/opt/ml/processing/input/model"),
            processing_input("data", params.input_uri, "/opt/ml/processing/input/data"),
        ],
        outputs=[
            processing_output(
                name, f"/opt/ml/processing/output/{name}", ctx.output_uri(BatchStepNames.DRIFT_CHECK, name)
            )
            for name in (DRIFT_OUTPUT, RECORDS_OUTPUT)
        ],
        arguments=arguments,
        display_name="Drift-Check",
        description="Checks every record of the batch and compares it with the model's training baseline per "
        "feature (PSI, mean shift, Jensen-Shannon distance, unseen categories, missing and unparsable values); "
        "writes a Model Monitor style violations file and the records Transform scores.",
        property_files=[report],
        script="drift_check.py",
        cached=False,
    )
    records = drift.properties.ProcessingOutputConfig.Outputs[RECORDS_OUTPUT].S3Output.S3Uri
    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=batch.instance_count,
        instance_type=batch.instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=params.output_uri,
        accept=batch.accept,
        max_payload=batch.max_payload_mb,
        sagemaker_session=ctx.session,
    )
    transform = TransformStep(
        name=BatchStepNames.TRANSFORM,
        step_args=transformer.transform(
            data=records,
            content_type=batch.content_type,
            split_type="Line",
            join_source="Input" if batch.join_input else None,
        ),
        display_name="Batch-Transform",
        description="Scores every record DriftCheck checked with the model's own inference code; one .out file "
        "per input file.",
        depends_on=None if batch.drift.action == "fail" else [create_model],
    )
    gate_ratio = JsonGet(step_name=drift.name, property_file=report, json_path="gate_ratio")
    failed = FailStep(
        name=BatchStepNames.DRIFT_FAILED,
        error_message=Join(
            on="",
            values=[
                "Drift gate failed: ",
                JsonGet(step_name=drift.name, property_file=report, json_path="gate_message"),
                " (batch.drift); nothing was scored",
            ],
        ),
    )
    gated = batch.drift.action == "fail"
    gate = ConditionStep(
        name=BatchStepNames.DRIFT_GATE,
        display_name="Drift-Gate",
        description="Passes when every feature's drift statistics are within their thresholds and the batch is "
        "large enough to judge, or batch.drift says to score it anyway (gate ratio <= 1).",
        conditions=[ConditionLessThanOrEqualTo(left=gate_ratio, right=1.0)],
        if_steps=[transform] if gated else [],
        else_steps=[failed] if gated else [],
    )
    steps = [create_model, drift, gate] if gated else [create_model, drift, gate, transform]
    return Pipeline(name=cfg.batch_pipeline_name, parameters=params.all(), steps=steps, sagemaker_session=ctx.session)

"""The contract between the pipeline's register step and the bridge, written once.

The register step (`pipeline/steps/registration.py`) writes these customer-metadata keys
on every model package; the bridge reads them, answers SageMaker's state-change events
and writes the version tags below on MLflow model versions. Both sides import this
module. It lives in the bridge because the bridge's Lambda image holds `mlflow_bridge/`
only (never `pipeline/`), and it imports nothing, so the builder pays nothing for it.
"""

from __future__ import annotations

__all__ = [
    "DEMOTED_METRIC",
    "ENDED_EXECUTION_STATUSES",
    "EVENT_SOURCE",
    "EXECUTION_STATUS_DETAIL_TYPE",
    "METRICS_NAMESPACE",
    "METRICS_SERVICE",
    "PACKAGE_STAGE_TAG",
    "STATE_CHANGE_DETAIL_TYPE",
    "UNTRACKED_RUN",
    "CustomerMetadata",
    "ExecutionRunTags",
    "Tags",
]

# EventBridge's source and detail-type for model package changes (approval status and
# lifecycle stage alike). Source: SageMaker Developer Guide, "Automating SageMaker with
# Amazon EventBridge", Model package state change.
EVENT_SOURCE = "aws.sagemaker"
STATE_CHANGE_DETAIL_TYPE = "SageMaker Model Package State Change"
# ... and for a pipeline execution's status (same source; its detail names the execution in
# `pipelineExecutionArn`, the pipeline in `pipelineArn`, the status in
# `currentPipelineExecutionStatus`): same guide, Pipeline execution state change.
EXECUTION_STATUS_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
# PipelineExecutionStatus values after which nothing runs (DescribePipelineExecution's API reference)
ENDED_EXECUTION_STATUSES = ("Succeeded", "Failed", "Stopped")


# The bridge's EMF counts (handler.py): CloudWatch namespace, and the `service` dimension
# Powertools Metrics adds; infra's alarms read them. DEMOTED counts a package leaving the
# last stage (production).
METRICS_NAMESPACE = "MLflowBridge"
METRICS_SERVICE = "mlflow-bridge"
DEMOTED_METRIC = "Demoted"

# The resource tag the bridge keeps on each SageMaker model package: its lifecycle stage, as
# the bridge last saw it. IAM's `sagemaker:ModelLifeCycle:stage` key names the stage a call
# moves a package *to*; this tag names where it *is*, so a policy can deny changing a package
# that is in production (`aws:ResourceTag/mlops:lifecycle-stage`; infra/promotion_roles.py).
PACKAGE_STAGE_TAG = "mlops:lifecycle-stage"


class CustomerMetadata:
    """Keys of a model package's CustomerMetadataProperties (values: 1-256 characters of
    letters, digits, spaces and `_.:/=+-@`, per CreateModelPackage's API reference)."""

    RUN_ID = "mlflow_run_id"  # the MLflow run that trained and evaluated the model
    EXPERIMENT = "mlflow_experiment"
    REGISTERED_MODEL = "mlflow_registered_model"  # the MLflow model the versions go to


# RUN_ID's value when the jobs ran without tracking (a metadata value may not be empty).
# pipeline/steps/scripts/evaluate.py writes it; the scripts run in the job image and cannot
# import this module, so a test keeps the two equal.
UNTRACKED_RUN = "untracked"


class Tags:
    """Tag keys the bridge writes on MLflow model versions (no dots, so they filter
    without quoting: `tags.sagemaker_model_package_arn = '...'`)."""

    PACKAGE_ARN = "sagemaker_model_package_arn"
    GROUP = "sagemaker_model_package_group"
    PACKAGE_VERSION = "sagemaker_model_package_version"
    APPROVAL = "sagemaker_approval_status"
    # When and by whom the package took its current approval status, written once per
    # status change (see decisions.status_record), never rewritten by an edit.
    APPROVAL_TIME = "sagemaker_approval_time"
    APPROVAL_TIME_SOURCE = "sagemaker_approval_time_source"  # created, event or observed
    APPROVED_BY = "sagemaker_approved_by"
    ENDPOINT = "sagemaker_endpoint"  # with stages: sagemaker_endpoint_<stage> (`endpoint_of`)
    # The package's ModelLifeCycle (Stage, StageStatus), when it has one: what a configured
    # stage's alias follows (decisions.staged_registry_actions).
    LIFECYCLE_STAGE = "sagemaker_lifecycle_stage"
    LIFECYCLE_STAGE_STATUS = "sagemaker_lifecycle_stage_status"
    # When it took that stage and status (decisions.lifecycle_record): the promotion time
    # `latest_approval` orders a stage's packages by.
    LIFECYCLE_STAGE_TIME = "sagemaker_lifecycle_stage_time"

    @classmethod
    def endpoint_of(cls, lifecycle_stage: str = "") -> str:
        """The endpoint tag: one endpoint, or the endpoint of a lifecycle stage."""
        return f"{cls.ENDPOINT}_{lifecycle_stage.lower()}" if lifecycle_stage else cls.ENDPOINT


class ExecutionRunTags:
    """Tag keys on the MLflow runs of one pipeline execution. The jobs tag their runs and
    make the parent (pipeline/steps/scripts/execution_run.py, which runs in the job image
    and cannot import this module: a test keeps the two equal); the bridge's execution
    recorder and the command line write the execution's result on the parent."""

    EXECUTION = "sagemaker.pipeline_execution_arn"  # on every run of the execution, the parent too
    PARENT = "mlops.execution_parent"  # on the parent only: the execution ARN
    STATUS = "mlops.execution_status"  # SageMaker's PipelineExecutionStatus
    OUTCOME_PREFIX = "mlops.outcome."  # + condition step name: "True" / "False"
    PARAMETER_PREFIX = "mlops.parameter."  # + pipeline parameter name: its value in the execution
    MODEL_PACKAGE_ARN = "mlops.model_package_arn"  # the model package the execution registered
    FAILURE_REASON = "mlops.failure_reason"
    DURATION_METRIC = "execution_seconds"  # a metric, not a tag: ended - started, seconds

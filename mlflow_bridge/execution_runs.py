"""An execution's MLflow parent run, kept in step with SageMaker: its status and duration,
each condition step's outcome, the parameters and the model package the execution
registered, and the end of every run of it still running.

The jobs make the parent (pipeline/steps/scripts/execution_run.py); three writers record the
result on it with this module: local mode's runner (pipeline/local/execution_graph.py), the
command line (`describe ID --log`, `start --wait`) and the bridge's execution recorder
(`ExecutionRecorder`), which answers SageMaker's execution status change event, so that an
execution nobody watches (started from Studio, the console or a schedule) ends its parent
too. The tags are `contract.ExecutionRunTags`. Recording is idempotent: a repeated event, or
the recorder and `start --wait` both, write the same values again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_bridge.contract import ENDED_EXECUTION_STATUSES, ExecutionRunTags
from mlflow_bridge.mlflow_registry import refusal

__all__ = [
    "LEFTOVER_STATUS",
    "PARENT_STATUS",
    "ExecutionRecorder",
    "ExecutionResult",
    "parent_run_id",
    "read_execution",
    "record_on_parent_run",
    "result_from_sagemaker",
    "result_tags",
]

# MLflow's RunStatus for an ended PipelineExecutionStatus: a stopped execution was killed.
PARENT_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
# ... and for a run of it still running then: it did not finish. Stopped (a trial stopped
# early, whose job is gone) unless the execution failed, when it failed with it.
LEFTOVER_STATUS = {"Succeeded": "KILLED", "Failed": "FAILED", "Stopped": "KILLED"}
_TAG_VALUE_LIMIT = 5000  # MLflow's MAX_TAG_VAL_LENGTH in 3.x (mlflow/utils/validation.py)


@dataclass(frozen=True)
class ExecutionResult:
    """`status`: SageMaker's PipelineExecutionStatus; `started`/`ended`: epoch seconds
    (`ended` None while it runs); `outcomes`: condition step -> "True"/"False"."""

    arn: str
    status: str
    started: float
    ended: float | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    model_package_arn: str = ""
    failure_reason: str = ""


def result_from_sagemaker(
    execution: Mapping[str, Any], step_metadata: Mapping[str, Mapping[str, Any]], parameters: list[Mapping[str, str]]
) -> ExecutionResult:
    """The result from SageMaker's answers: `execution`, DescribePipelineExecution's (times as
    the datetimes boto3 gives); `step_metadata`, each step's `Metadata` by step name
    (ListPipelineExecutionSteps: `Condition.Outcome`, `RegisterModel.Arn`); `parameters`,
    ListPipelineParametersForExecution's `PipelineParameters`. DescribePipelineExecution has
    no end time: an ended execution ended when it was last modified."""
    status = str(execution["PipelineExecutionStatus"])
    outcomes = {
        name: str(metadata["Condition"]["Outcome"])
        for name, metadata in step_metadata.items()
        if "Outcome" in metadata.get("Condition", {})
    }
    packages = [str(m["RegisterModel"]["Arn"]) for m in step_metadata.values() if "Arn" in m.get("RegisterModel", {})]
    ended = execution.get("LastModifiedTime") if status in ENDED_EXECUTION_STATUSES else None
    return ExecutionResult(
        arn=str(execution["PipelineExecutionArn"]),
        status=status,
        started=execution["CreationTime"].timestamp(),
        ended=ended.timestamp() if ended else None,
        outcomes=outcomes,
        parameters={p["Name"]: p["Value"] for p in parameters},
        model_package_arn=packages[0] if packages else "",
        failure_reason=str(execution.get("FailureReason", "")),
    )


def read_execution(sagemaker: Any, arn: str, execution: Mapping[str, Any] | None = None) -> ExecutionResult:
    """The execution's result as SageMaker has it now: DescribePipelineExecution (unless
    `execution` is its answer already), then every page of ListPipelineExecutionSteps and
    ListPipelineParametersForExecution. `sagemaker`: a boto3 SageMaker client. Raises
    botocore's ClientError as SageMaker answers."""
    execution = execution or sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
    metadata = {s["StepName"]: s.get("Metadata", {}) for page in steps for s in page["PipelineExecutionSteps"]}
    pages = sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(PipelineExecutionArn=arn)
    return result_from_sagemaker(execution, metadata, [p for page in pages for p in page["PipelineParameters"]])


def result_tags(result: ExecutionResult) -> dict[str, str]:
    tags = {ExecutionRunTags.STATUS: result.status}
    tags |= {f"{ExecutionRunTags.OUTCOME_PREFIX}{name}": outcome for name, outcome in result.outcomes.items()}
    tags |= {f"{ExecutionRunTags.PARAMETER_PREFIX}{name}": value for name, value in result.parameters.items()}
    if result.model_package_arn:
        tags[ExecutionRunTags.MODEL_PACKAGE_ARN] = result.model_package_arn
    # always written: an execution retried (RetryPipelineExecution) after a failure keeps its
    # ARN and parent, and must not keep the failure's reason once it succeeds
    tags[ExecutionRunTags.FAILURE_REASON] = result.failure_reason[:_TAG_VALUE_LIMIT]
    return tags


def parent_run_id(client: Any, experiment: str, execution_arn: str) -> str:
    """The execution's parent run in the experiment named `experiment`, or '' (no such
    experiment, or no job of the execution has logged). The oldest when there are several,
    the rule the jobs use."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return ""
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{ExecutionRunTags.PARENT}` = '{execution_arn}'", max_results=100
    )
    return str(min(runs, key=lambda run: (run.info.start_time, run.info.run_id)).info.run_id) if runs else ""


def record_on_parent_run(client: Any, run_id: str, result: ExecutionResult, picture: Path | None) -> None:
    """Tags, the `execution_seconds` metric and the picture (under `pipeline/`) on the parent
    run; when the execution has ended, the parent ends with it (`PARENT_STATUS`), as does
    any run of the execution still running (`LEFTOVER_STATUS`: a trial stopped early, or a
    tuning step's run when the execution failed before Evaluate ended it). `client`: an
    MlflowClient."""
    from mlflow.entities import Metric, RunTag

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # callers print their own summary
    ended = result.ended
    metrics = []
    if ended is not None:
        seconds = round(ended - result.started, 3)
        metrics = [Metric(ExecutionRunTags.DURATION_METRIC, seconds, int(ended * 1000), 0)]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in result_tags(result).items()])
    if picture is not None:
        client.log_artifact(run_id, str(picture), "pipeline")
    if result.status not in ENDED_EXECUTION_STATUSES or ended is None:
        return
    experiment_id = client.get_run(run_id).info.experiment_id
    running = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{ExecutionRunTags.EXECUTION}` = '{result.arn}' and attributes.status = 'RUNNING'",
    )
    for run in running:
        if run.info.run_id != run_id:
            client.set_terminated(run.info.run_id, LEFTOVER_STATUS[result.status], int(ended * 1000))
    client.set_terminated(run_id, PARENT_STATUS[result.status], int(ended * 1000))


@dataclass
class ExecutionRecorder:
    """Ends the parent run of an ended execution of one of `pipelines` from SageMaker's
    execution status change event: what `describe ID --log` records, without the picture
    (the function has no Graphviz). `sagemaker`: a boto3 SageMaker client; `client`: an
    MlflowClient of the user the jobs log as (it made the experiment, so it may edit its runs)."""

    sagemaker: Any
    client: Any
    experiment: str
    pipelines: list[str]

    def record(self, execution_arn: str) -> dict[str, str]:
        """{"status": "synced", "run_id", "execution_status"}, or {"status": "ignored",
        "reason"} for another pipeline's execution, one still running, or one with no parent
        run. Raises what SageMaker or MLflow raise (failures.py tells a retry from a rejection)."""
        pipeline = _pipeline_of(execution_arn)
        # the rule matches pipeline ARNs in either case (SageMaker writes some lower-cased)
        if pipeline.lower() not in {name.lower() for name in self.pipelines}:
            return {"status": "ignored", "reason": f"pipeline {pipeline!r} is not one of {', '.join(self.pipelines)}"}
        execution = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = execution["PipelineExecutionStatus"]
        if status not in ENDED_EXECUTION_STATUSES:  # the event is a hint; SageMaker says what is
            return {"status": "ignored", "reason": f"the execution is {status}, not ended"}
        # the jobs tag the parent with the ARN SageMaker tags them with: DescribePipelineExecution's
        # spelling first, the event's if it differs
        arns = dict.fromkeys([str(execution.get("PipelineExecutionArn") or execution_arn), execution_arn])
        run_id = next(filter(None, (parent_run_id(self.client, self.experiment, arn) for arn in arns)), "")
        if not run_id:
            return {
                "status": "ignored",
                "reason": f"no MLflow parent run of {execution_arn} in experiment {self.experiment}: no job of it "
                "logged (every step cached, or it failed before its first job)",
            }
        result = read_execution(self.sagemaker, execution_arn, execution)
        # LogBatch and SetTerminated (UpdateRun) need EDIT on the experiment: mlflow/server/auth/__init__.py
        with refusal("edit the runs of", f"experiment {self.experiment!r}", "EDIT"):
            record_on_parent_run(self.client, run_id, result, None)
        return {"status": "synced", "run_id": run_id, "execution_status": result.status}


def _pipeline_of(execution_arn: str) -> str:
    """NAME of arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID ('' otherwise)."""
    resource = execution_arn.split(":", 5)[-1].split("/")
    return resource[1] if len(resource) == 4 and resource[0] == "pipeline" and resource[2] == "execution" else ""

"""What an execution's MLflow parent run says of it, for a local execution (its record) and
for one on SageMaker (`describe ID --log`): status and duration, each decided condition's
outcome, the parameters, the model package it registered, and the picture of its graph.

The parent run is the one the execution's first job made (pipeline/steps/scripts/execution_run.py,
loaded by file: the jobs and this command share its tags and its rule for the oldest run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.job_scripts import script_module

__all__ = ["EXECUTION_TAG", "ExecutionResult", "parent_run_id", "record_on_parent_run", "result_tags"]

_execution_run = script_module("execution_run")
EXECUTION_TAG: str = _execution_run.EXECUTION_TAG  # as the jobs tag their runs
TERMINAL = {"Succeeded", "Failed", "Stopped"}  # SageMaker's ended PipelineExecutionStatus values


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


def result_tags(result: ExecutionResult) -> dict[str, str]:
    tags = {"mlops.execution_status": result.status}
    tags |= {f"mlops.outcome.{name}": outcome for name, outcome in result.outcomes.items()}
    tags |= {f"mlops.parameter.{name}": value for name, value in result.parameters.items()}
    if result.model_package_arn:
        tags["mlops.model_package_arn"] = result.model_package_arn
    if result.failure_reason:
        tags["mlops.failure_reason"] = result.failure_reason[:5000]
    return tags


def parent_run_id(client: Any, experiment: str, execution_arn: str) -> str:
    """The execution's parent run in the experiment named `experiment`, or ''."""
    found = client.get_experiment_by_name(experiment)
    run = found and _execution_run.oldest_run(client, found.experiment_id, _execution_run.PARENT_TAG, execution_arn)
    return str(run.info.run_id) if run else ""


def record_on_parent_run(client: Any, run_id: str, result: ExecutionResult, picture: Path | None) -> None:
    """Tags, the `execution_seconds` metric and the picture (under `pipeline/`) on the parent
    run; when the execution has ended, the parent ends with it (FINISHED when it succeeded,
    else FAILED), as does any run of the execution still running (a tuning step's run when
    the execution failed before Evaluate ended it)."""
    from mlflow.entities import Metric, RunTag

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # the command prints its own summary
    ended = result.ended
    metrics = []
    if ended is not None:
        metrics = [Metric("execution_seconds", round(ended - result.started, 3), int(ended * 1000), 0)]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in result_tags(result).items()])
    if picture is not None:
        client.log_artifact(run_id, str(picture), "pipeline")
    if result.status not in TERMINAL or ended is None:
        return
    status = "FINISHED" if result.status == "Succeeded" else "FAILED"
    experiment_id = client.get_run(run_id).info.experiment_id
    running = client.search_runs(
        [experiment_id], filter_string=f"tags.`{EXECUTION_TAG}` = '{result.arn}' and attributes.status = 'RUNNING'"
    )
    for run in running:
        if run.info.run_id != run_id:
            client.set_terminated(run.info.run_id, status, int(ended * 1000))
    client.set_terminated(run_id, status, int(ended * 1000))

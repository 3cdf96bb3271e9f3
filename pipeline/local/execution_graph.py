"""Each local execution's picture and result, beside its record and on its MLflow parent run.

The picture is drawn as `graph --execution ID --format png` draws it and written to
`<workspace>/executions/<id>/pipeline_graph.png`. The execution's parent run, which its
first job created (`pipeline/steps/scripts/execution_run.py`), gets the picture (under
`pipeline/`), the execution's status and duration, every condition's outcome, its
parameters (the quality gate's threshold among them) and the model package it registered,
and ends FINISHED or FAILED with the execution. Without a parent run (tracking was off when
the jobs ran) the picture goes to the run the evaluation report names, else the
latest-started run tagged with the execution's ARN.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.atomic_file import write_atomically
from pipeline.errors import UsageError
from pipeline.graph import step_graph
from pipeline.graph_picture import picture
from pipeline.job_scripts import script_module
from pipeline.local.runner import ExecutionRecord, execution_view

__all__ = ["GRAPH_FILE", "PIPELINE_EXECUTION_TAG", "log_execution_graph", "result_tags"]

GRAPH_FILE = "pipeline_graph.png"
PIPELINE_EXECUTION_TAG = script_module("execution_run").EXECUTION_TAG  # as the jobs tag their runs


def log_execution_graph(
    record: ExecutionRecord,
    definition: dict[str, Any],
    executions_root: Path,
    tracking_uri: Callable[[], str],
    experiment: str,
    last_run_id: str = "",
) -> str:
    """Draw, write and log the picture; returns one line for the console saying where it
    went (or why not: no Graphviz, a fully cached execution, MLflow not answering). Never
    raises for these: the picture is a report, not a step. An execution in which no job ran
    (a fully cached rerun) is neither drawn nor logged: that would cost it a third of its
    time and make it wait for the MLflow server; `graph --execution ID` draws it."""
    if not any(step.job_name and step.status in {"Succeeded", "Failed", "Stopped"} for step in record.steps.values()):
        return f"graph: not drawn, no job ran (graph --execution {record.id} --out graph.png draws it)"
    try:
        png = picture(step_graph(definition), "png", execution_view(record))
    except UsageError as exc:
        return f"graph not drawn: {exc}"
    path = executions_root / record.id / GRAPH_FILE
    write_atomically(path, png)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # the summary names the UI
    try:
        client = MlflowClient(tracking_uri())
        parent = _parent_run(client, experiment, record.arn)
        run_id = parent or last_run_id or _latest_run(client, experiment, record.arn)
        if not run_id:
            return f"graph: {path} (no MLflow run of this execution to log it to)"
        client.log_artifact(run_id, str(path), "pipeline")
        if parent:
            _record_result(client, parent, record)
    except (MlflowException, OSError) as exc:
        return f"graph: {path} (not logged to MLflow: {str(exc).splitlines()[0]})"
    return f"graph: {path}, logged to MLflow run {run_id}" + (" (the execution's parent run)" if parent else "")


def _parent_run(client: Any, experiment: str, execution_arn: str) -> str:
    execution_run = script_module("execution_run")
    found = client.get_experiment_by_name(experiment)
    run = found and execution_run.oldest_run(client, found.experiment_id, execution_run.PARENT_TAG, execution_arn)
    return str(run.info.run_id) if run else ""


def result_tags(record: ExecutionRecord) -> dict[str, str]:
    """What the parent run says of its execution: status, each decided condition's outcome,
    the parameters it ran with, the model package it registered."""
    tags = {"mlops.execution_status": record.status}
    tags |= {f"mlops.outcome.{name}": str(step.properties["Outcome"])
             for name, step in record.steps.items() if "Outcome" in step.properties}  # fmt: skip
    tags |= {f"mlops.parameter.{name}": str(value) for name, value in record.parameters.items()}
    packages = [
        str(s.properties["ModelPackageArn"]) for s in record.steps.values() if "ModelPackageArn" in s.properties
    ]
    if packages:
        tags["mlops.model_package_arn"] = packages[0]
    if record.failure_reason:
        tags["mlops.failure_reason"] = record.failure_reason[:5000]
    return tags


def _record_result(client: Any, run_id: str, record: ExecutionRecord) -> None:
    """The result on the parent run, which then ends with the execution, as does any run of
    the execution still running (a tuning step's run when the execution failed before
    Evaluate ended it)."""
    from mlflow.entities import Metric, RunTag

    ended = record.ended or time.time()
    status = "FINISHED" if record.status == "Succeeded" else "FAILED"
    experiment_id = client.get_run(run_id).info.experiment_id
    running = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PIPELINE_EXECUTION_TAG}` = '{record.arn}' and attributes.status = 'RUNNING'",
    )
    for run in running:
        if run.info.run_id != run_id:
            client.set_terminated(run.info.run_id, status, int(ended * 1000))
    client.log_batch(
        run_id,
        metrics=[Metric("execution_seconds", round(ended - record.started, 3), int(ended * 1000), 0)],
        tags=[RunTag(key, value) for key, value in result_tags(record).items()],
    )
    client.set_terminated(run_id, status, int(ended * 1000))


def _latest_run(client: Any, experiment: str, execution_arn: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return ""
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{PIPELINE_EXECUTION_TAG}` = '{execution_arn}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return str(runs[0].info.run_id) if runs else ""

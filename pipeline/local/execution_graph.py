"""Each local execution's picture and result, beside its record and on its MLflow parent run.

The picture is drawn as `graph --execution ID --format png` draws it and written to
`<workspace>/executions/<id>/pipeline_graph.png`. The execution's parent run, which its
first job created (`pipeline/steps/scripts/execution_run.py`), gets the picture (under
`pipeline/`), the execution's status and duration, every condition's outcome, its
parameters (the quality gate's threshold among them) and the model package it registered,
and ends with the execution (FINISHED, FAILED, or KILLED when stopped). Without a parent run (tracking was off when
the jobs ran) the picture goes to the run the evaluation report names, else the
latest-started run tagged with the execution's ARN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_bridge.contract import ExecutionRunTags
from mlflow_bridge.execution_runs import ExecutionResult, parent_run_id, record_on_parent_run
from pipeline.atomic_file import write_atomically
from pipeline.errors import UsageError
from pipeline.graph import step_graph
from pipeline.graph_picture import picture
from pipeline.local.runner import ExecutionRecord, execution_view

__all__ = ["GRAPH_FILE", "PIPELINE_EXECUTION_TAG", "execution_result", "log_execution_graph"]

GRAPH_FILE = "pipeline_graph.png"
PIPELINE_EXECUTION_TAG = ExecutionRunTags.EXECUTION


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
    target = executions_root / record.id / GRAPH_FILE
    path: Path | None = target
    drawn = ""
    try:
        write_atomically(target, picture(step_graph(definition), "png", execution_view(record)))
    except UsageError as exc:  # the result still goes on the parent run, without the picture
        path, drawn = None, f"graph not drawn: {exc}"
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(tracking_uri())
        parent = parent_run_id(client, experiment, record.arn)
        if parent:
            record_on_parent_run(client, parent, execution_result(record), path)
            return drawn or f"graph: {path}, logged to MLflow run {parent} (the execution's parent run)"
        if path is None:
            return drawn
        run_id = last_run_id or _latest_run(client, experiment, record.arn)
        if not run_id:
            return f"graph: {path} (no MLflow run of this execution to log it to)"
        client.log_artifact(run_id, str(path), "pipeline")
    except (MlflowException, OSError) as exc:
        return f"graph: {path} (not logged to MLflow: {str(exc).splitlines()[0]})"
    return f"graph: {path}, logged to MLflow run {run_id}"


def execution_result(record: ExecutionRecord) -> ExecutionResult:
    packages = [
        str(s.properties["ModelPackageArn"]) for s in record.steps.values() if "ModelPackageArn" in s.properties
    ]
    return ExecutionResult(
        arn=record.arn,
        status=record.status,
        started=record.started,
        ended=record.ended or time.time(),
        outcomes=dict(execution_view(record).outcomes),
        parameters={name: str(value) for name, value in record.parameters.items()},
        model_package_arn=packages[0] if packages else "",
        failure_reason=record.failure_reason,
    )


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

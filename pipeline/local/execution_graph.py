"""Each local execution's picture, beside its record and in MLflow.

Drawn as `graph --execution ID --format png` draws it, written to
`<workspace>/executions/<id>/pipeline_graph.png`, and logged (under `pipeline/`) to the
MLflow run of the execution's last step: the run its evaluation report names (Evaluate
logs into the model's run), else the latest-started run tagged with the execution's ARN,
as the jobs tag their runs (`pipeline/steps/scripts/tracking.py`, `job_tags`; a test
keeps the two spellings equal).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.atomic_file import write_atomically
from pipeline.errors import UsageError
from pipeline.graph import step_graph
from pipeline.graph_picture import picture
from pipeline.local.runner import ExecutionRecord, execution_view

__all__ = ["GRAPH_FILE", "PIPELINE_EXECUTION_TAG", "log_execution_graph"]

GRAPH_FILE = "pipeline_graph.png"
PIPELINE_EXECUTION_TAG = "sagemaker.pipeline_execution_arn"


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

    try:
        client = MlflowClient(tracking_uri())
        run_id = last_run_id or _latest_run(client, experiment, record.arn)
        if not run_id:
            return f"graph: {path} (no MLflow run of this execution to log it to)"
        client.log_artifact(run_id, str(path), "pipeline")
    except (MlflowException, OSError) as exc:
        return f"graph: {path} (not logged to MLflow: {str(exc).splitlines()[0]})"
    return f"graph: {path}, logged to MLflow run {run_id}"


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

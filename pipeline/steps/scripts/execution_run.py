"""The MLflow parent run of one pipeline execution, which every job's run is nested under.

Runs inside the SageMaker scikit-learn image (Python 3.10), on a laptop, and in local mode's
command (`pipeline/local/`, through `pipeline.job_scripts.script_module`), so the rule that
picks the parent is written once, here. Its tags are the bridge's
`contract.ExecutionRunTags`, which the job image cannot import: a test keeps the two equal.
The execution's result is written on the parent by mlflow_bridge/execution_runs.py.

A job finds its execution itself, so an execution started from Studio, the console or an
EventBridge schedule gets its tree too, and nothing that changes per execution enters a
cached step's arguments (SageMaker's cache key holds each job's `Environment` and
`HyperParameters`, "Default cache key attributes by pipeline step type"):
  - locally, from `MLOPS_PIPELINE_EXECUTION_ARN`, which the local runner sets per job;
  - on SageMaker, from the tag SageMaker puts on every job a pipeline launches,
    `sagemaker:pipeline-execution-arn`, read with ListTags on the job's own ARN (the
    SageMaker Python SDK's lineage code reads it the same way); the job role may call
    `sagemaker:ListTags` on jobs for exactly this (infra/roles.py).

The first job to start creates the parent; jobs that start together (parallel tuning
trials) must not leave two. MLflow runs have no unique key, but experiment names do:
`create_once` lets the job whose CreateExperiment of a lock name succeeds create the run,
and the others wait until they find it. (Searching, creating, searching again and keeping
the oldest is not enough: a run's start time is set by the client before its creation is
visible, so two creators can each see only their own run; a test of eight creators at
once showed it.)
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = [
    "EXECUTION_TAG",
    "PARENT_RUN_TAG",
    "PARENT_TAG",
    "TUNING_RUN_TAG",
    "create_once",
    "execution_arn",
    "execution_link",
    "find_or_create",
    "oldest",
    "oldest_run",
    "parent_run_name",
]

EXECUTION_TAG = "sagemaker.pipeline_execution_arn"  # on every run of an execution, the parent too
PARENT_TAG = "mlops.execution_parent"  # on the parent only: the execution ARN
TUNING_RUN_TAG = "mlops.tuning_run"  # on a tuning step's own run: the tuning job's name
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: how its UI nests runs
SAGEMAKER_EXECUTION_TAG = "sagemaker:pipeline-execution-arn"  # SageMaker's tag on a pipeline's jobs
LOCAL_EXECUTION_ENV = "MLOPS_PIPELINE_EXECUTION_ARN"
PROCESSING_JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")  # holds ProcessingJobArn


def own_job_arn(env: dict[str, str], processing_config: Path = PROCESSING_JOB_CONFIG) -> str | None:
    """This SageMaker job's ARN: a training job's `TRAINING_JOB_ARN` environment variable, a
    processing job's `ProcessingJobArn` in /opt/ml/config/processingjobconfig.json; None
    elsewhere."""
    if env.get("TRAINING_JOB_ARN"):
        return env["TRAINING_JOB_ARN"]
    try:
        return str(json.loads(processing_config.read_text())["ProcessingJobArn"])
    except (OSError, ValueError, KeyError):
        return None


def execution_arn(env: dict[str, str] | None = None, sagemaker: Any = None) -> str | None:
    """The pipeline execution this job belongs to, or None (a job run by hand). `sagemaker`:
    a boto3 SageMaker client (made from the job's region when None)."""
    env = dict(os.environ) if env is None else env
    if env.get(LOCAL_EXECUTION_ENV):
        return env[LOCAL_EXECUTION_ENV]
    job_arn = own_job_arn(env)
    if job_arn is None:
        return None
    if sagemaker is None:
        import boto3

        sagemaker = boto3.client("sagemaker", region_name=job_arn.split(":")[3])
    token: str | None = None
    while True:
        page = sagemaker.list_tags(ResourceArn=job_arn, **({"NextToken": token} if token else {}))
        for tag in page.get("Tags", []):
            if tag["Key"] == SAGEMAKER_EXECUTION_TAG:
                return str(tag["Value"])
        token = page.get("NextToken")
        if not token:
            return None


def _named(arn: str) -> tuple[str, str, str] | None:
    """(region, pipeline, execution id) of arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID."""
    parts = arn.split(":")
    resource = parts[5].split("/") if len(parts) == 6 else []
    if len(resource) != 4 or resource[0] != "pipeline" or resource[2] != "execution":
        return None
    return parts[3], resource[1], resource[3]


def execution_link(arn: str, local: bool) -> str:
    """Where to see the execution: the local command that draws it, or the SageMaker console
    page of the pipeline's executions; '' for an ARN of another form."""
    named = _named(arn)
    if named is None:
        return ""
    region, pipeline, execution_id = named
    if local:
        return f"python -m pipeline.definition graph --execution {execution_id}"
    return (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/pipelines/{pipeline}/executions/{execution_id}"
    )


def parent_run_name(arn: str) -> str:
    """`<pipeline>-<execution id>`, from the ARN (the ARN itself when it is of another form)."""
    named = _named(arn)
    return f"{named[1]}-{named[2]}" if named else arn


def oldest(runs: list[Any]) -> Any:
    """The run that counts among several made for one thing: the oldest (start time, then
    run id), or None."""
    return min(runs, key=lambda run: (run.info.start_time, run.info.run_id)) if runs else None


def oldest_run(client: Any, experiment_id: str, key: str, value: str) -> Any:
    """The oldest live run tagged `key=value`, or None."""
    return oldest(client.search_runs([experiment_id], filter_string=f"tags.`{key}` = '{value}'", max_results=100))


def find_or_create(
    client: Any, experiment_id: str, *, key: str, value: str, run_name: str, tags: dict[str, str]
) -> str:
    """The id of the oldest live run tagged `key=value` in the experiment, created (with
    `tags`) by exactly one job when there is none (`create_once`)."""
    found = oldest_run(client, experiment_id, key, value)
    if found is not None:
        return str(found.info.run_id)
    return create_once(client, experiment_id, key=key, value=value, run_name=run_name, tags=tags)


def create_once(
    client: Any, experiment_id: str, *, key: str, value: str, run_name: str, tags: dict[str, str],
    wait_seconds: float = 60.0,
) -> str:  # fmt: skip
    """`find_or_create` after a search that found none. Exactly one job creates the run: the
    one whose CreateExperiment of a lock name succeeds (experiment names are unique in
    MLflow's store, which answers RESOURCE_ALREADY_EXISTS to every other); the others wait
    for the run to appear. The lock experiment is deleted at once (MLflow keeps a deleted
    experiment's name, so the lock holds for good and no later job creates a second run).
    Raises TimeoutError when the winner never creates the run (it died in between)."""
    lock = f".mlops-lock/{experiment_id}/{key}/{value}"
    try:
        lock_id = client.create_experiment(lock)
    except Exception as exc:  # MlflowException: another job holds the lock
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            found = oldest_run(client, experiment_id, key, value)
            if found is not None:
                return str(found.info.run_id)
            time.sleep(0.25)
        raise TimeoutError(
            f"no run tagged {key}={value} appeared in {wait_seconds:g} s (its creator stopped)"
        ) from None
    created = client.create_run(experiment_id, run_name=run_name, tags={key: value, **tags}).info.run_id
    with contextlib.suppress(Exception):  # a lock left undeleted is only a hidden name
        client.delete_experiment(lock_id)
    return str(created)

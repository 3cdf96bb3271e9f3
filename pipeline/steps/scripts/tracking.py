"""MLflow connection for the job scripts.

Runs inside the SageMaker scikit-learn image (Python 3.10) and on a laptop. Settings come
from the environment the definition sets (never from hyperparameters):

  MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME
  MLOPS_TRACKING_CREDENTIALS   none | env | secrets_manager
  MLOPS_TRACKING_SECRET_ARN    with secrets_manager: a JSON secret {"username", "password"}
  MLOPS_TRACKING_ON_UNAVAILABLE  fail | continue  (what to do when the server stays down)

Credentials fetched from Secrets Manager are put into this process's environment for the
MLflow client only; they are never printed or passed to a child process.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["Tracking", "TrackingUnavailable", "connect", "job_tags", "warn"]

T = TypeVar("T")

# Bounded retries for the MLflow client itself (its defaults retry for minutes).
_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnavailable(RuntimeError):
    """The tracking server could not be reached and the job is configured to fail."""


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def _load_credentials(source: str, secret_arn: str | None, region: str | None) -> None:
    if source != "secrets_manager":
        return  # "env": the MLflow client reads MLFLOW_TRACKING_USERNAME/PASSWORD itself
    if not secret_arn:
        raise TrackingUnavailable("MLOPS_TRACKING_CREDENTIALS=secrets_manager but MLOPS_TRACKING_SECRET_ARN is not set")
    import boto3

    region = region or secret_arn.split(":")[3]
    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        secret = json.loads(value)
        os.environ["MLFLOW_TRACKING_USERNAME"] = secret["username"]
        os.environ["MLFLOW_TRACKING_PASSWORD"] = secret["password"]
    except (ValueError, KeyError, TypeError):
        raise TrackingUnavailable(f"secret {secret_arn} must be JSON with 'username' and 'password' keys") from None


def _reachable(uri: str, attempts: int, first_delay: float) -> str | None:
    """None when /health answers; else the last error. Backoff doubles each attempt."""
    if not uri.startswith(("http://", "https://")):
        return None  # a local file store needs no server
    delay, error = first_delay, "no attempt made"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
                if response.status == 200:
                    return None
                error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            error = str(getattr(exc, "reason", exc))
        if attempt + 1 < attempts:
            time.sleep(delay)
            delay *= 2
    return error


class Tracking:
    """MLflow, or nothing: every call is skipped when tracking is off, and in "continue"
    mode a failing call becomes a warning, so a tracking outage never loses the model."""

    def __init__(self, enabled: bool, on_unavailable: str, experiment: str | None) -> None:
        self.enabled = enabled
        self.on_unavailable = on_unavailable
        self.experiment = experiment

    def call(self, what: str, fn: Callable[[], T]) -> T | None:
        if not self.enabled:
            return None
        try:
            return fn()
        except Exception as exc:  # MLflow raises MlflowException or requests' errors
            if self.on_unavailable == "fail":
                raise TrackingUnavailable(f"MLflow {what} failed: {exc}") from exc
            warn(f"MLflow {what} failed, continuing without tracking: {exc}")
            self.enabled = False
            return None

    def existing_run(self, key: str, value: str) -> str | None:
        """The id of a run already tagged key=value in this experiment (a rerun of the same job)."""
        import mlflow

        def search() -> str | None:
            experiment = mlflow.get_experiment_by_name(self.experiment) if self.experiment else None
            ids = [experiment.experiment_id] if experiment else ["0"]
            runs = mlflow.MlflowClient().search_runs(ids, filter_string=f"tags.`{key}` = '{value}'", max_results=1)
            return runs[0].info.run_id if runs else None

        return self.call("search_runs", search)

    @contextmanager
    def run(
        self, *, run_name: str, tags: dict[str, str], run_id: str | None = None, resume_key: str | None = None
    ) -> Iterator[str | None]:
        """Start a run, or resume one: by id, or the run already tagged `resume_key` with
        this job's value, so a job run twice leaves one MLflow run. Yields the run id, or
        None when tracking is off."""
        import mlflow

        if run_id is None and resume_key and tags.get(resume_key):
            run_id = self.existing_run(resume_key, tags[resume_key])
        active = self.call(
            "start_run",
            lambda: mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, tags=tags),
        )
        try:
            yield active.info.run_id if active is not None else None
        except BaseException:
            if active is not None and self.enabled:
                self.call("end_run", lambda: mlflow.end_run(status="FAILED"))
            raise
        if active is not None and self.enabled:
            self.call("end_run", lambda: mlflow.end_run())


def connect(env: dict[str, str] | None = None) -> Tracking:
    """Configure MLflow from the environment and check the server is there."""
    env = dict(os.environ) if env is None else env
    uri = env.get("MLFLOW_TRACKING_URI", "")
    on_unavailable = env.get("MLOPS_TRACKING_ON_UNAVAILABLE", "fail")
    if on_unavailable not in {"fail", "continue"}:
        raise TrackingUnavailable(f"MLOPS_TRACKING_ON_UNAVAILABLE must be fail or continue, not {on_unavailable!r}")
    experiment = env.get("MLFLOW_EXPERIMENT_NAME")
    if not uri:
        warn("MLFLOW_TRACKING_URI is not set: running without tracking")
        return Tracking(False, on_unavailable, experiment)
    for key, value in _CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _load_credentials(
        env.get("MLOPS_TRACKING_CREDENTIALS", "none"), env.get("MLOPS_TRACKING_SECRET_ARN"), env.get("AWS_REGION")
    )
    error = _reachable(
        uri,
        attempts=int(env.get("MLOPS_TRACKING_CONNECT_ATTEMPTS", "4")),
        first_delay=float(env.get("MLOPS_TRACKING_CONNECT_DELAY", "1")),
    )
    if error is not None:
        message = f"MLflow tracking server {uri} is unreachable ({error})"
        if on_unavailable == "fail":
            raise TrackingUnavailable(f"{message}; set mlflow.on_unavailable: continue to train without tracking")
        warn(f"{message}: continuing without tracking (mlflow.on_unavailable: continue)")
        return Tracking(False, on_unavailable, experiment)
    import mlflow

    mlflow.set_tracking_uri(uri)
    tracking = Tracking(True, on_unavailable, experiment)
    if experiment:
        tracking.call("set_experiment", lambda: mlflow.set_experiment(experiment))
    return tracking


def job_tags(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Tags that link an MLflow run to the SageMaker job and pipeline that made it."""
    env = dict(os.environ) if env is None else env
    tags = {"mlops.pipeline": env.get("MLOPS_PIPELINE_NAME", "")}
    if env.get("MLOPS_PIPELINE_EXECUTION_ARN"):
        tags["sagemaker.pipeline_execution_arn"] = env["MLOPS_PIPELINE_EXECUTION_ARN"]
    return {k: v for k, v in tags.items() if v}

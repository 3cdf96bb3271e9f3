"""MLflow connection for the job scripts.

Runs inside the SageMaker scikit-learn image (Python 3.10) and on a laptop. Settings come
from the environment the definition sets (never from hyperparameters):

  MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME
  MLOPS_TRACKING_CREDENTIALS   none | env | secrets_manager
  MLOPS_TRACKING_SECRET_ARN    with secrets_manager: a JSON secret {"username", "password"}
  MLOPS_TRACKING_ON_UNAVAILABLE  fail | continue  (what to do when the server stays down)
  MLOPS_TRACKING_CA_ARN        an ACM Private CA whose certificate the server's chains to:
                               fetched and trusted (MLFLOW_TRACKING_SERVER_CERT_PATH)

Credentials fetched from Secrets Manager are put into this process's environment for the
MLflow client only; they are never printed or passed to a child process.

Every run a job creates is nested under its pipeline execution's parent run, a tuning
trial's under the tuning step's own run (`execution_run.py`), so a team's own training
script gets the tree too by calling `Tracking.run` as the bundled ones do.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from execution_run import (
    EXECUTION_TAG,
    LOCAL_EXECUTION_ENV,
    PARENT_RUN_TAG,
    PARENT_TAG,
    TUNING_RUN_TAG,
    create_once,
    execution_arn,
    execution_link,
    find_or_create,
    oldest,
    oldest_run,
    parent_run_name,
)

__all__ = ["Tracking", "TrackingUnavailable", "connect", "job_tags", "warn"]

T = TypeVar("T")

TUNING_JOB_TAG = "sagemaker.tuning_job_name"  # on a tuning step's run and on each of its trials' runs
_TRIAL_PAGE = 1000  # runs one search returns at most (MLflow's SEARCH_MAX_RESULTS_DEFAULT)
_SEARCH = object()  # `_nesting`: search for the tuning step's run

# Bounded retries for the MLflow client itself (its defaults retry for minutes).
_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # MlflowClient.set_terminated otherwise GETs the run to print its link (`_log_url` in
    # mlflow/tracking/_tracking_service/client.py): a request per run end; `Tracking.run`
    # prints the same link from what it knows.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
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


def _trust_server_ca(ca_arn: str | None, region: str | None) -> None:
    """Trust the private CA that signed the tracking server's certificate: its PEM (from
    ACM Private CA's GetCertificateAuthorityCertificate: Certificate, then the chain up to
    the root) in a file MLflow's client reads through MLFLOW_TRACKING_SERVER_CERT_PATH."""
    if not ca_arn:
        return
    import boto3

    answer = boto3.client("acm-pca", region_name=region or ca_arn.split(":")[3]).get_certificate_authority_certificate(
        CertificateAuthorityArn=ca_arn
    )
    pem = "\n".join(part.strip() for part in (answer["Certificate"], answer.get("CertificateChain", "")) if part)
    handle, path = tempfile.mkstemp(prefix="mlflow-ca-", suffix=".pem")
    with os.fdopen(handle, "w") as out:
        out.write(pem + "\n")
    os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = path


def _reachable(uri: str, attempts: int, first_delay: float) -> str | None:
    """None when /health answers; else the last error. Backoff doubles each attempt."""
    if not uri.startswith(("http://", "https://")):
        return None  # a local file store needs no server
    delay, error = first_delay, "no attempt made"
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5, context=context) as response:
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
    """MLflow through one MlflowClient, or nothing.

    The client API is used instead of the fluent one because every fluent call fetches
    state first (runs/get, metric history): a training job stays at about fifteen requests
    (bench/train_tracking.py), plus one or two to find its place in the execution's tree.
    Every call is skipped when tracking is off, and in "continue" mode a failing call turns
    tracking off with a warning, so a tracking outage never loses the model.
    """

    def __init__(self, client: Any, on_unavailable: str, experiment_id: str | None = None) -> None:
        self._execution: tuple[str | None, str | None] | None = None  # (ARN, parent run id), once read
        self.parent_of: dict[str, str] = {}  # run id -> the run it is nested under, for runs made here
        self.client = client
        self.enabled = client is not None
        self.on_unavailable = on_unavailable
        self.experiment_id = experiment_id
        self.experiment_name: str | None = None
        self.artifact_uris: dict[str, str] = {}

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

    def use_experiment(self, name: str) -> None:
        def get_or_create() -> str:
            experiment = self.client.get_experiment_by_name(name)
            if experiment:
                return experiment.experiment_id
            try:
                return self.client.create_experiment(name)
            except Exception:  # a parallel trial created it first
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                return experiment.experiment_id

        self.experiment_name = name
        self.experiment_id = self.call("get_experiment_by_name", get_or_create)

    def existing_run(self, key: str, value: str) -> str | None:
        """The id of a run already tagged key=value in this experiment (a rerun of the same job)."""

        def search() -> str | None:
            runs = self.client.search_runs(
                [self.experiment_id or "0"], filter_string=f"tags.`{key}` = '{value}'", max_results=1
            )
            return self._resumed(runs[0]) if runs else None

        return self.call("search_runs", search)

    def _resumed(self, run: Any) -> str:
        if run.data.tags.get(PARENT_RUN_TAG):  # a resumed trial still names its tuning run
            self.parent_of[run.info.run_id] = run.data.tags[PARENT_RUN_TAG]
        return self._known(run.info)

    def _trial_runs(self, tuning_job: str, key: str, value: str) -> tuple[str | None, Any] | None:
        """For a trial, in one search of the runs tagged with its tuning job (the tuning
        step's run and every trial's): (the id of its own earlier run, tagged key=value, or
        None; the tuning step's run, the oldest, or None). None when that one page may not
        hold them all: the two searches then."""
        runs = self.call("search the tuning job's runs", lambda: self.client.search_runs(
            [self.experiment_id or "0"], filter_string=f"tags.`{TUNING_JOB_TAG}` = '{tuning_job}'",
            max_results=_TRIAL_PAGE))  # fmt: skip
        if runs is None or runs.token:
            return None
        mine = next((run for run in runs if run.data.tags.get(key) == value), None)
        tuning = oldest([run for run in runs if run.data.tags.get(TUNING_RUN_TAG) == tuning_job])
        return (self._resumed(mine) if mine is not None else None), tuning

    def _known(self, info: Any) -> str:
        """Remember a run's artifact location, which the client would otherwise fetch again
        (GET runs/get) before every upload."""
        self.artifact_uris[info.run_id] = info.artifact_uri
        return info.run_id

    def execution(self, env: dict[str, str] | None = None) -> tuple[str | None, str | None]:
        """(this job's execution ARN, its parent run id), read once; (None, None) for a job
        run by hand. A job whose execution cannot be read (a role without
        sagemaker:ListTags) logs a top-level run, as before parent runs, and says why."""
        if self._execution is None:
            self._execution = self._find_execution(dict(os.environ) if env is None else env)
        return self._execution

    def _find_execution(self, env: dict[str, str]) -> tuple[str | None, str | None]:
        try:
            arn = execution_arn(env)
        except Exception as exc:  # botocore's ClientError and connection errors
            warn(f"the pipeline execution of this job is unknown ({exc}): its MLflow run is not nested")
            return None, None
        if arn is None or not self.enabled:
            return arn, None
        tags = {EXECUTION_TAG: arn, "mlops.pipeline": env.get("MLOPS_PIPELINE_NAME", ""),
                "mlops.execution_link": execution_link(arn, local=bool(env.get(LOCAL_EXECUTION_ENV)))}  # fmt: skip
        parent = self.call("find the execution's parent run", lambda: find_or_create(
            self.client, self.experiment_id or "0", key=PARENT_TAG, value=arn, run_name=parent_run_name(arn),
            tags={k: v for k, v in tags.items() if v}))  # fmt: skip
        return arn, parent

    def _nesting(self, tags: dict[str, str], tuning_run: Any = _SEARCH) -> dict[str, str]:
        """The tags that put a new run in its execution's tree: under the tuning step's run
        for a trial (`tuning_run`, searched for unless given: once it exists, a trial needs
        no other request), else under the execution's parent."""
        tuning_job = tags.get(TUNING_JOB_TAG)
        if tuning_job:
            experiment = self.experiment_id or "0"
            found = tuning_run if tuning_run is not _SEARCH else self.call(
                "find the tuning step's run", lambda: oldest_run(self.client, experiment, TUNING_RUN_TAG, tuning_job)
            )  # fmt: skip
            if found is not None:
                return {PARENT_RUN_TAG: str(found.info.run_id), EXECUTION_TAG: found.data.tags.get(EXECUTION_TAG, "")}
        arn, parent = self.execution()
        nesting = {EXECUTION_TAG: arn or "", PARENT_RUN_TAG: parent or ""}
        if tuning_job and self.enabled:
            tuning_tags = {**nesting, "mlops.step": "tune", TUNING_JOB_TAG: tuning_job,
                           "mlops.pipeline": tags.get("mlops.pipeline", "")}  # fmt: skip
            tuning_run = self.call("create the tuning step's run", lambda: create_once(
                self.client, self.experiment_id or "0", key=TUNING_RUN_TAG, value=tuning_job,
                run_name=f"tune {tuning_job}", tags={k: v for k, v in tuning_tags.items() if v}))  # fmt: skip
            nesting[PARENT_RUN_TAG] = tuning_run or nesting[PARENT_RUN_TAG]
        return nesting

    @contextmanager
    def run(self, *, run_name: str, tags: dict[str, str], resume_key: str | None = None) -> Iterator[str | None]:
        """Create a run, nested in its execution's tree (`_nesting`), or resume the one
        already tagged `resume_key` with this job's value, so a job run twice leaves one
        MLflow run. Yields the run id (None when tracking is off) and marks the run FINISHED
        or FAILED at the end."""
        key = resume_key if resume_key and tags.get(resume_key) else None
        trial = self._trial_runs(tags[TUNING_JOB_TAG], key, tags[key]) if (
            key and tags.get(TUNING_JOB_TAG) and self.enabled) else None  # fmt: skip
        tuning_run: Any = _SEARCH
        if trial is not None:
            run_id, tuning_run = trial
        else:
            run_id = self.existing_run(key, tags[key]) if key else None
        if run_id is None and self.enabled:
            tags = {**tags, **{k: v for k, v in self._nesting(tags, tuning_run).items() if v}}
        if run_id is None:
            created = self.call(
                "create_run",
                lambda: self.client.create_run(self.experiment_id or "0", run_name=run_name, tags=tags),
            )
            run_id = self._known(created.info) if created is not None else None
            if run_id and tags.get(PARENT_RUN_TAG):
                self.parent_of[run_id] = tags[PARENT_RUN_TAG]
        try:
            yield run_id
        except BaseException:
            if run_id and self.enabled:
                self.call("set_terminated", lambda: self.client.set_terminated(run_id, "FAILED"))
            raise
        if run_id and self.enabled:
            self.call("set_terminated", lambda: self.client.set_terminated(run_id, "FINISHED"))
            self.print_link(run_id)

    def print_link(self, run_id: str) -> None:
        """The run's page in MLflow's UI, as MLflow's client prints it, without asking the
        server (the URI holds no credentials: they travel in MLFLOW_TRACKING_* variables)."""
        host = str(self.client.tracking_uri).rstrip("/")
        if host.startswith(("http://", "https://")):
            print(f"MLflow run: {host}/#/experiments/{self.experiment_id or '0'}/runs/{run_id}", flush=True)

    def log(
        self,
        run_id: str | None,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Params, metrics and tags in one log-batch request."""
        if not run_id:
            return
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.call(
            "log_batch",
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                params=[Param(k, str(v)) for k, v in (params or {}).items()],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
            ),
        )

    def log_inputs(self, run_id: str | None, inputs: Callable[[], list[Any]]) -> None:
        """Dataset inputs (`run_inputs.dataset_input`), made only when tracking is on, in
        one request. A table MLflow cannot describe is a warning, never a failed job."""
        if not (run_id and self.enabled):
            return
        try:
            datasets = inputs()
        except Exception as exc:  # mlflow.data's own errors on an unusual table
            warn(f"the run's datasets are not logged: {exc}")
            return
        self.call("log_inputs", lambda: self.client.log_inputs(run_id, datasets=datasets))

    def log_dict(self, run_id: str | None, value: dict[str, Any], artifact_file: str) -> None:
        if run_id:
            self.call("log_dict", lambda: self.client.log_dict(run_id, value, artifact_file))

    def log_artifacts(self, run_id: str | None, local_dir: str, artifact_path: str) -> None:
        """Upload a folder: one request per file, straight to the run's artifact repository
        when its location is known from creating or finding the run."""
        if not run_id:
            return
        artifact_uri = self.artifact_uris.get(run_id)
        if artifact_uri is None:
            self.call("log_artifacts", lambda: self.client.log_artifacts(run_id, local_dir, artifact_path))
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repository = get_artifact_repository(artifact_uri, tracking_uri=self.client.tracking_uri)
        self.call("log_artifacts", lambda: repository.log_artifacts(local_dir, artifact_path))


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
        return Tracking(None, on_unavailable)
    for key, value in _CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _load_credentials(
        env.get("MLOPS_TRACKING_CREDENTIALS", "none"), env.get("MLOPS_TRACKING_SECRET_ARN"), env.get("AWS_REGION")
    )
    _trust_server_ca(env.get("MLOPS_TRACKING_CA_ARN"), env.get("AWS_REGION"))
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
        return Tracking(None, on_unavailable)
    from mlflow import MlflowClient

    tracking = Tracking(MlflowClient(uri), on_unavailable)
    if experiment:
        tracking.use_experiment(experiment)
    return tracking


def job_tags(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Tags that link an MLflow run to the SageMaker job and pipeline that made it."""
    env = dict(os.environ) if env is None else env
    tags = {"mlops.pipeline": env.get("MLOPS_PIPELINE_NAME", "")}
    if env.get(LOCAL_EXECUTION_ENV):  # on SageMaker, `Tracking.run` adds it from the job's own tags
        tags[EXECUTION_TAG] = env[LOCAL_EXECUTION_ENV]
    return {k: v for k, v in tags.items() if v}

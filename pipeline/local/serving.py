"""Local deployment: `mlflow models serve` for the MLflow version of a model package.

The server runs in the jobs' environment (`pipeline/local/job_environment.py`), so a model
trained with the image's scikit-learn is served by the same; a model trained under another
scikit-learn minor version is refused, naming both, as the serving container's `model_fn`
refuses it (`training_environment.py`), rather than unpickled by chance.

Plays the part of the bridge's endpoint deployer in local mode: it implements
`mlflow_bridge.interfaces.ModelDeployer` (held to it by the type checker where approval.py
hands it to the bridge), so the bridge's policy decides when the local "endpoint" changes.
Like a SageMaker endpoint, a local one keeps what it last served (`ENDPOINTS_NAME` in the
workspace) when its stage no longer holds a model: the bridge never tears one down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlflow_bridge.decisions import Package
from pipeline.atomic_file import write_atomically
from pipeline.child_process import NotAnswering, free_port, model_code_environment, stop_group, wait_until_answers
from pipeline.errors import LocalModeError
from pipeline.job_scripts import script_module
from pipeline.local.file_lock import locked
from pipeline.local.job_environment import JobEnvironment

__all__ = ["ENDPOINTS_NAME", "LocalModelServer", "ServingError", "last_served"]

ENDPOINTS_NAME = "endpoints.json"  # local endpoint (stage name, "" without stages) -> package ARN


class ServingError(LocalModeError):
    pass


def last_served(workspace_root: Path, endpoint: str) -> str:
    """The package ARN the local endpoint last served, or ""."""
    path = workspace_root / ENDPOINTS_NAME
    return str(json.loads(path.read_text()).get(endpoint, "")) if path.exists() else ""


def _record_served(workspace_root: Path, endpoint: str, arn: str) -> None:
    path = workspace_root / ENDPOINTS_NAME
    with locked(path):  # another command of the workspace may record its endpoint meanwhile
        served = json.loads(path.read_text()) if path.exists() else {}
        write_atomically(path, json.dumps({**served, endpoint: arn}, indent=2))


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """MLflow draws a progress bar per download unless MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR is
    false (mlflow.environment_variables); off for the call, as it was after."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class LocalModelServer:
    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        log_file: Path,
        workspace_root: Path,
        environment: JobEnvironment,
        endpoint: str = "",
    ):
        """`environment`: the Python it serves with; `endpoint`: the stage whose endpoint
        this is ("" for the one endpoint)."""
        self.tracking_uri, self.model_name, self.log_file = tracking_uri, model_name, log_file
        self.workspace_root, self.environment, self.endpoint = workspace_root, environment, endpoint
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.served_arn = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _model_uri(self, package: Package) -> str:
        """`models:/<name>/<version>` of the package: what it serves stays put when an
        alias moves on (an endpoint serves a package, not an alias). Raises ServingError
        when the model was trained under another scikit-learn minor version than this
        server's environment has."""
        from mlflow import MlflowClient

        from mlflow_bridge.contract import Tags

        client = MlflowClient(self.tracking_uri)
        found = client.search_model_versions(
            f"name = '{self.model_name}' and tags.{Tags.PACKAGE_ARN} = '{package.arn}'"
        )
        if not found:
            raise ServingError(f"no version of {self.model_name} links model package {package.arn}")
        version = min(found, key=lambda v: int(v.version))
        trained_with = script_module("training_environment")
        tags = client.get_run(version.run_id).data.tags if version.run_id else {}
        refusal = trained_with.mismatch(
            tags.get(f"{trained_with.TAG_PREFIX}scikit-learn", ""), self.environment.version("scikit-learn")
        )
        if refusal:
            raise ServingError(
                f"{self.model_name} version {version.version} ({package.arn}) is not served by the "
                f"{self.environment.label} environment: {refusal} (--job-env image or project picks the environment)"
            )
        return f"models:/{self.model_name}/{version.version}"

    def deploy(self, package: Package) -> tuple[str, str]:
        """(Re)start the scoring server on the package's version. Raises ServingError."""
        outcome = "updated" if self.process is not None else "created"
        model_uri = self._model_uri(package)
        # fetched here, with this command's access: the server (the model's own code) gets the
        # model's files and no tracking URI, credentials or AWS keys, as an endpoint has none
        model_dir = self.workspace_root / "serving" / (self.endpoint or "endpoint") / model_uri.rsplit("/", 1)[-1]
        local_model = self._download(model_uri, model_dir)
        self.stop()
        self.port = free_port()
        env = model_code_environment()
        env["PATH"] = self.environment.path(env.get("PATH", ""))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.environment.python), "-m", "mlflow", "models", "serve", "-m", local_model,
                 "--env-manager", "local", "-h", "127.0.0.1", "-p", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_until_answers(f"{self.url}/ping", 120, self.process, poll=0.3)
        except NotAnswering as exc:
            self.stop()
            raise ServingError(f"mlflow models serve {exc} (log: {self.log_file})") from exc
        self.served_arn = package.arn
        _record_served(self.workspace_root, self.endpoint, package.arn)
        return self.url, outcome

    def _download(self, model_uri: str, into: Path) -> str:
        """The model's files in `into`. Its source is resolved to where the files are
        (`runs:/` to the run's artifact location, `models:/m-<id>` to the logged model's)
        with a client of this server: MLflow would resolve those through its global
        tracking URI, which is not always this server's."""
        import mlflow.artifacts
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)
        name, version = model_uri.removeprefix("models:/").rsplit("/", 1)
        source = client.get_model_version_download_uri(name, version)
        if source.startswith("runs:/"):
            run_id, _, path = source.removeprefix("runs:/").partition("/")
            source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{path}"
        elif source.startswith("models:/m-"):
            source = client.get_logged_model(source.removeprefix("models:/")).artifact_location
        shutil.rmtree(into, ignore_errors=True)  # a reset server reuses version numbers: no stale files
        with _no_progress_bars():  # the command's own lines say what it does
            return mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(into), tracking_uri=self.tracking_uri
            )

    def serves(self, package: Package) -> bool:
        return self.process is not None and self.served_arn == package.arn

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        """The served model's answers: numbers for regression, the original labels for
        classification."""
        body = json.dumps({"dataframe_records": records}).encode()
        request = urllib.request.Request(
            f"{self.url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return list(json.loads(response.read())["predictions"])

    def keep_or_stop(self, workspace_root: Path, keep: bool, stage: str = "") -> str:
        """At the end of a command: record the server for `local-down` when kept, else stop
        it. Returns what happened, for the console."""
        from pipeline.local.services import remember_process

        what = f"{stage} model server" if stage else "model server"
        if keep and self.process is not None:
            remember_process(workspace_root, f"serving-{stage}" if stage else "serving", self.process.pid, self.url)
            return f"{what} left running at {self.url}"
        self.stop()
        return f"{what} stopped"

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
        self.process = None

"""Local deployment: `mlflow models serve` for the registered model's alias.

Plays the part of the bridge's endpoint deployer in local mode: it implements
`mlflow_bridge.interfaces.ModelDeployer` (held to it by the type checker where approval.py
hands it to the bridge), so the bridge's policy decides when the local "endpoint" changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from mlflow_bridge.decisions import Package
from pipeline.child_process import NotAnswering, executable, free_port, path_with_venv, stop_group, wait_until_answers

__all__ = ["LocalModelServer", "ServingError"]


class ServingError(RuntimeError):
    pass


class LocalModelServer:
    def __init__(self, tracking_uri: str, model_name: str, alias: str, log_file: Path) -> None:
        self.tracking_uri, self.model_name, self.alias, self.log_file = tracking_uri, model_name, alias, log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.served_arn = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def deploy(self, package: Package) -> tuple[str, str]:
        """(Re)start the scoring server on `models:/<name>@<alias>`."""
        outcome = "updated" if self.process is not None else "created"
        self.stop()
        self.port = free_port()
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "PATH": path_with_venv(os.environ.get("PATH", "")),
        }
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [executable("mlflow"), "models", "serve", "-m", f"models:/{self.model_name}@{self.alias}",
                 "--env-manager", "local", "-h", "127.0.0.1", "-p", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_until_answers(f"{self.url}/ping", 120, self.process, poll=0.3)
        except NotAnswering as exc:
            self.stop()
            raise ServingError(f"mlflow models serve {exc} (log: {self.log_file})") from exc
        self.served_arn = package.arn
        return self.url, outcome

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

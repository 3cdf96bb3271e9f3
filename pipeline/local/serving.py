"""Local deployment: `mlflow models serve` for the registered model's alias.

Plays the part of the bridge's endpoint deployer in local mode (same `deploy`/`serves`
interface), so the bridge's policy decides when the local "endpoint" changes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.tracking_server import free_port

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

    def deploy(self, package: Any) -> tuple[str, str]:
        """(Re)start the scoring server on `models:/<name>@<alias>`."""
        outcome = "updated" if self.process is not None else "created"
        self.stop()
        self.port = free_port()
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [mlflow, "models", "serve", "-m", f"models:/{self.model_name}@{self.alias}", "--env-manager", "local",
                 "-h", "127.0.0.1", "-p", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServingError(f"mlflow models serve exited with {self.process.returncode} (log: {self.log_file})")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                    if response.status == 200:
                        self.served_arn = package.arn
                        return self.url, outcome
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        self.stop()
        raise ServingError(f"model server did not answer /ping within 120 s (log: {self.log_file})")

    def serves(self, package: Any) -> bool:
        return self.process is not None and self.served_arn == package.arn

    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        body = json.dumps({"dataframe_records": records}).encode()
        request = urllib.request.Request(
            f"{self.url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return [float(v) for v in json.loads(response.read())["predictions"]]

    def keep_or_stop(self, workspace_root: Path, keep: bool) -> str:
        """At the end of a command: record the server for `local-down` when kept, else stop
        it. Returns what happened, for the console."""
        from pipeline.local.services import remember_process

        if keep and self.process is not None:
            remember_process(workspace_root, "serving", self.process.pid, self.url)
            return f"model server left running at {self.url}"
        self.stop()
        return "model server stopped"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

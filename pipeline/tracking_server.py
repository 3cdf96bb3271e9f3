"""Start and stop a local `mlflow server` (the local mode's tracking server, and the tests').

A thin edge over subprocess: the server is the real MLflow server, with the settings
that matter on small machines (job execution off, one worker) and its artifacts proxied,
so clients never need direct access to the artifact store.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.child_process import NotAnswering, executable, free_port, stop_group, wait_until_answers
from pipeline.errors import PipelineError

__all__ = ["TrackingServer", "TrackingServerError", "wait_healthy"]


class TrackingServerError(PipelineError):
    """A tracking server (or the local registry emulator) did not start or does not answer;
    the CLI reports the message (exit 1)."""


def wait_healthy(
    uri: str, timeout: float, process: subprocess.Popen[bytes] | None = None, cafile: str | None = None
) -> None:
    try:
        wait_until_answers(f"{uri}/health", timeout, process, cafile=cafile)
    except NotAnswering as exc:
        raise TrackingServerError(f"mlflow server {exc}") from exc


@dataclass
class TrackingServer:
    """`mlflow server` on 127.0.0.1 with a given backend store and a local artifact root."""

    backend_store_uri: str
    artifacts_dir: Path
    port: int = field(default_factory=free_port)
    log_file: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            executable("mlflow"), "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts_dir),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 120) -> TrackingServer:
        return self.launch().wait(timeout)

    def launch(self) -> TrackingServer:
        """Start the process without waiting for it to answer (see `wait`)."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.extra_env}
        env.pop("MLFLOW_TRACKING_URI", None)
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return self

    def wait(self, timeout: float = 120) -> TrackingServer:
        """Until /health answers; a server that does not is stopped."""
        try:
            wait_healthy(self.uri, timeout, self.process)
        except TrackingServerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its workers (they share the process group)."""
        if self.process is not None:
            stop_group(self.process)

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

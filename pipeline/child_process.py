"""The servers this project starts as child processes (the MLflow server, moto, the local
model server): their executables, a free port, waiting until one answers over HTTP, and
stopping one with everything it forked."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from pipeline.errors import LocalModeError

__all__ = [
    "NotAnswering",
    "executable",
    "free_port",
    "model_code_environment",
    "path_with_venv",
    "stop_group",
    "wait_until_answers",
]

# What a model's own code (a local transform job, a local model server) gets from the shell:
# what a process needs to run, nothing that grants access. On SageMaker the model runs with
# its own role and no tracking credentials; here the shell may hold AWS keys and the MLflow
# password, which a team's model code (or a pickle) must not see.
MODEL_CODE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM")

_VENV_BIN = Path(sys.executable).parent


class NotAnswering(LocalModeError):
    pass


def executable(name: str) -> str:
    """A console script of this environment (mlflow, moto_server), wherever PATH points."""
    return shutil.which(name, path=str(_VENV_BIN)) or name


def path_with_venv(path: str) -> str:
    """PATH with this environment's scripts first, for children that start further ones."""
    return f"{_VENV_BIN}{os.pathsep}{path}"


def model_code_environment(shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables of `shell` (default: this process's environment)."""
    shell = os.environ if shell is None else shell
    return {name: shell[name] for name in MODEL_CODE_VARIABLES if name in shell}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    poll: float = 0.25,
    cafile: str | None = None,
) -> None:
    """Until `url` answers 200; gives up early when `process` (the server) exits. An
    https URL is verified against `cafile` (a PEM bundle) when given, else the system's CAs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise NotAnswering(f"exited with code {process.returncode} before {url} answered")
        try:  # the context each time: a server may write `cafile` as it starts
            context = ssl.create_default_context(cafile=cafile) if url.startswith("https://") else None
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(poll)
    raise NotAnswering(f"{url} did not answer within {timeout:g} s")


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the process group (servers fork workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass

"""The local services: a moto server (SageMaker registry, S3 calls) and an MLflow server.

They run as child processes whose addresses are recorded in `<workspace>/services.json`,
so `run --local --keep-services` leaves them up for the next command (`approve`, `mlflow
ui` users) and a later command reuses them instead of starting new ones. When
MLFLOW_TRACKING_URI is set, that server is used and none is started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.atomic_file import write_atomically
from pipeline.child_process import NotAnswering, executable, free_port, wait_until_answers
from pipeline.local.file_lock import locked
from pipeline.tracking_server import TrackingServer, TrackingServerError

__all__ = ["LocalServices", "local_services", "remember_process", "stop_services"]


class _OnFirstUse:
    """A value computed by the first caller, once, even when threads race for it."""

    def __init__(self, compute: Callable[[], str]) -> None:
        self._compute, self._value, self._lock = compute, "", threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if not self._value:
                self._value = self._compute()
            return self._value


@dataclass
class LocalServices:
    tracking_address: str  # where the MLflow server answers, or will once it has booted
    started: list[int]  # pids this command started
    _tracking: Callable[[], str]
    _moto: Callable[[], str]
    tracking_unavailable: bool = False  # an external server that did not answer (on_unavailable: continue)
    tracking_started_here: bool = False  # this command boots the server: asking it anything waits ~6 s

    @property
    def tracking_uri(self) -> str:
        """The MLflow server, once it answers. It boots in the background (5-10 s) while
        the definition renders; a run whose steps are all cached never waits for it."""
        return self._tracking()

    @property
    def moto_endpoint(self) -> str:
        """The registry emulator, started on first use: a run whose Register step is
        cached never needs it."""
        return self._moto()


def _answers(url: str, seconds: float = 1, cafile: str | None = None) -> bool:
    try:
        wait_until_answers(url, seconds, cafile=cafile)
        return True
    except NotAnswering:
        return False


def _healthy(uri: str) -> bool:
    """An external server over https is verified as its jobs will verify it."""
    return _answers(f"{uri}/health", cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)


def _moto_healthy(endpoint: str) -> bool:
    return _answers(f"{endpoint}/moto-api/")


def _start_moto(log: Path) -> tuple[str, int]:
    port = free_port()
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [executable("moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{endpoint}/moto-api/", 30, process, poll=0.1)
    except NotAnswering as exc:
        raise TrackingServerError(f"moto server did not start: {exc} (see {log})") from exc
    return endpoint, process.pid


def _record_path(root: Path) -> Path:
    return root / "services.json"


def _read_record(root: Path) -> dict[str, Any]:
    path = _record_path(root)
    return json.loads(path.read_text()) if path.exists() else {}


def _update_record(root: Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Add `updates` to the record under its file lock (another command of the workspace
    may be recording its own servers); returns what they replaced."""
    with locked(_record_path(root)):
        record = _read_record(root)
        replaced = {key: record[key] for key in updates if key in record and record[key] != updates[key]}
        write_atomically(_record_path(root), json.dumps({**record, **updates}, indent=2))
    return replaced


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def _start_moto_in_process() -> tuple[str, Any]:
    """A moto server thread in this process: starts in a fraction of a child's time."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's state is per process, not per server: start from empty, as a new emulator
    # process would, so the registry holds exactly what the journal restores.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
    return endpoint, server


def _stop_soon(server: Any) -> None:
    """Stop an in-process moto server without waiting out its 0.5 s poll interval."""
    threading.Thread(target=server.stop, daemon=True).start()


@contextmanager
def local_services(
    root: Path, *, keep: bool = False, on_unavailable: Literal["fail", "continue"] = "fail"
) -> Iterator[LocalServices]:
    """Without `keep`, everything this started stops on exit; with it, only on a failed start.

    An external server (MLFLOW_TRACKING_URI) that does not answer /health raises
    TrackingServerError, unless `on_unavailable` is "continue" (`mlflow.on_unavailable`):
    then the jobs get its URI anyway and apply that same setting themselves, as they
    would on SageMaker, and `tracking_unavailable` says so."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    record = _read_record(root)
    kept: dict[str, Any] = {}  # what this command starts for later commands, with `keep`
    started_tracking = False
    started: list[int] = []
    with contextlib.ExitStack() as cleanup:
        moto = record.get("moto_endpoint")
        if not (moto and _moto_healthy(moto)):
            if keep:  # must outlive this command: a child process
                moto, pid = _start_moto(root / "logs" / "moto.log")
                started.append(pid)
                cleanup.callback(_kill, pid)
                kept.update(moto_endpoint=moto, moto_pid=pid)
            else:
                moto = None
        external = os.environ.get("MLFLOW_TRACKING_URI")
        if external and not external.lower().startswith(("http://", "https://")):
            raise TrackingServerError(
                f"MLFLOW_TRACKING_URI={external} is not a tracking server: local mode's jobs log over HTTP(S), "
                "as SageMaker's do (a file: or database URI only works in one process); point it at "
                "http(s)://HOST:PORT, or unset it for a local server"
            )
        unavailable = bool(external) and not _healthy(external)
        if unavailable and on_unavailable == "fail":
            raise TrackingServerError(
                f"MLFLOW_TRACKING_URI={external} does not answer /health "
                "(start it, unset MLFLOW_TRACKING_URI for a local server, or set mlflow.on_unavailable: continue)"
            )
        tracking = external or record.get("tracking_uri")
        if unavailable:
            booted = _OnFirstUse(lambda: tracking)
        elif not (tracking and _healthy(tracking)):
            tracking_server = TrackingServer(
                backend_store_uri=f"sqlite:///{(root / 'mlflow' / 'mlflow.db').resolve()}",
                artifacts_dir=(root / "mlflow" / "artifacts").resolve(),
                log_file=root / "logs" / "mlflow.log",
            )
            (root / "mlflow").mkdir(exist_ok=True)
            creates_schema = not (root / "mlflow" / "mlflow.db").exists()
            tracking_server.launch()
            started_tracking = True
            assert tracking_server.process is not None
            started.append(tracking_server.process.pid)
            cleanup.callback(_kill, tracking_server.process.pid)
            if creates_schema:  # never stop a first boot halfway through creating the database
                cleanup.callback(_answers, f"{tracking_server.uri}/health", 180)
            tracking = tracking_server.uri
            kept.update(tracking_uri=tracking, tracking_pid=tracking_server.process.pid)
            if keep:  # what is recorded must answer
                tracking_server.wait(timeout=180)
            booted = _OnFirstUse(lambda: tracking_server.wait(timeout=180).uri)
        else:
            booted = _OnFirstUse(lambda: tracking)
        if keep:
            _update_record(root, kept)
            cleanup.pop_all()

        def moto_in_process() -> str:
            endpoint, server = _start_moto_in_process()
            cleanup.callback(_stop_soon, server)
            return endpoint

        yield LocalServices(
            tracking, started, booted, _OnFirstUse(lambda: moto or moto_in_process()),
            tracking_unavailable=unavailable, tracking_started_here="tracking_pid" in kept or started_tracking,
        )  # fmt: skip


def remember_process(root: Path, name: str, pid: int, url: str) -> None:
    """Record another long-running child (a local model server) for `local-down`. A server an
    earlier command left under the same name (the same stage's endpoint) is stopped: the
    endpoint is this one now, as an UpdateEndpoint replaces what an endpoint serves, and no
    server is left that `local-down` cannot reach."""
    replaced = _update_record(root, {f"{name}_pid": pid, f"{name}_url": url})
    # only a server that still answers at its URL: after a reboot the pid may be anyone's
    if f"{name}_pid" in replaced and _answers(f"{replaced.get(f'{name}_url', '')}/ping"):
        _kill(int(replaced[f"{name}_pid"]))


def stop_services(root: Path) -> list[str]:
    """Stop services a `--keep-services` run left running; returns what was stopped."""
    with locked(_record_path(root)):
        if not _record_path(root).exists():
            return []
        record = _read_record(root)
        stopped = []
        names = ["moto", "tracking", *sorted(k.removesuffix("_pid") for k in record if k.startswith("serving"))]
        for name in dict.fromkeys(names):  # serving, or serving-<stage> for each stage's model server
            pid = record.get(f"{name}_pid")
            if pid:
                _kill(pid)
                stopped.append(name)
        _record_path(root).unlink()
    return stopped

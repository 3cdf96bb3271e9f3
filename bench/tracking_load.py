"""The secured tracking server against the one the original sample ran, under tuning load.

Two servers on the same MariaDB (each its own database) and the same moto S3 server:
(a) the original: `mlflow server` with its default settings (4 workers, no auth, job
execution on), backend store and artifacts as the sample set them; (b) ours, started
exactly as the container does (infra/mlflow_server/entrypoint.sh: basic auth, 2 workers,
HTTPS with the certificate the task makes at start, pools sized). 16 processes at once
each act as a tuning trial: create a run, log params, 200 metric values in batches of 50,
the model's files, end the run. BENCH_ROUNDS rounds per server (default 3), alternating
(a, b, a, b, ...) so that the machine's drift hits both alike; prints each round, the
median round of each (by p99) and the ratios ours / original of CPU per call and of p50
and p99 latency (issue #12's target: at most 1.25 on each, 0 errors). BENCH_TLS=0 runs ours
over plain HTTP, and MLFLOW_AUTH_PERMISSION_CACHE_SECONDS=0 without its permission cache, to
see what each costs.

    .venv/bin/python bench/tracking_load.py
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.child_process import free_port, path_with_venv, stop_group  # noqa: E402
from pipeline.tracking_server import wait_healthy  # noqa: E402
from tests.server_entrypoint import (  # noqa: E402
    entrypoint_env,
    mariadb_service_user,
    running_entrypoint,
    server_certificate,
    server_uri,
)
from tests.tracking_fixtures import MARIADB  # noqa: E402

TRIALS = int(os.environ.get("BENCH_TRIALS", "16"))  # the issue asks for 16
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # this machine varies by 30% from one run to the next
METRIC_VALUES = 200
BATCH = 50
PASSWORD = "load-" + uuid.uuid4().hex


_CLIENT_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_SERVER_CERT_PATH")


def _use(client_env: dict[str, str]) -> None:
    """This worker process talks to one server: its credentials and CA, nothing else."""
    for key in _CLIENT_KEYS:
        os.environ.pop(key, None)
    os.environ.update(client_env, MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true")


def trial(
    uri: str, client_env: dict[str, str], experiment_id: str, model_dir: str, index: int
) -> list[tuple[str, float, str]]:
    _use(client_env)
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(uri)
    timings: list[tuple[str, float, str]] = []

    def timed(name: str, fn) -> object:
        start = time.perf_counter()
        try:
            result = fn()
            timings.append((name, time.perf_counter() - start, ""))
            return result
        except Exception as exc:  # counted, not raised: the bench reports errors
            timings.append((name, time.perf_counter() - start, str(exc)[:200]))
            return None

    run = timed("create_run", lambda: client.create_run(experiment_id, run_name=f"trial-{index}"))
    if run is None:
        return timings
    run_id = run.info.run_id
    params = [Param(k, str(v)) for k, v in {"n_estimators": 100 + index, "max_depth": 3 + index % 5}.items()]
    timed("log_batch params", lambda: client.log_batch(run_id, params=params))
    now = int(time.time() * 1000)
    for start in range(0, METRIC_VALUES, BATCH):
        metrics = [
            Metric("validation_rmse", 60.0 - step * 0.01, now + step, step) for step in range(start, start + BATCH)
        ]
        timed("log_batch metrics", lambda metrics=metrics: client.log_batch(run_id, metrics=metrics))
    for path in sorted(Path(model_dir).iterdir()):
        timed("log_artifact", lambda path=path: client.log_artifact(run_id, str(path), "model"))
    timed("set_terminated", lambda: client.set_terminated(run_id))
    return timings


def _warm(uri: str, client_env: dict[str, str], experiment_id: str, model_dir: str) -> None:
    """Import MLflow, authenticate and upload one file, as a server that has been up for a
    while has done: each server worker caches a verified password (the first check costs a
    PBKDF2) and its S3 client (the first upload builds it). Not timed."""
    _use(client_env)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    run = client.create_run(experiment_id, run_name="warm-up")
    client.log_artifact(run.info.run_id, str(next(Path(model_dir).iterdir())), "warm-up")
    client.set_terminated(run.info.run_id)
    time.sleep(1)  # keep every worker busy so each one warms up


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU consumed so far by these processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_group(pgid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(int(p.name)) == pgid]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def mariadb_pids() -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (p / "comm").exists() and (p / "comm").read_text().strip() in {"mariadbd", "mysqld"}
    ]


@dataclass
class Round:
    calls: list[tuple[str, float, str]]  # name, seconds, error
    seconds: float
    cpu: dict[str, float]  # CPU seconds per process group

    def percentile(self, q: int) -> float:
        return statistics.quantiles(sorted(s for _, s, _ in self.calls), n=100)[q - 1]

    def cpu_per_call(self, *groups: str) -> float:
        return sum(self.cpu[g] for g in groups or self.cpu) / len(self.calls)


@dataclass
class Server:
    name: str
    uri: str
    client_env: dict[str, str]
    pgid: int
    experiment_id: str = ""
    rounds: list[Round] = field(default_factory=list)

    def median(self) -> Round:
        return sorted(self.rounds, key=lambda r: r.percentile(99))[len(self.rounds) // 2]


SERVER_CPU = ("MLflow server", "MariaDB")  # what the server side spends per call


def load_round(pool: ProcessPoolExecutor, server: Server, model_dir: str, groups: dict[str, list[int]]) -> Round:
    """All trials at once; what they waited for, and the CPU each group of processes used."""
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    start = time.perf_counter()
    futures = [
        pool.submit(trial, server.uri, server.client_env, server.experiment_id, model_dir, i) for i in range(TRIALS)
    ]
    calls = [item for f in futures for item in f.result()]
    seconds = time.perf_counter() - start
    return Round(calls, seconds, {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()})


def describe(server: Server) -> None:
    print(f"{server.name}:")
    for index, r in enumerate(server.rounds, 1):
        print(
            f"  round {index}: {len(r.calls)} calls in {r.seconds:.1f} s ({len(r.calls) / r.seconds:.0f} calls/s), "
            f"p50 {r.percentile(50) * 1000:.0f} ms, p99 {r.percentile(99) * 1000:.0f} ms; CPU per call: "
            + ", ".join(f"{name} {seconds / len(r.calls) * 1000:.1f} ms" for name, seconds in r.cpu.items())
        )
    calls = [c for r in server.rounds for c in r.calls]
    for name in sorted({n for n, _, _ in calls}):
        own = sorted(s for n, s, _ in calls if n == name)
        print(
            f"    {name:18s} n={len(own):4d} p50 {statistics.median(own) * 1000:6.0f} ms  max {own[-1] * 1000:6.0f} ms"
        )
    errors = [(name, error) for name, _, error in calls if error]
    print(f"  errors: {len(errors)}" + (f"; first: {errors[0]}" if errors else ""))


def report(original: Server, ours: Server) -> None:
    describe(original)
    describe(ours)
    a, b = original.median(), ours.median()
    errors = sum(1 for s in (original, ours) for r in s.rounds for _, _, e in r.calls if e)
    print(
        f"\n{os.cpu_count()} cores, {TRIALS} concurrent trials, median round of {ROUNDS} per server (by p99), "
        "ours / original:"
    )
    rows = [
        ("server CPU per call (MLflow + MariaDB)", a.cpu_per_call(*SERVER_CPU), b.cpu_per_call(*SERVER_CPU), 1e3),
        ("all CPU per call (with trials, moto S3)", a.cpu_per_call(), b.cpu_per_call(), 1e3),
        ("p50 latency", a.percentile(50), b.percentile(50), 1e3),
        ("p99 latency", a.percentile(99), b.percentile(99), 1e3),
    ]
    for label, before, after, scale in rows:
        print(f"  {label:42s} {before * scale:7.1f} ms -> {after * scale:7.1f} ms  ratio {after / before:.2f}")
    print(f"  target: each ratio at most 1.25 (CPU per call of the server, p50, p99); errors {errors} (target 0)")


@contextlib.contextmanager
def original_server(tmp: Path, password: str, s3_endpoint: str) -> Iterator[Server]:
    """`mlflow server` as the original sample ran it: default settings, no auth. The
    backend store URI goes by environment variable (MLflow reads MLFLOW_BACKEND_STORE_URI),
    not a command line, so the bench leaks no password either."""
    import pymysql

    with mariadb_service_user(password, prefix="orig") as (user, database):
        connection = pymysql.connect(**MARIADB, autocommit=True)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        connection.close()
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            "PATH": path_with_venv(os.environ["PATH"]),
            "MLFLOW_BACKEND_STORE_URI": f"mysql+pymysql://{user}:{password}@127.0.0.1:3306/{database}?charset=utf8mb4",
            "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        }
        command = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                   "--artifacts-destination", "s3://bench-artifacts/original"]  # fmt: skip
        with (tmp / "original.log").open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            uri = f"http://127.0.0.1:{port}"
            wait_healthy(uri, timeout=180, process=process)
            yield Server("original (mlflow server, defaults, no auth, HTTP)", uri, {}, process.pid)
        finally:
            stop_group(process)


@contextlib.contextmanager
def our_server(tmp: Path, password: str, s3_endpoint: str) -> Iterator[Server]:
    with mariadb_service_user(password, prefix="load") as (user, database):
        env = entrypoint_env(
            home=tmp,
            port=free_port(),
            workers=int(os.environ.get("BENCH_WORKERS", "2")),
            database=(user, password, database),
            artifacts="s3://bench-artifacts/mlflow",
            s3_endpoint=s3_endpoint,
            admin_password="admin-" + password,
            service_users={"pipeline": password},
            tls=os.environ.get("BENCH_TLS", "1") == "1",
        )
        env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        if "MLFLOW_AUTH_PERMISSION_CACHE_SECONDS" in os.environ:  # entrypoint_env drops this shell's MLFLOW_*
            env["MLFLOW_AUTH_PERMISSION_CACHE_SECONDS"] = os.environ["MLFLOW_AUTH_PERMISSION_CACHE_SECONDS"]
        with running_entrypoint(env, tmp / "ours.log") as process:
            client = {"MLFLOW_TRACKING_USERNAME": "pipeline", "MLFLOW_TRACKING_PASSWORD": password,
                      "MLFLOW_TRACKING_SERVER_CERT_PATH": server_certificate(env) or ""}  # fmt: skip
            yield Server("ours (entrypoint.sh: basic auth, HTTPS, 2 workers)", server_uri(env), client, process.pid)


def main() -> int:
    import boto3
    import mlflow.sklearn
    import numpy as np
    from moto.server import ThreadedMotoServer
    from sklearn.linear_model import LinearRegression

    moto_port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    s3_endpoint = f"http://127.0.0.1:{moto_port}"
    boto3.client(
        "s3", endpoint_url=s3_endpoint,
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1",
    ).create_bucket(Bucket="bench-artifacts")  # fmt: skip
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            original_server(Path(tmp), PASSWORD, s3_endpoint) as original,
            our_server(Path(tmp), PASSWORD, s3_endpoint) as ours,
        ):
            x = np.arange(20, dtype=float).reshape(10, 2)
            model_dir = Path(tmp) / "model"
            mlflow.sklearn.save_model(
                LinearRegression().fit(x, x.sum(axis=1)), str(model_dir), pip_requirements=["scikit-learn"]
            )
            from mlflow import MlflowClient

            with ProcessPoolExecutor(TRIALS) as pool:
                for server in (original, ours):
                    _use(server.client_env)
                    server.experiment_id = MlflowClient(server.uri).create_experiment(f"load-{uuid.uuid4().hex[:6]}")
                    list(pool.map(_warm, *zip(*[(server.uri, server.client_env, server.experiment_id,
                                                 str(model_dir))] * TRIALS, strict=True)))  # fmt: skip
                trials = [os.getpid(), *(p.pid for p in pool._processes.values())]
                for _ in range(ROUNDS):
                    for server in (original, ours):
                        groups = {"MLflow server": process_group(server.pgid), "MariaDB": mariadb_pids(),
                                  "trials and moto S3": trials}  # fmt: skip
                        server.rounds.append(load_round(pool, server, str(model_dir), groups))
    finally:
        moto.stop()
    report(original, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())

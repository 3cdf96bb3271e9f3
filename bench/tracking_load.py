"""Tracking server under tuning load (issue #6 targets: zero errors, p99 < 250 ms).

Starts the server exactly as the container does (infra/mlflow_server/entrypoint.sh:
basic auth, 2 workers, MariaDB backend store, S3 artifacts through the proxy, here a moto
S3 server), then 16 processes at once each act as a tuning trial: create a run, log
params, 200 metric values in batches of 50, the model's files, end the run. BENCH_ROUNDS
rounds (default 3) on the warmed server; prints each round's throughput, latency
percentiles and CPU per call by process group, then the median round and the bound that
CPU puts on latency when the trials call back to back.

    .venv/bin/python bench/tracking_load.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.child_process import free_port  # noqa: E402
from tests.server_entrypoint import entrypoint_env, mariadb_service_user, running_entrypoint  # noqa: E402

TRIALS = int(os.environ.get("BENCH_TRIALS", "16"))  # the issue asks for 16
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # this machine varies by 30% from one run to the next
METRIC_VALUES = 200
BATCH = 50
PASSWORD = "load-" + uuid.uuid4().hex


def trial(uri: str, experiment_id: str, model_dir: str, index: int) -> list[tuple[str, float, str]]:
    os.environ["MLFLOW_TRACKING_USERNAME"] = "pipeline"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = PASSWORD
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


def _warm(uri: str, experiment_id: str, model_dir: str) -> None:
    """Import MLflow, authenticate and upload one file, as a server that has been up for a
    while has done: each server worker caches a verified password (the first check costs a
    PBKDF2) and its S3 client (the first upload builds it). Not timed."""
    os.environ["MLFLOW_TRACKING_USERNAME"] = "pipeline"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = PASSWORD
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


def load_round(pool: ProcessPoolExecutor, uri: str, experiment_id: str, model_dir: str, groups: dict) -> Round:
    """All trials at once; what they waited for, and the CPU each group of processes used."""
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    start = time.perf_counter()
    futures = [pool.submit(trial, uri, experiment_id, model_dir, i) for i in range(TRIALS)]
    calls = [item for f in futures for item in f.result()]
    seconds = time.perf_counter() - start
    return Round(calls, seconds, {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()})


def report(rounds: list[Round]) -> None:
    cores = os.cpu_count() or 1
    for index, r in enumerate(rounds, 1):
        per_call = {name: seconds / len(r.calls) for name, seconds in r.cpu.items()}
        print(
            f"round {index}: {len(r.calls)} calls in {r.seconds:.1f} s ({len(r.calls) / r.seconds:.0f} calls/s), "
            f"p50 {r.percentile(50) * 1000:.0f} ms, p99 {r.percentile(99) * 1000:.0f} ms; CPU per call: "
            + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in per_call.items())
        )
    calls = [c for r in rounds for c in r.calls]
    for name in sorted({n for n, _, _ in calls}):
        own = sorted(s for n, s, _ in calls if n == name)
        print(f"  {name:18s} n={len(own):4d} p50 {statistics.median(own) * 1000:6.0f} ms  max {own[-1] * 1000:6.0f} ms")
    errors = [(name, error) for name, _, error in calls if error]
    median = sorted(rounds, key=lambda r: r.percentile(99))[len(rounds) // 2]
    cpu_per_call = sum(median.cpu.values()) / len(median.calls)
    throughput = len(median.calls) / median.seconds
    print(f"median round of {len(rounds)} (by p99), {TRIALS} concurrent trials: {throughput:.0f} calls/s")
    print(
        f"latency p50 {median.percentile(50) * 1000:.0f} ms, p99 {median.percentile(99) * 1000:.0f} ms "
        "(target < 250 ms)"
    )
    print(f"errors: {len(errors)} (target 0)" + (f"; first: {errors[0]}" if errors else ""))
    print(
        f"{cores} cores at {cpu_per_call * 1000:.0f} ms of CPU per call serve at most {cores / cpu_per_call:.0f} "
        f"calls/s, so {TRIALS} trials calling back to back need at least "
        f"{TRIALS * cpu_per_call / cores * 1000:.0f} ms per call on average, the trial's own few ms included "
        "(Little's law)"
    )


def main() -> int:
    import boto3
    import mlflow.sklearn
    import numpy as np
    from moto.server import ThreadedMotoServer
    from sklearn.linear_model import LinearRegression

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{moto_port}",
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1",
    ).create_bucket(Bucket="bench-artifacts")  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        mariadb_service_user(PASSWORD, prefix="load") as (user, database),
    ):
        env = entrypoint_env(
            home=Path(tmp),
            port=free_port(),
            workers=int(os.environ.get("BENCH_WORKERS", "2")),
            database=(user, PASSWORD, database),
            artifacts="s3://bench-artifacts/mlflow",
            s3_endpoint=f"http://127.0.0.1:{moto_port}",
            admin_password="admin-" + PASSWORD,
            service_users={"pipeline": PASSWORD},
        )
        env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        try:
            with running_entrypoint(env, Path(tmp) / "server.log") as server:
                uri = f"http://127.0.0.1:{env['PORT']}"
                x = np.arange(20, dtype=float).reshape(10, 2)
                model_dir = Path(tmp) / "model"
                mlflow.sklearn.save_model(
                    LinearRegression().fit(x, x.sum(axis=1)), str(model_dir), pip_requirements=["scikit-learn"]
                )
                os.environ.update(MLFLOW_TRACKING_USERNAME="pipeline", MLFLOW_TRACKING_PASSWORD=PASSWORD)
                from mlflow import MlflowClient

                experiment_id = MlflowClient(uri).create_experiment(f"load-{uuid.uuid4().hex[:6]}")
                with ProcessPoolExecutor(TRIALS) as pool:
                    list(pool.map(_warm, [uri] * TRIALS, [experiment_id] * TRIALS, [str(model_dir)] * TRIALS))
                    groups = {
                        "MLflow server": process_group(server.pid),
                        "MariaDB": mariadb_pids(),
                        "trials and moto S3": [os.getpid(), *(p.pid for p in pool._processes.values())],
                    }
                    rounds = [load_round(pool, uri, experiment_id, str(model_dir), groups) for _ in range(ROUNDS)]
        finally:
            moto.stop()
    report(rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

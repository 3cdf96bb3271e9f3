"""MLflow overhead of one training job (issue #3 target: <= 15 requests, < 1.5 s).

Runs `train.py` for the default config's hyperparameters as the training toolkit would,
three times with tracking (through a counting proxy in front of a real `mlflow server`)
and three times without, and prints the request count, the requests by endpoint and
the median wall times. Both sides are measured in this one run. Then three tuning trials of
one pipeline execution (issue #23: nested under the execution's tuning run), counted alike.

    .venv/bin/python bench/train_tracking.py
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.job_commands import preprocess_command, train_command, write_spec  # noqa: E402
from pipeline.child_process import free_port, path_with_venv  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.config_loader import load_config  # noqa: E402
from pipeline.example_data import write_diabetes_csv  # noqa: E402
from pipeline.tracking_server import TrackingServer  # noqa: E402

REPEATS = 3
EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/bench/execution/bench00000001"


class CountingProxy(ThreadingHTTPServer):
    """Forwards every request to the tracking server and counts it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _Forward)


class _Forward(BaseHTTPRequestHandler):
    server: CountingProxy

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path.split("?")[0]
        endpoint = path if "/artifacts/" not in path else path.split("/artifacts/")[0] + "/artifacts/..."
        with self.server.lock:
            self.server.requests[f"{self.command} {endpoint}"] += 1
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args: object) -> None:
        pass


def run_train(
    env: dict[str, str], work: Path, model_dir: Path, cfg: PipelineConfig, hyperparameters: dict[str, object]
) -> float:
    args = train_command(cfg, hyperparameters)
    channels = {
        "SM_CHANNEL_TRAIN": str(work / "splits/train"),
        "SM_CHANNEL_VALIDATION": str(work / "splits/validation"),
    }
    env = {**env, **channels, "SM_MODEL_DIR": str(model_dir), "TRAINING_JOB_NAME": model_dir.name}
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> int:
    cfg = load_config(REPO / "config" / "pipeline.yaml")
    hyperparameters = dict(cfg.training.hyperparameters)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_"))}
    base_env["PATH"] = path_with_venv(base_env.get("PATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_diabetes_csv(work / "raw/diabetes.csv")
        subprocess.run(
            preprocess_command(work / "raw", work / "splits", write_spec(cfg, work / "code")),
            env={**base_env, "MLFLOW_TRACKING_URI": ""},
            check=True,
            capture_output=True,
        )
        with TrackingServer(f"sqlite:///{work / 'mlflow.db'}", work / "artifacts") as server:
            proxy = CountingProxy(server.port)
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            tracked_env = {
                **base_env,
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{proxy.server_address[1]}",
                "MLFLOW_EXPERIMENT_NAME": "bench",
                "MLOPS_TRACKING_CREDENTIALS": "none",
            }
            untracked_env = {**base_env, "MLFLOW_TRACKING_URI": ""}
            run_train(tracked_env, work, work / "warmup", cfg, hyperparameters)  # creates the experiment
            proxy.requests.clear()
            tracked, untracked, counts = [], [], []
            for i in range(REPEATS):
                before = sum(proxy.requests.values())
                tracked.append(run_train(tracked_env, work, work / f"tracked-{i}", cfg, hyperparameters))
                counts.append(sum(proxy.requests.values()) - before)
                untracked.append(run_train(untracked_env, work, work / f"untracked-{i}", cfg, hyperparameters))
            by_endpoint = Counter(proxy.requests)  # the plain runs'
            trial_env = {**tracked_env, "MLOPS_PIPELINE_EXECUTION_ARN": EXECUTION,
                         "MLOPS_TUNING_JOB_NAME": "bench-tune"}  # fmt: skip
            run_train(trial_env, work, work / "bench-tune-000", cfg, hyperparameters)  # makes parent and tuning run
            trial_counts = []
            for i in range(REPEATS):
                before = sum(proxy.requests.values())
                run_train(trial_env, work, work / f"bench-tune-00{i + 1}", cfg, hyperparameters)
                trial_counts.append(sum(proxy.requests.values()) - before)
            proxy.shutdown()
    proxy.requests = by_endpoint
    per_run = Counter({k: v // REPEATS for k, v in proxy.requests.items()})
    overhead = statistics.median(tracked) - statistics.median(untracked)
    print("requests per training run, by endpoint:")
    for endpoint, count in sorted(per_run.items(), key=lambda kv: -kv[1]):
        print(f"  {count:3d}  {endpoint}")
    print(f"HTTP requests per run: {counts} (target <= 15)")
    print(f"wall time with tracking (median of {REPEATS}):    {statistics.median(tracked):.2f} s")
    print(f"wall time without tracking (median of {REPEATS}): {statistics.median(untracked):.2f} s")
    print(f"tracking overhead: {overhead:.2f} s (target < 1.5 s)")
    print(f"HTTP requests per tuning trial of a pipeline execution: {trial_counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

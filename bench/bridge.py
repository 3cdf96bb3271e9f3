"""Bridge speed (issue #5 targets: cold import < 1.5 s; warm p50 from event to alias set
< 300 ms, endpoint creation excluded).

Cold: a fresh interpreter imports the handler (Powertools Logger, Parser and Metrics
included), the service, the MLflow client and boto3 (median of 5), in two environments:
one built as the Lambda image is (the packages of infra/bridge_lambda/Dockerfile's pip
line, in `.local/bench/lambda-venv`, made on the first run), which is the figure the target
is about, and this project's venv (full MLflow with pandas, slower). Powertools' share is
the same interpreter's import with and without it.
Warm: one bridge handles 20 approval events for new packages against a real MLflow
server (sqlite) and moto, deployment off; each timing ends when the alias is set.

    .venv/bin/python bench/bridge.py
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLD = """
import time
start = time.perf_counter()
import mlflow_bridge.handler
from mlflow_bridge.service import Bridge
from mlflow import MlflowClient
import boto3
print(time.perf_counter() - start)
"""


POWERTOOLS = """
import time
start = time.perf_counter()
import mlflow, boto3, pydantic
base = time.perf_counter() - start
import aws_lambda_powertools.utilities.parser.models, aws_lambda_powertools.metrics, aws_lambda_powertools.logging
print(time.perf_counter() - start - base)
"""
LAMBDA_VENV = REPO / ".local" / "bench" / "lambda-venv"


def lambda_like_python() -> str:
    """A venv with exactly the Lambda image's packages (its Dockerfile's pip line)."""
    dockerfile = (REPO / "infra" / "bridge_lambda" / "Dockerfile").read_text()
    (line,) = [x for x in dockerfile.splitlines() if x.startswith("RUN pip install")]
    packages = re.findall(r'"([^"]+)"', line)
    python = LAMBDA_VENV / "bin" / "python"
    stamp = LAMBDA_VENV / "packages.txt"
    if not stamp.exists() or stamp.read_text() != "\n".join(packages):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LAMBDA_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
        stamp.write_text("\n".join(packages))
    return str(python)


def median_seconds(python: str, code: str, runs: int = 5) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return statistics.median(
        float(subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    )


def warm_latencies(events: int = 20) -> list[float]:
    import boto3
    from mlflow import MlflowClient
    from moto.server import ThreadedMotoServer

    from mlflow_bridge.contract import EVENT_SOURCE, STATE_CHANGE_DETAIL_TYPE
    from mlflow_bridge.deployment import EndpointDeployer
    from mlflow_bridge.logs import bridge_logger
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.sagemaker_registry import SageMakerRegistry
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings, DeploymentSettings
    from pipeline.child_process import free_port
    from pipeline.tracking_server import TrackingServer

    quiet = bridge_logger(level="ERROR")  # errors only: the bench measures the work, not the log writes
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    with tempfile.TemporaryDirectory() as tmp, TrackingServer(f"sqlite:///{tmp}/m.db", Path(tmp) / "a") as server:
        import mlflow.sklearn
        from sklearn.linear_model import LinearRegression

        model_dir = Path(tmp) / "model"
        mlflow.sklearn.save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), str(model_dir),
                                  pip_requirements=["scikit-learn"])  # fmt: skip
        sm = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
        sm.create_model_package_group(ModelPackageGroupName="bench")
        client = MlflowClient(server.uri)
        experiment = client.create_experiment("bench")
        settings = BridgeSettings(
            tracking_uri=server.uri, groups=["bench"], deployment=DeploymentSettings(enabled=False)
        )
        bridge = Bridge(
            settings,
            SageMakerRegistry(sm),
            MlflowRegistry.connect(server.uri),
            EndpointDeployer(sm, settings.deployment),
            quiet,
        )
        timings = []
        for _ in range(events + 1):
            run = client.create_run(experiment)
            client.log_artifacts(run.info.run_id, str(model_dir), "model")  # a run without a model is ignored
            arn = sm.create_model_package(
                ModelPackageGroupName="bench",
                ModelApprovalStatus="Approved",
                InferenceSpecification={
                    "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                CustomerMetadataProperties={"mlflow_run_id": run.info.run_id, "mlflow_registered_model": "bench"},
            )["ModelPackageArn"]
            event = {
                "version": "0", "id": str(uuid.uuid4()), "account": "123456789012", "region": "us-east-1",
                "time": "2026-12-02T12:00:00Z", "resources": [arn],
                "source": EVENT_SOURCE, "detail-type": STATE_CHANGE_DETAIL_TYPE,
                "detail": {"ModelPackageArn": arn, "ModelPackageGroupName": "bench", "ModelApprovalStatus": "Approved"},
            }  # fmt: skip
            start = time.perf_counter()
            bridge.handle(event)
            timings.append(time.perf_counter() - start)
            assert client.get_registered_model("bench").aliases["champion"]
        moto.stop()
    return timings[1:]  # the first call warms the connection pools


def main() -> int:
    lambda_python = lambda_like_python()
    cold = median_seconds(lambda_python, COLD)
    powertools = median_seconds(lambda_python, POWERTOOLS)
    cold_dev = median_seconds(sys.executable, COLD)
    warm = warm_latencies()
    quantiles = statistics.quantiles(warm, n=10)
    print(
        f"cold import of the handler, service, MLflow client and boto3 (median of 5), as in the Lambda image: "
        f"{cold:.2f} s (target < 1.5 s), of which Powertools {powertools:.2f} s; in this venv: {cold_dev:.2f} s"
    )
    print(
        f"warm event -> alias set over {len(warm)} approvals: p50 {statistics.median(warm) * 1000:.0f} ms, "
        f"p90 {quantiles[8] * 1000:.0f} ms (target p50 < 300 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

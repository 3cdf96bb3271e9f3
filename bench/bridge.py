"""Bridge speed (issue #5 targets: cold import < 1.5 s; warm p50 from event to alias set
< 300 ms, endpoint creation excluded).

Cold: a fresh interpreter imports the handler and builds the MLflow client (median of 3).
Warm: one bridge handles 20 approval events for new packages against a real MLflow
server (sqlite) and moto, deployment off; each timing ends when the alias is set.

    .venv/bin/python bench/bridge.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def cold_import() -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        float(subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return statistics.median(runs)


def warm_latencies(events: int = 20) -> list[float]:
    import boto3
    from mlflow import MlflowClient
    from moto.server import ThreadedMotoServer

    from mlflow_bridge.deployment import EndpointDeployer
    from mlflow_bridge.logs import configure
    from mlflow_bridge.mlflow_registry import MlflowRegistry
    from mlflow_bridge.sagemaker_registry import SageMakerRegistry
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings, DeploymentSettings
    from pipeline.child_process import free_port
    from pipeline.tracking_server import TrackingServer

    quiet = configure(level=40)  # errors only: the bench measures the work, not the log writes
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    with tempfile.TemporaryDirectory() as tmp, TrackingServer(f"sqlite:///{tmp}/m.db", Path(tmp) / "a") as server:
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
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "detail": {"ModelPackageArn": arn, "ModelPackageGroupName": "bench", "ModelApprovalStatus": "Approved"},
            }
            start = time.perf_counter()
            bridge.handle(event)
            timings.append(time.perf_counter() - start)
            assert client.get_registered_model("bench").aliases["champion"]
        moto.stop()
    return timings[1:]  # the first call warms the connection pools


def main() -> int:
    cold = cold_import()
    warm = warm_latencies()
    quantiles = statistics.quantiles(warm, n=10)
    print(f"cold import of the handler with MLflow and boto3 (median of 3): {cold:.2f} s (target < 1.5 s)")
    print(
        f"warm event -> alias set over {len(warm)} approvals: p50 {statistics.median(warm) * 1000:.0f} ms, "
        f"p90 {quantiles[8] * 1000:.0f} ms (target p50 < 300 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

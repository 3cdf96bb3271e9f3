"""The rendered definitions frozen as fixtures (`tests/fixtures/definitions/`), and the
command that writes them.

They were first written with SageMaker Python SDK v2.257.7, before the builder moved to SDK
v3 (issue #22): `tests/test_definition_fixtures.py` holds today's build to them, so any
change to what SageMaker is sent shows up as a reviewed diff of these files. After an
intended change to the definition, rewrite them and review the diff:

    .venv/bin/python -m tests.definition_fixtures
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import DEFAULT_CONFIG, REPO

FIXTURES = Path(__file__).parent / "fixtures" / "definitions"
CUSTOM_CODE = REPO / "examples" / "custom_training" / "pipeline.yaml"

# What the configs read from the environment, unset while rendering (their defaults apply)
CONFIG_ENVIRONMENT = (
    "SAGEMAKER_PIPELINE_ROLE_ARN",
    "MLOPS_BUCKET",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_SERVER_CA_ARN",
    "MLOPS_BATCH_MODEL_ROLE_ARN",
    "CDK_DEFAULT_ACCOUNT",
)


@dataclass(frozen=True)
class Case:
    name: str
    config: Path
    overrides: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ("training", "batch")


CASES = (
    Case("default", DEFAULT_CONFIG),
    Case("tuning-off", DEFAULT_CONFIG, ("tuning.enabled=false",), ("training",)),
    Case(
        "tuning-random-early-stopping",
        DEFAULT_CONFIG,
        ("tuning.strategy=Random", "tuning.early_stopping=Auto", "tuning.max_jobs=4", "tuning.max_parallel_jobs=4"),
        ("training",),
    ),
    Case(
        "binary-classification",
        DEFAULT_CONFIG,
        (
            "training.task=binary_classification",
            "training.objective=null",
            "data.target=label",
            "quality_gate.metric=binary_classification_metrics.auc.value",
            "quality_gate.operator=GreaterThanOrEqualTo",
            "quality_gate.threshold=0.8",
        ),
        ("training",),
    ),
    Case(
        "multiclass-tuning-off",
        DEFAULT_CONFIG,
        (
            "training.task=multiclass_classification",
            "training.objective=null",
            "data.target=label",
            "tuning.enabled=false",
            "quality_gate.metric=multiclass_classification_metrics.weighted_f1.value",
            "quality_gate.operator=GreaterThanOrEqualTo",
            "quality_gate.threshold=0.7",
        ),
        ("training",),
    ),
    Case(
        "xgboost",
        DEFAULT_CONFIG,
        (
            "training.estimator=xgboost.XGBRegressor",
            "tuning.enabled=false",
            "training.hyperparameters={n_estimators: 30, max_depth: 3}",
        ),
        ("training",),
    ),
    Case(
        "vpc-secrets-no-cache",
        DEFAULT_CONFIG,
        (
            "network.subnets=[subnet-0123456789abcdef0]",
            "network.security_group_ids=[sg-0123456789abcdef0]",
            "network.encrypt_inter_container_traffic=true",
            "mlflow.credentials={source: secrets_manager, secret_arn: "
            "'arn:aws:secretsmanager:us-east-1:123456789012:secret:mlflow-bridge-AbCdEf'}",
            "mlflow.tracking_uri=https://mlflow.mlops.internal",
            "mlflow.server_ca_arn=arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0a1b2c3d-4e5f",
            "caching.enabled=false",
            "retry.on=[Step.SERVICE_FAULT, SageMaker.JOB_INTERNAL_ERROR]",
        ),
    ),
    # added after the port, rendered by the v2 builder (commit 1bdee9c) in an SDK v2 environment
    Case("encryption-off", DEFAULT_CONFIG, ("network.encrypt_inter_container_traffic=false",), ("training",)),
    Case(
        "encryption-off-tuning-off",
        DEFAULT_CONFIG,
        ("network.encrypt_inter_container_traffic=false", "tuning.enabled=false"),
        ("training",),
    ),
    Case(
        "batch-flag-jsonlines",
        DEFAULT_CONFIG,
        (
            "batch.drift.action=flag",
            "batch.join_input=false",
            "batch.accept=application/jsonlines",
            "batch.instance_count=2",
        ),
        ("batch",),
    ),
    Case("custom-code", CUSTOM_CODE),
)


def fixture_path(case: Case, pipeline: str) -> Path:
    return FIXTURES / f"{case.name}.{pipeline}.json"


@contextmanager
def config_environment() -> Iterator[None]:
    """The configs' `${VAR:-default}` defaults, whatever the shell holds; from the
    repository root, where `source_dir` paths are relative to."""
    saved = {name: os.environ.pop(name, None) for name in CONFIG_ENVIRONMENT}
    saved_region, os.environ["AWS_REGION"] = os.environ.get("AWS_REGION"), "us-east-1"
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(cwd)
        for name, value in {**saved, "AWS_REGION": saved_region}.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def render_case(case: Case, pipeline: str) -> str:
    from pipeline.config_loader import load_config
    from pipeline.definition import render_definition

    with config_environment():
        return render_definition(load_config(case.config, overrides=list(case.overrides)), which=pipeline)  # type: ignore[arg-type]


def freeze() -> list[Path]:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        for pipeline in case.pipelines:
            path = fixture_path(case, pipeline)
            path.write_text(render_case(case, pipeline))
            written.append(path)
    return written


if __name__ == "__main__":
    for path in freeze():
        print(path.relative_to(REPO))
    sys.exit(0)

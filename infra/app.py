"""`cdk synth` / `cdk deploy` entry point (see cdk.json). Reads the `infra` section of the
pipeline config; AwsSolutions (cdk-nag) findings fail the synth."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.acknowledgements import acknowledge  # noqa: E402
from infra.stack import MlopsStack  # noqa: E402
from pipeline.config_loader import load_config  # noqa: E402
from pipeline.errors import ConfigError  # noqa: E402


def build_app(
    config_path: Path, context: dict[str, object] | None = None, overrides: tuple[str, ...] = ()
) -> tuple[cdk.App, MlopsStack]:
    """The app and its one stack; `overrides` as `--set` gives them (KEY.PATH=VALUE)."""
    cfg = load_config(config_path, overrides=overrides)
    if cfg.infra is None:
        raise ConfigError([("infra", "section is missing: the CDK app needs account and names")], str(config_path))
    settings = cfg.infra
    app = cdk.App(context=context or {})
    stack = MlopsStack(
        app,
        f"{settings.name}-{cfg.pipeline.name}",
        cfg=cfg,
        settings=settings,
        env=cdk.Environment(account=settings.account, region=settings.region or cfg.aws.region),
        description=f"MLflow + SageMaker Pipelines for {cfg.pipeline.name}",
    )
    acknowledge(stack, cfg, settings)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


if __name__ == "__main__":
    application, _ = build_app(Path(os.environ.get("PIPELINE_CONFIG", REPO / "config" / "pipeline.yaml")))
    application.synth()

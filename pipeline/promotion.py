"""`promote`: move a model package into a deployment stage, or reject it there, through
SageMaker's own lifecycle record (UpdateModelPackage's `ModelLifeCycle`), so IAM governs
who may (condition keys `sagemaker:ModelLifeCycle:stage` / `:stageStatus`) and the
"SageMaker Model Package State Change" event reaches the MLflow bridge, which moves the
stage's alias and endpoint. Source: SageMaker Developer Guide, "Staging construct for your
model lifecycle"; API Reference, ModelLifeCycle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_bridge.decisions import Stage
from pipeline.config import PipelineConfig, PromotionStage
from pipeline.errors import UsageError

__all__ = ["StageHolder", "bridge_stages", "lifecycle_request", "package_arn", "promotion_stage", "stage_holders"]


def package_arn(cfg: PipelineConfig, package: str) -> str:
    """A package ARN, or its version number in the configured group."""
    if package.isdigit():
        group = cfg.registration.model_package_group
        return f"arn:aws:sagemaker:{cfg.aws.region}:{cfg.aws.account}:model-package/{group}/{package}"
    return package


def promotion_stage(cfg: PipelineConfig, name: str) -> PromotionStage:
    """The configured stage by name or lifecycle stage; UsageError (exit 2) naming the
    configured ones otherwise."""
    stages = cfg.deployment.stages
    if not stages:
        raise UsageError("promote needs deployment.stages in the config (e.g. staging, then production)")
    stage = cfg.deployment.stage(name)
    if stage is None:
        raise UsageError(f"--to {name}: no such stage (deployment.stages: {', '.join(s.name for s in stages)})")
    return stage


def lifecycle_request(arn: str, stage: PromotionStage, *, reject: bool, description: str = "") -> dict[str, Any]:
    """UpdateModelPackage's request: the stage, Approved (or Rejected), and why."""
    lifecycle = {"Stage": stage.lifecycle_stage, "StageStatus": "Rejected" if reject else "Approved"}
    if description:
        lifecycle["StageDescription"] = description
    return {"ModelPackageArn": arn, "ModelLifeCycle": lifecycle}


def bridge_stages(stages: list[PromotionStage]) -> list[Stage]:
    """The configured stages as the bridge decides on them (its `Stage`)."""
    return [Stage(s.lifecycle_stage, s.alias, "" if s.legacy_stage == "None" else s.legacy_stage) for s in stages]


@dataclass(frozen=True)
class StageHolder:
    stage: str
    alias: str
    version: str  # MLflow's version number, "" when the alias points nowhere
    package_arn: str


def stage_holders(
    stages: list[PromotionStage], aliases: dict[str, str], tags_by_version: dict[str, dict[str, str]]
) -> list[StageHolder]:
    """Which model package each stage holds, read from MLflow: the version its alias points
    at (`aliases`: alias -> version) and that version's package tag."""
    from mlflow_bridge.contract import Tags

    holders = []
    for stage in stages:
        version = aliases.get(stage.alias, "")
        arn = tags_by_version.get(version, {}).get(Tags.PACKAGE_ARN, "") if version else ""
        holders.append(StageHolder(stage.name, stage.alias, version, arn))
    return holders

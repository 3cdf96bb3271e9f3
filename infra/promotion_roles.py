"""Optional roles (`infra.promotion_roles: true`) that show who may move a model package
into which stage, with SageMaker's condition keys on UpdateModelPackage: a data scientist
may propose a package to staging only; the release role may also move it to production.

`sagemaker:ModelLifeCycle:stage` names the stage a call moves a package *to*, so "to
Staging only" still let a data scientist move the production champion back to Staging (a
demotion the bridge then carries out). The bridge tags each package with the stage it is in
(`mlops:lifecycle-stage`, mlflow_bridge.contract.PACKAGE_STAGE_TAG), and the data
scientist's policy denies any change to a package tagged with the last stage, and any
change to that tag. Between a promotion and the bridge's tag (seconds) the old tag holds.
Sources: SageMaker Developer Guide, "Staging construct for your model lifecycle" (condition
keys `sagemaker:ModelLifeCycle:stage` and `sagemaker:ModelLifeCycle:stageStatus`); Service
Authorization Reference, Amazon SageMaker (UpdateModelPackage on model-package resources).
Both roles are assumable by principals of this account whose own policies allow it."""

from __future__ import annotations

import re

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlflow_bridge.contract import PACKAGE_STAGE_TAG
from pipeline.config import PromotionStage

__all__ = ["PromotionRoles", "protect_stage_statements"]


def _sid(text: str) -> str:
    """IAM statement ids are letters and digits only; stage names may hold hyphens."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def protect_stage_statements(packages: str, stage: str) -> list[iam.PolicyStatement]:
    """Deny changing a package the bridge has tagged as being in `stage`, or the tag."""
    return [
        iam.PolicyStatement(
            sid=f"Nothing{_sid(stage)}IsChanged",
            effect=iam.Effect.DENY,
            actions=["sagemaker:UpdateModelPackage", "sagemaker:DeleteModelPackage"],
            resources=[packages],
            conditions={"StringEquals": {f"aws:ResourceTag/{PACKAGE_STAGE_TAG}": stage}},
        ),
        iam.PolicyStatement(
            sid="NotTheStageTag",
            effect=iam.Effect.DENY,
            actions=["sagemaker:AddTags", "sagemaker:DeleteTags"],
            resources=[packages],
            conditions={"ForAnyValue:StringEquals": {"aws:TagKeys": [PACKAGE_STAGE_TAG]}},
        ),
    ]


class PromotionRoles(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, group: str, stages: list[PromotionStage]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        packages = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:model-package/{group}/*"
        lifecycle = [s.lifecycle_stage for s in stages] or ["Staging", "Production"]
        first, last, account = lifecycle[0], lifecycle[-1], iam.AccountRootPrincipal()
        self.data_scientist = self._role("DataScientist", account, packages, [first], "propose packages to " + first)
        for statement in protect_stage_statements(packages, last):
            self.data_scientist.add_to_policy(statement)
        self.release = self._role("Release", account, packages, lifecycle, "move packages through every stage")

    def _role(self, name: str, principal: iam.IPrincipal, packages: str, stages: list[str], what: str) -> iam.Role:
        role = iam.Role(self, f"{name}Role", assumed_by=principal, description=f"May {what}")
        role.add_to_policy(
            iam.PolicyStatement(
                sid=f"LifecycleStages{_sid(''.join(stages))}",
                actions=["sagemaker:UpdateModelPackage"],
                resources=[packages],
                conditions={"StringEquals": {"sagemaker:ModelLifeCycle:stage": stages}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadPackages", actions=["sagemaker:DescribeModelPackage"], resources=[packages]
            )
        )  # fmt: skip
        return role

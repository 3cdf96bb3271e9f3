"""Optional roles (`infra.promotion_roles: true`) that show who may move a model package
into which stage, with SageMaker's condition keys on UpdateModelPackage: a data scientist
may propose a package to staging only; the release role may also move it to production.
Sources: SageMaker Developer Guide, "Staging construct for your model lifecycle" (condition
keys `sagemaker:ModelLifeCycle:stage` and `sagemaker:ModelLifeCycle:stageStatus`); Service
Authorization Reference, Amazon SageMaker (UpdateModelPackage on model-package resources).
Both roles are assumable by principals of this account whose own policies allow it."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline.config import PromotionStage

__all__ = ["PromotionRoles"]


class PromotionRoles(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, group: str, stages: list[PromotionStage]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        packages = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:model-package/{group}/*"
        lifecycle = [s.lifecycle_stage for s in stages] or ["Staging", "Production"]
        first, account = lifecycle[0], iam.AccountRootPrincipal()
        self.data_scientist = self._role("DataScientist", account, packages, [first], "propose packages to " + first)
        self.release = self._role("Release", account, packages, lifecycle, "move packages through every stage")

    def _role(self, name: str, principal: iam.IPrincipal, packages: str, stages: list[str], what: str) -> iam.Role:
        role = iam.Role(self, f"{name}Role", assumed_by=principal, description=f"May {what}")
        role.add_to_policy(
            iam.PolicyStatement(
                sid=f"LifecycleStages{''.join(stages)}",
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

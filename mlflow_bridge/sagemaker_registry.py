"""The SageMaker Model Registry edge: the package's current state, read fresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlflow_bridge.contract import PACKAGE_STAGE_TAG, UNTRACKED_RUN, CustomerMetadata
from mlflow_bridge.decisions import Package, iso_utc

__all__ = ["SageMakerRegistry", "already_exists", "describe_or_none", "is_not_found"]


def is_not_found(exc: Any) -> bool:
    """SageMaker reports a missing resource as ResourceNotFound or as a ValidationException."""
    error = exc.response.get("Error", {})
    message = error.get("Message", "").lower()
    return error.get("Code") in {"ResourceNotFound", "ValidationException"} and (
        "does not exist" in message or "not found" in message or "could not find" in message
    )


def already_exists(exc: Any) -> bool:
    """SageMaker refuses a Create* of a name in use as a ValidationException ("Cannot create
    already existing endpoint configuration ...") or ResourceInUse."""
    error = exc.response.get("Error", {})
    message = error.get("Message", "").lower()
    return error.get("Code") in {"ValidationException", "ResourceInUse"} and "already exist" in message


def describe_or_none(describe: Callable[..., dict[str, Any]], **request: Any) -> dict[str, Any] | None:
    """A Describe* call's answer, or None when the resource does not exist."""
    from botocore.exceptions import ClientError

    try:
        return describe(**request)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


class SageMakerRegistry:
    def __init__(self, client: Any) -> None:
        self.client = client

    def describe(self, arn: str) -> Package | None:
        raw = describe_or_none(self.client.describe_model_package, ModelPackageName=arn)
        if raw is None:
            return None
        metadata = raw.get("CustomerMetadataProperties") or {}
        run_id = metadata.get(CustomerMetadata.RUN_ID, "")
        created, modified = raw.get("CreationTime"), raw.get("LastModifiedTime")
        lifecycle = raw.get("ModelLifeCycle") or {}  # Stage, StageStatus (botocore's ModelLifeCycle shape)
        return Package(
            arn=raw["ModelPackageArn"],
            group=raw.get("ModelPackageGroupName", ""),
            version=int(raw.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
            status=raw.get("ModelApprovalStatus", ""),
            run_id="" if run_id == UNTRACKED_RUN else run_id,
            registered_model=metadata.get(CustomerMetadata.REGISTERED_MODEL, ""),
            created=iso_utc(created) if created else "",
            created_by=_identity(raw.get("CreatedBy")),
            modified_by=_identity(raw.get("LastModifiedBy")),
            never_modified=modified is None or (created is not None and modified <= created),
            lifecycle_stage=lifecycle.get("Stage", ""),
            lifecycle_status=lifecycle.get("StageStatus", ""),
        )

    def tag_stage(self, package: Package) -> None:
        """AddTags with the package's lifecycle stage (none: nothing to protect, no call)."""
        if package.lifecycle_stage:
            self.client.add_tags(
                ResourceArn=package.arn, Tags=[{"Key": PACKAGE_STAGE_TAG, "Value": package.lifecycle_stage}]
            )

    def packages(self, group: str) -> list[Package]:
        arns: list[str] = []
        paginator = self.client.get_paginator("list_model_packages")
        for page in paginator.paginate(ModelPackageGroupName=group, ModelPackageType="Versioned"):
            arns += [p["ModelPackageArn"] for p in page["ModelPackageSummaryList"]]
        return [p for p in (self.describe(arn) for arn in arns) if p is not None]


def _identity(user: dict[str, Any] | None) -> str:
    """Who a SageMaker UserContext names: the Studio user profile, else the IAM identity."""
    user = user or {}
    return user.get("UserProfileName") or (user.get("IamIdentity") or {}).get("Arn", "")

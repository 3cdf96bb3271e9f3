"""The EventBridge event, typed. Only what the bridge needs; the event is a hint, the
package's current state is read from SageMaker."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlflow_bridge.errors import MalformedEvent

__all__ = ["DETAIL_TYPE", "ModelPackageStateChange", "parse_event"]

DETAIL_TYPE = "SageMaker Model Package State Change"
_ARN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/[A-Za-z0-9\-]+/\d+$"


class PackageDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model_package_arn: str = Field(alias="ModelPackageArn", pattern=_ARN)
    model_package_group_name: str = Field(alias="ModelPackageGroupName", min_length=1)
    model_approval_status: str = Field(alias="ModelApprovalStatus", min_length=1)


class ModelPackageStateChange(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: PackageDetail


def parse_event(event: Any) -> ModelPackageStateChange:
    if not isinstance(event, dict):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    try:
        parsed = ModelPackageStateChange.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise MalformedEvent(f"not a model package state change event: {problems}") from None
    if parsed.source != "aws.sagemaker" or parsed.detail_type != DETAIL_TYPE:
        raise MalformedEvent(f"unexpected event {parsed.source!r} / {parsed.detail_type!r}")
    return parsed

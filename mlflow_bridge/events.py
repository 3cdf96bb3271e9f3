"""The EventBridge events, typed with Powertools' Parser (its EventBridge model, which its
EventBridge envelope validates against, extended with the typed detail: the envelope
alone would drop the event's `time` and `id`, which date an approval and name a
delivery). Only what the bridge needs; the event is a hint, the package's current state
is read from SageMaker."""

from __future__ import annotations

from typing import Any, TypeVar

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlflow_bridge.contract import EVENT_SOURCE, EXECUTION_STATUS_DETAIL_TYPE, STATE_CHANGE_DETAIL_TYPE
from mlflow_bridge.errors import MalformedEvent

__all__ = [
    "ExecutionDetail",
    "ModelPackageStateChange",
    "PackageDetail",
    "PipelineExecutionStatusChange",
    "detail_type",
    "parse_event",
    "parse_execution_event",
]

# SageMaker's ModelPackageArn pattern (botocore's service model), versioned packages only.
# ... and its PipelineExecutionArn pattern, anchored and with the name and id non-empty.
_EXECUTION_ARN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:pipeline/[^/]+/execution/[^/]+$"
_ARN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/[A-Za-z0-9\-]+/\d+$"


_Event = TypeVar("_Event", bound=EventBridgeModel)


class PackageDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model_package_arn: str = Field(alias="ModelPackageArn", pattern=_ARN, max_length=2048)
    model_package_group_name: str = Field(alias="ModelPackageGroupName", min_length=1, max_length=63)
    model_approval_status: str = Field(alias="ModelApprovalStatus", min_length=1, max_length=32)


class ModelPackageStateChange(EventBridgeModel):
    detail: PackageDetail  # type: ignore[assignment]  # the model's detail is any dict; ours is typed


class ExecutionDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    pipeline_execution_arn: str = Field(alias="pipelineExecutionArn", pattern=_EXECUTION_ARN, max_length=2048)
    current_status: str = Field(alias="currentPipelineExecutionStatus", min_length=1, max_length=32)


class PipelineExecutionStatusChange(EventBridgeModel):
    detail: ExecutionDetail  # type: ignore[assignment]


def detail_type(event: Any) -> str:
    """The event's detail-type, '' when it has none (any event may reach the handler)."""
    value = event.get("detail-type") if isinstance(event, dict) else None
    return value if isinstance(value, str) else ""


def parse_event(event: Any) -> ModelPackageStateChange:
    """The model package event, checked. Raises MalformedEvent naming the first bad fields."""
    if isinstance(event, ModelPackageStateChange):
        return event
    return _parsed(event, ModelPackageStateChange, STATE_CHANGE_DETAIL_TYPE, "a model package state change")


def parse_execution_event(event: Any) -> PipelineExecutionStatusChange:
    """The pipeline execution status event, checked. Raises MalformedEvent naming the first bad fields."""
    return _parsed(event, PipelineExecutionStatusChange, EXECUTION_STATUS_DETAIL_TYPE, "a pipeline execution status")


def _parsed(event: Any, model: type[_Event], expected: str, what: str) -> _Event:
    if not isinstance(event, dict):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    try:
        parsed = model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
        )
        raise MalformedEvent(f"not {what} event: {problems}") from None
    if parsed.source != EVENT_SOURCE or parsed.detail_type != expected:
        raise MalformedEvent(f"unexpected event {parsed.source[:100]!r} / {parsed.detail_type[:100]!r}")
    return parsed

"""The AWS edge of the CLI: upsert, start and inspect pipeline executions with boto3.

Clients are passed in (tests hand it moto-backed ones); every botocore error becomes an
`AwsError` carrying AWS's own message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import AwsError

__all__ = ["PipelineService", "StepStatus", "aws_errors"]


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(f"{action} failed: {error.get('Code', 'Error')}: {error.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{action} failed: {exc}") from exc


def _is_not_found(exc: Any) -> bool:
    """SageMaker says ResourceNotFound; some endpoints (moto) say ValidationException."""
    error = exc.response.get("Error", {})
    message = error.get("Message", "").lower()
    return error.get("Code") == "ResourceNotFound" or (
        error.get("Code") == "ValidationException" and ("could not find" in message or "does not exist" in message)
    )


@dataclass(frozen=True)
class StepStatus:
    name: str
    status: str
    started: Any = None
    ended: Any = None
    failure_reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # the step's `Metadata` (Condition, RegisterModel, ...)


class PipelineService:
    def __init__(self, sagemaker_client: Any, s3_client: Any = None) -> None:
        self.sm = sagemaker_client
        self.s3 = s3_client

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        with aws_errors("DescribePipeline"):
            try:
                self.sm.describe_pipeline(PipelineName=name)
                return True
            except ClientError as exc:
                if _is_not_found(exc):
                    return False
                raise

    def upsert(
        self, *, name: str, definition: str, role_arn: str, description: str, tags: dict[str, str]
    ) -> tuple[str, bool]:
        """Create the pipeline or update it in place; returns (ARN, created)."""
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        common = {"PipelineName": name, "PipelineDefinition": definition, "RoleArn": role_arn}
        if description:
            common["PipelineDescription"] = description
        if self.exists(name):
            with aws_errors("UpdatePipeline"):
                arn = self.sm.update_pipeline(**common)["PipelineArn"]
            if tag_list:
                with aws_errors("AddTags"):
                    self.sm.add_tags(ResourceArn=arn, Tags=tag_list)
            return arn, False
        with aws_errors("CreatePipeline"):
            arn = self.sm.create_pipeline(**common, **({"Tags": tag_list} if tag_list else {}))["PipelineArn"]
        return arn, True

    def start(self, name: str, parameters: dict[str, str], display_name: str | None = None) -> str:
        request: dict[str, Any] = {
            "PipelineName": name,
            "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
        }
        if display_name:
            request["PipelineExecutionDisplayName"] = display_name
        with aws_errors("StartPipelineExecution"):
            return self.sm.start_pipeline_execution(**request)["PipelineExecutionArn"]

    def definition(self, name: str) -> str:
        with aws_errors("DescribePipeline"):
            return self.sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]

    def recent_executions(self, name: str, limit: int = 10) -> list[dict[str, Any]]:
        with aws_errors("ListPipelineExecutions"):
            response = self.sm.list_pipeline_executions(
                PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
            )
        return response.get("PipelineExecutionSummaries", [])

    def execution_arn(self, pipeline_name: str, execution: str) -> str:
        """Accept an execution ARN or just its id (what `describe` lists)."""
        if execution.startswith("arn:"):
            return execution
        with aws_errors("DescribePipeline"):
            pipeline_arn = self.sm.describe_pipeline(PipelineName=pipeline_name)["PipelineArn"]
        return f"{pipeline_arn}/execution/{execution}"

    def execution_parameters(self, arn: str) -> list[dict[str, str]]:
        with aws_errors("ListPipelineParametersForExecution"):
            response = self.sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        return response.get("PipelineParameters", [])

    def describe_execution(self, arn: str) -> dict[str, Any]:
        with aws_errors("DescribePipelineExecution"):
            return self.sm.describe_pipeline_execution(PipelineExecutionArn=arn)

    def execution_steps(self, arn: str) -> list[StepStatus] | None:
        """Step statuses, or None where the API is not available (moto lacks it)."""
        from botocore.exceptions import ClientError

        try:
            paginator = self.sm.get_paginator("list_pipeline_execution_steps")
            steps = [s for page in paginator.paginate(PipelineExecutionArn=arn) for s in page["PipelineExecutionSteps"]]
        except (ClientError, NotImplementedError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if isinstance(exc, NotImplementedError) or code in {"NotImplemented", "InternalFailure", "500"}:
                return None
            raise AwsError(f"ListPipelineExecutionSteps failed: {exc}") from exc
        return [
            StepStatus(
                name=s["StepName"],
                status=s.get("StepStatus", "Unknown"),
                started=s.get("StartTime"),
                ended=s.get("EndTime"),
                failure_reason=s.get("FailureReason", ""),
                metadata=s.get("Metadata", {}),
            )
            for s in steps
        ]

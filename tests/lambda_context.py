"""A Lambda context object as the Lambda runtime passes it (the attributes Powertools'
`inject_lambda_context` reads; source: AWS Lambda Developer Guide, "Lambda context
object in Python")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    function_name: str = "mlflow-bridge"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mlflow-bridge"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/mlflow-bridge"
    log_stream_name: str = "2026/12/02/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000

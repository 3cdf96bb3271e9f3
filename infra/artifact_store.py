"""The S3 bucket for MLflow artifacts and pipeline data, and its access-log bucket."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

__all__ = ["ArtifactStore"]


def _private_bucket(scope: Construct, construct_id: str, **kwargs: object) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )


class ArtifactStore(Construct):
    MLFLOW_PREFIX = "mlflow"

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = _private_bucket(
            self, "AccessLogs", object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED
        )
        self.bucket = _private_bucket(
            self, "Artifacts", server_access_logs_bucket=self.access_logs, server_access_logs_prefix="artifacts/"
        )

    @property
    def mlflow_uri(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.MLFLOW_PREFIX}"

"""The S3 bucket for MLflow artifacts and pipeline data, and its access-log bucket."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

__all__ = ["ArtifactStore", "grant_other_accounts_model_reads", "grant_prefix", "key_in_bucket"]

# Object actions by need (S3 User Guide, "Amazon S3 actions"): multipart uploads are
# PutObject calls, except aborting one.
_READ = ["s3:GetObject"]
_WRITE = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def key_in_bucket(uri: str, bucket: str) -> str | None:
    """The key (prefix) of an s3:// URI in `bucket`, without slashes at its ends; None when
    the URI is in another bucket."""
    name, _, key = uri.removeprefix("s3://").partition("/")
    return key.strip("/") if name == bucket else None


def grant_prefix(bucket: s3.IBucket, role: iam.IRole, prefix: str, *, write: bool) -> None:
    """Objects under `prefix/` only, and listing only that prefix: explicit actions instead
    of CDK's grants, whose `GetBucket*`/`List*` apply to the whole bucket."""
    prefix = prefix.strip("/")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"Objects{'ReadWrite' if write else 'Read'}UnderThePrefix",
            actions=_READ + (_WRITE if write else []),
            resources=[bucket.arn_for_objects(f"{prefix}/*")],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ListThePrefixOnly",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}},
        )
    )


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


def grant_other_accounts_model_reads(bucket: s3.IBucket, prefix: str, accounts: list[str]) -> None:
    """Let endpoints in other accounts (stages with a `deploy_role_arn`) read what a model
    package names: its model.tar.gz (`<prefix>/models/`) and its inference code
    (`<prefix>/code/`). The endpoint's execution role there must allow the same reads. The
    bucket is SSE-S3 encrypted, so no key grant is needed; with SSE-KMS the key's policy
    would have to grant those accounts kms:Decrypt too."""
    prefix = prefix.strip("/")
    for account in sorted(set(accounts)):
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"ModelArtifactsFor{account}",
                principals=[iam.AccountPrincipal(account)],
                actions=_READ,
                resources=[bucket.arn_for_objects(f"{prefix}/models/*"), bucket.arn_for_objects(f"{prefix}/code/*")],
            )
        )

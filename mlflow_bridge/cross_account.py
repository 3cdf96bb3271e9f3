"""SageMaker clients for a stage endpoint in another account.

The bridge deploys there as a role of that account (the stage's `deploy_role_arn`), whose
credentials STS issues for an hour at most: a warm Lambda outlives them, so they are
refreshed before they expire. botocore's own assume-role fetcher and refreshable
credentials do that (what a profile with `role_arn` uses), rather than code of ours.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SESSION_NAME", "assumed_role_client"]

SESSION_NAME = "mlflow-bridge"  # what the other account's CloudTrail shows as the session


def assumed_role_client(service: str, role_arn: str, region: str | None) -> Any:
    """A boto3 client of `service` acting as `role_arn` (AssumeRole on first use, renewed
    before expiry). Raises botocore's ClientError (AccessDenied) on the first call when
    the role's trust policy does not name the bridge's role."""
    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    source = boto3.Session(region_name=region)
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=source._session.create_client,  # botocore's session under boto3's
        source_credentials=source.get_credentials(),
        role_arn=role_arn,
        extra_args={"RoleSessionName": SESSION_NAME},
    )
    assumed = botocore.session.get_session()
    # botocore has no public setter for refreshable credentials; a profile would need a file
    assumed._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    return boto3.Session(botocore_session=assumed, region_name=region).client(service)

"""The content identity of a pipeline's input data, so that SageMaker's step cache sees new
data under an old URI.

SageMaker keys a step's cache on its arguments ("Default cache key attributes by pipeline
step type", SageMaker developer guide): a processing input is its S3 URI, not the objects
behind it. A nightly retrain from `s3://bucket/latest.csv` would reuse last month's splits
and model for 30 days. `start` therefore resolves what the URI holds now and passes it as
the `InputDataIdentity` parameter, which Preprocess carries in its Environment (a cache key
attribute): the same objects hit the cache, changed objects rerun the step and everything
after it. Local mode keys its cache on the content itself and needs none of this.

The identity of one object is its VersionId in a versioned bucket, else its ETag (S3
changes both whenever the object is written with other bytes: "Object metadata", Amazon S3
user guide); of a prefix, a digest of every object's key, ETag and size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pipeline.errors import UsageError

__all__ = [
    "IDENTITY_PARAMETER",
    "INPUT_IDENTITY_ENV",
    "NOT_RESOLVED",
    "content_identity",
    "listing_identity",
    "object_identity",
]

IDENTITY_PARAMETER = "InputDataIdentity"
# The parameter's default: an execution started elsewhere (Studio, EventBridge) keys on the
# URI alone, as SageMaker does by itself.
NOT_RESOLVED = "not-resolved"
INPUT_IDENTITY_ENV = "MLOPS_INPUT_DATA_IDENTITY"  # Preprocess's environment variable holding it


def object_identity(head: dict[str, Any]) -> str:
    """`version:<id>` or `etag:<etag>` from a HeadObject answer."""
    version = head.get("VersionId")
    if version and version != "null":  # "null": written before versioning was enabled
        return f"version:{version}"
    return f"etag:{str(head['ETag']).strip(chr(34))}"


def listing_identity(objects: Iterable[dict[str, Any]]) -> str:
    """`listing:<digest>` of ListObjectsV2 `Contents` entries (order does not matter)."""
    lines = sorted(f"{o['Key']}\t{str(o['ETag']).strip(chr(34))}\t{o['Size']}" for o in objects)
    return f"listing:{hashlib.sha256(chr(10).join(lines).encode()).hexdigest()[:32]}"


def content_identity(s3_client: Any, uri: str, *, parameter: str = "InputDataUri") -> str:
    """The identity of what `uri` holds now, read as SageMaker's S3Prefix input reads it:
    every key starting with the URI's. Raises UsageError naming `parameter` when it holds
    nothing, before any job is paid for; botocore's ClientError for S3's other refusals
    (AccessDenied)."""
    if not uri.startswith("s3://"):
        raise UsageError(f"{parameter} must be an s3:// URI on SageMaker, not {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    # SageMaker's S3Prefix input reads every key that starts with the URI's: the listing is
    # the identity, unless the URI's object is the only one (then its VersionId or ETag)
    objects = [
        item
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
    if not objects:
        raise UsageError(f"{parameter} {uri} holds no object: upload the data first (nothing was started)")
    if [item["Key"] for item in objects] == [key]:
        return object_identity(s3_client.head_object(Bucket=bucket, Key=key))
    return listing_identity(objects)

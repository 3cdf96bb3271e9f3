"""What InputDataUri holds, as `start` passes it (pipeline/input_identity.py), against moto."""

from __future__ import annotations

import boto3
import pytest

from pipeline.errors import UsageError
from pipeline.input_identity import content_identity, listing_identity, object_identity


def test_an_object_is_identified_by_its_version_else_its_etag() -> None:
    assert object_identity({"ETag": '"abc"', "VersionId": "v1"}) == "version:v1"
    assert object_identity({"ETag": '"abc"', "VersionId": "null"}) == "etag:abc"  # written before versioning
    assert object_identity({"ETag": '"abc"'}) == "etag:abc"


def test_a_listing_is_identified_by_every_key_etag_and_size_in_any_order() -> None:
    a, b = {"Key": "p/a.csv", "ETag": '"1"', "Size": 3}, {"Key": "p/b.csv", "ETag": '"2"', "Size": 4}
    assert listing_identity([a, b]) == listing_identity([b, a])
    assert listing_identity([a, b]) != listing_identity([a, {**b, "ETag": '"3"'}])
    assert listing_identity([a, b]) != listing_identity([a])


def test_a_versioned_bucket_gives_each_write_its_own_identity(aws: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="versioned", Key="d/t.csv", Body=b"x\n1\n")
    first = content_identity(s3, "s3://versioned/d/t.csv")
    assert first.startswith("version:") and content_identity(s3, "s3://versioned/d/t.csv") == first
    s3.put_object(Bucket="versioned", Key="d/t.csv", Body=b"x\n1\n")  # a new version, even of the same bytes
    assert content_identity(s3, "s3://versioned/d/t.csv") != first


def test_a_key_prefix_is_read_as_sagemaker_reads_it(aws: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="daily/2026-12-01.csv", Body=b"x\n1\n")
    whole = content_identity(s3, "s3://data/daily/")
    assert content_identity(s3, "s3://data/daily") == whole  # not an object: the prefix's objects
    s3.put_object(Bucket="data", Key="daily/2026-12-02.csv", Body=b"x\n2\n")
    assert content_identity(s3, "s3://data/daily/") != whole


@pytest.mark.parametrize("uri", ["s3://data/none.csv", "s3://data/empty/"])
def test_an_input_that_holds_nothing_is_refused_naming_it(aws: str, uri: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    with pytest.raises(UsageError, match=f"InputDataUri {uri} holds no object"):
        content_identity(s3, uri)


def test_an_object_key_is_read_as_a_prefix_as_sagemaker_reads_it(aws: str) -> None:
    """`s3://b/data` names every key starting with `data` for SageMaker's S3Prefix input: a
    new `data/part-2.csv` beside the `data` object is new data."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="daily", Body=b"x\n1\n")
    alone = content_identity(s3, "s3://data/daily")
    assert alone.startswith("etag:")  # the only object: its own identity
    s3.put_object(Bucket="data", Key="daily/part-2.csv", Body=b"x\n2\n")
    assert content_identity(s3, "s3://data/daily").startswith("listing:")

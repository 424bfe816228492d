"""Reading a state file that may not exist yet, as S3 answers it to a role that may list only its
own prefix: a missing key is 403 there, not 404 (botocore's Stubber plays S3's answers)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from workloads.object_store import ObjectStore

KEY = "digits/alert-state.json"
FULL_KEY = f"reports/{KEY}"


@pytest.fixture
def stubbed() -> Iterator[tuple[ObjectStore, Stubber]]:
    store = ObjectStore("s3://bucket/reports")
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    store._client = client  # the store's lazily made client, replaced by one whose answers are scripted
    with Stubber(client) as stubber:
        yield store, stubber
        stubber.assert_no_pending_responses()


def _denied(stubber: Stubber) -> None:
    stubber.add_client_error(
        "get_object", "AccessDenied", "Access Denied", 403, expected_params={"Bucket": "bucket", "Key": FULL_KEY}
    )


def _listing(stubber: Stubber, keys: list[str]) -> None:
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": key} for key in keys], "KeyCount": len(keys)},
        expected_params={"Bucket": "bucket", "Prefix": FULL_KEY, "MaxKeys": 1},
    )


def test_a_403_for_a_key_the_prefix_does_not_list_is_a_missing_file(stubbed: tuple[ObjectStore, Stubber]) -> None:
    store, stubber = stubbed
    _denied(stubber)
    _listing(stubber, [])

    assert store.read_if_present(KEY) is None


def test_a_403_for_a_key_that_exists_is_a_real_denial(stubbed: tuple[ObjectStore, Stubber]) -> None:
    store, stubber = stubbed
    _denied(stubber)
    _listing(stubber, [FULL_KEY])

    with pytest.raises(ClientError, match="AccessDenied"):
        store.read_if_present(KEY)


def test_a_longer_key_under_the_same_prefix_does_not_count_as_the_file(stubbed: tuple[ObjectStore, Stubber]) -> None:
    store, stubber = stubbed
    _denied(stubber)
    _listing(stubber, [f"{FULL_KEY}.old"])

    assert store.read_if_present(KEY) is None


def test_a_404_needs_no_listing(stubbed: tuple[ObjectStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("get_object", "NoSuchKey", "missing", 404)

    assert store.read_if_present(KEY) is None

"""SecureBucket alone, under mocks: private, KMS-encrypted, versioned, TLS-only, with lifecycle, and
its guards kept with the bucket when the stack keeps its data."""

from __future__ import annotations

import json

import pytest

from tests.infra.component_mocks import bucket, declare, kms_key_arn, resolved

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def test_objects_are_encrypted_with_the_given_key_and_bucket_keys() -> None:
    declared = declare(lambda: bucket("artifacts"))

    (rule,) = declared.one(ENCRYPTION)["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "kmsMasterKeyId": kms_key_arn("artifacts"),
        "sseAlgorithm": "aws:kms",
    }
    assert rule["bucketKeyEnabled"] is True


def test_nothing_can_make_it_public_and_acls_are_off() -> None:
    declared = declare(lambda: bucket("artifacts"))

    flags = {key: value for key, value in declared.one(PUBLIC_ACCESS).items() if key != "bucket"}
    assert flags == dict.fromkeys(
        ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
    )
    ownership = declared.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_plain_http_and_old_tls_are_denied_on_the_bucket_and_its_objects() -> None:
    declared = declare(lambda: bucket("artifacts"))
    arn = resolved(declared.component.arn)

    statements = json.loads(declared.one(POLICY)["policy"])["Statement"]
    conditions = {statement["Sid"]: statement["Condition"] for statement in statements}
    assert conditions == {
        "DenyInsecureTransport": {"Bool": {"aws:SecureTransport": "false"}},
        "DenyOutdatedTls": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
    }
    for statement in statements:
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
        assert statement["Resource"] == [arn, f"{arn}/*"]
    # S3 rejects a policy write while the public-access block is still being applied.
    (policy,) = declared.of_type(POLICY)
    assert PUBLIC_ACCESS in policy["options"]["dependencyTypes"]


def test_old_versions_expire_and_current_objects_only_when_asked() -> None:
    kept = declare(lambda: bucket("artifacts"))
    expiring = declare(lambda: bucket("predictions", expire_after_days=90))

    versioning = kept.one("aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"]
    assert versioning == {"status": "Enabled"}
    (noncurrent,) = kept.one(LIFECYCLE)["rules"]
    assert noncurrent["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert noncurrent["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert "expiration" not in noncurrent
    rules = {rule["id"]: rule for rule in expiring.one(LIFECYCLE)["rules"]}
    assert rules["expire-current-objects"]["expiration"] == {"days": 90}
    assert rules["expire-current-objects"]["filter"] == {"prefix": ""}  # the whole bucket


@pytest.mark.parametrize("force_destroy", [False, True], ids=["kept", "destroyed"])
def test_a_kept_bucket_keeps_every_guard_and_a_destroyed_one_takes_its_objects(force_destroy: bool) -> None:
    declared = declare(lambda: bucket("datasets", force_destroy=force_destroy))

    assert declared.one(BUCKET)["forceDestroy"] is force_destroy
    children = [resource for resource in declared.resources if resource["type"].startswith("aws:")]
    assert len(children) == 7
    # Kept: `destroy` leaves the bucket *and* its guards (deleting them first would leave the data unguarded).
    assert {resource["options"]["retainOnDelete"] for resource in children} == {not force_destroy}


def test_registers_its_name_arn_and_key_and_builds_s3_uris() -> None:
    declared = declare(lambda: bucket("reports"))
    component = declared.component

    name, arn = resolved(component.name), resolved(component.arn)
    assert name.startswith("mlops-reports-") and arn == f"arn:aws:s3:::{name}"
    assert declared.outputs_of("mlops:storage:SecureBucket") == {
        "arn": arn,
        "kmsKeyArn": kms_key_arn("reports"),
        "name": name,
    }
    assert declared.one(BUCKET)["tags"] == {"Purpose": "reports"}
    assert resolved(component.s3_uri()) == f"s3://{name}"
    assert resolved(component.s3_uri("drift")) == f"s3://{name}/drift"

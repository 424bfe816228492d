"""One S3 bucket with every guard on: private, KMS-encrypted, versioned, TLS-only, with lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class SecureBucketArgs:
    purpose: str
    """What the bucket holds (`artifacts`, `datasets`, ...); used in names and tags."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key all objects are encrypted with (SSE-KMS, with S3 bucket keys)."""
    noncurrent_version_retention_days: int
    """Replaced or deleted object versions are kept this long, then expire."""
    force_destroy: bool
    """True: `pulumi destroy` deletes the bucket with every object version and delete marker in it
    (a versioned bucket is never empty otherwise, and `destroy` would stop at it). False: `destroy`
    leaves the bucket and its guards in the account, out of the stack's state (retain_on_delete).
    Required, so each stack decides."""
    current_version_expiration_days: int | None = None
    """Expire current objects after this many days (prediction logs); None keeps them."""


class SecureBucket(pulumi.ComponentResource):
    """A bucket nobody can make public by accident and nothing can read over plain HTTP."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    kms_key_arn: pulumi.Input[str]
    """The key its objects are encrypted with: whoever reads or writes them needs it too."""

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:storage:SecureBucket", name, None, opts)
        # A kept bucket keeps its guards: they depend on the bucket, so `destroy` would delete the
        # public-access block, the TLS-only policy and the encryption default first, then stop at the
        # non-empty bucket and leave the data unguarded.
        retain = not args.force_destroy
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=retain)

        # Auto-named (a random suffix): bucket names are global, and stacks must not collide.
        self.bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, tags={"Purpose": args.purpose}, opts=child)
        bucket_id = self.bucket.id

        public_access = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket_id,
            block_public_acls=True, ignore_public_acls=True,  # no public ACL set, none honoured
            block_public_policy=True, restrict_public_buckets=True,  # no public bucket policy set, none honoured
            opts=child,
        )
        # ACLs off: access is decided by IAM and the bucket policy alone.
        aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket_id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketVersioning(
            name,
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket_id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                    ),
                    # Bucket keys cut KMS requests (and cost) by orders of magnitude for many small objects.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(name, bucket=bucket_id, rules=self._lifecycle_rules(args), opts=child)

        self._tls_only_policy(name, public_access, retain)

        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.kms_key_arn = args.kms_key_arn
        self.register_outputs({"name": self.name, "arn": self.arn, "kmsKeyArn": self.kms_key_arn})

    def s3_uri(self, prefix: str = "") -> pulumi.Output[str]:
        """`s3://<bucket>` or `s3://<bucket>/<prefix>`: how workloads are told where to read and write."""
        if not prefix:
            return pulumi.Output.concat("s3://", self.name)
        return pulumi.Output.concat("s3://", self.name, f"/{prefix}")

    @staticmethod
    def _lifecycle_rules(args: SecureBucketArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        rules = [
            _whole_bucket_rule(
                "expire-noncurrent-versions",
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_version_retention_days
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
            )
        ]
        if args.current_version_expiration_days is not None:
            expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                days=args.current_version_expiration_days
            )
            rules.append(_whole_bucket_rule("expire-current-objects", expiration=expiration))
        return rules

    def _tls_only_policy(self, name: str, public_access: aws.s3.BucketPublicAccessBlock, retain: bool) -> None:
        deny_plain_http = {"Version": "2012-10-17", "Statement": tls_only_statements(self.bucket.arn)}
        aws.s3.BucketPolicy(
            name,
            bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps(deny_plain_http),
            # S3 rejects a policy write while the public-access block is still being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access], retain_on_delete=retain),
        )


def tls_only_statements(bucket_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The bucket policy's statements: no request over plain HTTP, none over TLS older than 1.2.

    Plain data for a plain `str` ARN (the policy pack's tests use them as a compliant bucket policy).
    """
    objects = f"{bucket_arn}/*" if isinstance(bucket_arn, str) else pulumi.Output.concat(bucket_arn, "/*")
    refused = {
        "DenyInsecureTransport": {"Bool": {"aws:SecureTransport": "false"}},
        "DenyOutdatedTls": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
    }
    return [
        {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects],
            "Condition": condition,
        }
        for sid, condition in refused.items()
    ]


def _whole_bucket_rule(rule_id: str, **actions: Any) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """An enabled lifecycle rule over every object of the bucket; `actions` say what it does."""
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    return aws.s3.BucketLifecycleConfigurationRuleArgs(id=rule_id, status="Enabled", filter=whole_bucket, **actions)

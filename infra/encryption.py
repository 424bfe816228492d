"""Customer-managed KMS keys: one per kind of data, so access and audit can be scoped per kind."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class EncryptionKeysArgs:
    alias_prefix: str
    """Alias prefix, e.g. `mlops-dev`: keys are `alias/mlops-dev/eks-secrets`, and so on."""
    deletion_window_days: int
    """Days a scheduled key deletion can still be cancelled (7-30); long in prod."""
    retain_on_delete: bool = False
    """Leave the keys in the account when `pulumi destroy` runs: where the snapshots and bucket
    objects they encrypt survive the stack, deleting the keys would make that data unreadable."""


class EncryptionKeys(pulumi.ComponentResource):
    """Rotating KMS keys for EKS secrets (envelope encryption), RDS storage, S3 objects and SNS alerts."""

    eks_secrets: aws.kms.Key
    databases: aws.kms.Key
    buckets: aws.kms.Key
    alerts: aws.kms.Key

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:encryption:EncryptionKeys", name, None, opts)
        self.eks_secrets = self._key(name, args, "eks-secrets", "EKS Kubernetes secrets envelope encryption")
        self.databases = self._key(name, args, "databases", "RDS storage, snapshots and master-user secrets")
        self.buckets = self._key(name, args, "buckets", "S3 artifacts, datasets, predictions and reports")
        # Alert messages name models, versions and error rates: encrypted at rest like the rest.
        self.alerts = self._key(name, args, "alerts", "SNS alert topic messages")
        self.register_outputs(
            {
                "eksSecretsKeyArn": self.eks_secrets.arn,
                "databasesKeyArn": self.databases.arn,
                "bucketsKeyArn": self.buckets.arn,
                "alertsKeyArn": self.alerts.arn,
            }
        )

    def _key(self, name: str, args: EncryptionKeysArgs, purpose: str, description: str) -> aws.kms.Key:
        # The default key policy delegates to IAM, so each workload role's own policy decides who may
        # use which key: least privilege stays in one place (infra/workload_role.py).
        key = aws.kms.Key(
            f"{name}-{purpose}",
            description=f"{args.alias_prefix}: {description}",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete),
        )
        aws.kms.Alias(
            f"{name}-{purpose}",
            name=f"alias/{args.alias_prefix}/{purpose}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=key),
        )
        return key

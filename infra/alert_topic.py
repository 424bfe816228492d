"""The stack's SNS topic for alerts: where Alertmanager and the drift jobs publish, besides the webhook.

One topic per environment, encrypted with the stack's alerts key. Who receives it is a subscription
(e-mail, a pager's HTTPS endpoint, a chat bridge) added by the team with `aws sns subscribe`: the
addresses are the team's, not the platform's, so they are not in the stack files.

Publishers get exactly `sns:Publish` on this topic and, because it is encrypted, `kms:GenerateDataKey`
and `kms:Decrypt` on its key (what the SNS developer guide's server-side encryption page lists for a
publisher to an encrypted topic). The key's default policy delegates to IAM (infra/encryption.py);
an AWS service publishing here (a CloudWatch alarm) would need a key-policy grant as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam_policies import Statement, policy_document


@dataclass(frozen=True)
class AlertTopicArgs:
    name: str
    """Physical topic name, e.g. `mlops-dev-model-alerts`."""
    kms_key_arn: pulumi.Input[str]


class AlertTopic(pulumi.ComponentResource):
    """An encrypted SNS topic whose policy refuses requests without TLS."""

    arn: pulumi.Output[str]
    kms_key_arn: pulumi.Input[str]

    def __init__(self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:AlertTopic", name, None, opts)
        topic = aws.sns.Topic(
            name, name=args.name, kms_master_key_id=args.kms_key_arn, opts=pulumi.ResourceOptions(parent=self)
        )
        # Same-account publishers are allowed by their IAM policy; this only adds the TLS requirement.
        aws.sns.TopicPolicy(
            f"{name}-tls-only",
            arn=topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = topic.arn
        self.kms_key_arn = args.kms_key_arn
        self.register_outputs({"arn": self.arn})

    def publish_statements(self) -> list[Statement]:
        """What a publisher needs: publish to this topic, and encrypt with (and read back) its key."""
        return [
            {"Sid": "PublishAlerts", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": self.arn},
            {
                "Sid": "EncryptAlerts",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": self.kms_key_arn,
            },
        ]

"""IAM roles for Kubernetes service accounts (IRSA): a pod gets exactly the AWS access it needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam_policies import policy_document


@dataclass(frozen=True)
class ClusterIdentity:
    """What a trust policy needs to know about the cluster's OIDC identity provider."""

    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_host: pulumi.Input[str]
    """Issuer URL without `https://`, as IAM condition keys spell it."""


@dataclass(frozen=True)
class WorkloadRoleArgs:
    cluster: ClusterIdentity
    namespace: str
    service_account: str
    policy_statements: list[dict[str, Any]]
    """IAM statements (may contain Outputs). Keep them to named actions on named resources."""
    managed_policy_arns: tuple[str, ...] = ()
    """AWS-managed policies for add-ons whose upstream documents them (e.g. the EBS CSI driver)."""


def trust_policy(cluster: ClusterIdentity, namespace: str, service_account: str) -> pulumi.Output[str]:
    """Only this service account in this namespace of this cluster may assume the role.

    Pinning both `sub` and `aud` with StringEquals is what stops any other pod (or any other
    cluster's tokens) from assuming it.
    """
    return pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer_host).apply(
        lambda values: _web_identity_trust(str(values[0]), str(values[1]), namespace, service_account)
    )


def _web_identity_trust(provider_arn: str, issuer_host: str, namespace: str, service_account: str) -> str:
    token_is_for_this_account = {
        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
        f"{issuer_host}:aud": "sts.amazonaws.com",
    }
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": token_is_for_this_account},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


class WorkloadRole(pulumi.ComponentResource):
    """An IRSA role for one (namespace, service account) with the policy it is given and no more."""

    role: aws.iam.Role
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:iam:WorkloadRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            name,
            assume_role_policy=trust_policy(args.cluster, args.namespace, args.service_account),
            description=f"IRSA role for {args.namespace}/{args.service_account}",
            max_session_duration=3600,
            opts=child,
        )
        if args.policy_statements:
            aws.iam.RolePolicy(
                name,
                role=self.role.id,
                policy=policy_document(args.policy_statements),
                opts=child,
            )
        for index, policy_arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-managed-{index}", role=self.role.name, policy_arn=policy_arn, opts=child
            )
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})


def service_account_with_role(
    name: str, args: WorkloadRoleArgs, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> WorkloadRole:
    """The IRSA role and the ServiceAccount that carries its ARN: what every AWS-calling pod runs as.

    The account mounts no API token by default and has no RBAC bindings; pods that call AWS opt into
    the token mount themselves (the pod identity webhook needs it).
    """
    role = WorkloadRole(f"{name}-role", args, opts=opts)
    k8s.core.v1.ServiceAccount(
        f"{name}-service-account",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=args.service_account,
            namespace=args.namespace,
            labels=labels,
            annotations={"eks.amazonaws.com/role-arn": role.arn},
        ),
        automount_service_account_token=False,
        opts=opts,
    )
    return role

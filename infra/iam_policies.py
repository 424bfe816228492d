"""Least-privilege IAM statements for the cluster add-ons that call AWS.

Read-only `Describe*` calls cannot be scoped to resources in IAM, so they use `*`; calls that change
something are limited to resources tagged as belonging to *this* cluster wherever the controller
tags them. Each builder covers its controller's upstream reference policy at the pinned version
(infra/controller_reference_policies.py lists it, and where and why we grant less).

The builders take the cluster name as a plain `str` too, and then return plain data, which is how
tests compare them with the reference.
"""

from __future__ import annotations

from typing import Any

import pulumi

Statement = dict[str, Any]
POLICY_VERSION = "2012-10-17"
"""The IAM policy language version every policy document of the platform is written in."""


def policy_document(statements: list[Statement]) -> pulumi.Output[str]:
    """The JSON policy document of `statements` (Outputs among them resolved), as `policy` arguments take it."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": statements})


def _suffixed(prefix: str, cluster_name: pulumi.Input[str]) -> pulumi.Input[str]:
    """`prefix + cluster_name`, left a plain `str` when the name is one (`Output.concat` never is)."""
    if isinstance(cluster_name, str):
        return prefix + cluster_name
    return pulumi.Output.concat(prefix, cluster_name)


def cluster_autoscaler_statements(cluster_name: pulumi.Input[str]) -> list[Statement]:
    owned_tag = _suffixed("aws:ResourceTag/k8s.io/cluster-autoscaler/", cluster_name)
    return [
        {
            "Sid": "ReadScalingState",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                # Scale-from-zero of managed node groups reads labels and taints from EKS.
                "eks:DescribeNodegroup",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ScaleOwnGroupsOnly",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {owned_tag: "owned", "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true"}
            },
        },
    ]


_LB_TAG = "elbv2.k8s.aws/cluster"


def load_balancer_controller_statements(cluster_name: pulumi.Input[str]) -> list[Statement]:
    """What the AWS Load Balancer Controller needs to run ALBs/NLBs for Ingresses and Services: look
    everything up, keep security groups, create and tag load balancers, then manage its own."""
    return [
        *_lb_discovery_statements(),
        *_lb_security_group_statements(cluster_name),
        *_lb_creation_statements(cluster_name),
        *_lb_management_statements(cluster_name),
    ]


def _lb_resource_is_ours(cluster_name: pulumi.Input[str]) -> dict[str, Any]:
    return {"StringEquals": {f"aws:ResourceTag/{_LB_TAG}": cluster_name}}


def _lb_discovery_statements() -> list[Statement]:
    """ELB's service-linked role, and the read-only calls (which IAM cannot scope to resources)."""
    return [
        {
            "Sid": "ElbServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        },
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:DescribeRouteTables",
                "ec2:DescribeIpamPools",
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeCapacityReservation",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                "cognito-idp:DescribeUserPoolClient",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
            ],
            "Resource": "*",
        },
    ]


def _lb_security_group_statements(cluster_name: pulumi.Input[str]) -> list[Statement]:
    """Create security groups tagged as this cluster's, change only those, open target ports on others."""
    resource_is_ours = _lb_resource_is_ours(cluster_name)
    return [
        {
            "Sid": "CreateTaggedSecurityGroups",
            "Effect": "Allow",
            "Action": "ec2:CreateSecurityGroup",
            "Resource": "*",
        },
        {
            "Sid": "TagSecurityGroupsAtCreation",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": "arn:aws:ec2:*:*:security-group/*",
            "Condition": {
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", f"aws:RequestTag/{_LB_TAG}": cluster_name}
            },
        },
        {
            "Sid": "ManageOwnSecurityGroups",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            "Resource": "*",
            "Condition": resource_is_ours,
        },
        {
            # Worker-node security groups are not the controller's; it only opens target ports on them.
            "Sid": "OpenTargetPorts",
            "Effect": "Allow",
            "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            "Resource": "*",
        },
    ]


def _lb_creation_statements(cluster_name: pulumi.Input[str]) -> list[Statement]:
    """Create load balancers and target groups tagged as this cluster's; tag listeners and rules."""
    request_is_ours = {"StringEquals": {f"aws:RequestTag/{_LB_TAG}": cluster_name}}
    elb = "arn:aws:elasticloadbalancing:*:*"
    return [
        {
            "Sid": "CreateOwnLoadBalancers",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            "Resource": "*",
            "Condition": request_is_ours,
        },
        {
            "Sid": "TagAtCreation",
            "Effect": "Allow",
            "Action": "elasticloadbalancing:AddTags",
            "Resource": [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*", f"{elb}:loadbalancer/app/*/*"],
            "Condition": {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                    f"aws:RequestTag/{_LB_TAG}": cluster_name,
                }
            },
        },
        {
            # v2.17.1 tags listeners and rules when it creates them and on every update (feature gate
            # ListenerRulesTagging, on by default); without this, creating an Ingress's listener fails.
            # Unconditioned, as upstream grants it.
            "Sid": "TagListenersAndRules",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            "Resource": [
                f"{elb}:listener/net/*/*/*",
                f"{elb}:listener/app/*/*/*",
                f"{elb}:listener-rule/net/*/*/*",
                f"{elb}:listener-rule/app/*/*/*",
            ],
        },
    ]


def _lb_management_statements(cluster_name: pulumi.Input[str]) -> list[Statement]:
    """Change and delete only this cluster's load balancers; listeners, rules and targets on any."""
    resource_is_ours = _lb_resource_is_ours(cluster_name)
    return [
        {
            "Sid": "ManageOwnLoadBalancers",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            "Resource": "*",
            "Condition": resource_is_ours,
        },
        {
            # Unconditioned, as upstream grants them: a TargetGroupBinding may name a target group the
            # controller did not create, which carries no cluster tag.
            "Sid": "ManageListenersAndTargets",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            "Resource": "*",
        },
    ]


def bucket_prefix_statements(
    bucket_arn: pulumi.Input[str],
    prefix: str,
    kms_key_arn: pulumi.Input[str],
    actions: tuple[str, ...] = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
    sid: str = "Data",
) -> list[Statement]:
    """Object access under one prefix of one bucket (and listing only that prefix), plus its KMS key.

    `sid` prefixes the statement ids, which must be unique when one policy holds several prefixes.

    The one shape every workload's data access takes: a tracking server on `mlflow/`, a model
    service on `<model>/` of the predictions bucket, Kubeflow Pipelines on `pipelines/`.
    """
    key_actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if "s3:PutObject" in actions else [])
    return [
        {
            "Sid": f"{sid}ListPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}},
        },
        {
            "Sid": f"{sid}ObjectsUnderPrefix",
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*"),
        },
        {"Sid": f"{sid}UseBucketKey", "Effect": "Allow", "Action": key_actions, "Resource": kms_key_arn},
    ]

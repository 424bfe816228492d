"""What each AWS-calling controller's upstream reference IAM policy grants, at the version we pin.

Facts read from the upstream sources named below (actions, resource patterns, conditions), not
copies of those files. `tests/infra/test_controller_iam.py` proves that the statements in
`infra/iam_policies.py` grant at least this, apart from the deliberate narrowings listed with each
reference and their reasons. Bump a pinned version, re-read its source, and update this module.
"""

from __future__ import annotations

from dataclasses import dataclass

CLUSTER = "{cluster}"
"""Stands for the cluster's name in recorded condition keys and values."""


@dataclass(frozen=True)
class Condition:
    """One IAM condition clause: `{operator: {key: values}}` (values are OR-ed)."""

    operator: str
    key: str
    values: tuple[str, ...]

    def for_cluster(self, cluster_name: str) -> Condition:
        return Condition(
            self.operator,
            self.key.replace(CLUSTER, cluster_name),
            tuple(value.replace(CLUSTER, cluster_name) for value in self.values),
        )


@dataclass(frozen=True)
class ReferenceStatement:
    """One upstream Allow statement; all its conditions must hold (AND)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class OmittedAction:
    """An upstream action we do not grant at all."""

    action: str
    reason: str


@dataclass(frozen=True)
class TighterCondition:
    """For these actions we require `ours` where upstream requires `instead_of` (None: nothing)."""

    actions: tuple[str, ...]
    ours: Condition
    instead_of: Condition | None
    reason: str


Narrowing = OmittedAction | TighterCondition


@dataclass(frozen=True)
class ReferencePolicy:
    controller: str
    version: str
    source: str
    """Repository, path and tag the statements were read from."""
    statements: tuple[ReferenceStatement, ...]
    narrowings: tuple[Narrowing, ...] = ()


@dataclass(frozen=True)
class ManagedPolicy:
    """A controller whose role gets an AWS-managed policy: AWS keeps it current, nothing to compare."""

    controller: str
    policy_arn: str
    source: str


def _null(key: str, is_null: bool) -> Condition:
    return Condition("Null", key, ("true" if is_null else "false",))


def _equals(key: str, *values: str) -> Condition:
    return Condition("StringEquals", key, values)


# --- AWS Load Balancer Controller ---------------------------------------------------------------

LOAD_BALANCER_CONTROLLER_CHART = "1.17.1"
"""The chart version whose appVersion is v2.17.1 (helm/aws-load-balancer-controller/Chart.yaml @ v2.17.1)."""

_ELB = "arn:aws:elasticloadbalancing:*:*"
_LOAD_BALANCERS_AND_TARGET_GROUPS = (
    f"{_ELB}:targetgroup/*/*",
    f"{_ELB}:loadbalancer/net/*/*",
    f"{_ELB}:loadbalancer/app/*/*",
)
_LISTENERS_AND_RULES = (
    f"{_ELB}:listener/net/*/*/*",
    f"{_ELB}:listener/app/*/*/*",
    f"{_ELB}:listener-rule/net/*/*/*",
    f"{_ELB}:listener-rule/app/*/*/*",
)
_SECURITY_GROUPS = ("arn:aws:ec2:*:*:security-group/*",)
_LB_REQUEST_TAG = "aws:RequestTag/elbv2.k8s.aws/cluster"
_LB_RESOURCE_TAG = "aws:ResourceTag/elbv2.k8s.aws/cluster"
_LB_MODIFY_OWN = (
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
)
_WAF_CLASSIC = (
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL",
)
_OWN_CLUSTER_ONLY = (
    "upstream accepts any value of the tag, so also resources of other clusters' controllers in the account; "
    "we require this cluster's name, the value the controller sets (its --cluster-name)"
)


def _own_cluster_only(tag: str, *actions: str) -> TighterCondition:
    """Upstream requires the cluster tag `tag` to be present; we require it to name this cluster."""
    return TighterCondition(actions, ours=_equals(tag, CLUSTER), instead_of=_null(tag, False), reason=_OWN_CLUSTER_ONLY)


LOAD_BALANCER_CONTROLLER = ReferencePolicy(
    controller="aws-load-balancer-controller",
    version="v2.17.1",
    source="kubernetes-sigs/aws-load-balancer-controller docs/install/iam_policy.json @ v2.17.1",
    statements=(
        ReferenceStatement(
            ("iam:CreateServiceLinkedRole",),
            conditions=(_equals("iam:AWSServiceName", "elasticloadbalancing.amazonaws.com"),),
        ),
        ReferenceStatement(
            (
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
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "ec2:DescribeIpamPools",
                "ec2:DescribeRouteTables",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeCapacityReservation",
            )
        ),
        ReferenceStatement(
            (
                "cognito-idp:DescribeUserPoolClient",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                *_WAF_CLASSIC,
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            )
        ),
        ReferenceStatement(("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress")),
        ReferenceStatement(("ec2:CreateSecurityGroup",)),
        ReferenceStatement(
            ("ec2:CreateTags",),
            _SECURITY_GROUPS,
            (_equals("ec2:CreateAction", "CreateSecurityGroup"), _null(_LB_REQUEST_TAG, False)),
        ),
        ReferenceStatement(
            ("ec2:CreateTags", "ec2:DeleteTags"),
            _SECURITY_GROUPS,
            (_null(_LB_REQUEST_TAG, True), _null(_LB_RESOURCE_TAG, False)),
        ),
        ReferenceStatement(
            ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"),
            conditions=(_null(_LB_RESOURCE_TAG, False),),
        ),
        ReferenceStatement(
            ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"),
            conditions=(_null(_LB_REQUEST_TAG, False),),
        ),
        ReferenceStatement(
            (
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            )
        ),
        ReferenceStatement(
            ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"),
            _LOAD_BALANCERS_AND_TARGET_GROUPS,
            (_null(_LB_REQUEST_TAG, True), _null(_LB_RESOURCE_TAG, False)),
        ),
        # Listeners and rules are tagged at creation and on every update (feature gate
        # ListenerRulesTagging, on by default): upstream grants this with no condition.
        ReferenceStatement(("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"), _LISTENERS_AND_RULES),
        ReferenceStatement(_LB_MODIFY_OWN, conditions=(_null(_LB_RESOURCE_TAG, False),)),
        ReferenceStatement(
            ("elasticloadbalancing:AddTags",),
            _LOAD_BALANCERS_AND_TARGET_GROUPS,
            (
                _equals("elasticloadbalancing:CreateAction", "CreateTargetGroup", "CreateLoadBalancer"),
                _null(_LB_REQUEST_TAG, False),
            ),
        ),
        ReferenceStatement(
            ("elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"),
            (f"{_ELB}:targetgroup/*/*",),
        ),
        ReferenceStatement(
            (
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
            )
        ),
    ),
    narrowings=(
        *(
            OmittedAction(
                action,
                "WAF Classic, which AWS has retired; v2.17.1 calls it only for an Ingress annotated "
                "alb.ingress.kubernetes.io/waf-acl-id or web-acl-id (pkg/ingress/model_build_load_balancer_addons.go), "
                "which this platform never sets (it would use wafv2)",
            )
            for action in _WAF_CLASSIC
        ),
        _own_cluster_only(
            _LB_REQUEST_TAG,
            "ec2:CreateTags",
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:AddTags",
        ),
        _own_cluster_only(
            _LB_RESOURCE_TAG,
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:DeleteSecurityGroup",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
            *_LB_MODIFY_OWN,
        ),
    ),
)


# --- Cluster Autoscaler -------------------------------------------------------------------------

_SCALING = ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup")
_AUTOSCALER_STATEMENTS = (
    ReferenceStatement(
        (
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup",
        )
    ),
    ReferenceStatement(_SCALING),
)
_DISCOVERED_GROUPS_ONLY = (
    "the README recommends tag conditions on these; EKS tags every managed node group's ASG with "
    "k8s.io/cluster-autoscaler/<cluster>=owned and k8s.io/cluster-autoscaler/enabled=true, the tags "
    "auto-discovery selects on, so exactly the groups it scales match"
)
_AUTOSCALER_NARROWINGS = tuple(
    TighterCondition(_SCALING, ours=_equals(key, value), instead_of=None, reason=_DISCOVERED_GROUPS_ONLY)
    for key, value in (
        (f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER}", "owned"),
        ("aws:ResourceTag/k8s.io/cluster-autoscaler/enabled", "true"),
    )
)


def _autoscaler(image_tag: str) -> ReferencePolicy:
    return ReferencePolicy(
        controller="cluster-autoscaler",
        version=image_tag,
        source=(
            "kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, "
            '"Full Cluster Autoscaler Features Policy (Recommended)" '
            f"@ cluster-autoscaler-{image_tag.removeprefix('v')}"
        ),
        statements=_AUTOSCALER_STATEMENTS,
        narrowings=_AUTOSCALER_NARROWINGS,
    )


# Read at each tag: the policy is the same from 1.32.7 through 1.35.2.
CLUSTER_AUTOSCALER = {
    tag: _autoscaler(tag) for tag in ("v1.32.7", "v1.33.6", "v1.34.5", "v1.35.0", "v1.35.1", "v1.35.2")
}
"""By image tag, the values of `CLUSTER_AUTOSCALER_IMAGE_TAGS` in infra/cluster_addons.py."""


# --- EBS CSI driver -----------------------------------------------------------------------------

EBS_CSI_DRIVER = ManagedPolicy(
    controller="aws-ebs-csi-driver",
    policy_arn="arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
    # The add-on version is EKS's default for the cluster version, and AWS updates this policy with it.
    source="kubernetes-sigs/aws-ebs-csi-driver docs/install.md (AWS maintains the managed policy)",
)

"""Each controller's IAM policy grants at least its upstream reference, but for the listed narrowings.

Action by action: for every action of every reference statement, one of our Allow statements must
allow it on resources no narrower and under conditions no narrower, where a condition of ours
either covers one of the reference's or is a listed `TighterCondition`. Every listed narrowing must
be one we need, so the list cannot grow stale or hide an unreviewed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import pytest

from infra import controller_reference_policies as reference
from infra.cluster_addons import CLUSTER_AUTOSCALER_IMAGE_TAGS, LOAD_BALANCER_CONTROLLER
from infra.controller_reference_policies import Condition, OmittedAction, ReferencePolicy, TighterCondition
from infra.iam_policies import Statement, cluster_autoscaler_statements, load_balancer_controller_statements
from tests.offline_plans import STACKS, offline_plan

CLUSTER_NAME = "mlops-test"

Builder = Callable[[str], list[Statement]]
POLICIES: list[tuple[ReferencePolicy, Builder]] = [
    (reference.LOAD_BALANCER_CONTROLLER, load_balancer_controller_statements),
    *(
        (reference.CLUSTER_AUTOSCALER[tag], cluster_autoscaler_statements)
        for tag in CLUSTER_AUTOSCALER_IMAGE_TAGS.values()
    ),
]
POLICY_IDS = [f"{policy.controller}-{policy.version}" for policy, _ in POLICIES]


@dataclass(frozen=True)
class Grant:
    """One of our Allow statements, as plain sets."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Need:
    """One reference action (on its statement's resources, under its conditions) we must cover."""

    action: str
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]


def _strings(value: Any) -> tuple[str, ...]:
    values = tuple(value) if isinstance(value, list) else (value,)
    assert all(isinstance(item, str) for item in values), f"not plain strings: {values!r}"
    return values


def _grants(statements: Iterable[Statement]) -> list[Grant]:
    return [
        Grant(
            sid=statement.get("Sid", ""),
            actions=_strings(statement["Action"]),
            resources=_strings(statement["Resource"]),
            conditions=tuple(
                Condition(operator, key, _strings(values))
                for operator, clauses in statement.get("Condition", {}).items()
                for key, values in clauses.items()
            ),
        )
        for statement in statements
        if statement["Effect"] == "Allow"
    ]


def _needs(policy: ReferencePolicy) -> list[Need]:
    return [
        Need(action, statement.resources, statement.conditions)
        for statement in policy.statements
        for action in statement.actions
    ]


def _allows(grant: Grant, action: str) -> bool:
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in grant.actions)


def _covers_resources(grant: Grant, resources: tuple[str, ...]) -> bool:
    # A reference pattern is covered when one of ours matches it read as a literal ARN.
    return all(any(fnmatchcase(theirs, ours) for ours in grant.resources) for theirs in resources)


def _covers_condition(ours: Condition, theirs: Condition) -> bool:
    # Values are OR-ed: accepting more values is no narrower.
    return (ours.operator, ours.key) == (theirs.operator, theirs.key) and set(ours.values) >= set(theirs.values)


def _narrowing_for(clause: Condition, need: Need, policy: ReferencePolicy) -> TighterCondition | None:
    for narrowing in policy.narrowings:
        if (
            isinstance(narrowing, TighterCondition)
            and need.action in narrowing.actions
            and narrowing.ours.for_cluster(CLUSTER_NAME) == clause
            and (narrowing.instead_of is None or narrowing.instead_of in need.conditions)
        ):
            return narrowing
    return None


def _narrowings_needed(grant: Grant, need: Need, policy: ReferencePolicy) -> frozenset[TighterCondition] | None:
    """The listed narrowings `grant` relies on to cover `need`; None when it cannot cover it."""
    if not _allows(grant, need.action) or not _covers_resources(grant, need.resources):
        return None
    used: set[TighterCondition] = set()
    for clause in grant.conditions:
        if any(_covers_condition(clause, theirs) for theirs in need.conditions):
            continue
        narrowing = _narrowing_for(clause, need, policy)
        if narrowing is None:
            return None
        used.add(narrowing)
    return frozenset(used)


@dataclass(frozen=True)
class Audit:
    uncovered: list[Need]
    """Reference grants we lack with no listed reason."""
    narrowed: set[tuple[TighterCondition, str]]
    """(narrowing, action) pairs some reference grant could only be covered with."""


def audit(policy: ReferencePolicy, statements: Iterable[Statement]) -> Audit:
    grants = _grants(statements)
    omitted = {n.action for n in policy.narrowings if isinstance(n, OmittedAction)}
    uncovered: list[Need] = []
    narrowed: set[tuple[TighterCondition, str]] = set()
    for need in _needs(policy):
        if need.action in omitted:
            continue
        options = [used for grant in grants if (used := _narrowings_needed(grant, need, policy)) is not None]
        if not options:
            uncovered.append(need)
            continue
        narrowed.update((narrowing, need.action) for narrowing in min(options, key=len))
    return Audit(uncovered, narrowed)


@pytest.mark.parametrize(("policy", "build"), POLICIES, ids=POLICY_IDS)
def test_our_policy_grants_at_least_the_reference(policy: ReferencePolicy, build: Builder) -> None:
    uncovered = audit(policy, build(CLUSTER_NAME)).uncovered
    assert uncovered == [], f"{policy.source}: not granted, and not a listed narrowing"


@pytest.mark.parametrize(("policy", "build"), POLICIES, ids=POLICY_IDS)
def test_every_listed_narrowing_is_one_we_make(policy: ReferencePolicy, build: Builder) -> None:
    grants = _grants(build(CLUSTER_NAME))
    referenced = {need.action for need in _needs(policy)}
    narrowed = audit(policy, build(CLUSTER_NAME)).narrowed
    for narrowing in policy.narrowings:
        assert narrowing.reason
        if isinstance(narrowing, OmittedAction):
            assert narrowing.action in referenced, f"{narrowing.action} is not in {policy.source}"
            assert not any(_allows(grant, narrowing.action) for grant in grants), f"{narrowing.action} is granted"
        else:
            unused = [action for action in narrowing.actions if (narrowing, action) not in narrowed]
            assert unused == [], f"listed as narrowed by {narrowing.ours} but not needed"


def test_the_check_fails_without_listener_tagging() -> None:
    """The statement v2.17.1 needs to tag listeners and rules at creation is what the check enforces."""
    statements = [s for s in load_balancer_controller_statements(CLUSTER_NAME) if s["Sid"] != "TagListenersAndRules"]
    uncovered = audit(reference.LOAD_BALANCER_CONTROLLER, statements).uncovered
    assert {need.action for need in uncovered} == {"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}
    assert all("listener" in need.resources[0] for need in uncovered)


def test_an_unlisted_tighter_condition_is_caught() -> None:
    statements = cluster_autoscaler_statements(CLUSTER_NAME)
    statements[0] = {**statements[0], "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}
    uncovered = audit(reference.CLUSTER_AUTOSCALER["v1.34.5"], statements).uncovered
    assert {need.action for need in uncovered} >= {"eks:DescribeNodegroup", "ec2:DescribeImages"}


def test_every_pinned_controller_version_has_a_recorded_reference() -> None:
    # Bumping a pin without re-reading its upstream policy fails here.
    assert set(CLUSTER_AUTOSCALER_IMAGE_TAGS.values()) <= set(reference.CLUSTER_AUTOSCALER)
    assert LOAD_BALANCER_CONTROLLER.version == reference.LOAD_BALANCER_CONTROLLER_CHART


def _cluster_name(plan: Mapping[str, Any]) -> str:
    (cluster,) = [r for r in plan["resources"] if r["type"] == "aws:eks/cluster:Cluster"]
    return cluster["inputs"]["name"]


def _role_policy(plan: Mapping[str, Any], name: str) -> list[Statement]:
    (policy,) = [
        r["inputs"]["policy"]
        for r in plan["resources"]
        if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"] == name
    ]
    return json.loads(policy)["Statement"]


@pytest.mark.parametrize("stack", STACKS)
def test_deployed_policies_are_the_ones_checked(stack: str) -> None:
    """The stacks pass the cluster name as an Output; what they deploy equals the plain-string build."""
    plan = offline_plan(stack)
    name = _cluster_name(plan)
    assert _role_policy(plan, "mlops-addons-cluster-autoscaler") == cluster_autoscaler_statements(name)
    assert _role_policy(plan, "mlops-addons-load-balancer-controller") == load_balancer_controller_statements(name)


@pytest.mark.parametrize("stack", STACKS)
def test_ebs_csi_driver_gets_only_the_aws_managed_policy(stack: str) -> None:
    """AWS maintains the EBS CSI driver's policy, so there is no reference to compare, only this."""
    resources = [r for r in offline_plan(stack)["resources"] if r["name"].startswith("mlops-eks-ebs-csi")]
    attached = [
        r["inputs"]["policyArn"] for r in resources if r["type"].endswith("rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert attached == [reference.EBS_CSI_DRIVER.policy_arn]
    assert not [r for r in resources if r["type"] == "aws:iam/rolePolicy:RolePolicy"]

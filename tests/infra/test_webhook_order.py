"""Finding 6: nothing a webhook or controller handles can be created before that controller runs.

The Load Balancer Controller's Service mutator and Ingress validator fail closed, and custom
resources need their definitions and controllers: the plan's dependency graph must put the add-ons
before every Service, Ingress and custom resource, including those of the KFP install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infra.webhook_order import needs_controllers
from tests.offline_plans import STACKS, offline_plan

CONTROLLER = "mlops-addons-load-balancer-controller"


def _waits_for(plan: Mapping[str, Any]) -> dict[str, set[str]]:
    """Resource name -> every name it waits for, directly or through what it waits for."""
    direct: dict[str, set[str]] = {}
    for resource in plan["resources"]:
        direct.setdefault(resource["name"], set()).update(resource["dependencies"])
    closure: dict[str, set[str]] = {}

    def visit(name: str) -> set[str]:
        if name not in closure:
            closure[name] = set()
            for dependency in direct.get(name, ()):
                closure[name] |= {dependency, *visit(dependency)}
        return closure[name]

    for name in direct:
        visit(name)
    return closure


def created_before_controller(plan: Mapping[str, Any]) -> list[str]:
    waits = _waits_for(plan)
    return sorted(
        resource["name"]
        for resource in plan["resources"]
        if needs_controllers(resource["type"]) and CONTROLLER not in waits[resource["name"]]
    )


def test_which_types_wait() -> None:
    assert needs_controllers("kubernetes:core/v1:Service")
    assert needs_controllers("kubernetes:networking.k8s.io/v1:Ingress")
    assert needs_controllers("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert not needs_controllers("kubernetes:apps/v1:Deployment")
    assert not needs_controllers("kubernetes:helm.sh/v3:Release")
    assert not needs_controllers("kubernetes:apps/v1:DeploymentPatch")
    assert not needs_controllers("aws:s3/bucket:Bucket")


def test_the_check_finds_a_service_that_does_not_wait() -> None:
    plan = {
        "resources": [
            {"type": "kubernetes:helm.sh/v3:Release", "name": CONTROLLER, "dependencies": []},
            {"type": "kubernetes:core/v1:Namespace", "name": "ns", "dependencies": [CONTROLLER]},
            {"type": "kubernetes:core/v1:Service", "name": "waits", "dependencies": ["ns"]},
            {"type": "kubernetes:core/v1:Service", "name": "races", "dependencies": []},
        ]
    }
    assert created_before_controller(plan) == ["races"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_handled_object_waits_for_the_controller(stack: str) -> None:
    plan = offline_plan(stack)
    handled = [resource for resource in plan["resources"] if needs_controllers(resource["type"])]
    # Not vacuous: the tracking server's and every model's Service, and KFP's own.
    assert len(handled) >= 5
    assert any(resource["name"].startswith("mlops-pipelines-install:") for resource in handled)
    assert created_before_controller(plan) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_alb_ingress_is_deleted_before_its_controller(stack: str) -> None:
    """`pulumi destroy` deletes in reverse dependency order: an Ingress that waits for the controller
    is deleted while the controller still runs, so its finalizer is removed and the ALB (which would
    block the VPC's deletion) goes with it."""
    plan = offline_plan(stack)
    ingresses = [r for r in plan["resources"] if r["type"] == "kubernetes:networking.k8s.io/v1:Ingress"]
    waits = _waits_for(plan)
    assert all(CONTROLLER in waits[ingress["name"]] for ingress in ingresses)
    if stack != "dev":  # dev serves the tracking UI without an ALB
        assert ingresses

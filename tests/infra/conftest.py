"""Every stack in stacks/ rendered once under mocks; tests assert over the recorded resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.offline_plan import available_stacks, render_stack

STACKS = available_stacks()
Plan = dict[str, Any]


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    return {stack: render_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, Plan]) -> Plan:
    return plans[request.param]


def of_type(plan: Plan, resource_type: str) -> list[dict[str, Any]]:
    return [resource for resource in plan["resources"] if resource["type"] == resource_type]


def inputs_of(plan: Plan, resource_type: str) -> list[dict[str, Any]]:
    return [resource["inputs"] for resource in of_type(plan, resource_type)]


def policy_document(text: str) -> dict[str, Any]:
    document = json.loads(text)
    statements = document["Statement"]
    document["Statement"] = statements if isinstance(statements, list) else [statements]
    return document


def named(plan: Plan, resource_type: str, name: str) -> dict[str, Any]:
    """The one resource of `resource_type` called `name` (exactly one must exist)."""
    (resource,) = [r for r in of_type(plan, resource_type) if r["name"] == name]
    return resource


def role_policy(plan: Plan, name: str) -> dict[str, Any]:
    """The inline policy document of the IAM role policy called `name`."""
    return policy_document(named(plan, "aws:iam/rolePolicy:RolePolicy", name)["inputs"]["policy"])


def config_error(stack: str, overrides: dict[str, Any] | None = None, removals: tuple[str, ...] = ()) -> str:
    """The ConfigError message of rendering `stack` with these settings; nothing may be declared before it."""
    declared: list[dict[str, Any]] = []
    with pytest.raises(Exception) as raised:
        render_stack(stack, overrides=overrides, removals=removals, declared=declared)
    assert type(raised.value).__name__ == "ConfigError"
    assert declared == [], "no resource may be declared before the config is valid"
    return str(raised.value)

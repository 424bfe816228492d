"""The pulumi-policy objects: one `ResourceValidationPolicy` per rule in `checks.RULES`, plus a stack policy.

Which stacks are production: a policy pack cannot read the stack's configuration, but every URN
carries the stack name (`urn:pulumi:<stack>::<project>::...`). The pack treats the stacks listed in
its `productionStacks` setting (default `["prod"]`, the name `stacks/Pulumi.prod.yaml` gives the
stack whose `environment` is `prod`) as production; an organisation with more production stacks
lists them with `pulumi preview --policy-pack policies --policy-pack-config config.json`. Reading
the name from the URN rather than from a tag means a stack cannot opt out by mislabelling itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .checks import RULES, Rule, StackResource, check_buckets_have_controls
from .third_party import exemption_for

PACK_NAME = "mlops-platform-guardrails"
DEFAULT_PRODUCTION_STACKS = ("prod",)
PRODUCTION_CONFIG = PolicyConfigSchema(
    properties={
        "productionStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_PRODUCTION_STACKS),
            "description": "Stack names whose resources must meet the production-only rules.",
        }
    }
)


def stack_of(urn: str) -> str:
    """`urn:pulumi:prod::mlops-platform::...` -> `prod`."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def is_production(urn: str, config: Mapping[str, Any]) -> bool:
    return stack_of(urn) in tuple(config.get("productionStacks") or DEFAULT_PRODUCTION_STACKS)


def resource_validation(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        if exemption_for(args.urn, args.name, rule.name) is not None:
            return  # an upstream object that cannot meet this rule, named with its reason in third_party.py
        production = is_production(args.urn, args.get_config())
        for violation in rule.check(args.resource_type, args.props, production):
            report_violation(f"{args.name}: {violation}", args.urn)

    validate.__doc__ = rule.description
    return validate


def validate_bucket_controls(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [
        StackResource(
            resource_type=resource.resource_type,
            name=resource.name,
            urn=resource.urn,
            parent_urn=resource.parent.urn if resource.parent is not None else resource.opts.parent,
            bucket_dependency_urns=frozenset(
                dependency.urn for dependency in resource.property_dependencies.get("bucket", [])
            ),
        )
        for resource in args.resources
    ]
    for urn, violation in check_buckets_have_controls(resources):
        report_violation(violation, urn)


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    policies: list[ResourceValidationPolicy | StackValidationPolicy] = [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=resource_validation(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PRODUCTION_CONFIG,
        )
        for rule in RULES
    ]
    policies.append(
        StackValidationPolicy(
            name="s3-bucket-controls-present",
            description="Every S3 bucket has a public access block (checkov CKV2_AWS_6), a default SSE-KMS "
            "configuration (CKV_AWS_145) and a TLS-only policy (CKV_AWS_379) attached to it.",
            validate=validate_bucket_controls,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    )
    return policies


def build_policy_pack() -> PolicyPack:
    """Start the pack's analyzer server (blocks: only `__main__.py` calls this, under the Pulumi CLI)."""
    policies: list[Policy] = list(build_policies())
    return PolicyPack(name=PACK_NAME, policies=policies, enforcement_level=EnforcementLevel.MANDATORY)

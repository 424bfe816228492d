"""Objects that an admission webhook or a controller handles wait for that controller.

The AWS Load Balancer Controller registers a Service mutator and an Ingress validator with
`failurePolicy: Fail` (eks-charts 1.17.1); while its pods are not ready, the API server refuses every
Service and Ingress, and pulumi-kubernetes retries only NotFound / no-match errors, not webhook
failures. So every Service, Ingress and custom resource in a component that carries this
transformation depends on the add-ons (the engine expands a component into all its children).

A transformation (run by the SDK for each child as it is declared, inherited by grandchildren) rather
than a `depends_on` on the component: the engine does not make a component's children wait for the
component's own dependencies. The SDK-side `transformations` option rather than engine-side
`transforms`, which the SDK's mock monitor does not run, so the offline plan would not show them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

# Kinds the controller's webhooks see; every type outside the built-in API groups is a custom
# resource, whose definition (and controller) comes from an add-on too.
HANDLED_TYPES = ("kubernetes:core/v1:Service", "kubernetes:networking.k8s.io/v1:Ingress")
BUILT_IN_GROUPS = (
    "kubernetes:core/",
    "kubernetes:apps/",
    "kubernetes:batch/",
    "kubernetes:autoscaling/",
    "kubernetes:policy/",
    "kubernetes:networking.k8s.io/",
    "kubernetes:rbac.authorization.k8s.io/",
    "kubernetes:scheduling.k8s.io/",
    "kubernetes:apiextensions.k8s.io/",
    "kubernetes:storage.k8s.io/",
    "kubernetes:admissionregistration.k8s.io/",
    "kubernetes:coordination.k8s.io/",
    "kubernetes:discovery.k8s.io/",
)


def needs_controllers(resource_type: str) -> bool:
    """A Service, an Ingress, or a custom resource (not a Pulumi construct such as a Helm release)."""
    if resource_type in HANDLED_TYPES:
        return True
    if not resource_type.startswith("kubernetes:") or resource_type.startswith(BUILT_IN_GROUPS):
        return False
    group = resource_type.split(":")[1]
    return not group.startswith(("helm.sh", "yaml", "kustomize")) and not resource_type.endswith("Patch")


def after_controllers(controllers: Sequence[pulumi.Resource]) -> pulumi.ResourceTransformation:
    """A transformation that makes webhook-handled children depend on `controllers`."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not needs_controllers(args.type_):
            return None
        waits = pulumi.ResourceOptions(depends_on=list(controllers))
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, waits))

    return transformation

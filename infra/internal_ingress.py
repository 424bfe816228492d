"""The one way the platform exposes a UI: an internal ALB (the AWS Load Balancer Controller's
`alb` class), reachable from the VPC and peered networks or a VPN, never from the internet.

The MLflow UI and Grafana both use it, so "Grafana behind the same access as MLflow" holds by
construction: one scheme, one target type, one path rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class InternalIngressArgs:
    name: str
    """The Ingress's name in its namespace."""
    namespace: str
    labels: Mapping[str, str]
    service: pulumi.Input[str]
    """Name of the Service every path goes to."""
    port: k8s.networking.v1.ServiceBackendPortArgs
    health_path: str
    """What the ALB's target group checks (the application's own health route)."""


def internal_ingress(
    resource_name: str, args: InternalIngressArgs, opts: pulumi.ResourceOptions
) -> k8s.networking.v1.Ingress:
    backend = k8s.networking.v1.IngressBackendArgs(
        service=k8s.networking.v1.IngressServiceBackendArgs(name=args.service, port=args.port)
    )
    every_path = k8s.networking.v1.HTTPIngressPathArgs(path="/", path_type="Prefix", backend=backend)
    return k8s.networking.v1.Ingress(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=args.name,
            namespace=args.namespace,
            labels=dict(args.labels),
            annotations={
                "alb.ingress.kubernetes.io/scheme": "internal",
                "alb.ingress.kubernetes.io/target-type": "ip",
                "alb.ingress.kubernetes.io/healthcheck-path": args.health_path,
            },
        ),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name="alb",
            rules=[
                k8s.networking.v1.IngressRuleArgs(http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[every_path]))
            ],
        ),
        opts=opts,
    )

"""One EKS managed node group with a hardened launch template; GPU pools also scale from zero."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config import NodePoolConfig

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = GPU_RESOURCE
POOL_LABEL = "mlops.platform/pool"


@dataclass(frozen=True)
class NodePoolArgs:
    pool_name: str
    """Name of the pool; nodes carry it as the `mlops.platform/pool` label."""
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    """Private subnets: nodes get no public address."""
    size: NodePoolConfig
    gpus_per_node: int = 0
    """0 for a CPU pool. A GPU pool uses the AL2023 NVIDIA AMI and is tainted `nvidia.com/gpu`."""
    extra_labels: dict[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()
    """Add-ons that must exist before nodes join (the VPC CNI, or nodes never become Ready)."""


class NodePool(pulumi.ComponentResource):
    """A node group whose instances require IMDSv2 (hop limit 1) and encrypted root volumes."""

    node_group: aws.eks.NodeGroup

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:NodePool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        is_gpu = args.gpus_per_node > 0
        labels = {**args.size.labels, **args.extra_labels, POOL_LABEL: args.pool_name}
        if is_gpu:
            labels["nvidia.com/gpu.present"] = "true"

        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"Hardened nodes of pool {args.pool_name}",
            # Hop limit 1 keeps pods (one network hop away) from reaching the instance role through
            # the metadata service: pods get AWS access only through IRSA.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.size.disk_size_gib,
                        volume_type="gp3",
                        # The AWS-managed EBS key: a customer key would also need a key-policy grant
                        # for the Auto Scaling service-linked role, or nodes fail to launch.
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="instance", tags={"Name": f"{name}", POOL_LABEL: args.pool_name}
                )
            ],
            opts=child,
        )

        self.node_group = aws.eks.NodeGroup(
            f"{name}",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_NVIDIA" if is_gpu else "AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=args.size.instance_types,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.size.min_size,
                max_size=args.size.max_size,
                desired_size=args.size.initial_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            labels=labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")]
            if is_gpu
            else [],
            tags={POOL_LABEL: args.pool_name},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                # The cluster autoscaler owns the size once the pool exists.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

        if is_gpu:
            self._scale_from_zero_hints(name, labels, args.gpus_per_node)

        self.register_outputs({"nodeGroupName": self.node_group.node_group_name})

    def _scale_from_zero_hints(self, name: str, labels: dict[str, str], gpus_per_node: int) -> None:
        """Tell the cluster autoscaler what a node of an empty pool would look like.

        With no node running, the autoscaler cannot see the pool's labels, taint or GPUs, so it would
        never pick it for a pending GPU pod. It reads these from the Auto Scaling group's tags.
        """
        template = "k8s.io/cluster-autoscaler/node-template"
        hints = {f"{template}/label/{key}": value for key, value in labels.items()}
        hints[f"{template}/taint/{GPU_TAINT_KEY}"] = "true:NoSchedule"
        hints[f"{template}/resources/{GPU_RESOURCE}"] = str(gpus_per_node)
        group_name = self.node_group.resources.apply(
            lambda resources: (resources[0].autoscaling_groups or [])[0].name or "" if resources else ""
        )
        for index, (key, value) in enumerate(sorted(hints.items())):
            aws.autoscaling.Tag(
                f"{name}-template-{index}",
                autoscaling_group_name=group_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(parent=self),
            )

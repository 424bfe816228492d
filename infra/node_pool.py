"""One EKS managed node group with a hardened launch template; GPU pools also scale from zero."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config import ConfigError, NodePoolConfig
from infra.gpu_sharing import DEVICE_PLUGIN_CONFIG_LABEL

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = GPU_RESOURCE
POOL_LABEL = "mlops.platform/pool"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""The cluster autoscaler's GPU label on AWS: a node carrying it counts as a GPU node while the device
plugin has not yet advertised `nvidia.com/gpu`, so the autoscaler does not scale out again meanwhile
(cloudprovider/aws/README.md, "Special note on GPU instances")."""

# The GPU in each NVIDIA instance family a pool may use (the AL2023 NVIDIA AMI is x86_64 only).
GPU_BY_INSTANCE_FAMILY = {
    "g4dn": "nvidia-t4",
    "g5": "nvidia-a10g",
    "g6": "nvidia-l4",
    "g6e": "nvidia-l40s",
    "p3": "nvidia-v100",
    "p4d": "nvidia-a100",
    "p5": "nvidia-h100",
}

TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template"
# Hints first declared after the tags were named by key (see `legacy_tag_names`): they had no positional
# name, and counting them would shift the positions of the others.
_HINTS_WITHOUT_LEGACY_NAME = frozenset(
    {f"{TEMPLATE_TAG}/label/{ACCELERATOR_LABEL}", f"{TEMPLATE_TAG}/label/{DEVICE_PLUGIN_CONFIG_LABEL}"}
)


def accelerator_of(pool_name: str, instance_types: Sequence[str]) -> str:
    """The GPU type of the pool's nodes. A node group has one set of labels, so one type per pool."""
    unknown = [kind for kind in instance_types if kind.split(".", 1)[0] not in GPU_BY_INSTANCE_FAMILY]
    if unknown:
        raise ConfigError(
            f"GPU pool {pool_name!r}: no known GPU for instance type(s) {', '.join(unknown)} "
            f"(known families: {', '.join(sorted(GPU_BY_INSTANCE_FAMILY))}; add the family to infra/node_pool.py)"
        )
    gpus = sorted({GPU_BY_INSTANCE_FAMILY[kind.split(".", 1)[0]] for kind in instance_types})
    if len(gpus) > 1:
        raise ConfigError(f"GPU pool {pool_name!r} mixes GPU types {', '.join(gpus)}: use one pool per GPU type")
    return gpus[0]


def legacy_tag_names(name: str, hints: Mapping[str, str]) -> dict[str, str]:
    """Each hint tag's former name, `<pool>-template-<position among the sorted keys>`.

    Positional names made any new key rename the tags after it, and a renamed tag is replaced:
    the new one is written, then deleting the old one removes its key from the group. Tags are
    named by key now; aliases to these names keep the existing ones as they are.
    """
    keys = sorted(key for key in hints if key not in _HINTS_WITHOUT_LEGACY_NAME)
    return {key: f"{name}-template-{index}" for index, key in enumerate(keys)}


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
    schedulable_gpus: int | None = None
    """`nvidia.com/gpu` a node advertises when its GPUs are time-sliced (infra/gpu_sharing.py);
    None: `gpus_per_node`."""
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
            labels[ACCELERATOR_LABEL] = accelerator_of(args.pool_name, args.size.instance_types)

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
            advertised = args.gpus_per_node if args.schedulable_gpus is None else args.schedulable_gpus
            self._scale_from_zero_hints(name, labels, advertised)

        self.register_outputs({"nodeGroupName": self.node_group.node_group_name})

    def _scale_from_zero_hints(self, name: str, labels: dict[str, str], schedulable_gpus: int) -> None:
        """Tell the cluster autoscaler what a node of an empty pool would look like.

        With no node running, the autoscaler cannot see the pool's labels, taint or GPUs, so it would
        never pick it for a pending GPU pod. It reads these from the Auto Scaling group's tags. The GPU
        count is what the device plugin will advertise: time-sliced pools offer several per GPU.
        """
        hints = {f"{TEMPLATE_TAG}/label/{key}": value for key, value in labels.items()}
        hints[f"{TEMPLATE_TAG}/taint/{GPU_TAINT_KEY}"] = "true:NoSchedule"
        hints[f"{TEMPLATE_TAG}/resources/{GPU_RESOURCE}"] = str(schedulable_gpus)
        group_name = self.node_group.resources.apply(
            lambda resources: (resources[0].autoscaling_groups or [])[0].name or "" if resources else ""
        )
        legacy = legacy_tag_names(name, hints)
        for key, value in sorted(hints.items()):
            aws.autoscaling.Tag(
                f"{name}-template-{key.removeprefix(TEMPLATE_TAG + '/')}",
                autoscaling_group_name=group_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=legacy[key])] if key in legacy else None
                ),
            )

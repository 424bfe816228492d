"""The EKS cluster: control plane, IRSA identity, access entries, managed add-ons and node pools.

Built from `pulumi_aws.eks` resources rather than the multi-language `pulumi_eks.Cluster`: every
setting is then a typed argument that the type checker and the tests can see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.config import GpuNodePoolConfig, NodePoolConfig, SystemNodePoolConfig
from infra.gpu_sharing import node_labels as gpu_sharing_labels
from infra.gpu_sharing import schedulable_gpus
from infra.network import Network
from infra.node_pool import NodePool, NodePoolArgs
from infra.workload_role import ClusterIdentity, WorkloadRole, WorkloadRoleArgs

CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
AWS_MANAGED_POLICY = "arn:aws:iam::aws:policy"
ADMIN_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def _service_role(name: str, service: str, managed_policies: list[str], parent: pulumi.Resource) -> aws.iam.Role:
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            }
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for policy in managed_policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=f"{AWS_MANAGED_POLICY}/{policy}",
            opts=pulumi.ResourceOptions(parent=role),
        )
    return role


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    kubernetes_version: str
    network: Network
    """Nodes and the control plane's network interfaces go in its private subnets."""
    secrets_key: aws.kms.Key
    """Envelope-encrypts Kubernetes Secrets in etcd."""
    endpoint_public: bool
    """False: the API is reachable only from inside the VPC (prod)."""
    public_access_cidrs: list[str]
    admin_role_arns: list[str]
    """Roles granted cluster-admin through access entries (no aws-auth ConfigMap)."""
    system_pool: SystemNodePoolConfig
    gpu_pools: list[GpuNodePoolConfig]
    log_retention_days: int


class Cluster(pulumi.ComponentResource):
    """An EKS cluster ready for workloads: nodes joined, IRSA available, a Kubernetes provider."""

    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    identity: ClusterIdentity
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:Cluster", name, None, opts)
        cluster = self._create_control_plane(name, args)
        self.identity, oidc_provider = self._create_identity(name, cluster)
        self._grant_admins(name, args, cluster)
        # Networking add-ons come before nodes: without the VPC CNI a node never becomes Ready.
        network_addons = self._create_network_addons(name, args, cluster)
        # The remaining add-ons and the Kubernetes provider run as pods: they need nodes to schedule on.
        nodes_ready = [pool.node_group for pool in self._create_node_pools(name, args, cluster, network_addons)]
        self._create_node_addons(name, args, cluster, nodes_ready)

        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.security_group_id = cluster.vpc_config.apply(lambda config: config.cluster_security_group_id or "")
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda ca: ca.data or "")
            ).apply(lambda values: _kubeconfig(str(values[0]), str(values[1]), str(values[2])))
        )
        # Built from the cluster's outputs: no local kubeconfig file is read or written.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=nodes_ready),
        )
        self.register_outputs({"name": self.name, "endpoint": self.endpoint, "oidcProviderArn": oidc_provider.arn})

    def _create_control_plane(self, name: str, args: ClusterArgs) -> aws.eks.Cluster:
        cluster_role = _service_role(f"{name}-control-plane", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"], self)
        # Control-plane logs land in this group; creating it first lets us set the retention.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.Cluster(
            name,
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            # The Kubernetes provider below talks to this endpoint in the same `up`, so the deployer
            # must reach it: over the public endpoint from public_access_cidrs (validated narrow and
            # not a placeholder, infra/config.py), or privately from inside the VPC (prod).
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.network.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=args.endpoint_public,
                public_access_cidrs=args.public_access_cidrs if args.endpoint_public else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # Whoever runs `pulumi up` administers the cluster, so the Kubernetes provider below works.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            # Add-ons are declared below, pinned to this cluster version, instead of the unmanaged defaults.
            bootstrap_self_managed_addons=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )

    def _create_identity(
        self, name: str, cluster: aws.eks.Cluster
    ) -> tuple[ClusterIdentity, aws.iam.OpenIdConnectProvider]:
        """The OIDC provider that IRSA roles trust (infra/workload_role.py)."""
        issuer = cluster.identities.apply(lambda identities: (identities[0].oidcs or [])[0].issuer or "")
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=pulumi.ResourceOptions(parent=self)
        )
        identity = ClusterIdentity(
            oidc_provider_arn=oidc_provider.arn,
            oidc_issuer_host=issuer.apply(lambda url: url.removeprefix("https://")),
        )
        return identity, oidc_provider

    def _grant_admins(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster) -> None:
        for index, role_arn in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                type="STANDARD",
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                policy_arn=ADMIN_ACCESS_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
            )

    def _addon_role(self, name: str, service_account: str, managed_policy: str) -> WorkloadRole:
        """An add-on's IRSA role in kube-system, with the AWS-managed policy its upstream documents."""
        return WorkloadRole(
            name,
            WorkloadRoleArgs(
                cluster=self.identity,
                namespace="kube-system",
                service_account=service_account,
                policy_statements=[],
                managed_policy_arns=(f"{AWS_MANAGED_POLICY}/{managed_policy}",),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_network_addons(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster) -> list[aws.eks.Addon]:
        cni_role = self._addon_role(f"{name}-vpc-cni", "aws-node", "AmazonEKS_CNI_Policy")
        return [
            # The CNI's own agent enforces NetworkPolicies; without this flag they are silently ignored.
            self._addon(
                name,
                cluster,
                args.kubernetes_version,
                "vpc-cni",
                cni_role.arn,
                configuration={"enableNetworkPolicy": "true"},
            ),
            self._addon(name, cluster, args.kubernetes_version, "kube-proxy"),
        ]

    def _create_node_pools(
        self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster, network_addons: list[aws.eks.Addon]
    ) -> list[NodePool]:
        """The system pool, then one pool per GPU pool of the stack."""
        node_role = _service_role(
            f"{name}-nodes",
            "ec2.amazonaws.com",
            ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"],
            self,
        )

        def pool_args(pool_name: str, size: NodePoolConfig) -> NodePoolArgs:
            return NodePoolArgs(
                pool_name=pool_name,
                cluster_name=cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=list(args.network.private_subnet_ids),
                size=size,
                depends_on=network_addons,
            )

        pools = [("system", pool_args("system", args.system_pool))]
        pools += [
            (
                pool.name,
                # Time-sliced pools label their nodes with their device plugin configuration.
                replace(
                    pool_args(pool.name, pool),
                    gpus_per_node=pool.gpus_per_node,
                    schedulable_gpus=schedulable_gpus(pool),
                    extra_labels=gpu_sharing_labels(pool),
                ),
            )
            for pool in args.gpu_pools
        ]
        return [
            NodePool(f"{name}-{pool_name}", pool_arguments, opts=pulumi.ResourceOptions(parent=self))
            for pool_name, pool_arguments in pools
        ]

    def _create_node_addons(
        self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster, nodes_ready: list[aws.eks.NodeGroup]
    ) -> None:
        ebs_role = self._addon_role(f"{name}-ebs-csi", "ebs-csi-controller-sa", "service-role/AmazonEBSCSIDriverPolicy")
        self._addon(name, cluster, args.kubernetes_version, "coredns", depends_on=nodes_ready)
        self._addon(name, cluster, args.kubernetes_version, "aws-ebs-csi-driver", ebs_role.arn, nodes_ready)

    def _addon(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        kubernetes_version: str,
        addon: str,
        role_arn: pulumi.Input[str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        configuration: dict[str, str] | None = None,
    ) -> aws.eks.Addon:
        # The add-on version EKS recommends for this Kubernetes version: it moves with the cluster
        # upgrade instead of being a string someone must remember to bump.
        version = aws.eks.get_addon_version_output(
            addon_name=addon,
            kubernetes_version=kubernetes_version,
            most_recent=False,
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).version
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            addon_version=version,
            service_account_role_arn=role_arn,
            configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )


def _kubeconfig(cluster_name: str, endpoint: str, certificate_authority: str) -> str:
    """A kubeconfig that gets short-lived tokens from `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority},
                }
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )

"""MLflow tracking server and model registry on the cluster.

The database password never passes through Pulumi or Kubernetes: RDS keeps it in Secrets Manager
(and rotates it), and the server reads it at start through its IRSA role. The admin credentials of
MLflow's basic-auth app are generated here and reach the pod only as files of a Secret volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.iam_policies import bucket_prefix_statements
from infra.network_rules import IRSA_TOKEN_SKIP, dns_egress, https_egress, platform_namespaces
from infra.pod_security import (
    container_security_context,
    namespace_labels,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from infra.workload_role import ClusterIdentity, WorkloadRoleArgs, service_account_with_role

NAMESPACE = "mlflow"
APP_NAME = "mlflow"
SERVICE_ACCOUNT = "mlflow"
PORT = 5000
ARTIFACTS_PREFIX = "mlflow"
CREDENTIALS_DIR = "/var/run/secrets/mlflow"


@dataclass(frozen=True)
class TrackingServerArgs:
    image: pulumi.Input[str]
    """Image reference by digest (`repo@sha256:...`)."""
    identity: ClusterIdentity
    region: str
    vpc_cidr: str
    """Where the database and (when enabled) the internal load balancer's addresses come from."""
    artifacts_bucket_name: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    buckets_kms_key_arn: pulumi.Input[str]
    database_address: pulumi.Input[str]
    database_port: pulumi.Input[int]
    database_name: str
    database_secret_arn: pulumi.Input[str]
    """RDS-managed secret holding the current username and password."""
    databases_kms_key_arn: pulumi.Input[str]
    replicas: int
    internal_ingress: bool
    disruption_budget: bool
    """Keep one pod up through voluntary disruptions (node drains, upgrades)."""


def artifacts_policy(args: TrackingServerArgs) -> list[dict]:
    """Only the `mlflow/` prefix of the artifacts bucket, its key, and the database's secret."""
    return [
        *bucket_prefix_statements(args.artifacts_bucket_arn, ARTIFACTS_PREFIX, args.buckets_kms_key_arn),
        {
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": args.database_secret_arn,
        },
        {
            "Sid": "DecryptDatabaseSecret",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": args.databases_kms_key_arn,
        },
    ]


class TrackingServer(pulumi.ComponentResource):
    """Namespace, IRSA role, credentials Secret, migration Job, Deployment, Service and guards."""

    internal_url: pulumi.Output[str]
    credentials_secret_name: pulumi.Output[str]
    admin_username: str
    admin_password: pulumi.Output[str]
    """A Pulumi secret: clients in other namespaces get it through their own Secret."""

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:tracking:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": "tracking-server"}

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=namespace_labels()),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                policy_statements=artifacts_policy(args),
            ),
            labels,
            in_namespace,
        )

        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        session_key = random.RandomPassword(f"{name}-session-key", length=48, special=False, opts=child)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-admin", namespace=NAMESPACE, labels=labels),
            type="Opaque",
            string_data={
                "username": "admin",
                "password": admin_password.result,
                "flask-secret-key": session_key.result,
            },
            opts=in_namespace,
        )

        environment = self._environment(args)
        volumes = [
            tmp_volume(),
            k8s.core.v1.VolumeArgs(
                name="credentials",
                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name="mlflow-admin", default_mode=0o440),
            ),
        ]
        mounts = [
            tmp_mount(),
            k8s.core.v1.VolumeMountArgs(name="credentials", mount_path=CREDENTIALS_DIR, read_only=True),
        ]

        # A Job's template is immutable, so a new image replaces the Job: the schema migration runs
        # once per release, and Pulumi waits for it before rolling the Deployment.
        migration = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=NAMESPACE, labels=labels, annotations=IRSA_TOKEN_SKIP),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                active_deadline_seconds=900,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**labels, "app.kubernetes.io/component": "migration"}),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=SERVICE_ACCOUNT,
                        automount_service_account_token=True,
                        restart_policy="Never",
                        security_context=pod_security_context(),
                        volumes=volumes,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="migrate",
                                image=args.image,
                                args=["migrate"],
                                env=environment,
                                volume_mounts=mounts,
                                security_context=container_security_context(),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "100m", "memory": "256Mi"},
                                    limits={"cpu": "500m", "memory": "512Mi"},
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, credentials]),
        )

        # Startup and liveness: the process answers (MLflow's /health touches no database), so a
        # database outage never restarts pods in a loop. Readiness: a new database connection opens
        # (workloads/tracking/readiness.py), so a pod that cannot reach its database, or whose
        # password the database no longer accepts, gets no traffic; 5 s covers its 3 s connect timeout.
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        database_ready = k8s.core.v1.HTTPGetActionArgs(path="/readyz", port="http")
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP_NAME, namespace=NAMESPACE, labels=labels, annotations=IRSA_TOKEN_SKIP
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=SERVICE_ACCOUNT,
                        # The IRSA token is projected through the service account token mount.
                        automount_service_account_token=True,
                        security_context=pod_security_context(),
                        volumes=volumes,
                        topology_spread_constraints=[
                            k8s.core.v1.TopologySpreadConstraintArgs(
                                max_skew=1,
                                topology_key="topology.kubernetes.io/zone",
                                when_unsatisfiable="ScheduleAnyway",
                                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                            )
                        ],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="server",
                                image=args.image,
                                args=["serve", "--skip-migrate"],
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                                env=environment,
                                volume_mounts=mounts,
                                security_context=container_security_context(),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "250m", "memory": "768Mi"},
                                    limits={"cpu": "1", "memory": "1536Mi"},
                                ),
                                startup_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health, period_seconds=5, failure_threshold=36
                                ),
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=database_ready, period_seconds=10, timeout_seconds=5, failure_threshold=3
                                ),
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health, period_seconds=20, timeout_seconds=5, failure_threshold=3
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[migration]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP_NAME, namespace=NAMESPACE, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=PORT, target_port="http")],
            ),
            opts=in_namespace,
        )
        self._network_policies(name, args, labels, in_namespace)
        if args.disruption_budget:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-disruption-budget",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=APP_NAME, namespace=NAMESPACE, labels=labels),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels)
                ),
                opts=in_namespace,
            )
        if args.internal_ingress:
            self._internal_ingress(name, labels, service, in_namespace)

        self.admin_username = "admin"
        self.admin_password = pulumi.Output.secret(admin_password.result)
        self.internal_url = pulumi.Output.concat(
            "http://", service.metadata.apply(lambda m: m.name or APP_NAME), f".{NAMESPACE}.svc.cluster.local:{PORT}"
        )
        self.credentials_secret_name = credentials.metadata.apply(lambda m: f"{NAMESPACE}/{m.name}")
        self.register_outputs(
            {
                "internalUrl": self.internal_url,
                "credentialsSecret": self.credentials_secret_name,
                "deployment": deployment.metadata.apply(lambda m: m.name),
            }
        )

    @staticmethod
    def _environment(args: TrackingServerArgs) -> list[k8s.core.v1.EnvVarArgs]:
        """Plain settings only: secrets arrive as files or from Secrets Manager, never as literals."""
        cluster_hosts = [f"{APP_NAME}", f"{APP_NAME}.{NAMESPACE}", f"{APP_NAME}.{NAMESPACE}.svc"]
        cluster_hosts.append(f"{APP_NAME}.{NAMESPACE}.svc.cluster.local")
        allowed_hosts = [f"{host}{suffix}" for host in cluster_hosts for suffix in ("", f":{PORT}")]
        if args.internal_ingress:
            allowed_hosts.append(f"*.{args.region}.elb.amazonaws.com")
        plain = {
            "MLFLOW_DATABASE_HOST": args.database_address,
            "MLFLOW_DATABASE_PORT": pulumi.Output.from_input(args.database_port).apply(str),
            "MLFLOW_DATABASE_NAME": args.database_name,
            "MLFLOW_DATABASE_SECRET_ARN": args.database_secret_arn,
            "MLFLOW_ARTIFACTS_DESTINATION": pulumi.Output.concat(
                "s3://", args.artifacts_bucket_name, f"/{ARTIFACTS_PREFIX}"
            ),
            "MLFLOW_ALLOWED_HOSTS": ",".join(allowed_hosts),
            "MLFLOW_HOST": "0.0.0.0",
            "MLFLOW_PORT": str(PORT),
            "MLFLOW_AUTH_ADMIN_USERNAME_FILE": f"{CREDENTIALS_DIR}/username",
            "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": f"{CREDENTIALS_DIR}/password",
            "MLFLOW_FLASK_SERVER_SECRET_KEY_FILE": f"{CREDENTIALS_DIR}/flask-secret-key",
            "AWS_REGION": args.region,
            "AWS_DEFAULT_REGION": args.region,
            "TMPDIR": "/tmp",
        }
        return [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in plain.items()]

    @staticmethod
    def _network_policies(
        name: str, args: TrackingServerArgs, labels: dict[str, str], opts: pulumi.ResourceOptions
    ) -> None:
        """Server in: platform namespaces (and the VPC's load balancer when enabled); migration in: nothing.

        Both out: DNS, the database, and HTTPS (S3 through the gateway endpoint, STS, Secrets Manager).
        """
        egress = [
            dns_egress(),
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.vpc_cidr))
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=5432)],
            ),
            https_egress(),
        ]
        ingress_from = [platform_namespaces()]
        if args.internal_ingress:
            ingress_from.append(
                k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.vpc_cidr))
            )
        server_ingress = [
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=ingress_from, ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PORT)]
            )
        ]
        for suffix, selector, ingress in (
            ("", labels, server_ingress),
            ("-migrate", {**labels, "app.kubernetes.io/component": "migration"}, []),
        ):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy{suffix}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP_NAME}{suffix}", namespace=NAMESPACE, labels=selector),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    policy_types=["Ingress", "Egress"],
                    ingress=ingress,
                    egress=egress,
                ),
                opts=opts,
            )

    @staticmethod
    def _internal_ingress(
        name: str, labels: dict[str, str], service: k8s.core.v1.Service, opts: pulumi.ResourceOptions
    ) -> None:
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP_NAME,
                namespace=NAMESPACE,
                labels=labels,
                annotations={
                    # Internal: reachable from the VPC (and peered networks / VPN), never the internet.
                    "alb.ingress.kubernetes.io/scheme": "internal",
                    "alb.ingress.kubernetes.io/target-type": "ip",
                    "alb.ingress.kubernetes.io/healthcheck-path": "/health",
                },
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name="alb",
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=service.metadata.apply(lambda m: m.name or APP_NAME),
                                            port=k8s.networking.v1.ServiceBackendPortArgs(name="http"),
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ],
            ),
            opts=opts,
        )

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

from infra.database import Database
from infra.hardened_workload import (
    HTTP_PORT_NAME,
    Compute,
    HttpCheck,
    HttpProbes,
    JobLimits,
    WorkloadContainer,
    WorkloadPod,
    aws_runtime_environment,
    deployment_spec,
    job_spec,
)
from infra.iam_policies import bucket_prefix_statements
from infra.internal_ingress import InternalIngressArgs, internal_ingress
from infra.network_rules import IRSA_TOKEN_SKIP, dns_egress, https_egress, platform_namespaces
from infra.pod_security import platform_namespace
from infra.secure_bucket import SecureBucket
from infra.workload_role import ClusterIdentity, WorkloadRoleArgs, service_account_with_role
from workloads.settings import FILE_SUFFIX
from workloads.tracking.database_secret import DatabaseVariables
from workloads.tracking.server import TrackingServerVariables

NAMESPACE = "mlflow"
APP_NAME = "mlflow"
SERVICE_ACCOUNT = "mlflow"
PORT = 5000
ARTIFACTS_PREFIX = "mlflow"
CREDENTIALS_DIR = "/var/run/secrets/mlflow"
CREDENTIALS_SECRET = "mlflow-admin"
SERVER_LABELS = {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": "tracking-server"}
MIGRATION_LABELS = {**SERVER_LABELS, "app.kubernetes.io/component": "migration"}

# Startup and liveness: the process answers (MLflow's /health touches no database), so a database
# outage never restarts pods in a loop. Readiness: a new database connection opens
# (workloads/tracking/readiness.py), so a pod that cannot reach its database, or whose password the
# database no longer accepts, gets no traffic; 5 s covers its 3 s connect timeout.
SERVER_PROBES = HttpProbes(
    startup=HttpCheck("/health", period_seconds=5, failure_threshold=36),
    readiness=HttpCheck("/readyz", period_seconds=10, timeout_seconds=5, failure_threshold=3),
    liveness=HttpCheck("/health", period_seconds=20, timeout_seconds=5, failure_threshold=3),
)


@dataclass(frozen=True)
class TrackingServerArgs:
    image: pulumi.Input[str]
    """Image reference by digest (`repo@sha256:...`)."""
    identity: ClusterIdentity
    region: str
    vpc_cidr: str
    """Where the database and (when enabled) the internal load balancer's addresses come from."""
    artifacts: SecureBucket
    """Its `mlflow/` prefix holds the artifacts (the server proxies every upload and download)."""
    database: Database
    """The PostgreSQL backend store, whose RDS-managed secret holds the current username and password."""
    replicas: int
    internal_ingress: bool
    disruption_budget: bool
    """Keep one pod up through voluntary disruptions (node drains, upgrades)."""


def artifacts_policy(args: TrackingServerArgs) -> list[dict]:
    """Only the `mlflow/` prefix of the artifacts bucket, its key, and the database's secret."""
    return [
        *bucket_prefix_statements(args.artifacts.arn, ARTIFACTS_PREFIX, args.artifacts.kms_key_arn),
        {
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": args.database.master_user_secret_arn,
        },
        {
            "Sid": "DecryptDatabaseSecret",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": args.database.kms_key_arn,
        },
    ]


def credentials_volume() -> k8s.core.v1.VolumeArgs:
    """The admin credentials and session key as files: MLflow reads them through `*_FILE` variables."""
    return k8s.core.v1.VolumeArgs(
        name="credentials",
        secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=CREDENTIALS_SECRET, default_mode=0o440),
    )


def credentials_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name="credentials", mount_path=CREDENTIALS_DIR, read_only=True)


class TrackingServer(pulumi.ComponentResource):
    """Namespace, IRSA role, credentials Secret, migration Job, Deployment, Service and guards."""

    namespace: str
    internal_url: pulumi.Output[str]
    credentials_secret_name: pulumi.Output[str]
    admin_username: str
    admin_password: pulumi.Output[str]
    """A Pulumi secret: clients in other namespaces get it through their own Secret."""

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:tracking:TrackingServer", name, None, opts)
        namespace = self._create_namespace(name)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                policy_statements=artifacts_policy(args),
            ),
            SERVER_LABELS,
            in_namespace,
        )
        admin_password, credentials = self._create_credentials(name, in_namespace)
        # A Job's template is immutable, so a new image replaces the Job: the schema migration runs
        # once per release, and Pulumi waits for it before rolling the Deployment.
        migration = self._create_migration_job(
            name, args, pulumi.ResourceOptions(parent=self, depends_on=[namespace, credentials])
        )
        deployment = self._create_deployment(name, args, pulumi.ResourceOptions(parent=self, depends_on=[migration]))
        service = self._create_service(name, in_namespace)
        self._create_network_policies(name, args, in_namespace)
        if args.disruption_budget:
            self._create_disruption_budget(name, in_namespace)
        if args.internal_ingress:
            self._create_internal_ingress(name, service, in_namespace)

        self.namespace = NAMESPACE
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

    def _create_namespace(self, name: str) -> k8s.core.v1.Namespace:
        return platform_namespace(f"{name}-namespace", NAMESPACE, pulumi.ResourceOptions(parent=self))

    def _create_credentials(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> tuple[random.RandomPassword, k8s.core.v1.Secret]:
        """MLflow's basic-auth admin and Flask session key, generated here and handed over as files."""
        child = pulumi.ResourceOptions(parent=self)
        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        session_key = random.RandomPassword(f"{name}-session-key", length=48, special=False, opts=child)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CREDENTIALS_SECRET, namespace=NAMESPACE, labels=SERVER_LABELS),
            type="Opaque",
            string_data={
                "username": "admin",
                "password": admin_password.result,
                "flask-secret-key": session_key.result,
            },
            opts=opts,
        )
        return admin_password, credentials

    def _pod(self, args: TrackingServerArgs, command: list[str], compute: Compute, serves: bool) -> WorkloadPod:
        """The server (`serves`: port, probes, replicas spread over zones) or its schema migration: the
        same image, settings and credentials files."""
        container = WorkloadContainer(
            name="server" if serves else "migrate",
            image=args.image,
            args=command,
            http_port=PORT if serves else None,
            env=self._environment(args),
            mounts=[credentials_mount()],
            compute=compute,
            probes=SERVER_PROBES if serves else None,
        )
        return WorkloadPod(
            container=container,
            irsa_service_account=SERVICE_ACCOUNT,
            volumes=[credentials_volume()],
            spread_over_zones=serves,
        )

    def _create_migration_job(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions
    ) -> k8s.batch.v1.Job:
        compute = Compute(cpu="100m", memory="256Mi", cpu_limit="500m", memory_limit="512Mi")
        migrate = self._pod(args, ["migrate"], compute, serves=False)
        return k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=NAMESPACE, labels=SERVER_LABELS, annotations=IRSA_TOKEN_SKIP),
            spec=job_spec(MIGRATION_LABELS, migrate, JobLimits(retries=3, deadline_seconds=900)),
            opts=opts,
        )

    def _create_deployment(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        compute = Compute(cpu="250m", memory="768Mi", cpu_limit="1", memory_limit="1536Mi")
        server = self._pod(args, ["serve", "--skip-migrate"], compute, serves=True)
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP_NAME, namespace=NAMESPACE, labels=SERVER_LABELS, annotations=IRSA_TOKEN_SKIP
            ),
            spec=deployment_spec(SERVER_LABELS, server, args.replicas),
            opts=opts,
        )

    def _create_service(self, name: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP_NAME, namespace=NAMESPACE, labels=SERVER_LABELS),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=SERVER_LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name=HTTP_PORT_NAME, port=PORT, target_port=HTTP_PORT_NAME)],
            ),
            opts=opts,
        )

    def _create_disruption_budget(self, name: str, opts: pulumi.ResourceOptions) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP_NAME, namespace=NAMESPACE, labels=SERVER_LABELS),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=SERVER_LABELS)
            ),
            opts=opts,
        )

    @staticmethod
    def _environment(args: TrackingServerArgs) -> list[k8s.core.v1.EnvVarArgs]:
        """Plain settings only: secrets arrive as files or from Secrets Manager, never as literals."""
        cluster_hosts = [f"{APP_NAME}", f"{APP_NAME}.{NAMESPACE}", f"{APP_NAME}.{NAMESPACE}.svc"]
        cluster_hosts.append(f"{APP_NAME}.{NAMESPACE}.svc.cluster.local")
        allowed_hosts = [f"{host}{suffix}" for host in cluster_hosts for suffix in ("", f":{PORT}")]
        if args.internal_ingress:
            allowed_hosts.append(f"*.{args.region}.elb.amazonaws.com")
        database = args.database
        plain = {
            DatabaseVariables.HOST: database.address,
            DatabaseVariables.PORT: database.port.apply(str),
            DatabaseVariables.NAME: database.database_name,
            DatabaseVariables.SECRET_ARN: database.master_user_secret_arn,
            TrackingServerVariables.ARTIFACTS_DESTINATION: args.artifacts.s3_uri(ARTIFACTS_PREFIX),
            TrackingServerVariables.ALLOWED_HOSTS: ",".join(allowed_hosts),
            TrackingServerVariables.HOST: "0.0.0.0",
            TrackingServerVariables.PORT: str(PORT),
            TrackingServerVariables.ADMIN_USERNAME + FILE_SUFFIX: f"{CREDENTIALS_DIR}/username",
            TrackingServerVariables.ADMIN_PASSWORD + FILE_SUFFIX: f"{CREDENTIALS_DIR}/password",
            TrackingServerVariables.FLASK_SECRET_KEY + FILE_SUFFIX: f"{CREDENTIALS_DIR}/flask-secret-key",
        }
        settings = [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in plain.items()]
        return [*settings, *aws_runtime_environment(args.region)]

    @staticmethod
    def _create_network_policies(name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions) -> None:
        """Server in: platform namespaces (and the VPC's load balancer when enabled); migration in: nothing.

        Both out: DNS, the database, and HTTPS (S3 through the gateway endpoint, STS, Secrets Manager).
        """
        vpc = k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.vpc_cidr))
        database = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[vpc], ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=5432)]
        )
        egress = [dns_egress(), database, https_egress()]
        ingress_from = [platform_namespaces(), *([vpc] if args.internal_ingress else [])]
        server_ingress = [
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=ingress_from, ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PORT)]
            )
        ]
        for suffix, selector, ingress in (("", SERVER_LABELS, server_ingress), ("-migrate", MIGRATION_LABELS, [])):
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
    def _create_internal_ingress(name: str, service: k8s.core.v1.Service, opts: pulumi.ResourceOptions) -> None:
        internal_ingress(
            f"{name}-ingress",
            InternalIngressArgs(
                name=APP_NAME,
                namespace=NAMESPACE,
                labels=SERVER_LABELS,
                service=service.metadata.apply(lambda m: m.name or APP_NAME),
                port=k8s.networking.v1.ServiceBackendPortArgs(name=HTTP_PORT_NAME),
                health_path="/health",
            ),
            opts,
        )

"""Kubeflow Pipelines (standalone) on the cluster, on RDS MySQL and the S3 artifacts bucket.

The upstream manifests of a pinned release are applied with kustomize
(`infra/manifests/kubeflow-pipelines/`); the objects that hold this stack's settings and secrets
are declared here instead, typed and secret-aware.

KFP's object-store client cannot use IRSA (kubeflow/pipelines #14097, #11729), so it gets the
access key of an IAM user whose only permissions are the `pipelines/` prefix of the artifacts
bucket and its KMS key. Rotate it by replacing the key: `pulumi up --replace <the AccessKey URN>`.

Every KFP client of RDS MySQL connects over TLS and verifies the server against the region's RDS CA
bundle (the database refuses anything else, `require_secure_transport=1`): the API server through
go-sql-driver's `tls=true` (`DBConfig.MySQLConfig.ExtraParams`, KFP 2.17
`backend/src/apiserver/client/sql.go`) with the bundle added to Go's roots (SSL_CERT_DIR), and MLMD
(ml-metadata 1.14, which has no MySQL TLS flags) through the `ssl_options` of its connection file.
KFP 2.17's only other MySQL client, the v1 cache server, is not installed (see the overlay).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.database import Database
from infra.iam_policies import bucket_prefix_statements, policy_document
from infra.network_rules import platform_namespaces
from infra.pod_security import PLATFORM_LABEL, PLATFORM_LABEL_VALUE
from infra.rds_ca_bundle import RdsCaBundle
from infra.secure_bucket import SecureBucket
from infra.workload_role import ClusterIdentity, WorkloadRole, WorkloadRoleArgs

NAMESPACE = "kubeflow"
KFP_VERSION = "2.17.0"
PIPELINES_PREFIX = "pipelines"
API_URL = f"http://ml-pipeline.{NAMESPACE}.svc.cluster.local:8888"
MANIFESTS = Path("infra/manifests/kubeflow-pipelines")
OBJECT_STORE_SECRET = "mlpipeline-minio-artifact"
RUNNER_SERVICE_ACCOUNT = "pipeline-runner"
RDS_CA_MOUNT = "/etc/mlops/rds-ca"
"""Where the overlay mounts the `rds-ca-bundle` ConfigMap in the database clients."""
RDS_CA_FILE = "rds-ca.pem"
# `<prefix>/<namespace>/...`: the UI's ownership check ("mlmd-then-prefix") derives the namespace of
# an object MLMD does not track, such as an archived log, from the key's first two segments. Dated,
# as upstream: a workflow name can come back once the old one is gone.
ARGO_KEY_FORMAT = (
    f"{PIPELINES_PREFIX}/{NAMESPACE}/logs/{{{{workflow.name}}}}/{{{{workflow.creationTimestamp.Y}}}}/"
    "{{workflow.creationTimestamp.m}}/{{workflow.creationTimestamp.d}}/{{pod.name}}"
)


@dataclass(frozen=True)
class KubeflowPipelinesArgs:
    region: str
    artifacts: SecureBucket
    """Its `pipelines/` prefix is the pipeline root and holds Argo's archived logs."""
    datasets: SecureBucket
    """Pipeline steps (service account `pipeline-runner`) read training data from here through IRSA."""
    database: Database
    """RDS MySQL with a master password that is a Pulumi secret: KFP reads it from a Kubernetes Secret
    only, so it cannot follow an RDS-managed rotation."""
    identity: ClusterIdentity
    install_after: Sequence[pulumi.Resource] = ()
    """What must run before the install: the controllers whose webhooks handle its Services."""


def mlmd_connection_config(host: str, port: int, database: str, user: str, password: str, ca_file: str) -> str:
    """MLMD's `MetadataStoreServerConfig` (text format) for MySQL over verified TLS.

    Fields as ml-metadata 1.14 defines them (`proto/metadata_store.proto`: MySQLDatabaseConfig and
    its SSLOptions; `proto/metadata_store_service.proto`: MetadataStoreServerConfig). Upgrading the
    schema on start is what upstream's `--enable_database_upgrade=true` did.
    """

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (
        "connection_config {\n"
        "  mysql {\n"
        f"    host: {quoted(host)}\n"
        f"    port: {port}\n"
        f"    database: {quoted(database)}\n"
        f"    user: {quoted(user)}\n"
        f"    password: {quoted(password)}\n"
        f"    ssl_options {{ ca: {quoted(ca_file)} verify_server_cert: true }}\n"
        "  }\n"
        "}\n"
        "migration_options { enable_upgrade_migration: true }\n"
    )


def object_store_policy(args: KubeflowPipelinesArgs) -> pulumi.Output[str]:
    statements = bucket_prefix_statements(args.artifacts.arn, PIPELINES_PREFIX, args.artifacts.kms_key_arn)
    return policy_document(statements)


class KubeflowPipelines(pulumi.ComponentResource):
    """KFP API server, UI, MLMD and Argo in `kubeflow`, wired to RDS MySQL (verified TLS) and S3."""

    api_url: str
    namespace: str
    pipeline_root: pulumi.Output[str]
    install: k8s.kustomize.v2.Directory
    """The upstream install: what waits for it waits for every KFP object."""

    def __init__(self, name: str, args: KubeflowPipelinesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:pipelines:KubeflowPipelines", name, None, opts)
        if args.database.master_password is None:
            raise ValueError("Kubeflow Pipelines reads its database password from a Secret: give the database one")
        self._name = name
        self._args = args
        self._database_password: pulumi.Output[str] = args.database.master_password
        self.pipeline_root = args.artifacts.s3_uri(PIPELINES_PREFIX)
        self._s3_endpoint = f"s3.{args.region}.amazonaws.com"

        namespace = self._namespace()
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        access_key = self._object_store_key()
        settings = [
            self._install_config(in_namespace),
            self._database_secret(in_namespace),
            self._mlmd_connection(in_namespace),
            self._rds_ca_bundle(in_namespace),
            self._object_store_secret(access_key, in_namespace),
            self._launcher_config(in_namespace),
            self._argo_config(in_namespace),
            self._runner_account(in_namespace),
            self._ingress_policy(in_namespace),
        ]
        self.install = k8s.kustomize.v2.Directory(
            f"{name}-install",
            directory=str(MANIFESTS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *settings, *args.install_after]),
        )
        self.api_url = API_URL
        self.namespace = NAMESPACE
        self.register_outputs({"apiUrl": self.api_url, "pipelineRoot": self.pipeline_root})

    def _namespace(self) -> k8s.core.v1.Namespace:
        # Upstream enforces `baseline` here: pipeline step images may run as root (KFP does not force
        # runAsNonRoot on user containers), which `restricted` would reject.
        return k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                    PLATFORM_LABEL: PLATFORM_LABEL_VALUE,
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _object_store_key(self) -> aws.iam.AccessKey:
        child = pulumi.ResourceOptions(parent=self)
        user = aws.iam.User(f"{self._name}-object-store", path="/mlops/", opts=child)
        aws.iam.UserPolicy(
            f"{self._name}-object-store", user=user.name, policy=object_store_policy(self._args), opts=child
        )
        return aws.iam.AccessKey(f"{self._name}-object-store", user=user.name, opts=child)

    def _install_config(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        """Upstream's `pipeline-install-config`, plus the keys our overlay's patches read."""
        args = self._args
        return k8s.core.v1.ConfigMap(
            f"{self._name}-install-config",
            metadata=self._metadata("pipeline-install-config"),
            data={
                "appName": "pipeline",
                "appVersion": KFP_VERSION,
                "dbType": "mysql",
                "mysqlHost": args.database.address,
                "mysqlPort": args.database.port.apply(str),
                # go-sql-driver: verify the server certificate against the system roots (+ SSL_CERT_DIR).
                "mysqlExtraParams": json.dumps({"tls": "true"}),
                "mlmdDb": "metadb",
                "pipelineDb": "mlpipeline",
                "bucketName": args.artifacts.name,
                "defaultPipelineRoot": self.pipeline_root,
                "objectStoreHost": self._s3_endpoint,
                "objectStoreRegion": args.region,
                "argoKeyFormat": ARGO_KEY_FORMAT,
                "ARTIFACT_NAMESPACE_OWNERSHIP_MODE": "mlmd-then-prefix",
                "ARTIFACT_NAMESPACE_KEY_PREFIX": PIPELINES_PREFIX,
                "autoUpdatePipelineDefaultVersion": "true",
                "cronScheduleTimezone": "UTC",
                "ConMaxLifeTime": "120s",
                "LOG_LEVEL": "info",
                "ARTIFACTS_PROXY_ENABLED": "false",
                "ARTIFACT_RETENTION_DAYS": "-1",
                # Step pods run as the non-root uid the platform's images create.
                "defaultSecurityContextRunAsUser": "10001",
                "defaultSecurityContextRunAsGroup": "10001",
                "defaultSecurityContextRunAsNonRoot": "true",
                "BLOCK_V1_PIPELINES": "true",
            },
            opts=opts,
        )

    def _database_secret(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            f"{self._name}-database",
            metadata=self._metadata("mysql-secret"),
            type="Opaque",
            string_data={"username": self._args.database.master_username, "password": self._database_password},
            opts=opts,
        )

    def _mlmd_connection(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        """MLMD's connection file: it holds the database password, so it is a Secret."""
        database = self._args.database
        config = pulumi.Output.all(database.address, database.port, self._database_password).apply(
            lambda values: mlmd_connection_config(
                host=str(values[0]),
                port=int(values[1]),
                database="metadb",
                user=database.master_username,
                password=str(values[2]),
                ca_file=f"{RDS_CA_MOUNT}/{RDS_CA_FILE}",
            )
        )
        return k8s.core.v1.Secret(
            f"{self._name}-mlmd-connection",
            metadata=self._metadata("metadata-grpc-connection"),
            type="Opaque",
            string_data={"connection.pbtxt": pulumi.Output.secret(config)},
            opts=opts,
        )

    def _rds_ca_bundle(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        bundle = RdsCaBundle(f"{self._name}-rds-ca", self._args.region, opts=pulumi.ResourceOptions(parent=self))
        return k8s.core.v1.ConfigMap(
            f"{self._name}-rds-ca",
            metadata=self._metadata("rds-ca-bundle"),
            data={RDS_CA_FILE: bundle.pem},
            opts=opts,
        )

    def _object_store_secret(self, access_key: aws.iam.AccessKey, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            f"{self._name}-object-store-key",
            metadata=self._metadata(OBJECT_STORE_SECRET),
            type="Opaque",
            string_data={"accesskey": access_key.id, "secretkey": access_key.secret},
            opts=opts,
        )

    def _launcher_config(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        provider = {
            "endpoint": self._s3_endpoint,
            "region": self._args.region,
            "disableSSL": False,
            "credentials": {
                "fromEnv": False,
                "secretRef": {
                    "secretName": OBJECT_STORE_SECRET,
                    "accessKeyKey": "accesskey",
                    "secretKeyKey": "secretkey",
                },
            },
        }
        return k8s.core.v1.ConfigMap(
            f"{self._name}-launcher",
            metadata=self._metadata("kfp-launcher"),
            data={
                "defaultPipelineRoot": self.pipeline_root,
                "providers": json.dumps({"s3": {"default": provider}}, sort_keys=True),
            },
            opts=opts,
        )

    def _argo_config(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        repository = {
            "archiveLogs": True,
            "s3": {
                "endpoint": self._s3_endpoint,
                "region": self._args.region,
                "bucket": self._args.artifacts.name,
                "keyFormat": ARGO_KEY_FORMAT,
                "insecure": False,
                "accessKeySecret": {"name": OBJECT_STORE_SECRET, "key": "accesskey"},
                "secretKeySecret": {"name": OBJECT_STORE_SECRET, "key": "secretkey"},
            },
        }
        # Upstream's settings (KFP 2.17.0's overlay of this ConfigMap), which replacing the ConfigMap
        # would otherwise drop: Argo's executor containers hardened like every pod here, and finished
        # workflows cleaned up after an hour, with pod errors (not step failures) retried twice.
        executor = {
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        cleanup = {"secondsAfterCompletion": 3600, "secondsAfterSuccess": 3600, "secondsAfterFailure": 3600}
        defaults = {
            "spec": {
                "ttlStrategy": cleanup,
                "templateDefaults": {"retryStrategy": {"limit": "2", "retryPolicy": "OnError"}},
            }
        }
        return k8s.core.v1.ConfigMap(
            f"{self._name}-argo-config",
            metadata=self._metadata("workflow-controller-configmap"),
            data={
                "artifactRepository": pulumi.Output.json_dumps(repository),
                "executor": json.dumps(executor, sort_keys=True),
                "workflowDefaults": json.dumps(defaults, sort_keys=True),
            },
            opts=opts,
        )

    def _runner_account(self, opts: pulumi.ResourceOptions) -> k8s.core.v1.ServiceAccount:
        """Step pods run as `pipeline-runner`: declared here (not patched) so its IRSA annotation,
        which gives it read access to the datasets, survives every re-apply of the install."""
        args = self._args
        runner_role = WorkloadRole(
            f"{self._name}-pipeline-runner",
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=NAMESPACE,
                service_account=RUNNER_SERVICE_ACCOUNT,
                policy_statements=bucket_prefix_statements(
                    args.datasets.arn,
                    "datasets",
                    args.datasets.kms_key_arn,
                    actions=("s3:GetObject",),
                    sid="Datasets",
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        metadata = self._metadata(RUNNER_SERVICE_ACCOUNT)
        metadata.annotations = {"eks.amazonaws.com/role-arn": runner_role.arn}
        return k8s.core.v1.ServiceAccount(f"{self._name}-pipeline-runner", metadata=metadata, opts=opts)

    def _ingress_policy(self, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
        """KFP's pods (API, UI, MLMD, Argo, step pods) accept traffic only from the platform's namespaces.

        Egress stays open: the components call the Kubernetes API, RDS and S3, and step pods run the
        training code; the platform's own jobs in this namespace restrict theirs in their own policies.
        """
        return k8s.networking.v1.NetworkPolicy(
            f"{self._name}-ingress",
            metadata=self._metadata("kubeflow-pipelines-ingress"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[platform_namespaces()])],
            ),
            opts=opts,
        )

    @staticmethod
    def _metadata(name: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=NAMESPACE, labels={"app.kubernetes.io/part-of": "kubeflow-pipelines"}
        )

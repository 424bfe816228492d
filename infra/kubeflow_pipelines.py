"""Kubeflow Pipelines (standalone) on the cluster, on RDS MySQL and the S3 artifacts bucket.

The upstream manifests of a pinned release are applied with kustomize
(`infra/manifests/kubeflow-pipelines/`); the objects that hold this stack's settings and secrets
are declared here instead, typed and secret-aware.

KFP's object-store client cannot use IRSA (kubeflow/pipelines #14097, #11729), so it gets the
access key of an IAM user whose only permissions are the `pipelines/` prefix of the artifacts
bucket and its KMS key. Rotate it by replacing the key: `pulumi up --replace <the AccessKey URN>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam_policies import bucket_prefix_statements
from infra.pod_security import PLATFORM_LABEL, PLATFORM_LABEL_VALUE
from infra.workload_role import ClusterIdentity, WorkloadRole, WorkloadRoleArgs

NAMESPACE = "kubeflow"
KFP_VERSION = "2.17.0"
PIPELINES_PREFIX = "pipelines"
API_URL = f"http://ml-pipeline.{NAMESPACE}.svc.cluster.local:8888"
MANIFESTS = Path("infra/manifests/kubeflow-pipelines")
OBJECT_STORE_SECRET = "mlpipeline-minio-artifact"


@dataclass(frozen=True)
class KubeflowPipelinesArgs:
    region: str
    artifacts_bucket_name: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    buckets_kms_key_arn: pulumi.Input[str]
    database_address: pulumi.Input[str]
    database_port: pulumi.Input[int]
    database_username: str
    database_password: pulumi.Output[str]
    """A Pulumi secret: KFP reads its database password from a Kubernetes Secret only."""
    identity: ClusterIdentity
    datasets_bucket_arn: pulumi.Input[str]
    """Pipeline steps (service account `pipeline-runner`) read training data from here through IRSA."""


def object_store_policy(args: KubeflowPipelinesArgs) -> pulumi.Output[str]:
    statements = bucket_prefix_statements(args.artifacts_bucket_arn, PIPELINES_PREFIX, args.buckets_kms_key_arn)
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


class KubeflowPipelines(pulumi.ComponentResource):
    """KFP API server, UI, MLMD, cache and Argo in `kubeflow`, wired to RDS MySQL and S3."""

    api_url: str
    pipeline_root: pulumi.Output[str]

    def __init__(self, name: str, args: KubeflowPipelinesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:pipelines:KubeflowPipelines", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        user = aws.iam.User(f"{name}-object-store", path="/mlops/", opts=child)
        aws.iam.UserPolicy(f"{name}-object-store", user=user.name, policy=object_store_policy(args), opts=child)
        access_key = aws.iam.AccessKey(f"{name}-object-store", user=user.name, opts=child)

        # Upstream enforces `baseline` here: pipeline step images may run as root (KFP does not force
        # runAsNonRoot on user containers), which `restricted` would reject.
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                    PLATFORM_LABEL: PLATFORM_LABEL_VALUE,
                },
            ),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        self.pipeline_root = pulumi.Output.concat("s3://", args.artifacts_bucket_name, f"/{PIPELINES_PREFIX}")
        s3_endpoint = f"s3.{args.region}.amazonaws.com"

        settings = [
            k8s.core.v1.ConfigMap(
                f"{name}-install-config",
                metadata=self._metadata("pipeline-install-config"),
                data={
                    "appName": "pipeline",
                    "appVersion": KFP_VERSION,
                    "dbType": "mysql",
                    "mysqlHost": args.database_address,
                    "mysqlPort": pulumi.Output.from_input(args.database_port).apply(str),
                    "mlmdDb": "metadb",
                    "cacheDb": "cachedb",
                    "pipelineDb": "mlpipeline",
                    "bucketName": args.artifacts_bucket_name,
                    "defaultPipelineRoot": self.pipeline_root,
                    "autoUpdatePipelineDefaultVersion": "true",
                    "cronScheduleTimezone": "UTC",
                    "cacheImage": "registry.k8s.io/busybox",
                    "cacheNodeRestrictions": "false",
                    "MAXIMUM_CACHE_STALENESS": "",
                    "DEFAULT_CACHE_STALENESS": "",
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
                opts=in_namespace,
            ),
            k8s.core.v1.Secret(
                f"{name}-database",
                metadata=self._metadata("mysql-secret"),
                type="Opaque",
                string_data={"username": args.database_username, "password": args.database_password},
                opts=in_namespace,
            ),
            k8s.core.v1.Secret(
                f"{name}-object-store-key",
                metadata=self._metadata(OBJECT_STORE_SECRET),
                type="Opaque",
                string_data={"accesskey": access_key.id, "secretkey": access_key.secret},
                opts=in_namespace,
            ),
            k8s.core.v1.ConfigMap(
                f"{name}-launcher",
                metadata=self._metadata("kfp-launcher"),
                data={
                    "defaultPipelineRoot": self.pipeline_root,
                    "providers": json.dumps(
                        {
                            "s3": {
                                "default": {
                                    "endpoint": s3_endpoint,
                                    "region": args.region,
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
                            }
                        },
                        sort_keys=True,
                    ),
                },
                opts=in_namespace,
            ),
            k8s.core.v1.ConfigMap(
                f"{name}-argo-config",
                metadata=self._metadata("workflow-controller-configmap"),
                data={
                    "artifactRepository": pulumi.Output.json_dumps(
                        {
                            "archiveLogs": True,
                            "s3": {
                                "endpoint": s3_endpoint,
                                "region": args.region,
                                "bucket": args.artifacts_bucket_name,
                                # Dated, as upstream: a workflow name can come back once the old one is gone.
                                "keyFormat": (
                                    f"{PIPELINES_PREFIX}/logs/{{{{workflow.name}}}}/{{{{workflow.creationTimestamp.Y}}}}/"
                                    "{{workflow.creationTimestamp.m}}/{{workflow.creationTimestamp.d}}/{{pod.name}}"
                                ),
                                "insecure": False,
                                "accessKeySecret": {"name": OBJECT_STORE_SECRET, "key": "accesskey"},
                                "secretKeySecret": {"name": OBJECT_STORE_SECRET, "key": "secretkey"},
                            },
                        }
                    ),
                    # Upstream's settings (KFP 2.17.0's overlay of this ConfigMap), which replacing the
                    # ConfigMap would otherwise drop: Argo's executor containers hardened like every
                    # pod here, and finished workflows cleaned up after an hour, with pod errors (not
                    # step failures) retried twice.
                    "executor": json.dumps(
                        {
                            "imagePullPolicy": "IfNotPresent",
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 65532,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        },
                        sort_keys=True,
                    ),
                    "workflowDefaults": json.dumps(
                        {
                            "spec": {
                                "ttlStrategy": {
                                    "secondsAfterCompletion": 3600,
                                    "secondsAfterSuccess": 3600,
                                    "secondsAfterFailure": 3600,
                                },
                                "templateDefaults": {"retryStrategy": {"limit": "2", "retryPolicy": "OnError"}},
                            }
                        },
                        sort_keys=True,
                    ),
                },
                opts=in_namespace,
            ),
        ]

        install = k8s.kustomize.v2.Directory(
            f"{name}-install",
            directory=str(MANIFESTS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *settings]),
        )
        # Upstream hard-codes the in-cluster SeaweedFS endpoint for the API server; point it at S3.
        k8s.apps.v1.DeploymentPatch(
            f"{name}-api-server-s3",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name="ml-pipeline",
                namespace=NAMESPACE,
                # The kustomize install owns these fields too; this patch must win.
                annotations={"pulumi.com/patchForce": "true"},
            ),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    spec=k8s.core.v1.PodSpecPatchArgs(
                        containers=[
                            k8s.core.v1.ContainerPatchArgs(
                                name="ml-pipeline-api-server",
                                env=[
                                    k8s.core.v1.EnvVarPatchArgs(name="OBJECTSTORECONFIG_HOST", value=s3_endpoint),
                                    k8s.core.v1.EnvVarPatchArgs(name="OBJECTSTORECONFIG_PORT", value=""),
                                    k8s.core.v1.EnvVarPatchArgs(name="OBJECTSTORECONFIG_SECURE", value="true"),
                                    k8s.core.v1.EnvVarPatchArgs(name="OBJECTSTORECONFIG_REGION", value=args.region),
                                ],
                            )
                        ]
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[install]),
        )

        # Step pods run as `pipeline-runner` (created by the install): give it read access to datasets.
        runner_role = WorkloadRole(
            f"{name}-pipeline-runner",
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=NAMESPACE,
                service_account="pipeline-runner",
                policy_statements=bucket_prefix_statements(
                    args.datasets_bucket_arn,
                    "datasets",
                    args.buckets_kms_key_arn,
                    actions=("s3:GetObject",),
                    sid="Datasets",
                ),
            ),
            opts=child,
        )
        k8s.core.v1.ServiceAccountPatch(
            f"{name}-pipeline-runner",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name="pipeline-runner",
                namespace=NAMESPACE,
                annotations={"eks.amazonaws.com/role-arn": runner_role.arn, "pulumi.com/patchForce": "true"},
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[install]),
        )

        self.api_url = API_URL
        self.register_outputs({"apiUrl": self.api_url, "pipelineRoot": self.pipeline_root})

    @staticmethod
    def _metadata(name: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=NAMESPACE, labels={"app.kubernetes.io/part-of": "kubeflow-pipelines"}
        )

"""Kubeflow Pipelines: pinned upstream manifests, wired to RDS MySQL and S3 with secrets kept secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from infra.offline_plan import PROJECT_ROOT
from tests.infra.conftest import Plan, of_type, policy_document

KFP_PARENT = "mlops:pipelines:KubeflowPipelines"
OWNED_BY_PULUMI = {
    ("Namespace", "kubeflow"),
    ("ConfigMap", "pipeline-install-config"),
    ("Secret", "mysql-secret"),
    ("ConfigMap", "kfp-launcher"),
    ("ConfigMap", "workflow-controller-configmap"),
    ("ServiceAccount", "pipeline-runner"),
}
# v1-only parts: the cache webhook (its certificate is never signed on EKS) and v1 visualizations.
V1_ONLY = {
    ("Deployment", "cache-deployer-deployment"),
    ("Deployment", "cache-server"),
    ("Service", "cache-server"),
    ("ServiceAccount", "kubeflow-pipelines-cache"),
    ("ServiceAccount", "kubeflow-pipelines-cache-deployer-sa"),
    ("Role", "kubeflow-pipelines-cache-role"),
    ("RoleBinding", "kubeflow-pipelines-cache-binding"),
    ("Role", "kubeflow-pipelines-cache-deployer-role"),
    ("RoleBinding", "kubeflow-pipelines-cache-deployer-rolebinding"),
    ("ClusterRole", "kubeflow-pipelines-cache-deployer-clusterrole"),
    ("ClusterRoleBinding", "kubeflow-pipelines-cache-deployer-clusterrolebinding"),
    ("Deployment", "ml-pipeline-visualizationserver"),
    ("Service", "ml-pipeline-visualizationserver"),
    ("ServiceAccount", "ml-pipeline-visualizationserver"),
    ("Deployment", "ml-pipeline-viewer-crd"),
    ("ServiceAccount", "ml-pipeline-viewer-crd-service-account"),
    ("Role", "ml-pipeline-viewer-controller-role"),
    ("RoleBinding", "ml-pipeline-viewer-crd-binding"),
}
INSTALL_CHILD = "mlops-pipelines-install:"


def _kfp(plan: Plan, resource_type: str) -> dict[str, dict]:
    return {
        r["inputs"]["metadata"]["name"]: r["inputs"]
        for r in of_type(plan, resource_type)
        if KFP_PARENT in (r["parent"] or "") and not r["name"].startswith(INSTALL_CHILD)
    }


def test_overlay_pins_one_release_and_drops_what_pulumi_owns() -> None:
    overlay = yaml.safe_load((PROJECT_ROOT / "infra/manifests/kubeflow-pipelines/kustomization.yaml").read_text())
    refs = {re.search(r"\?ref=(.+)$", url).group(1) for url in overlay["resources"]}  # type: ignore[union-attr]
    assert refs == {"2.17.0"}
    deleted = set()
    for patch in overlay["patches"]:
        document = yaml.safe_load(patch.get("patch", "{}"))
        if isinstance(document, dict) and document.get("$patch") == "delete":
            deleted.add((document["kind"], document["metadata"]["name"]))
    assert deleted == OWNED_BY_PULUMI | V1_ONLY


def test_install_applies_the_overlay_after_the_settings(plan: Plan) -> None:
    (install,) = [r for r in of_type(plan, "kubernetes:kustomize/v2:Directory") if KFP_PARENT in r["parent"]]
    assert Path(PROJECT_ROOT / install["inputs"]["directory"], "kustomization.yaml").is_file()
    config_maps = _kfp(plan, "kubernetes:core/v1:ConfigMap")
    secrets = _kfp(plan, "kubernetes:core/v1:Secret")
    namespaces = _kfp(plan, "kubernetes:core/v1:Namespace")
    declared = {("ConfigMap", n) for n in config_maps} | {("Secret", n) for n in secrets}
    declared |= {("Namespace", n) for n in namespaces}
    declared |= {("ServiceAccount", n) for n in _kfp(plan, "kubernetes:core/v1:ServiceAccount")}
    assert declared == OWNED_BY_PULUMI | {
        ("Secret", "mlpipeline-minio-artifact"),
        ("Secret", "metadata-grpc-connection"),
        ("ConfigMap", "rds-ca-bundle"),
    }
    assert set(install["dependencies"]) >= {"mlops-pipelines-install-config", "mlops-pipelines-database"}


def test_database_points_at_rds_and_credentials_are_secret(plan: Plan) -> None:
    install_config = _kfp(plan, "kubernetes:core/v1:ConfigMap")["pipeline-install-config"]["data"]
    assert install_config["mysqlHost"].endswith(".rds.amazonaws.com")
    assert install_config["mysqlPort"] == "3306"
    assert install_config["defaultPipelineRoot"].startswith("s3://mlops-artifacts-")
    assert install_config["defaultSecurityContextRunAsNonRoot"] == "true"
    secrets = _kfp(plan, "kubernetes:core/v1:Secret")
    assert secrets["mysql-secret"]["stringData"] == "[secret]"
    assert secrets["mlpipeline-minio-artifact"]["stringData"] == "[secret]"


def test_artifact_store_is_s3_over_tls(plan: Plan) -> None:
    config_maps = _kfp(plan, "kubernetes:core/v1:ConfigMap")
    providers = json.loads(config_maps["kfp-launcher"]["data"]["providers"])["s3"]["default"]
    assert providers["disableSSL"] is False and providers["credentials"]["fromEnv"] is False
    argo = json.loads(config_maps["workflow-controller-configmap"]["data"]["artifactRepository"])["s3"]
    assert argo["insecure"] is False and argo["keyFormat"].startswith("pipelines/")
    # The API server reads its S3 endpoint from the install config (tests/infra/test_kubeflow_install.py).
    install_config = config_maps["pipeline-install-config"]["data"]
    assert install_config["objectStoreHost"] == f"s3.{install_config['objectStoreRegion']}.amazonaws.com"


def test_object_store_user_may_touch_only_the_pipelines_prefix(plan: Plan) -> None:
    (policy,) = [
        policy_document(r["inputs"]["policy"])
        for r in of_type(plan, "aws:iam/userPolicy:UserPolicy")
        if KFP_PARENT in r["parent"]
    ]
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources
        for resource in resources:
            if resource.startswith("arn:aws:s3:::") and resource.endswith("*"):
                assert resource.endswith("/pipelines/*")
    assert len(of_type(plan, "aws:iam/accessKey:AccessKey")) == 1


def test_argo_executor_is_hardened_and_finished_workflows_are_cleaned_up(plan: Plan) -> None:
    """Replacing upstream's workflow-controller ConfigMap keeps what upstream hardens and cleans up."""
    data = _kfp(plan, "kubernetes:core/v1:ConfigMap")["workflow-controller-configmap"]["data"]
    context = json.loads(data["executor"])["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    defaults = json.loads(data["workflowDefaults"])["spec"]
    assert set(defaults["ttlStrategy"].values()) == {3600}
    assert defaults["templateDefaults"]["retryStrategy"]["retryPolicy"] == "OnError"
    key_format = json.loads(data["artifactRepository"])["s3"]["keyFormat"]
    assert key_format == (
        "pipelines/kubeflow/logs/{{workflow.name}}/{{workflow.creationTimestamp.Y}}/{{workflow.creationTimestamp.m}}/"
        "{{workflow.creationTimestamp.d}}/{{pod.name}}"
    )

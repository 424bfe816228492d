"""The MLflow tracking server's Kubernetes and IAM resources, in every stack."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.conftest import Plan, inputs_of, of_type, policy_document

TRACKING_PARENT = "mlops:tracking:TrackingServer"


def _tracking(plan: Plan, resource_type: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in of_type(plan, resource_type) if TRACKING_PARENT in (r["parent"] or "")]


def _pod_specs(plan: Plan) -> list[dict[str, Any]]:
    deployments = _tracking(plan, "kubernetes:apps/v1:Deployment")
    jobs = _tracking(plan, "kubernetes:batch/v1:Job")
    assert len(deployments) == 1 and len(jobs) == 1
    return [workload["spec"]["template"]["spec"] for workload in (*deployments, *jobs)]


def test_irsa_policy_is_scoped_to_the_artifacts_prefix_and_its_keys(plan: Plan) -> None:
    roles = [r for r in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if TRACKING_PARENT in r["parent"]]
    (policy,) = [policy_document(r["inputs"]["policy"]) for r in roles]
    buckets = {r["name"].removeprefix("mlops-"): r for r in of_type(plan, "aws:s3/bucket:Bucket")}
    assert set(buckets) >= {"artifacts"}
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(not action.endswith("*") for action in actions)
        for resource in resources:
            if resource.startswith("arn:aws:s3:::"):
                assert "mlops-artifacts" in resource, "only the artifacts bucket"
                if resource.endswith("*"):
                    assert resource.endswith("/mlflow/*")
    listing = next(s for s in policy["Statement"] if "s3:ListBucket" in s["Action"])
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["mlflow", "mlflow/*"]
    trust = [
        policy_document(r["inputs"]["assumeRolePolicy"])
        for r in of_type(plan, "aws:iam/role:Role")
        if TRACKING_PARENT in r["parent"]
    ]
    (statement,) = trust[0]["Statement"]
    assert "system:serviceaccount:mlflow:mlflow" in statement["Condition"]["StringEquals"].values()


def test_pods_are_hardened_with_limits_and_no_secret_literals(plan: Plan) -> None:
    for pod in _pod_specs(plan):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert "@sha256:" in container["image"], "deployed by digest"
            for variable in container["env"]:
                assert not re.search(r"PASSWORD|SECRET_KEY|TOKEN", variable["name"]) or variable["name"].endswith(
                    "_FILE"
                ), variable
                assert "postgresql://" not in str(variable.get("value", ""))
            assert not any("password" in str(arg).lower() for arg in container.get("args", []))


def test_deployment_has_all_three_probes_and_waits_for_the_migration(plan: Plan) -> None:
    (deployment,) = _tracking(plan, "kubernetes:apps/v1:Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # Only readiness depends on the database: an outage makes pods unready, it does not restart them.
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["timeoutSeconds"] == 5
    assert container["args"] == ["serve", "--skip-migrate"]
    (job,) = _tracking(plan, "kubernetes:batch/v1:Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_credentials_are_generated_and_secret(plan: Plan) -> None:
    (secret,) = _tracking(plan, "kubernetes:core/v1:Secret")
    assert secret["stringData"] == "[secret]"
    passwords = [
        r for r in of_type(plan, "random:index/randomPassword:RandomPassword") if TRACKING_PARENT in r["parent"]
    ]
    assert len(passwords) == 2 and all(p["inputs"]["length"] >= 32 for p in passwords)


def test_network_policy_admits_only_platform_namespaces(plan: Plan) -> None:
    policies = {p["metadata"]["name"]: p for p in _tracking(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert set(policies) == {"mlflow", "mlflow-migrate"}
    assert policies["mlflow-migrate"]["spec"].get("ingress") in (None, [])
    policy = policies["mlflow"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["spec"]["ingress"]
    selectors = [peer["namespaceSelector"]["matchLabels"] for peer in rule["from"] if "namespaceSelector" in peer]
    assert selectors == [{"mlops.platform/part-of": "mlops-platform"}]
    blocks = [peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer]
    assert all(cidr != "0.0.0.0/0" for cidr in blocks)
    (namespace,) = _tracking(plan, "kubernetes:core/v1:Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_network_policies_are_enforced_by_the_cni(plan: Plan) -> None:
    (cni,) = [a for a in inputs_of(plan, "aws:eks/addon:Addon") if a["addonName"] == "vpc-cni"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_prod_has_a_disruption_budget_and_dev_does_not(plans: dict[str, Plan]) -> None:
    assert len(_tracking(plans["prod"], "kubernetes:policy/v1:PodDisruptionBudget")) == 1
    assert _tracking(plans["dev"], "kubernetes:policy/v1:PodDisruptionBudget") == []
    (prod_deployment,) = _tracking(plans["prod"], "kubernetes:apps/v1:Deployment")
    assert prod_deployment["spec"]["replicas"] == 2


def test_internal_ingress_only_where_configured(plans: dict[str, Plan]) -> None:
    assert _tracking(plans["dev"], "kubernetes:networking.k8s.io/v1:Ingress") == []
    (ingress,) = _tracking(plans["prod"], "kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_tracking_image_repository_is_immutable_and_scanned(plan: Plan) -> None:
    repositories = inputs_of(plan, "aws:ecr/repository:Repository")
    assert any(r["name"].endswith("/tracking-server") for r in repositories)
    for repository in repositories:
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    images = {image["dockerfile"]["location"]: image for image in inputs_of(plan, "docker-build:index:Image")}
    assert images["workloads/tracking/Dockerfile"]["push"] is True

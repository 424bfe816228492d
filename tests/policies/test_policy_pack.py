"""The policy pack: each policy's real `validate` on a passing and a failing resource, and on every stack's plan."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.secret import Secret, secrets_preserving_proxy

from infra.platform import BUCKET_PURPOSES
from infra.secure_bucket import tls_only_statements
from policies.platform_policies.checks import RULES
from policies.platform_policies.pack import build_policies, is_production, stack_of
from tests.offline_plans import STACKS, offline_plan

POLICIES = {policy.name: policy for policy in build_policies()}
RESOURCE_POLICIES = {name: policy for name, policy in POLICIES.items() if isinstance(policy, ResourceValidationPolicy)}
PROJECT = "mlops-platform"
POLICY_PACK_DIR = Path(__file__).resolve().parents[2] / "policies"


def _options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def _urn(stack: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{resource_type}::{name}"


def run_policy(
    policy_name: str,
    resource_type: str,
    props: Any,
    stack: str = "dev",
    config: dict[str, Any] | None = None,
) -> list[str]:
    """Call the policy's own `validate`, as the Pulumi engine would, and collect what it reports."""
    reported: list[str] = []
    args = ResourceValidationArgs(
        resource_type, props, _urn(stack, resource_type, "subject"), "subject", _options(), None, config
    )
    POLICIES[policy_name].validate(args, lambda message, urn=None: reported.append(message))
    return reported


# ---------------------------------------------------------------------------------------------
# realistic compliant resources (as the offline plan records them) and one breaking edit each

BUCKET_POLICY = {"Version": "2012-10-17", "Statement": tls_only_statements("arn:aws:s3:::data-1")}
ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data-1/train/*"},
        {"Sid": "Describe", "Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
    ],
}
CONTAINER = {
    "name": "server",
    "image": "registry.example/app@sha256:0123",
    "env": [
        {"name": "MLFLOW_AUTH_ADMIN_PASSWORD_FILE", "value": "/var/run/secrets/mlflow/password"},
        {"name": "MLFLOW_DATABASE_SECRET_ARN", "value": "arn:aws:secretsmanager:eu-west-1:1:secret:x"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ],
    "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    },
}
POD_SPEC = {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001}, "containers": [CONTAINER]}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": POD_SPEC}}}
GPU_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {
        "template": {
            "spec": {
                **POD_SPEC,
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [
                    {
                        **CONTAINER,
                        "resources": {
                            "requests": {"cpu": "2", "memory": "8Gi"},
                            "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
                        },
                    }
                ],
            }
        }
    },
}
CRON_JOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "spec": {"jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}},
}
RDS = {
    "storageEncrypted": True,
    "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k",
    "publiclyAccessible": False,
    "backupRetentionPeriod": 7,
    "deletionProtection": True,
    "multiAz": True,
}
EKS = {
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "encryptionConfig": {"provider": {"keyArn": "arn:aws:kms:eu-west-1:1:key/k"}, "resources": ["secrets"]},
    "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": False},
}

S3_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
CONTAINER_PATH = ("spec", "template", "spec", "containers", 0)


def edited(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `document` with the value at `path` replaced (or deleted when value is ...)."""
    result = copy.deepcopy(document)
    node: Any = result
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


def _pab(flag_off: str | None = None) -> dict[str, Any]:
    flags = {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    if flag_off:
        flags[flag_off] = False
    return {"bucket": "data-1", **flags}


def _sse(algorithm: str) -> dict[str, Any]:
    default = {"sseAlgorithm": algorithm, "kmsMasterKeyId": "arn:aws:kms:eu-west-1:1:key/k"}
    return {"bucket": "data-1", "rules": [{"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": True}]}


def _role_policy(statement: dict[str, Any]) -> dict[str, Any]:
    return {"role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}


LAUNCH_TEMPLATE = {
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
}

# (policy, resource type, stack, compliant props, violating props, fragment of the expected message)
CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any], str]] = [
    ("s3-public-access-block", S3_PAB, "dev", _pab(), _pab("restrictPublicBuckets"), "CKV_AWS_56"),
    ("s3-public-access-block", S3_PAB, "dev", _pab(), _pab("blockPublicAcls"), "CKV_AWS_53"),
    ("s3-sse-kms", S3_SSE, "dev", _sse("aws:kms"), _sse("AES256"), "CKV_AWS_145"),
    (
        "s3-tls-only",
        "aws:s3/bucketPolicy:BucketPolicy",
        "dev",
        {"bucket": "data-1", "policy": json.dumps(BUCKET_POLICY)},
        {"bucket": "data-1", "policy": json.dumps(edited(BUCKET_POLICY, ("Statement", 0, "Effect"), "Allow"))},
        "aws:SecureTransport",
    ),
    ("rds-encrypted", "aws:rds/instance:Instance", "dev", RDS, {**RDS, "storageEncrypted": False}, "CKV_AWS_16"),
    ("rds-not-public", "aws:rds/instance:Instance", "dev", RDS, {**RDS, "publiclyAccessible": True}, "CKV_AWS_17"),
    ("rds-backup-retention", "aws:rds/instance:Instance", "dev", RDS, {**RDS, "backupRetentionPeriod": 3}, ">= 7"),
    (
        "rds-production-resilience",
        "aws:rds/instance:Instance",
        "prod",
        RDS,
        {**RDS, "deletionProtection": False},
        "CKV_AWS_293",
    ),
    ("rds-production-resilience", "aws:rds/instance:Instance", "prod", RDS, {**RDS, "multiAz": False}, "CKV_AWS_157"),
    (
        "eks-secrets-encryption",
        "aws:eks/cluster:Cluster",
        "dev",
        EKS,
        edited(EKS, ("encryptionConfig",), ...),
        "CKV_AWS_58",
    ),
    (
        "eks-control-plane-logging",
        "aws:eks/cluster:Cluster",
        "dev",
        EKS,
        {**EKS, "enabledClusterLogTypes": ["api", "audit"]},
        "authenticator, controllerManager, scheduler",
    ),
    (
        "eks-private-endpoint",
        "aws:eks/cluster:Cluster",
        "prod",
        EKS,
        edited(EKS, ("vpcConfig", "endpointPublicAccess"), True),
        "CKV_AWS_39",
    ),
    (
        "eks-private-endpoint",
        "aws:eks/cluster:Cluster",
        "dev",
        edited(EKS, ("vpcConfig",), {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}),
        edited(EKS, ("vpcConfig",), {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}),
        "CKV_AWS_38",
    ),
    (
        "ec2-imdsv2",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "dev",
        LAUNCH_TEMPLATE,
        edited(LAUNCH_TEMPLATE, ("metadataOptions", "httpTokens"), "optional"),
        "CKV_AWS_79",
    ),
    (
        "ec2-imdsv2",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "dev",
        LAUNCH_TEMPLATE,
        edited(LAUNCH_TEMPLATE, ("metadataOptions", "httpPutResponseHopLimit"), 2),
        "CKV_AWS_341",
    ),
    (
        "iam-no-wildcard-actions",
        "aws:iam/rolePolicy:RolePolicy",
        "dev",
        {"role": "r", "policy": json.dumps(ROLE_POLICY)},
        _role_policy({"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data-1/*"}),
        "CKV_AWS_63",
    ),
    (
        "iam-no-wildcard-actions",
        "aws:iam/role:Role",
        "dev",
        {"inlinePolicies": [{"name": "p", "policy": json.dumps(ROLE_POLICY)}]},
        {
            "inlinePolicies": [
                {"name": "p", "policy": _role_policy({"Effect": "Allow", "Action": "*", "Resource": "*"})["policy"]}
            ]
        },
        "inlinePolicies[0]",
    ),
    (
        "iam-no-wildcard-data-resources",
        "aws:iam/policy:Policy",
        "dev",
        {"policy": json.dumps(ROLE_POLICY)},
        _role_policy({"Sid": "ReadAll", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}),
        "CKV_AWS_355",
    ),
    (
        "k8s-run-as-non-root",
        DEPLOYMENT_TYPE,
        "dev",
        DEPLOYMENT,
        edited(
            edited(DEPLOYMENT, ("spec", "template", "spec", "securityContext"), {}),
            (*CONTAINER_PATH, "securityContext", "runAsNonRoot"),
            ...,
        ),
        "CKV_K8S_23",
    ),
    (
        "k8s-read-only-root-filesystem",
        "kubernetes:batch/v1:CronJob",
        "dev",
        CRON_JOB,
        edited(
            CRON_JOB,
            (
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
                0,
                "securityContext",
                "readOnlyRootFilesystem",
            ),
            False,
        ),
        "CKV_K8S_22",
    ),
    (
        "k8s-no-privilege-escalation",
        DEPLOYMENT_TYPE,
        "dev",
        DEPLOYMENT,
        edited(DEPLOYMENT, (*CONTAINER_PATH, "securityContext", "allowPrivilegeEscalation"), ...),
        "CKV_K8S_20",
    ),
    (
        "k8s-resources",
        "kubernetes:batch/v1:Job",
        "dev",
        GPU_JOB,
        edited(GPU_JOB, ("spec", "template", "spec", "containers", 0, "resources", "limits"), {"nvidia.com/gpu": 1}),
        "limits.cpu (CKV_K8S_11), limits.memory (CKV_K8S_12)",
    ),
    (
        "k8s-deployment-probes",
        DEPLOYMENT_TYPE,
        "dev",
        DEPLOYMENT,
        edited(DEPLOYMENT, (*CONTAINER_PATH, "readinessProbe"), ...),
        "CKV_K8S_9",
    ),
    (
        "k8s-gpu-toleration",
        "kubernetes:batch/v1:Job",
        "dev",
        GPU_JOB,
        edited(GPU_JOB, ("spec", "template", "spec", "tolerations"), []),
        "nvidia.com/gpu",
    ),
    (
        "k8s-no-secret-env-literals",
        DEPLOYMENT_TYPE,
        "dev",
        DEPLOYMENT,
        edited(DEPLOYMENT, (*CONTAINER_PATH, "env", 2), {"name": "DB_PASSWORD", "value": "hunter2"}),
        "DB_PASSWORD",
    ),
    (
        "k8s-no-secret-env-literals",
        DEPLOYMENT_TYPE,
        "dev",
        DEPLOYMENT,
        edited(DEPLOYMENT, (*CONTAINER_PATH, "env", 2), {"name": "UPSTREAM", "value": "AKIAIOSFODNN7EXAMPLE"}),
        "UPSTREAM",
    ),
]


@pytest.mark.parametrize(
    ("policy_name", "resource_type", "stack", "compliant", "violating", "expected"),
    CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(CASES)],
)
def test_policy_passes_compliant_and_reports_violating_resource(
    policy_name: str,
    resource_type: str,
    stack: str,
    compliant: dict[str, Any],
    violating: dict[str, Any],
    expected: str,
) -> None:
    assert run_policy(policy_name, resource_type, compliant, stack) == []
    reported = run_policy(policy_name, resource_type, violating, stack)
    assert reported, f"{policy_name} accepted a violating {resource_type}"
    assert any(expected in message for message in reported), reported


def test_every_resource_policy_has_a_failing_case_and_names_its_benchmark() -> None:
    assert {case[0] for case in CASES} == set(RESOURCE_POLICIES)
    for policy in POLICIES.values():
        assert any(source in policy.description for source in ("CKV", "CIS", "Well-Architected")), policy.name


def test_production_only_rules_do_not_apply_outside_production() -> None:
    relaxed = {**RDS, "deletionProtection": False, "multiAz": False}
    assert run_policy("rds-production-resilience", "aws:rds/instance:Instance", relaxed, "staging") == []
    assert len(run_policy("rds-production-resilience", "aws:rds/instance:Instance", relaxed, "prod")) == 2


def test_production_stacks_come_from_the_pack_config() -> None:
    relaxed = {**RDS, "deletionProtection": False}
    config = {"productionStacks": ["prod", "prod-eu"]}
    assert run_policy("rds-production-resilience", "aws:rds/instance:Instance", relaxed, "prod-eu", config)
    assert stack_of("urn:pulumi:prod-eu::p::aws:rds/instance:Instance::db") == "prod-eu"
    assert not is_production("urn:pulumi:staging::p::t::n", config)


def test_policies_read_props_through_the_engine_proxies() -> None:
    # Under `pulumi preview`, props are read-only Mapping/Sequence proxies with secrets unwrapped.
    props = secrets_preserving_proxy(
        {
            "enabledClusterLogTypes": ["api", "audit"],
            "encryptionConfig": Secret({"provider": {"keyArn": "k"}, "resources": ["secrets"]}),
        }
    )
    assert run_policy("eks-secrets-encryption", "aws:eks/cluster:Cluster", props) == []
    assert any(
        "scheduler" in message for message in run_policy("eks-control-plane-logging", "aws:eks/cluster:Cluster", props)
    )


def test_policies_ignore_resource_types_they_do_not_govern() -> None:
    assert run_policy("k8s-resources", "aws:s3/bucket:Bucket", {"spec": {}}) == []


# ---------------------------------------------------------------------------------------------
# the stack policy


def _policy_resource(
    resource_type: str, name: str, parent: PolicyResource | None, bucket_of: Any = None
) -> PolicyResource:
    urn = _urn("dev", resource_type, name)
    dependencies = {"bucket": [bucket_of]} if bucket_of is not None else {}
    return PolicyResource(
        resource_type, {}, urn, name, _options(parent.urn if parent else None), None, parent, [], dependencies
    )


def _run_stack_policy(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    reported: list[tuple[str, str | None]] = []
    policy = POLICIES["s3-bucket-controls-present"]
    assert isinstance(policy, StackValidationPolicy)
    policy.validate(StackValidationArgs(resources), lambda message, urn=None: reported.append((message, urn)))
    return reported


def test_stack_policy_finds_a_bucket_without_its_controls() -> None:
    component = _policy_resource("mlops:storage:SecureBucket", "data", None)
    bucket = _policy_resource("aws:s3/bucket:Bucket", "data", component)
    controls = [
        _policy_resource(S3_PAB, "data-pab", component, bucket_of=bucket),  # linked by dependency
        _policy_resource(S3_SSE, "data", component),  # linked by name and parent (the offline plan)
        _policy_resource("aws:s3/bucketPolicy:BucketPolicy", "data", component),
    ]
    assert _run_stack_policy([component, bucket, *controls]) == []
    reported = _run_stack_policy([component, bucket, *controls[1:]])
    assert reported == [("bucket data has no a public access block (CKV2_AWS_6)", bucket.urn)]


# ---------------------------------------------------------------------------------------------
# every policy over every stack's offline plan


def plan_policy_resources(plan: dict[str, Any]) -> list[PolicyResource]:
    """The plan's resources as the engine would hand them to a stack policy (parents linked by URN)."""
    stack = plan["stack"]
    by_urn: dict[str, PolicyResource] = {}
    resources = []
    # Components first, so parents exist when children are built.
    for resource in sorted(plan["resources"], key=lambda resource: not resource["type"].startswith("mlops:")):
        parent_urn = resource["parent"]
        parent_type = parent_urn.rsplit("::", 2)[-2] if parent_urn else None
        urn = _urn(stack, f"{parent_type}${resource['type']}" if parent_type else resource["type"], resource["name"])
        policy_resource = PolicyResource(
            resource["type"],
            resource["inputs"],
            urn,
            resource["name"],
            _options(parent_urn),
            None,
            by_urn.get(parent_urn) if parent_urn else None,
            [],
            {},
        )
        by_urn[urn] = policy_resource
        resources.append(policy_resource)
    return resources


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_passes_on_the_stack_offline_plan(stack: str) -> None:
    resources = plan_policy_resources(offline_plan(stack))
    violations: list[str] = []
    applied: Counter[str] = Counter()
    for resource in resources:
        args = ResourceValidationArgs(
            resource.resource_type, resource.props, resource.urn, resource.name, resource.opts, None
        )
        for name, policy in RESOURCE_POLICIES.items():
            policy.validate(args, lambda message, urn=None, name=name: violations.append(f"[{name}] {message}"))
            rule = next(rule for rule in RULES if rule.name == name)
            if resource.resource_type in rule.resource_types:
                applied[name] += 1
    stack_reports = _run_stack_policy(resources)
    assert violations == []
    assert stack_reports == []
    # Not vacuous: the AWS rules all found their resources in every stack.
    aws_rules = [rule.name for rule in RULES if not rule.name.startswith("k8s-")]
    assert {name for name in aws_rules if applied[name] == 0} == set()
    assert applied["s3-public-access-block"] == len(BUCKET_PURPOSES)


def test_kubernetes_policies_reach_the_workloads_in_the_plans() -> None:
    kubernetes_rules = [rule for rule in RULES if rule.name.startswith("k8s-")]
    workload_types = {resource["type"] for resource in offline_plan("dev")["resources"]} & set().union(
        *(rule.resource_types for rule in kubernetes_rules)
    )
    if not workload_types:
        pytest.skip("the plans declare no Kubernetes workloads yet")
    # The workloads the platform declares are checked by every workload rule (probes: Deployments only).
    assert all(
        workload_types & rule.resource_types for rule in kubernetes_rules if rule.name != "k8s-deployment-probes"
    )


def test_the_pack_starts_as_pulumi_runs_it() -> None:
    """`pulumi preview --policy-pack policies` runs the pack directory: it must serve and print its port."""
    pack = subprocess.Popen(
        [sys.executable, "-u", "."], cwd=POLICY_PACK_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert pack.stdout is not None
        port = pack.stdout.readline().strip()
    finally:
        pack.kill()
        pack.wait(timeout=10)
    assert port.isdigit() and int(port) > 0, pack.stderr.read() if pack.stderr else ""
    assert yaml.safe_load((POLICY_PACK_DIR / "PulumiPolicy.yaml").read_text())["runtime"]["name"] == "python"


def test_the_pack_readme_lists_every_policy() -> None:
    readme = (POLICY_PACK_DIR / "README.md").read_text()
    assert [name for name in POLICIES if f"`{name}`" not in readme] == []

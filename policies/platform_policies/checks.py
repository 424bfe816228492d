"""The rules of the policy pack, as plain functions over (resource_type, props).

Each check returns the list of violations it found (empty: compliant). Props are the resource's
inputs with the providers' camelCase names: what `pulumi preview` hands a policy, and what the
offline plan (`mlops plan STACK`) records, so the same function guards a real preview and the
offline tests. `production` says whether the resource belongs to a production stack (see
`pack.is_production`).

Every rule names the public benchmark it comes from: checkov check IDs (bridgecrewio/checkov),
the CIS Amazon EKS Benchmark, AWS Security Hub controls and the AWS Well-Architected
Machine Learning Lens (security pillar: protect data at rest and in transit, least privilege).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Check = Callable[[str, Mapping[str, Any], bool], list[str]]


@dataclass(frozen=True)
class Rule:
    """One policy of the pack: what it checks, on which resource types, and where the rule comes from."""

    name: str
    """Policy name, unique in the pack (kebab-case, as Pulumi shows it)."""
    description: str
    """One sentence naming the benchmark(s) the rule implements."""
    resource_types: frozenset[str]
    """Pulumi type tokens the rule applies to; other resources are skipped."""
    check: Check
    """(resource_type, props, production) -> violations."""


# --------------------------------------------------------------------------------------------
# helpers


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    # Under `pulumi preview` props are read-only Mapping/Sequence proxies, not dicts and lists.
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def _truthy(value: Any) -> bool:
    """Pulumi carries some booleans as strings ("true"); treat both forms alike."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def policy_document(value: Any) -> dict[str, Any] | None:
    """An IAM/S3 policy input as a dict (inputs carry it as a JSON string or as an object)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            return None
        return document if isinstance(document, dict) else None
    return None


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [statement for statement in _as_list(document.get("Statement")) if isinstance(statement, Mapping)]


# --------------------------------------------------------------------------------------------
# S3

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_ENCRYPTION_V2 = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
S3_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"

PUBLIC_ACCESS_FLAGS = {
    "blockPublicAcls": "CKV_AWS_53",
    "blockPublicPolicy": "CKV_AWS_54",
    "ignorePublicAcls": "CKV_AWS_55",
    "restrictPublicBuckets": "CKV_AWS_56",
}


def check_s3_public_access_block(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    return [
        f"{flag} must be true ({check_id})"
        for flag, check_id in PUBLIC_ACCESS_FLAGS.items()
        if not _truthy(props.get(flag))
    ]


def check_s3_sse_kms(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    rules = _as_list(props.get("rules"))
    if not rules:
        return ["no default encryption rule: buckets must default to SSE-KMS (CKV_AWS_145)"]
    violations = []
    for index, rule in enumerate(rules):
        default = (rule or {}).get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            violations.append(f"rules[{index}]: sseAlgorithm is {algorithm!r}, expected 'aws:kms' (CKV_AWS_145)")
        elif not default.get("kmsMasterKeyId"):
            violations.append(
                f"rules[{index}]: no kmsMasterKeyId: use the platform's customer-managed key (CKV_AWS_145)"
            )
    return violations


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, Mapping) and "*" in _as_list(principal.get("AWS"))):
        return False
    if not {"s3:*", "*"} & set(_as_list(statement.get("Action"))):
        return False
    condition = (statement.get("Condition") or {}).get("Bool") or {}
    return str(condition.get("aws:SecureTransport", "")).lower() == "false"


def check_s3_tls_only(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    document = policy_document(props.get("policy"))
    if document is None:
        return ["bucket policy is not a JSON policy document"]
    denials = [statement for statement in _statements(document) if _denies_insecure_transport(statement)]
    if not denials:
        return [
            "no statement denies s3:* to every principal when aws:SecureTransport is false "
            "(CKV_AWS_379, AWS Security Hub S3.5)"
        ]
    resources = {resource for statement in denials for resource in _as_list(statement.get("Resource"))}
    if not any(resource.endswith("/*") for resource in resources) or all(
        resource.endswith("/*") for resource in resources
    ):
        return ["the TLS-only denial must cover both the bucket ARN and its objects (ARN/*)"]
    return []


# --------------------------------------------------------------------------------------------
# RDS

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
MINIMUM_BACKUP_RETENTION_DAYS = 7


def check_rds_encrypted(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    if not _truthy(props.get("storageEncrypted")):
        return ["storageEncrypted must be true (CKV_AWS_16)"]
    if not props.get("kmsKeyId"):
        return ["kmsKeyId must name the platform's customer-managed key, not the AWS-managed default"]
    return []


def check_rds_not_public(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    return ["publiclyAccessible must be false (CKV_AWS_17)"] if _truthy(props.get("publiclyAccessible")) else []


def check_rds_backups(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    days = props.get("backupRetentionPeriod")
    if not isinstance(days, int | float) or days < MINIMUM_BACKUP_RETENTION_DAYS:
        return [
            f"backupRetentionPeriod is {days!r}, must be >= {MINIMUM_BACKUP_RETENTION_DAYS} days "
            "(CKV_AWS_133, AWS Security Hub RDS.11)"
        ]
    return []


def check_rds_production_resilience(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    if not production:
        return []
    violations = []
    if not _truthy(props.get("deletionProtection")):
        violations.append("deletionProtection must be true in production (CKV_AWS_293)")
    if resource_type == RDS_INSTANCE and not _truthy(props.get("multiAz")):
        violations.append("multiAz must be true in production (CKV_AWS_157)")
    return violations


# --------------------------------------------------------------------------------------------
# EKS

EKS_CLUSTER = "aws:eks/cluster:Cluster"
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def check_eks_secrets_encryption(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    encryption = props.get("encryptionConfig") or {}
    if "secrets" not in _as_list(encryption.get("resources")):
        return ["encryptionConfig.resources must include 'secrets' (CKV_AWS_58, CIS EKS 5.3.1)"]
    if not (encryption.get("provider") or {}).get("keyArn"):
        return ["encryptionConfig.provider.keyArn must name a KMS key (CKV_AWS_58, CIS EKS 5.3.1)"]
    return []


def check_eks_logging(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    enabled = set(_as_list(props.get("enabledClusterLogTypes")))
    missing = [log_type for log_type in CONTROL_PLANE_LOG_TYPES if log_type not in enabled]
    return [f"control-plane log types not enabled: {', '.join(missing)} (CKV_AWS_37, CIS EKS 2.1.1)"] if missing else []


def check_eks_endpoint(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    vpc = props.get("vpcConfig") or {}
    # The EKS API defaults to a public endpoint: absent means public.
    public = _truthy(vpc.get("endpointPublicAccess", True))
    if not public:
        return []
    if production:
        return ["vpcConfig.endpointPublicAccess must be false in production (CKV_AWS_39, CIS EKS 5.4.2)"]
    cidrs = _as_list(vpc.get("publicAccessCidrs"))
    if not cidrs or "0.0.0.0/0" in cidrs:
        return ["a public endpoint must be limited by publicAccessCidrs, never 0.0.0.0/0 (CKV_AWS_38, CIS EKS 5.4.1)"]
    return []


# --------------------------------------------------------------------------------------------
# EC2 launch templates

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"


def check_imdsv2(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    metadata = props.get("metadataOptions") or {}
    violations = []
    if metadata.get("httpEndpoint") != "disabled" and metadata.get("httpTokens") != "required":
        violations.append("metadataOptions.httpTokens must be 'required' (IMDSv2 only, CKV_AWS_79)")
    hop_limit = metadata.get("httpPutResponseHopLimit")
    if resource_type == LAUNCH_TEMPLATE and (not isinstance(hop_limit, int | float) or hop_limit > 1):
        violations.append(
            f"metadataOptions.httpPutResponseHopLimit is {hop_limit!r}, must be 1 so pods cannot reach the "
            "node's credentials (CKV_AWS_341)"
        )
    return violations


# --------------------------------------------------------------------------------------------
# IAM

IAM_POLICY_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "aws:iam/role:Role",
    }
)
# S3 actions that only exist at account level and so can only be granted on "*".
ACCOUNT_LEVEL_S3_ACTIONS = frozenset(
    {"s3:listallmybuckets", "s3:getaccountpublicaccessblock", "s3:listaccesspoints", "s3:listjobs", "s3:createjob"}
)
WILDCARD_S3_RESOURCES = frozenset({"*", "arn:aws:s3:::*", "arn:aws:s3:::*/*"})


def _identity_policies(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(where, document) for every identity policy the resource carries (trust policies excluded)."""
    if resource_type == "aws:iam/role:Role":
        for index, inline in enumerate(_as_list(props.get("inlinePolicies"))):
            if isinstance(inline, Mapping) and inline.get("policy") is not None:
                yield f"inlinePolicies[{index}]", policy_document(inline.get("policy"))
    elif props.get("policy") is not None:
        yield "policy", policy_document(props.get("policy"))


def _allow_statements(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, document in _identity_policies(resource_type, props):
        if document is None:
            continue
        for index, statement in enumerate(_statements(document)):
            if statement.get("Effect") == "Allow":
                yield f"{where}.Statement[{index}] ({statement.get('Sid', 'no Sid')})", statement


def check_iam_no_wildcard_actions(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, statement in _allow_statements(resource_type, props):
        if "NotAction" in statement:
            violations.append(f"{where}: Allow with NotAction grants every other action (CKV_AWS_63)")
        wildcards = [action for action in _as_list(statement.get("Action")) if action == "*" or action.endswith(":*")]
        if wildcards:
            violations.append(f"{where}: wildcard actions {wildcards} (CKV_AWS_63, CKV_AWS_62)")
    return violations


def check_iam_data_bucket_resources(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, statement in _allow_statements(resource_type, props):
        actions = [action.lower() for action in _as_list(statement.get("Action"))]
        data_actions = [
            action for action in actions if action.startswith("s3:") and action not in ACCOUNT_LEVEL_S3_ACTIONS
        ]
        if not data_actions:
            continue
        if "NotResource" in statement:
            violations.append(f"{where}: S3 access with NotResource reaches every other bucket (CKV_AWS_355)")
        wildcards = [resource for resource in _as_list(statement.get("Resource")) if resource in WILDCARD_S3_RESOURCES]
        if wildcards:
            violations.append(
                f"{where}: S3 actions on {wildcards}: name the data bucket (and prefix) instead (CKV_AWS_355)"
            )
    return violations


# --------------------------------------------------------------------------------------------
# Kubernetes workloads

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_TYPES = frozenset(POD_TEMPLATE_PATHS)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
GPU_RESOURCE = "nvidia.com/gpu"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = props
    for key in POD_TEMPLATE_PATHS.get(resource_type, ()):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def containers(spec: Mapping[str, Any], include_init: bool = True) -> list[tuple[str, Mapping[str, Any]]]:
    kinds = ("containers", "initContainers") if include_init else ("containers",)
    return [
        (f"{kind}[{container.get('name', index)}]", container)
        for kind in kinds
        for index, container in enumerate(_as_list(spec.get(kind)))
        if isinstance(container, Mapping)
    ]


def _security_context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def check_k8s_non_root(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    spec = pod_spec(resource_type, props)
    pod_context = spec.get("securityContext") or {}
    violations = []
    if pod_context.get("runAsUser") == 0:
        violations.append("pod securityContext.runAsUser is 0 (CKV_K8S_23, CIS EKS 4.2.6)")
    for where, container in containers(spec):
        context = _security_context(container)
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if not _truthy(non_root):
            violations.append(
                f"{where}: runAsNonRoot must be true, in the pod or container securityContext (CKV_K8S_23)"
            )
        if context.get("runAsUser") == 0:
            violations.append(f"{where}: runAsUser is 0 (CKV_K8S_23, CIS EKS 4.2.6)")
    return violations


def check_k8s_read_only_root(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    return [
        f"{where}: securityContext.readOnlyRootFilesystem must be true (CKV_K8S_22)"
        for where, container in containers(pod_spec(resource_type, props))
        if not _truthy(_security_context(container).get("readOnlyRootFilesystem"))
    ]


def check_k8s_no_privilege_escalation(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, container in containers(pod_spec(resource_type, props)):
        context = _security_context(container)
        if context.get("allowPrivilegeEscalation") is not False:
            violations.append(
                f"{where}: securityContext.allowPrivilegeEscalation must be false (CKV_K8S_20, CIS EKS 4.2.5)"
            )
        if _truthy(context.get("privileged")):
            violations.append(f"{where}: privileged containers are not admitted (CKV_K8S_16, CIS EKS 4.2.1)")
    return violations


RESOURCE_CHECK_IDS = {
    ("requests", "cpu"): "CKV_K8S_10",
    ("limits", "cpu"): "CKV_K8S_11",
    ("limits", "memory"): "CKV_K8S_12",
    ("requests", "memory"): "CKV_K8S_13",
}


def check_k8s_resources(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, container in containers(pod_spec(resource_type, props)):
        resources = container.get("resources") or {}
        missing = [
            f"{kind}.{name} ({check_id})"
            for (kind, name), check_id in RESOURCE_CHECK_IDS.items()
            if not (resources.get(kind) or {}).get(name)
        ]
        if missing:
            violations.append(f"{where}: missing resources {', '.join(missing)}")
    return violations


def check_k8s_probes(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, container in containers(pod_spec(resource_type, props), include_init=False):
        if not container.get("livenessProbe"):
            violations.append(f"{where}: no livenessProbe (CKV_K8S_8)")
        if not container.get("readinessProbe"):
            violations.append(f"{where}: no readinessProbe (CKV_K8S_9)")
    return violations


def _tolerates_gpu_taint(tolerations: Sequence[Any]) -> bool:
    for toleration in tolerations:
        if not isinstance(toleration, Mapping) or toleration.get("effect") not in (None, "", "NoSchedule"):
            continue
        operator = toleration.get("operator", "Equal")
        if operator == "Exists" and toleration.get("key") in (None, "", GPU_RESOURCE):
            return True
        if toleration.get("key") == GPU_RESOURCE:
            return True
    return False


def check_k8s_gpu_toleration(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    spec = pod_spec(resource_type, props)
    wants_gpu = any(
        GPU_RESOURCE in ((container.get("resources") or {}).get(kind) or {})
        for _, container in containers(spec)
        for kind in ("limits", "requests")
    )
    if wants_gpu and not _tolerates_gpu_taint(_as_list(spec.get("tolerations"))):
        return [
            f"requests {GPU_RESOURCE} but does not tolerate the '{GPU_RESOURCE}' NoSchedule taint of the GPU pools: "
            "it would never schedule"
        ]
    return []


SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
# Names that carry a reference to a secret rather than the secret: a mounted file, a Secrets Manager ARN, ...
SECRET_REFERENCE_SUFFIX = re.compile(r"_(FILE|PATH|DIR|ARN|ID|NAME|REF|KEY_ID|URL|ENDPOINT)$", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"^\[secret\]$"  # a Pulumi secret (masked in the offline plan) pasted into a literal
    r"|(?:A3T[A-Z0-9]|AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key id (checkov CKV_SECRET_2)
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"  # CKV_SECRET_13
    r"|gh[pousr]_[A-Za-z0-9]{36}"  # GitHub tokens
    r"|://[^/\s:@]+:[^/\s@]+@"  # credentials embedded in a URL
)


def check_k8s_no_secret_env_literals(resource_type: str, props: Mapping[str, Any], production: bool) -> list[str]:
    violations = []
    for where, container in containers(pod_spec(resource_type, props)):
        for variable in _as_list(container.get("env")):
            if not isinstance(variable, Mapping) or "value" not in variable:
                continue  # valueFrom (secretKeyRef, ...) is the right way
            name, value = str(variable.get("name", "")), str(variable.get("value", ""))
            named_like_secret = SECRET_NAME.search(name) and not SECRET_REFERENCE_SUFFIX.search(name)
            reference_value = value.startswith(("/", "arn:")) or not value
            if (named_like_secret and not reference_value) or SECRET_VALUE.search(value):
                violations.append(
                    f"{where}: env {name} holds a secret-looking literal; use valueFrom.secretKeyRef or a mounted "
                    "Secret (CKV_K8S_35, CIS EKS 4.4.1)"
                )
    return violations


# --------------------------------------------------------------------------------------------
# the rule book

ML_LENS = "AWS Well-Architected Machine Learning Lens, security pillar"

RULES: tuple[Rule, ...] = (
    Rule(
        "s3-public-access-block",
        "All four S3 Block Public Access flags are on for every bucket: checkov CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, "
        f"CKV_AWS_56 (and CKV2_AWS_6 for the block's existence); {ML_LENS} (protect training data and models).",
        frozenset({S3_PUBLIC_ACCESS_BLOCK}),
        check_s3_public_access_block,
    ),
    Rule(
        "s3-sse-kms",
        "S3 buckets default to SSE-KMS with a customer-managed key: checkov CKV_AWS_145; "
        f"{ML_LENS} (encrypt data at rest).",
        frozenset({S3_ENCRYPTION, S3_ENCRYPTION_V2}),
        check_s3_sse_kms,
    ),
    Rule(
        "s3-tls-only",
        "Bucket policies deny every request without TLS (aws:SecureTransport false): checkov CKV_AWS_379, "
        f"AWS Security Hub S3.5; {ML_LENS} (encrypt data in transit).",
        frozenset({S3_BUCKET_POLICY}),
        check_s3_tls_only,
    ),
    Rule(
        "rds-encrypted",
        "RDS storage is encrypted with a customer-managed KMS key: checkov CKV_AWS_16.",
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        check_rds_encrypted,
    ),
    Rule(
        "rds-not-public",
        "RDS instances are not publicly accessible: checkov CKV_AWS_17.",
        frozenset({RDS_INSTANCE}),
        check_rds_not_public,
    ),
    Rule(
        "rds-backup-retention",
        f"RDS keeps automated backups for >= {MINIMUM_BACKUP_RETENTION_DAYS} days: checkov CKV_AWS_133 (backups on), "
        "AWS Security Hub RDS.11 (default minimum 7 days).",
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        check_rds_backups,
    ),
    Rule(
        "rds-production-resilience",
        "In production, RDS has deletion protection (checkov CKV_AWS_293) and Multi-AZ (checkov CKV_AWS_157).",
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        check_rds_production_resilience,
    ),
    Rule(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes Secrets with a KMS key: checkov CKV_AWS_58, CIS Amazon EKS Benchmark 5.3.1.",
        frozenset({EKS_CLUSTER}),
        check_eks_secrets_encryption,
    ),
    Rule(
        "eks-control-plane-logging",
        "EKS sends all five control-plane log types to CloudWatch: checkov CKV_AWS_37, CIS Amazon EKS Benchmark 2.1.1.",
        frozenset({EKS_CLUSTER}),
        check_eks_logging,
    ),
    Rule(
        "eks-private-endpoint",
        "The EKS API endpoint is private in production (checkov CKV_AWS_39, CIS Amazon EKS Benchmark 5.4.2) and "
        "never open to 0.0.0.0/0 elsewhere (checkov CKV_AWS_38, CIS Amazon EKS Benchmark 5.4.1).",
        frozenset({EKS_CLUSTER}),
        check_eks_endpoint,
    ),
    Rule(
        "ec2-imdsv2",
        "Nodes require IMDSv2 (checkov CKV_AWS_79) with a hop limit of 1 on launch templates (checkov CKV_AWS_341), "
        "so pods cannot borrow the node role's credentials.",
        frozenset({LAUNCH_TEMPLATE, EC2_INSTANCE}),
        check_imdsv2,
    ),
    Rule(
        "iam-no-wildcard-actions",
        'IAM policies allow no "*" or service-wide "svc:*" actions and no Allow+NotAction: checkov CKV_AWS_63, '
        f"CKV_AWS_62; {ML_LENS} (least-privilege access to ML resources).",
        IAM_POLICY_TYPES,
        check_iam_no_wildcard_actions,
    ),
    Rule(
        "iam-no-wildcard-data-resources",
        'IAM policies grant S3 data actions only on named buckets, never on "*" or arn:aws:s3:::*: checkov '
        f"CKV_AWS_355; {ML_LENS} (restrict access to training data and model artifacts).",
        IAM_POLICY_TYPES,
        check_iam_data_bucket_resources,
    ),
    Rule(
        "k8s-run-as-non-root",
        "Workload containers run as non-root (runAsNonRoot, no runAsUser 0): checkov CKV_K8S_23, "
        "CIS Amazon EKS Benchmark 4.2.6, Pod Security Standards 'restricted'.",
        WORKLOAD_TYPES,
        check_k8s_non_root,
    ),
    Rule(
        "k8s-read-only-root-filesystem",
        "Workload containers have a read-only root filesystem: checkov CKV_K8S_22.",
        WORKLOAD_TYPES,
        check_k8s_read_only_root,
    ),
    Rule(
        "k8s-no-privilege-escalation",
        "Workload containers set allowPrivilegeEscalation false and are not privileged: checkov CKV_K8S_20, "
        "CKV_K8S_16, CIS Amazon EKS Benchmark 4.2.5 and 4.2.1.",
        WORKLOAD_TYPES,
        check_k8s_no_privilege_escalation,
    ),
    Rule(
        "k8s-resources",
        "Workload containers declare CPU and memory requests and limits: checkov CKV_K8S_10, CKV_K8S_11, CKV_K8S_12, "
        "CKV_K8S_13.",
        WORKLOAD_TYPES,
        check_k8s_resources,
    ),
    Rule(
        "k8s-deployment-probes",
        "Deployment containers have liveness and readiness probes: checkov CKV_K8S_8, CKV_K8S_9.",
        frozenset({DEPLOYMENT}),
        check_k8s_probes,
    ),
    Rule(
        "k8s-gpu-toleration",
        "Pods that request nvidia.com/gpu tolerate the GPU pools' nvidia.com/gpu NoSchedule taint (Amazon EKS "
        f"GPU AMI guidance; {ML_LENS}: run training on purpose-sized, isolated compute).",
        WORKLOAD_TYPES,
        check_k8s_gpu_toleration,
    ),
    Rule(
        "k8s-no-secret-env-literals",
        "No secret-looking values as env literals (use secretKeyRef or mounted Secrets): checkov CKV_K8S_35 and "
        "its secrets scanner (CKV_SECRET_2, CKV_SECRET_13), CIS Amazon EKS Benchmark 4.4.1.",
        WORKLOAD_TYPES,
        check_k8s_no_secret_env_literals,
    ),
)


def evaluate(resource_type: str, props: Mapping[str, Any], production: bool) -> dict[str, list[str]]:
    """Every rule that applies to the resource -> its violations (only rules with violations are listed)."""
    found: dict[str, list[str]] = {}
    for rule in RULES:
        if resource_type in rule.resource_types:
            violations = rule.check(resource_type, props, production)
            if violations:
                found[rule.name] = violations
    return found


# --------------------------------------------------------------------------------------------
# a stack-wide rule: every bucket has its controls


@dataclass(frozen=True)
class StackResource:
    """What the stack-wide S3 rule needs of one resource (built from PolicyResource or the offline plan)."""

    resource_type: str
    name: str
    urn: str
    parent_urn: str | None
    bucket_dependency_urns: frozenset[str]
    """URNs of the resources the `bucket` input depends on (the engine's property dependencies)."""


BUCKET_CONTROLS = {
    S3_PUBLIC_ACCESS_BLOCK: "a public access block (CKV2_AWS_6)",
    S3_ENCRYPTION: "a default SSE-KMS configuration (CKV_AWS_145)",
    S3_BUCKET_POLICY: "a TLS-only bucket policy (CKV_AWS_379)",
}


def check_buckets_have_controls(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """(bucket URN, violation) for every bucket lacking one of its controls.

    A control belongs to a bucket when its `bucket` input depends on the bucket (a real preview), or,
    where dependencies are unknown (the offline plan), when it has the bucket's name and parent,
    which is how `SecureBucket` declares them.
    """
    violations = []
    for bucket in (resource for resource in resources if resource.resource_type == S3_BUCKET):
        for control_type, what in BUCKET_CONTROLS.items():
            controls = [resource for resource in resources if resource.resource_type in (control_type,)]
            if control_type == S3_ENCRYPTION:
                controls += [resource for resource in resources if resource.resource_type == S3_ENCRYPTION_V2]
            attached = any(
                bucket.urn in control.bucket_dependency_urns
                or (
                    not control.bucket_dependency_urns
                    and control.name == bucket.name
                    and control.parent_urn == bucket.parent_urn
                )
                for control in controls
            )
            if not attached:
                violations.append((bucket.urn, f"bucket {bucket.name} has no {what}"))
    return violations

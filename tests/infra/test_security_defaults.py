"""Secure-by-default properties, asserted on the resources every stack declares."""

from __future__ import annotations

import json

from infra.offline_plan import SECRET
from tests.infra.conftest import Plan, inputs_of, of_type, policy_document

BUCKET_PURPOSES = {"artifacts", "datasets", "predictions", "labels", "reports"}


def _per_bucket(plan: Plan, resource_type: str) -> dict[str, dict]:
    # Each bucket's settings are children of its SecureBucket, named after the bucket's purpose.
    return {resource["name"].removeprefix("mlops-"): resource["inputs"] for resource in of_type(plan, resource_type)}


def test_four_buckets_each_with_every_public_access_flag(plan: Plan) -> None:
    blocks = _per_bucket(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert set(blocks) == BUCKET_PURPOSES
    for block in blocks.values():
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block[flag] is True, flag


def test_buckets_encrypted_with_one_customer_key_and_versioned(plan: Plan) -> None:
    encryption = _per_bucket(
        plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert set(encryption) == BUCKET_PURPOSES
    key_arns = set()
    for config in encryption.values():
        (rule,) = config["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms"
        assert default["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert rule["bucketKeyEnabled"] is True
        key_arns.add(default["kmsMasterKeyId"])
    assert len(key_arns) == 1
    versioning = _per_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning")
    assert {v["versioningConfiguration"]["status"] for v in versioning.values()} == {"Enabled"}


def test_bucket_policies_deny_plain_http(plan: Plan) -> None:
    policies = _per_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy")
    assert set(policies) == BUCKET_PURPOSES
    for inputs in policies.values():
        statements = policy_document(inputs["policy"])["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny" and s["Principal"] == "*" and s["Action"] == "s3:*"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
        assert all(resource.startswith("arn:aws:s3:::") for s in denies for resource in s["Resource"])


def test_only_prediction_logs_expire(plan: Plan) -> None:
    lifecycles = _per_bucket(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    for purpose, config in lifecycles.items():
        expiring = [rule for rule in config["rules"] if "expiration" in rule]
        assert bool(expiring) == (purpose == "predictions"), purpose
        assert any("noncurrentVersionExpiration" in rule for rule in config["rules"])


def test_kms_keys_rotate(plan: Plan) -> None:
    keys = inputs_of(plan, "aws:kms/key:Key")
    assert len(keys) == 4  # EKS secrets, databases, buckets, alert topic
    assert all(key["enableKeyRotation"] is True for key in keys)


def test_databases_are_private_encrypted_backed_up_and_tls_only(plan: Plan) -> None:
    instances = inputs_of(plan, "aws:rds/instance:Instance")
    assert sorted(instance["engine"] for instance in instances) == ["mysql", "postgres"]
    for instance in instances:
        assert instance["publiclyAccessible"] is False
        assert instance["storageEncrypted"] is True
        assert instance["kmsKeyId"].startswith("arn:aws:kms:")
        assert instance["backupRetentionPeriod"] >= 7
        # Either RDS generates and keeps the password (none is sent), or it is a Pulumi secret.
        if instance.get("manageMasterUserPassword") is True:
            assert "password" not in instance
        else:
            assert instance["password"] == "[secret]"
    managed = {i["engine"]: i.get("manageMasterUserPassword") for i in instances}
    assert managed == {"postgres": True, "mysql": None}, "MLflow reads the rotating RDS secret; KFP cannot"
    parameters = {
        p["family"]: {x["name"]: x["value"] for x in p["parameters"]}
        for p in inputs_of(plan, "aws:rds/parameterGroup:ParameterGroup")
    }
    assert parameters["postgres16"]["rds.force_ssl"] == "1"
    assert parameters["mysql8.4"]["require_secure_transport"] == "1"


def test_databases_admit_only_the_cluster_security_group(plan: Plan) -> None:
    rules = inputs_of(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(rule["fromPort"] for rule in rules) == [3306, 5432]
    for rule in rules:
        assert rule["referencedSecurityGroupId"].startswith("sg-")
        assert "cidrIpv4" not in rule and "cidrIpv6" not in rule


def test_cluster_encrypts_secrets_and_logs_every_control_plane_component(plan: Plan) -> None:
    (cluster,) = inputs_of(plan, "aws:eks/cluster:Cluster")
    (encryption,) = [cluster["encryptionConfig"]]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert set(cluster["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    if cluster["vpcConfig"]["endpointPublicAccess"]:
        cidrs = cluster["vpcConfig"]["publicAccessCidrs"]
        assert cidrs and "0.0.0.0/0" not in cidrs


def test_nodes_require_imdsv2_with_hop_limit_one_and_encrypted_disks(plan: Plan) -> None:
    templates = inputs_of(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        metadata = template["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
    for group in inputs_of(plan, "aws:eks/nodeGroup:NodeGroup"):
        assert "launchTemplate" in group
        assert "remoteAccess" not in group


def test_gpu_pools_are_tainted_and_can_scale_from_zero(plan: Plan) -> None:
    groups = inputs_of(plan, "aws:eks/nodeGroup:NodeGroup")
    gpu_groups = [group for group in groups if group["amiType"] == "AL2023_x86_64_NVIDIA"]
    assert gpu_groups, "every example stack has a GPU pool"
    for group in gpu_groups:
        assert group["taints"] == [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "true"}]
        assert group["labels"]["nvidia.com/gpu.present"] == "true"
    cpu_groups = [group for group in groups if group["amiType"] == "AL2023_x86_64_STANDARD"]
    assert len(cpu_groups) == 1 and not cpu_groups[0].get("taints")
    # The autoscaler learns an empty pool's taint and GPUs from these Auto Scaling group tags.
    tags = {
        (tag["autoscalingGroupName"], tag["tag"]["key"]): tag["tag"]["value"]
        for tag in inputs_of(plan, "aws:autoscaling/tag:Tag")
    }
    for group in gpu_groups:
        group_tags = {key: value for (asg, key), value in tags.items() if group["labels"]["mlops.platform/pool"] in asg}
        assert group_tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
        assert int(group_tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"]) >= 1


def test_irsa_trust_is_pinned_to_one_service_account(plan: Plan) -> None:
    federated = [
        policy_document(role["assumeRolePolicy"])
        for role in inputs_of(plan, "aws:iam/role:Role")
        if "Federated" in role["assumeRolePolicy"]
    ]
    assert len(federated) >= 4  # vpc-cni, ebs-csi, cluster-autoscaler, load-balancer-controller
    for document in federated:
        (statement,) = document["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        conditions = statement["Condition"]["StringEquals"]
        subjects = [value for key, value in conditions.items() if key.endswith(":sub")]
        audiences = [value for key, value in conditions.items() if key.endswith(":aud")]
        assert len(subjects) == 1 and subjects[0].startswith("system:serviceaccount:") and "*" not in subjects[0]
        assert audiences == ["sts.amazonaws.com"]


def test_no_inline_policy_allows_every_action(plan: Plan) -> None:
    for policy in inputs_of(plan, "aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_document(policy["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(action != "*" and not action.endswith(":*") for action in actions), statement


def test_addons_are_pinned_helm_releases_on_the_cluster_provider(plan: Plan) -> None:
    releases = {release["chart"]: release for release in inputs_of(plan, "kubernetes:helm.sh/v3:Release")}
    serves_on_gpu = any(
        r["inputs"]["kind"] == "ScaledObject" for r in of_type(plan, "kubernetes:keda.sh/v1alpha1:ScaledObject")
    )
    assert set(releases) == {
        "nvidia-device-plugin",
        "cluster-autoscaler",
        "metrics-server",
        "aws-load-balancer-controller",
        "kube-prometheus-stack",  # the monitoring stack (infra/monitoring_stack.py)
        "prometheus-pushgateway",  # where the daily jobs push their results (infra/pushgateway.py)
        "dcgm-exporter",  # every stack has a GPU pool (infra/gpu_metrics.py)
        *(["keda"] if serves_on_gpu else []),  # where a model serves on one (infra/serving_autoscaler.py)
    }
    for release in releases.values():
        assert release["version"][0].isdigit()
    (provider,) = inputs_of(plan, "pulumi:providers:kubernetes")
    assert provider["kubeconfig"] == "[secret]"


def test_eks_addons_cover_networking_dns_and_storage(plan: Plan) -> None:
    addons = {addon["addonName"]: addon for addon in inputs_of(plan, "aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
    assert addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"].startswith("arn:aws:iam::")
    assert addons["vpc-cni"]["serviceAccountRoleArn"].startswith("arn:aws:iam::")


def test_every_resource_belongs_to_a_component(plan: Plan) -> None:
    for resource in plan["resources"]:
        if resource["type"] in ("pulumi:providers:aws", "mlops:platform:Platform"):
            continue
        assert resource["parent"] and "mlops:" in resource["parent"], resource["name"]
    components = {r["type"] for r in plan["resources"] if r["type"].startswith("mlops:")}
    assert {
        "mlops:network:Network",
        "mlops:cluster:Cluster",
        "mlops:data:Database",
        "mlops:storage:SecureBucket",
    } <= components


def test_every_aws_resource_gets_ownership_tags(plan: Plan) -> None:
    (provider,) = inputs_of(plan, "pulumi:providers:aws")
    tags = json.loads(provider["defaultTags"])["tags"]
    assert tags["ManagedBy"] == "pulumi" and tags["Stack"] == plan["stack"]


def test_every_kubernetes_secret_holds_only_secret_values(plan: Plan) -> None:
    """Each Secret's values are Pulumi secrets (masked in plans and state), never literals."""
    secrets = of_type(plan, "kubernetes:core/v1:Secret")
    assert secrets  # the tracking server's, KFP's and the tracking clients' at least
    for secret in secrets:
        payloads = [secret["inputs"][key] for key in ("stringData", "data") if key in secret["inputs"]]
        assert payloads, secret["name"]
        for payload in payloads:  # masked as a whole, or value by value
            assert payload == SECRET or set(payload.values()) == {SECRET}, secret["name"]

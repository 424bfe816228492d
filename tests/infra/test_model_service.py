"""ModelService alone, under mocks, on small hand-made Args: a hardened pod that follows the registry
alias, an IRSA role that may only write its model's prefix of the predictions bucket, an autoscaler
that owns the replica count, and a NetworkPolicy that lets in only the platform's namespaces."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from infra.config import ModelSettings
from infra.model_service import (
    ModelService,
    ModelServiceArgs,
    ServingResources,
    effective_batching,
    in_flight_query,
    torch_threads,
)
from infra.serving_autoscaler import HPA_OWNERSHIP_ANNOTATION, PROMETHEUS_URL, ServingAutoscaler, ServingAutoscalerArgs
from observability.metrics import REQUESTS_IN_PROGRESS
from tests.ci.custom_resources import SCALED_OBJECT
from tests.ci.test_manifests import custom_resource_problems
from tests.infra.component_mocks import (
    OIDC_ISSUER_HOST,
    Declared,
    assert_hardened_pod,
    declare,
    kms_key_arn,
    resolved,
    shared_services,
)
from workloads import catalogue
from workloads.catalogue_entry import CatalogueError, ServingBatching, ServingScale
from workloads.serving.settings import default_batch_limits

DIGITS = catalogue.get("digits")
APP = "serve-digits"


def declare_service(
    gpu_pool: str | None = None,
    scale: ServingScale | None = None,
    with_keda: bool | None = None,
    batching: ServingBatching | None = None,
) -> Declared[ModelService]:
    def build() -> ModelService:
        resources = ServingResources(cpu="1500m", memory="1Gi", gpu_pool=gpu_pool)
        shared = shared_services()
        if gpu_pool is not None if with_keda is None else with_keda:
            keda = ServingAutoscaler("keda", ServingAutoscalerArgs(vpc_cidr="10.20.0.0/16"))
            shared = dataclasses.replace(shared, serving_autoscaler=keda)
        arguments = ModelServiceArgs(
            entry=DIGITS,
            shared=shared,
            resources=resources,
            scale=scale or ServingScale(min_replicas=2, max_replicas=5),
            batching=batching or ServingBatching(),
        )
        return ModelService("digits-serving", arguments)

    return declare(build)


def pod_spec(declared: Declared[ModelService]) -> dict[str, Any]:
    return declared.one("kubernetes:apps/v1:Deployment")["spec"]["template"]["spec"]


def environment(declared: Declared[ModelService]) -> dict[str, Any]:
    (container,) = pod_spec(declared)["containers"]
    return {variable["name"]: variable.get("value", variable.get("valueFrom")) for variable in container["env"]}


def test_the_pod_is_hardened_and_runs_as_its_irsa_service_account() -> None:
    spec = pod_spec(declare_service())

    assert_hardened_pod(spec, irsa_service_account=APP)
    (container,) = spec["containers"]
    assert container["resources"] == {
        "limits": {"cpu": "1500m", "memory": "1Gi"},
        "requests": {"cpu": "1500m", "memory": "1Gi"},
    }
    assert "tolerations" not in spec and "nodeSelector" not in spec  # a CPU model stays off the GPU pools
    assert spec["terminationGracePeriodSeconds"] == 45  # time to flush the prediction log on SIGTERM


def test_probes_hold_traffic_until_a_model_is_loaded() -> None:
    (container,) = pod_spec(declare_service())["containers"]

    assert container["ports"] == [{"containerPort": 3000, "name": "http"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/livez"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # a cold model load may take minutes


def test_a_gpu_pool_gets_one_gpu_its_toleration_and_its_node_selector() -> None:
    spec = pod_spec(declare_service(gpu_pool="gpu-t4"))

    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert spec["nodeSelector"] == {"mlops.platform/pool": "gpu-t4"}


def test_the_service_follows_the_production_alias_of_its_own_model_with_secret_credentials() -> None:
    declared = declare_service()
    variables = environment(declared)

    assert variables["MLOPS_MODEL"] == "digits" and variables["MLOPS_MODEL_ALIAS"] == "production"
    assert json.loads(variables["MLOPS_CATALOGUE_ENTRY"])["name"] == "digits"
    predictions = declared.registered_by("mlops-predictions")["name"]
    assert variables["MLOPS_PREDICTIONS_STORE"] == f"s3://{predictions}"
    assert variables["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local"
    for secret in ("username", "password"):
        reference = variables[f"MLFLOW_TRACKING_{secret.upper()}"]
        assert reference == {"secretKeyRef": {"key": secret, "name": "tracking-client"}}
    assert variables["MLOPS_TORCH_THREADS"] == "1"  # 1.5 CPUs: one whole core


def test_the_role_trusts_only_its_service_account_and_may_only_write_its_prefix() -> None:
    declared = declare_service()

    trust = json.loads(declared.one("aws:iam/role:Role")["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {
            f"{OIDC_ISSUER_HOST}:aud": "sts.amazonaws.com",
            f"{OIDC_ISSUER_HOST}:sub": f"system:serviceaccount:models:{APP}",
        }
    }
    statements = {s["Sid"]: s for s in json.loads(declared.one("aws:iam/rolePolicy:RolePolicy")["policy"])["Statement"]}
    for sid, purpose in (("Predictions", "predictions"), ("Labels", "labels")):
        arn = declared.registered_by(f"mlops-{purpose}")["arn"]
        assert statements[f"{sid}ObjectsUnderPrefix"]["Action"] == ["s3:PutObject"]
        assert statements[f"{sid}ObjectsUnderPrefix"]["Resource"] == f"{arn}/digits/*"
        assert statements[f"{sid}ListPrefix"]["Condition"] == {"StringLike": {"s3:prefix": ["digits", "digits/*"]}}
        assert statements[f"{sid}UseBucketKey"]["Resource"] == kms_key_arn(purpose)
    assert len(statements) == 6
    assert "reports" not in json.dumps(statements)  # the drift job's bucket is not the service's business
    account = declared.one("kubernetes:core/v1:ServiceAccount")
    assert account["metadata"]["name"] == APP and account["automountServiceAccountToken"] is False
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_autoscaler_owns_the_replica_count_and_rollouts_never_go_below_it() -> None:
    declared = declare_service()

    autoscaler = declared.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")["spec"]
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (2, 5)
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}
    (deployment,) = declared.of_type("kubernetes:apps/v1:Deployment")
    assert deployment["options"]["ignoreChanges"] == ["spec.replicas"]
    assert deployment["inputs"]["spec"]["replicas"] == 2
    assert deployment["inputs"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    budget = declared.one("kubernetes:policy/v1:PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1


def test_only_platform_namespaces_reach_the_port_and_the_pod_reaches_dns_tracking_and_https() -> None:
    policy = declare_service().one("kubernetes:networking.k8s.io/v1:NetworkPolicy")["spec"]

    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"mlops.platform/part-of": "mlops-platform"}}}]
    assert ingress["ports"] == [{"port": 3000, "protocol": "TCP"}]
    ports = sorted(port["port"] for rule in policy["egress"] for port in rule["ports"])
    assert ports == [53, 53, 443, 5000]
    (tracking,) = [rule for rule in policy["egress"] if "to" in rule]
    assert tracking["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlflow"}}}]


def test_registers_its_in_cluster_url_and_service_name() -> None:
    declared = declare_service()

    url = f"http://{APP}.models.svc.cluster.local"
    assert resolved(declared.component.url) == url
    assert declared.outputs_of("mlops:serving:ModelService") == {"service": APP, "url": url}


@pytest.mark.parametrize(("cpu", "threads"), [("250m", 1), ("1500m", 1), ("2", 2), ("3500m", 3)])
def test_torch_threads_are_the_whole_cpus_of_the_limit(cpu: str, threads: int) -> None:
    assert torch_threads(cpu) == threads


def test_a_cpu_model_scales_on_cpu_and_lets_keda_take_over_if_it_moves_to_a_gpu() -> None:
    declared = declare_service()

    autoscaler = declared.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"averageUtilization": 70, "type": "Utilization"}}
    # KEDA's webhook skips HPAs marked so: a ScaledObject for this Deployment is admitted while this HPA
    # still exists, i.e. in the `pulumi up` that moves the model onto a GPU pool and deletes the HPA.
    assert autoscaler["metadata"]["annotations"] == {HPA_OWNERSHIP_ANNOTATION: "false"}
    assert declared.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject") == []


def test_a_gpu_model_scales_on_requests_in_flight_per_replica_through_keda() -> None:
    declared = declare_service(gpu_pool="gpu-t4")

    assert declared.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []  # KEDA owns its own
    (scaled,) = declared.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    spec = scaled["inputs"]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 5)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["serverAddress"] == PROMETHEUS_URL
    assert trigger["metadata"]["query"] == in_flight_query(DIGITS, "models")
    # By default one full adaptive batch per replica.
    assert trigger["metadata"]["threshold"] == str(default_batch_limits(DIGITS)[0])
    assert spec["fallback"]["behavior"] == "currentReplicasIfHigher" and spec["fallback"]["replicas"] == 2
    # It waits for KEDA: the release installs the CRD and the webhook that validates it.
    assert any(dependency.endswith("keda-release") for dependency in scaled["dependencies"])
    assert custom_resource_problems(scaled["inputs"], SCALED_OBJECT) == []


def test_the_in_flight_target_and_replica_bounds_come_from_the_scale_given() -> None:
    declared = declare_service(
        gpu_pool="gpu-t4", scale=ServingScale(min_replicas=1, max_replicas=8, in_flight_per_replica=12)
    )

    spec = declared.one("kubernetes:keda.sh/v1alpha1:ScaledObject")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 8)
    assert spec["triggers"][0]["metadata"]["threshold"] == "12"


def test_the_in_flight_query_sums_only_this_models_routes_in_its_namespace() -> None:
    query = in_flight_query(DIGITS, "models")

    assert query.startswith(f"sum(avg_over_time({REQUESTS_IN_PROGRESS}{{")
    for matcher in ('job="serve-digits"', 'namespace="models"', 'endpoint=~"/classify_image|/classify_array"'):
        assert matcher in query


def test_a_gpu_model_without_keda_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="digits serves on GPU pool 'gpu-t4' but no KEDA is installed"):
        declare_service(gpu_pool="gpu-t4", with_keda=False)


def test_a_gpu_pod_runs_the_cuda_serving_image_and_a_cpu_pod_the_small_one() -> None:
    (gpu,) = pod_spec(declare_service(gpu_pool="gpu-t4"))["containers"]
    (cpu,) = pod_spec(declare_service())["containers"]
    assert "/serving-gpu@sha256:" in gpu["image"]
    assert "/serving@sha256:" in cpu["image"]
    # A GPU pod must serve on its GPU (or fail its start), a CPU pod keeps the automatic choice.
    assert environment(declare_service(gpu_pool="gpu-t4"))["MLOPS_DEVICE"] == "cuda"
    assert "MLOPS_DEVICE" not in environment(declare_service())


def test_batching_is_set_only_where_the_catalogue_or_the_stack_says() -> None:
    defaults = environment(declare_service())
    assert not {"MLOPS_MAX_BATCH_SIZE", "MLOPS_MAX_LATENCY_MS", "MLOPS_CONCURRENT_BATCHES"} & set(defaults)
    tuned = environment(declare_service(batching=ServingBatching(max_batch_size=64, concurrent_batches=2)))
    assert (tuned["MLOPS_MAX_BATCH_SIZE"], tuned["MLOPS_CONCURRENT_BATCHES"]) == ("64", "2")
    assert "MLOPS_MAX_LATENCY_MS" not in tuned


def test_the_stack_overrides_the_catalogues_batching_field_by_field() -> None:
    entry = dataclasses.replace(DIGITS, serving_batching=ServingBatching(64, 500, 2))
    assert effective_batching(entry, ModelSettings()) == ServingBatching(64, 500, 2)
    assert effective_batching(entry, ModelSettings(max_batch_size=128)) == ServingBatching(128, 500, 2)
    assert effective_batching(DIGITS, ModelSettings(concurrent_batches=3)) == ServingBatching(None, None, 3)


def test_catalogue_batching_out_of_range_is_one_error() -> None:
    with pytest.raises(
        CatalogueError, match=r"max_batch_size must be None or in \[1, 4096\], got 0; concurrent_batches"
    ):
        ServingBatching(max_batch_size=0, concurrent_batches=100)


def test_the_in_flight_target_defaults_to_the_batch_the_catalogue_or_stack_tuned() -> None:
    spec = declare_service(gpu_pool="gpu-t4", batching=ServingBatching(max_batch_size=64)).one(
        "kubernetes:keda.sh/v1alpha1:ScaledObject"
    )["spec"]

    assert spec["triggers"][0]["metadata"]["threshold"] == "64"

"""Autoscaling in the stacks' plans: KEDA on in-flight requests where a model serves on a GPU pool, a
CPU HPA elsewhere, KEDA pinned and hardened, its traffic limited, and the scale settings validated."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

import pytest

from infra.config import PROJECT, ConfigError, ModelSettings, parse_config
from infra.model_service import in_flight_query
from infra.offline_plan import load_stack_config, render_stack
from infra.serving_autoscaler import (
    KEDA,
    METRICS_SERVER_PORT,
    OPERATOR_GRPC_PORT,
    PROMETHEUS_URL,
    WEBHOOKS_PORT,
)
from tests.ci.custom_resources import SCALED_OBJECT as SCALED_OBJECT_SCHEMA
from tests.ci.test_manifests import custom_resource_problems
from tests.infra.conftest import Plan, config_error, named, of_type
from workloads import catalogue
from workloads.catalogue_entry import CatalogueError, ServingScale

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
RELEASE = "kubernetes:helm.sh/v3:Release"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _models(stack: str) -> dict[str, dict[str, Any]]:
    raw = load_stack_config(stack).values[f"{PROJECT}:models"]
    return json.loads(raw) if isinstance(raw, str) else raw


def _keda_policies(plan: Plan) -> dict[str, dict[str, Any]]:
    return {
        r["inputs"]["metadata"]["name"]: r["inputs"]["spec"]
        for r in of_type(plan, POLICY)
        if r["inputs"]["metadata"]["namespace"] == "keda"
    }


def test_gpu_models_scale_on_in_flight_requests_and_cpu_models_on_cpu(plan: Plan) -> None:
    models = _models(plan["stack"])
    scaled = {r["inputs"]["metadata"]["name"]: r for r in of_type(plan, SCALED_OBJECT)}
    hpas = {r["inputs"]["metadata"]["name"]: r for r in of_type(plan, HPA)}
    for model, settings in models.items():
        app = f"serve-{model}"
        on_gpu = "gpuPool" in settings
        assert (app in scaled, app in hpas) == (on_gpu, not on_gpu), (plan["stack"], model)
        if on_gpu:
            (trigger,) = scaled[app]["inputs"]["spec"]["triggers"]
            assert trigger["metadata"]["query"] == in_flight_query(catalogue.get(model), "models")
            assert trigger["metadata"]["serverAddress"] == PROMETHEUS_URL
            assert scaled[app]["inputs"]["spec"]["maxReplicaCount"] == settings["maxReplicas"]


def test_keda_is_installed_exactly_where_a_model_serves_on_a_gpu(plan: Plan) -> None:
    releases = [r for r in of_type(plan, RELEASE) if r["inputs"]["chart"] == KEDA.chart]
    on_gpu = any("gpuPool" in settings for settings in _models(plan["stack"]).values())
    assert len(releases) == int(on_gpu)
    assert bool(_keda_policies(plan)) == on_gpu


def test_staging_surface_defects_waits_for_keda_and_the_add_ons() -> None:
    plan = render_stack("staging")
    (scaled,) = of_type(plan, SCALED_OBJECT)
    release = named(plan, RELEASE, "mlops-serving-autoscaler-release")
    # The CRD and the webhook come with the release; the release waits for the load balancer controller.
    assert release["name"] in scaled["dependencies"]
    assert "mlops-addons-load-balancer-controller" in release["dependencies"]
    assert "mlops-addons-load-balancer-controller" in scaled["dependencies"]


def test_keda_is_pinned_hardened_and_reads_no_secrets() -> None:
    values = named(render_stack("staging"), RELEASE, "mlops-serving-autoscaler-release")["inputs"]
    assert values["version"] == KEDA.version and values["namespace"] == "keda"
    chart = values["values"]
    assert chart["webhooks"] == {"enabled": True, "failurePolicy": "Ignore"}
    assert chart["permissions"]["operator"]["restrict"]["secret"] is True
    for component in ("operator", "metricServer", "webhooks"):
        container = chart["securityContext"][component]
        assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}
        assert chart["podSecurityContext"][component]["runAsNonRoot"] is True
        assert set(chart["resources"][component]) == {"requests", "limits"}


def test_keda_pods_get_only_the_traffic_they_need() -> None:
    plan = render_stack("staging")
    policies = _keda_policies(plan)
    assert set(policies) == {
        "default-deny",
        "keda-operator",
        "keda-operator-metrics-apiserver",
        "keda-admission-webhooks",
    }
    assert policies["default-deny"]["ingress"] == [] and policies["default-deny"]["egress"] == []
    vpc = load_stack_config("staging").values[f"{PROJECT}:vpcCidr"]
    for pod, port in (
        ("keda-operator-metrics-apiserver", METRICS_SERVER_PORT),
        ("keda-admission-webhooks", WEBHOOKS_PORT),
    ):
        (ingress,) = policies[pod]["ingress"]
        assert ingress["from"] == [{"ipBlock": {"cidr": vpc}}] and ingress["ports"] == [
            {"port": port, "protocol": "TCP"}
        ]
    (grpc,) = policies["keda-operator"]["ingress"]
    assert grpc["from"] == [{"podSelector": {"matchLabels": {"app": "keda-operator-metrics-apiserver"}}}]
    assert grpc["ports"] == [{"port": OPERATOR_GRPC_PORT, "protocol": "TCP"}]
    to_prometheus = [rule for rule in policies["keda-operator"]["egress"] if "to" in rule]
    assert to_prometheus == [
        {
            "ports": [{"port": 9090, "protocol": "TCP"}],
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
        }
    ]
    # Prometheus admits its query port from platform namespaces, which KEDA's is.
    namespace = named(plan, "kubernetes:core/v1:Namespace", "mlops-serving-autoscaler-namespace")["inputs"]
    assert namespace["metadata"]["labels"]["mlops.platform/part-of"] == "mlops-platform"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_stack_override_sets_the_in_flight_target_and_bounds() -> None:
    models = {
        "digits": {"minReplicas": 2, "maxReplicas": 4},
        "surface-defects": {"gpuPool": "gpu-t4", "inFlightPerReplica": 24, "maxReplicas": 6},
    }
    plan = render_stack("staging", overrides={f"{PROJECT}:models": models})
    spec = named(plan, SCALED_OBJECT, "mlops-model-surface-defects-serving-scaled-object")["inputs"]["spec"]
    assert spec["triggers"][0]["metadata"]["threshold"] == "24"
    # The minimum is the catalogue's, as the stack does not set it.
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        catalogue.get("surface-defects").serving_scale.min_replicas,
        6,
    )


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            {"digits": {"inFlightPerReplica": 8}},
            "models.digits.inFlightPerReplica: digits serves on CPU here (no gpuPool), where it scales on CPU",
        ),
        ({"digits": {"inFlightPerReplica": 0, "gpuPool": "gpu-t4"}}, "models.digits.inFlightPerReplica"),
        ({"digits": {"maxReplicas": 0}}, "models.digits.maxReplicas"),
    ],
)
def test_bad_scale_settings_are_config_errors(models: dict[str, Any], expected: str) -> None:
    assert expected in config_error("dev", {f"{PROJECT}:models": models})


def test_the_stack_bounds_are_checked_against_the_catalogues() -> None:
    entry = dataclasses.replace(catalogue.get("digits"), serving_scale=ServingScale(min_replicas=3, max_replicas=6))
    assert ModelSettings(max_replicas=4).serving_scale(entry) == ServingScale(min_replicas=3, max_replicas=4)
    with pytest.raises(CatalogueError, match=re.escape("min_replicas (3) must be <= max_replicas (2)")):
        ModelSettings(max_replicas=2).serving_scale(entry)


def test_a_stack_floor_above_the_catalogues_ceiling_names_the_model() -> None:
    # The real catalogue entry, as a user's stack file meets it: digits allows at most 2 replicas.
    ceiling = catalogue.get("digits").serving_scale.max_replicas
    values = {**load_stack_config("dev").values, f"{PROJECT}:models": f'{{"digits": {{"minReplicas": {ceiling + 1}}}}}'}
    with pytest.raises(ConfigError) as raised:
        parse_config("dev", "eu-west-1", values, enforce_support=False)
    expected = f"serving scale: min_replicas ({ceiling + 1}) must be <= max_replicas ({ceiling})"
    assert f"mlops-platform:models.digits: {expected}" in str(raised.value)


def test_a_catalogue_scale_out_of_range_is_refused_in_one_message() -> None:
    with pytest.raises(CatalogueError) as raised:
        ServingScale(min_replicas=0, max_replicas=101, in_flight_per_replica=0)
    message = str(raised.value)
    assert (
        "min_replicas must be in [1, 100], got 0" in message and "max_replicas must be in [1, 100], got 101" in message
    )
    assert "in_flight_per_replica must be in None or [1, 10000], got 0" in message


def test_the_strict_schema_refuses_a_misspelt_or_mistyped_scaled_object() -> None:
    (scaled,) = of_type(render_stack("staging"), SCALED_OBJECT)
    assert custom_resource_problems(scaled["inputs"], SCALED_OBJECT_SCHEMA) == []
    misspelt = copy.deepcopy(scaled["inputs"])
    misspelt["spec"]["minReplicas"] = misspelt["spec"].pop("minReplicaCount")  # the HPA's name, not KEDA's
    assert custom_resource_problems(misspelt, SCALED_OBJECT_SCHEMA)
    wrong_enum = copy.deepcopy(scaled["inputs"])
    wrong_enum["spec"]["fallback"]["behavior"] = "keepCurrent"
    assert custom_resource_problems(wrong_enum, SCALED_OBJECT_SCHEMA)
    untyped = copy.deepcopy(scaled["inputs"])
    untyped["spec"]["triggers"][0]["metadata"]["threshold"] = 12  # trigger metadata is strings only
    assert custom_resource_problems(untyped, SCALED_OBJECT_SCHEMA)

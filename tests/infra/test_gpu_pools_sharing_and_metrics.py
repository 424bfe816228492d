"""GPU pools in the plans: time-slicing as a per-pool setting, and the DCGM exporter that watches them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import PROJECT, GpuNodePoolConfig
from infra.gpu_metrics import DCGM_EXPORTER, counters_csv
from infra.gpu_sharing import DEVICE_PLUGIN_CONFIG_LABEL, device_plugin_values
from infra.node_pool import GPU_TAINT_KEY, TEMPLATE_TAG
from infra.offline_plan import load_stack_config, render_stack
from observability import metrics
from tests.ci.custom_resources import SERVICE_MONITOR
from tests.ci.test_manifests import custom_resource_problems
from tests.infra.conftest import Plan, config_error, named, of_type

RELEASE = "kubernetes:helm.sh/v3:Release"
T4_POOL = {
    "name": "gpu-t4",
    "instanceTypes": ["g4dn.xlarge"],
    "minSize": 0,
    "maxSize": 2,
    "gpusPerNode": 1,
    "labels": {"mlops.platform/accelerator": "nvidia-t4"},
}


def _pool(**settings: Any) -> GpuNodePoolConfig:
    return GpuNodePoolConfig.model_validate({**T4_POOL, **settings})


def _device_plugin(plan: Plan) -> dict[str, Any]:
    return named(plan, RELEASE, "mlops-addons-nvidia-device-plugin")["inputs"]["values"]


def _hints(plan: Plan, pool: str) -> dict[str, str]:
    parent = named(plan, "aws:eks/nodeGroup:NodeGroup", f"mlops-eks-{pool}")["parent"]
    tags = [r["inputs"]["tag"] for r in of_type(plan, "aws:autoscaling/tag:Tag") if r["parent"] == parent]
    return {tag["key"]: tag["value"] for tag in tags}


# ---------------------------------------------------------------------------------------------
# time-slicing


def test_an_exclusive_pool_leaves_the_device_plugin_as_it_was(plan: Plan) -> None:
    """No stack shares its GPUs today: no configuration map, no label, one GPU advertised per GPU."""
    assert "config" not in _device_plugin(plan)
    for group in of_type(plan, "aws:eks/nodeGroup:NodeGroup"):
        assert DEVICE_PLUGIN_CONFIG_LABEL not in group["inputs"]["labels"]


def test_a_time_sliced_pool_labels_its_nodes_and_advertises_the_shared_count() -> None:
    pools = [{**T4_POOL, "timeSlicingReplicas": 4}]
    plan = render_stack("dev", overrides={f"{PROJECT}:gpuNodePools": pools})

    labels = named(plan, "aws:eks/nodeGroup:NodeGroup", "mlops-eks-gpu-t4")["inputs"]["labels"]
    assert labels[DEVICE_PLUGIN_CONFIG_LABEL] == "time-sliced-4"
    hints = _hints(plan, "gpu-t4")
    # Scale-from-zero: an empty pool is chosen for as many pods as one node will take.
    assert hints[f"{TEMPLATE_TAG}/resources/nvidia.com/gpu"] == "4"
    assert hints[f"{TEMPLATE_TAG}/label/{DEVICE_PLUGIN_CONFIG_LABEL}"] == "time-sliced-4"
    config = _device_plugin(plan)["config"]
    assert config["default"] == "exclusive" and set(config["map"]) == {"exclusive", "time-sliced-4"}
    shared = json.loads(config["map"]["time-sliced-4"])
    assert shared["version"] == "v1" and shared["flags"] == {"migStrategy": "none"}
    assert shared["sharing"]["timeSlicing"] == {
        "renameByDefault": False,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }
    assert "sharing" not in json.loads(config["map"]["exclusive"])


def test_pools_share_one_configuration_per_replica_count() -> None:
    values = device_plugin_values([_pool(timeSlicingReplicas=2), _pool(name="gpu-b", timeSlicingReplicas=2), _pool()])
    assert set(values["config"]["map"]) == {"exclusive", "time-sliced-2"}
    assert device_plugin_values([_pool(), _pool(name="gpu-b")]) == {}


@pytest.mark.parametrize("replicas", [0, 17])
def test_time_slicing_replicas_out_of_range_are_config_errors(replicas: int) -> None:
    message = config_error("dev", {f"{PROJECT}:gpuNodePools": [{**T4_POOL, "timeSlicingReplicas": replicas}]})
    assert "gpuNodePools.0.timeSlicingReplicas" in message


# ---------------------------------------------------------------------------------------------
# the DCGM exporter


def test_every_stack_with_gpu_pools_runs_the_pinned_exporter_on_them_only(plan: Plan) -> None:
    has_gpu_pools = bool(json.loads(load_stack_config(plan["stack"]).values[f"{PROJECT}:gpuNodePools"] or "[]"))
    releases = [r["inputs"] for r in of_type(plan, RELEASE) if r["inputs"]["chart"] == DCGM_EXPORTER.chart]
    assert len(releases) == int(has_gpu_pools)
    (release,) = releases
    assert release["version"] == DCGM_EXPORTER.version and release["namespace"] == "kube-system"
    values = release["values"]
    # The GPU pools' label and taint (infra/node_pool.py), and nothing else: no CPU node runs it.
    gpu_group = next(g for g in of_type(plan, "aws:eks/nodeGroup:NodeGroup") if g["inputs"]["taints"])
    (taint,) = gpu_group["inputs"]["taints"]
    assert values["nodeSelector"].items() <= gpu_group["inputs"]["labels"].items()
    assert values["tolerations"] == [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    assert taint["key"] == GPU_TAINT_KEY and taint["effect"] == "NO_SCHEDULE"
    # The narrow exception: root for the pod-resources socket, but no capability and no escalation.
    security = values["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert "DCGM_FI_PROF" not in values["customMetrics"]  # the profiling fields are what need SYS_ADMIN
    assert values["serviceMonitor"] == {"enabled": False}  # ours, below


def test_the_counters_cover_every_dcgm_name_the_dashboards_read() -> None:
    collected = {line.split(",")[0] for line in counters_csv().splitlines()}
    assert {metric.name for metric in metrics.DCGM_METRICS} <= collected


def test_prometheus_scrapes_the_exporter_and_only_prometheus_reaches_it(plan: Plan) -> None:
    monitor = named(plan, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "mlops-gpu-metrics-service-monitor")
    assert custom_resource_problems(monitor["inputs"], SERVICE_MONITOR) == []
    spec = monitor["inputs"]["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["kube-system"]}
    assert spec["endpoints"][0]["honorLabels"] is True  # keeps the GPU's pod as `pod`, not `exported_pod`
    assert "mlops-monitoring-release" in monitor["dependencies"]  # the CRD
    policy = named(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "mlops-gpu-metrics-network-policy")["inputs"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": 9400, "protocol": "TCP"}]
    assert ingress["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert policy["spec"]["egress"] == []
    prometheus = named(
        plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "mlops-monitoring-network-policy-prometheus"
    )
    to_exporters = [
        rule
        for rule in prometheus["inputs"]["spec"]["egress"]
        if rule.get("to")
        and rule["to"][0].get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "dcgm-exporter"}
    ]
    assert [rule["ports"] for rule in to_exporters] == [[{"port": 9400, "protocol": "TCP"}]]


def test_only_models_on_a_gpu_get_gpu_panels(plan: Plan) -> None:
    settings = json.loads(load_stack_config(plan["stack"]).values[f"{PROJECT}:models"])
    for model, overrides in settings.items():
        config_map = named(plan, "kubernetes:core/v1:ConfigMap", f"mlops-model-{model}-monitoring-dashboard")
        (text,) = config_map["inputs"]["data"].values()
        titles = {panel["title"] for panel in json.loads(text)["panels"]}
        on_gpu = "gpuPool" in overrides
        assert ("GPU utilisation per replica" in titles) == on_gpu, (plan["stack"], model)
        assert ("GPU memory per replica" in titles) == on_gpu

"""Every GPU pool of every stack tells the cluster autoscaler it has GPUs, also while it is empty."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import ConfigError, GpuNodePoolConfig, parse_config
from infra.gpu_sharing import DEVICE_PLUGIN_CONFIG_LABEL
from infra.node_pool import ACCELERATOR_LABEL, TEMPLATE_TAG, accelerator_of, legacy_tag_names
from infra.offline_plan import load_stack_config
from tests.offline_plans import STACKS, offline_plan

Resource = dict[str, Any]


def _gpu_pools(stack: str) -> list[GpuNodePoolConfig]:
    values = load_stack_config(stack).values
    return list(parse_config(stack, values["aws:region"], values, enforce_support=False).gpu_node_pools)


def _node_group(plan: dict[str, Any], pool: str) -> Resource:
    (group,) = [
        r for r in plan["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup" and r["name"] == f"mlops-eks-{pool}"
    ]
    return group


def _template_tags(plan: dict[str, Any], group: Resource) -> dict[str, str]:
    """The ASG tags the node group's pool declares, by key."""
    tags = [
        r["inputs"]["tag"]
        for r in plan["resources"]
        if r["type"] == "aws:autoscaling/tag:Tag" and r["parent"] == group["parent"]
    ]
    return {tag["key"]: tag["value"] for tag in tags}


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_nodes_carry_the_autoscaler_accelerator_label(stack: str) -> None:
    plan = offline_plan(stack)
    pools = _gpu_pools(stack)
    assert pools, f"{stack} has no GPU pool to check"
    for pool in pools:
        labels = _node_group(plan, pool.name)["inputs"]["labels"]
        assert labels[ACCELERATOR_LABEL] == accelerator_of(pool.name, pool.instance_types)
        # Our stacks also name the GPU in the platform's own label; both must agree.
        assert labels[ACCELERATOR_LABEL] == pool.labels["mlops.platform/accelerator"]


@pytest.mark.parametrize("stack", STACKS)
def test_empty_gpu_pools_advertise_every_node_label_through_asg_tags(stack: str) -> None:
    plan = offline_plan(stack)
    for pool in _gpu_pools(stack):
        group = _node_group(plan, pool.name)
        tags = _template_tags(plan, group)
        assert tags[f"{TEMPLATE_TAG}/label/{ACCELERATOR_LABEL}"] == group["inputs"]["labels"][ACCELERATOR_LABEL]
        labels = {key.removeprefix(f"{TEMPLATE_TAG}/label/"): value for key, value in tags.items() if "/label/" in key}
        assert labels == group["inputs"]["labels"]
        assert tags[f"{TEMPLATE_TAG}/taint/nvidia.com/gpu"] == "true:NoSchedule"
        assert tags[f"{TEMPLATE_TAG}/resources/nvidia.com/gpu"] == str(pool.gpus_per_node)


@pytest.mark.parametrize("stack", STACKS)
def test_cpu_nodes_do_not_claim_a_gpu(stack: str) -> None:
    assert ACCELERATOR_LABEL not in _node_group(offline_plan(stack), "system")["inputs"]["labels"]


def _dev_gpu_t4_hints() -> dict[str, str]:
    labels = {
        "mlops.platform/accelerator": "nvidia-t4",
        "mlops.platform/pool": "gpu-t4",
        "nvidia.com/gpu.present": "true",
    }
    hints = {f"{TEMPLATE_TAG}/label/{key}": value for key, value in labels.items()}
    hints[f"{TEMPLATE_TAG}/label/{ACCELERATOR_LABEL}"] = "nvidia-t4"
    hints[f"{TEMPLATE_TAG}/taint/nvidia.com/gpu"] = "true:NoSchedule"
    hints[f"{TEMPLATE_TAG}/resources/nvidia.com/gpu"] = "1"
    return hints


def test_a_time_sliced_pools_new_hint_does_not_shift_the_former_names() -> None:
    """Its device plugin label (infra/gpu_sharing.py) had no positional name: counting it would rename the others."""
    hints = _dev_gpu_t4_hints()
    before = legacy_tag_names("mlops-eks-gpu-t4", hints)
    hints[f"{TEMPLATE_TAG}/label/{DEVICE_PLUGIN_CONFIG_LABEL}"] = "time-sliced-4"
    assert legacy_tag_names("mlops-eks-gpu-t4", hints) == before


def test_template_tags_keep_their_former_names_through_aliases() -> None:
    """The names dev's gpu-t4 tags had when they were numbered; the new accelerator tag had none."""
    hints = _dev_gpu_t4_hints()
    assert legacy_tag_names("mlops-eks-gpu-t4", hints) == {
        f"{TEMPLATE_TAG}/label/mlops.platform/accelerator": "mlops-eks-gpu-t4-template-0",
        f"{TEMPLATE_TAG}/label/mlops.platform/pool": "mlops-eks-gpu-t4-template-1",
        f"{TEMPLATE_TAG}/label/nvidia.com/gpu.present": "mlops-eks-gpu-t4-template-2",
        f"{TEMPLATE_TAG}/resources/nvidia.com/gpu": "mlops-eks-gpu-t4-template-3",
        f"{TEMPLATE_TAG}/taint/nvidia.com/gpu": "mlops-eks-gpu-t4-template-4",
    }


def test_accelerator_comes_from_the_instance_family() -> None:
    assert accelerator_of("gpu-t4", ["g4dn.xlarge", "g4dn.2xlarge"]) == "nvidia-t4"
    assert accelerator_of("gpu-a10g", ["g5.xlarge"]) == "nvidia-a10g"


@pytest.mark.parametrize(
    ("instance_types", "message"),
    [(["m6i.large"], "no known GPU for instance type(s) m6i.large"), (["g4dn.xlarge", "g5.xlarge"], "mixes GPU types")],
)
def test_a_pool_without_one_known_gpu_type_is_refused(instance_types: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        accelerator_of("gpu-x", instance_types)


@pytest.mark.parametrize("stack", STACKS)
def test_autoscaler_keeps_nodes_that_run_kube_system_pods(stack: str) -> None:
    """FAQ.md: `true` keeps nodes with kube-system pods that have no PDB; DaemonSets do not count."""
    (release,) = [
        r
        for r in offline_plan(stack)["resources"]
        if r["type"] == "kubernetes:helm.sh/v3:Release" and r["inputs"]["chart"] == "cluster-autoscaler"
    ]
    assert release["inputs"]["values"]["extraArgs"]["skip-nodes-with-system-pods"] == "true"

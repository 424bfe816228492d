"""Sharing a GPU between pods: the NVIDIA device plugin's time-slicing, set per GPU pool.

`timeSlicingReplicas: N` on a pool makes the device plugin advertise N `nvidia.com/gpu` per physical
GPU of its nodes, so N serving pods (each still requesting `nvidia.com/gpu: 1`) share one GPU.

The trade-off, for the team that sets it:
- no memory isolation: every pod sees the whole GPU memory; one model that allocates too much makes
  the others fail with out-of-memory, and nothing caps a pod's share;
- no fault isolation: a GPU fault (an Xid error, a hung kernel) takes down every pod on that GPU;
- latency interference: CUDA gives the processes equal slices of time, so a busy neighbour adds to
  each model's latency (a p99 objective sees it first), and requesting more than one slice buys no
  more compute (hence `failRequestsGreaterThanOne`);
- when it pays: many small models, each far from filling a GPU (the catalogue's 32x32 and 8x8 models
  use a fraction of a T4), where a GPU per replica would be mostly idle. Keep a model whose latency
  objective is tight, or whose memory use is close to the GPU's, on a pool with 1 (the default).

How it is delivered (NVIDIA k8s-device-plugin chart 0.20.0, the version infra/cluster_addons.py pins;
read in its README "Shared Access to GPUs with CUDA Time-Slicing" and "Updating Per-Node Configuration
With a Node Label", `api/config/v1/replicas.go` and `deployments/helm/nvidia-device-plugin/templates/`):
- `config.map` holds named plugin configurations (the chart renders them into one ConfigMap) and
  `config.default` names the one a node without a label gets; with a map the chart adds its
  `config-manager` init and sidecar containers, which watch the node's own
  `nvidia.com/device-plugin.config` label and switch the plugin to the named configuration;
- a configuration shares a GPU with `sharing.timeSlicing.resources: [{name: nvidia.com/gpu, replicas: N}]`;
  `renameByDefault: false` keeps the resource name `nvidia.com/gpu` (pods need no change);
- the chart's helpers read a configuration's `flags.migStrategy` and refuse a map without a default.

The pool's nodes carry the label from their node group (infra/node_pool.py), and the cluster
autoscaler's scale-from-zero hint advertises the shared count, so an empty pool is chosen for as many
pending pods as one of its nodes will take.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from infra.config import GpuNodePoolConfig

DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
EXCLUSIVE_CONFIG = "exclusive"
"""The configuration of a node without the label: one pod per GPU, the plugin's own behaviour."""
GPU_RESOURCE = "nvidia.com/gpu"


def config_name(replicas: int) -> str:
    return EXCLUSIVE_CONFIG if replicas == 1 else f"time-sliced-{replicas}"


def _plugin_config(replicas: int) -> str:
    """One configuration of the plugin, as the chart takes it (a YAML document; JSON is YAML)."""
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if replicas > 1:
        config["sharing"] = {
            "timeSlicing": {
                "renameByDefault": False,
                # One slice is an access, not a share of compute: asking for two would buy nothing.
                "failRequestsGreaterThanOne": True,
                "resources": [{"name": GPU_RESOURCE, "replicas": replicas}],
            }
        }
    return json.dumps(config, sort_keys=True)


def node_labels(pool: GpuNodePoolConfig) -> dict[str, str]:
    """The label that selects the pool's configuration; none for an exclusive pool (the default)."""
    if pool.time_slicing_replicas == 1:
        return {}
    return {DEVICE_PLUGIN_CONFIG_LABEL: config_name(pool.time_slicing_replicas)}


def schedulable_gpus(pool: GpuNodePoolConfig) -> int:
    """`nvidia.com/gpu` one node of the pool advertises: its GPUs times the pods sharing each."""
    return pool.gpus_per_node * pool.time_slicing_replicas


def device_plugin_values(pools: Iterable[GpuNodePoolConfig]) -> dict[str, Any]:
    """The chart's `config` values where a pool shares its GPUs; nothing otherwise (the plugin as before)."""
    shared = sorted({pool.time_slicing_replicas for pool in pools} - {1})
    if not shared:
        return {}
    configs = {config_name(replicas): _plugin_config(replicas) for replicas in (1, *shared)}
    return {"config": {"map": configs, "default": EXCLUSIVE_CONFIG}}

"""`mlops plan render`: the Kubernetes objects a stack declares, as YAML files, from its offline plan.

Every plan resource whose type is a Kubernetes object (`kubernetes:<group>/<version>:<Kind>`) becomes
one manifest; providers, Helm releases, `...Patch` resources and YAML/Kustomize/Helm-chart components
are not objects of their own and are skipped (a chart's own objects are only known to Helm). The files
are what `make test` validates against the stack's Kubernetes version and scans with checkov.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.offline_plan import SECRET

# Type tokens whose "group" is a Pulumi construct, not a Kubernetes API group.
NOT_OBJECT_GROUPS = ("helm.sh", "yaml", "kustomize")
_TYPE_TOKEN = re.compile(r"^kubernetes:(?P<group>[^/:]+)/(?P<version>[^:]+):(?P<kind>\w+)$")


def api_version_and_kind(resource_type: str) -> tuple[str, str] | None:
    """`kubernetes:apps/v1:Deployment` -> ("apps/v1", "Deployment"); `kubernetes:core/v1:Service` -> ("v1", ...).

    None for anything that is not a Kubernetes object.
    """
    match = _TYPE_TOKEN.match(resource_type)
    if match is None or match["group"].startswith(NOT_OBJECT_GROUPS):
        return None
    if match["kind"].endswith(("List", "Patch")):
        return None  # a list of objects, or a patch of an object someone else owns (server-side apply)
    group, version = match["group"], match["version"]
    return (version if group == "core" else f"{group}/{version}"), match["kind"]


def manifest(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Kubernetes object a plan resource declares, or None if it declares none."""
    identity = api_version_and_kind(resource["type"])
    if identity is None:
        return None
    api_version, kind = identity
    inputs = copy.deepcopy(dict(resource["inputs"]))
    metadata = dict(inputs.get("metadata") or {})
    # Pulumi auto-names objects without metadata.name (`<logical name>-<suffix>`); the logical name is
    # the stable stand-in offline.
    metadata.setdefault("name", resource["name"])
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    for key, value in inputs.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        # A whole map that is a secret (Secret.data/stringData) is masked as one string offline;
        # its keys are unknown, so the manifest carries an empty map rather than an invalid string.
        obj[key] = {} if value == SECRET and kind == "Secret" and key in ("data", "stringData") else value
    return obj


def kubernetes_objects(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [obj for resource in plan["resources"] if (obj := manifest(resource)) is not None]


def manifest_filename(obj: Mapping[str, Any]) -> str:
    metadata = obj["metadata"]
    namespace = metadata.get("namespace") or "cluster"
    return f"{namespace}.{obj['kind'].lower()}.{metadata['name']}.yaml"


def write_manifests(plan: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write one YAML file per Kubernetes object into `out_dir` (created; stale *.yaml removed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.yaml"):
        stale.unlink()
    written = []
    for obj in kubernetes_objects(plan):
        path = out_dir / manifest_filename(obj)
        if path.exists():
            raise ValueError(f"two objects would be written to {path.name}")
        path.write_text(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
        written.append(path)
    return sorted(written)

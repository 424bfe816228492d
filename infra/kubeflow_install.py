"""What the Kubeflow Pipelines overlay creates, as a checked description the offline plan can read.

At `pulumi up`, `kustomize.v2.Directory` builds `infra/manifests/kubeflow-pipelines/` and registers
every object it renders as a child resource: the policy pack sees them and the engine awaits them.
Under mocks the Directory is one opaque resource, and kustomize cannot fetch the pinned upstream
bases offline. So `rendered.json` records what the overlay renders at the pinned versions, written
by `mlops kfp describe` from the upstream sources (never copied into the repository by hand), and
the offline plan registers those objects as the Directory's children, named and typed as
pulumi-kubernetes names them (`<directory>:<namespace>/<name>`, `kubernetes:<group>/<version>:<Kind>`).

What the description leaves out, it says: CRD schemas and upstream ConfigMap contents are replaced by
their sha256, so a change upstream still changes the file, and the repository holds facts rather than
upstream's text. The description also records the digest of the overlay it was rendered from; the
offline plan refuses a description whose overlay has changed since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
OVERLAY = Path("infra/manifests/kubeflow-pipelines")
"""Relative to the project directory: what the Directory resource is given."""
DESCRIPTION_FILE = "rendered.json"
DIRECTORY_TYPE = "kubernetes:kustomize/v2:Directory"
OMITTED = "sha256:"
"""Marks a value the description replaced by its digest."""


class StaleDescription(Exception):
    """The overlay changed since `rendered.json` was written: the offline plan would show old objects."""


def overlay_digest(overlay: Path) -> str:
    """sha256 over the overlay's own files (kustomization.yaml and patches/), not the description."""
    digest = hashlib.sha256()
    for path in sorted(p for p in overlay.rglob("*") if p.is_file() and p.name != DESCRIPTION_FILE):
        digest.update(path.relative_to(overlay).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _sha(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return OMITTED + hashlib.sha256(text.encode()).hexdigest()


def condensed(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as the description keeps it: CRD schemas and ConfigMap values by digest."""
    result = json.loads(json.dumps(obj))
    if result["kind"] == "CustomResourceDefinition":
        for version in result.get("spec", {}).get("versions", []):
            if "schema" in version:
                version["schema"] = {"openAPIV3Schema": {"description": _sha(version["schema"]), "type": "object"}}
    if result["kind"] == "ConfigMap":
        result["data"] = {key: _sha(value) for key, value in (result.get("data") or {}).items()}
    return result


def describe(objects: Iterable[Mapping[str, Any]], overlay: Path, versions: Mapping[str, str]) -> dict[str, Any]:
    """The description document for the objects kustomize rendered from `overlay`."""
    kept = sorted(
        (condensed(obj) for obj in objects if obj),
        key=lambda obj: (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]),
    )
    return {
        "generatedBy": "mlops kfp describe",
        "upstream": dict(sorted(versions.items())),
        "overlaySha256": overlay_digest(overlay),
        "objects": kept,
    }


def load_description(project_root: Path = REPOSITORY_ROOT, directory: Path = OVERLAY) -> dict[str, Any]:
    """The description of `directory`, checked against the overlay it claims to describe."""
    overlay = project_root / directory
    description = json.loads((overlay / DESCRIPTION_FILE).read_text())
    if description["overlaySha256"] != overlay_digest(overlay):
        raise StaleDescription(
            f"{directory}/{DESCRIPTION_FILE} does not describe the overlay as it is now: "
            "run `mlops kfp describe` to render it again (see README, 'Upgrading KFP')"
        )
    return description


def resource_type(obj: Mapping[str, Any]) -> str:
    """`apps/v1` + `Deployment` -> `kubernetes:apps/v1:Deployment`; `v1` -> `kubernetes:core/v1:...`."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def resource_name(prefix: str, obj: Mapping[str, Any]) -> str:
    """The logical name pulumi-kubernetes gives a Directory child (yaml/v2 `register`)."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{prefix}:{namespace}/{metadata['name']}" if namespace else f"{prefix}:{metadata['name']}"

"""Upstream objects that cannot meet a rule, each exempted by name, rule and reason.

The platform installs Kubeflow Pipelines from its upstream manifests (a `kustomize.v2.Directory`),
hardened by the overlay's patches (`infra/manifests/kubeflow-pipelines/patches/`). What no patch can
give an upstream image is listed here: one object, one rule, why. Everything else the pack enforces
on those objects as on the platform's own, and an exemption never covers an object of ours with the
same name: only a child of a kustomize Directory matches.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTORY_TYPE = "kubernetes:kustomize/v2:Directory"


@dataclass(frozen=True)
class Exemption:
    object: str
    """`<namespace>/<name>` of the upstream object, as the Directory child's resource name ends."""
    rule: str
    """The pack's rule name (checks.RULES)."""
    reason: str


EXEMPTIONS = (
    Exemption(
        "kubeflow/ml-pipeline-persistenceagent",
        "k8s-deployment-probes",
        "KFP 2.17's persistence agent is a controller with no listening port and a distroless image: "
        "there is nothing to probe over HTTP or TCP and no shell for an exec probe; it exits (and is "
        "restarted) when it loses the API server.",
    ),
    Exemption(
        "kubeflow/metadata-writer",
        "k8s-deployment-probes",
        "KFP 2.17's metadata writer watches pods and writes to MLMD; it listens on no port, so there is "
        "nothing to probe, and it exits (and is restarted) when it loses the Kubernetes API or MLMD.",
    ),
)


def _is_directory_child(urn: str) -> bool:
    """`urn:pulumi:<stack>::<project>::<...>$<Directory type>$<own type>::<name>`."""
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return type_chain.split("$")[:-1][-1:] == [DIRECTORY_TYPE]


def exemption_for(urn: str, name: str, rule: str) -> Exemption | None:
    """The exemption for this resource and rule, if the resource is an upstream object listed here."""
    if not _is_directory_child(urn):
        return None
    # Directory children are named `<prefix>:<namespace>/<name>` (pulumi-kubernetes yaml/v2).
    object_name = name.split(":", 1)[-1]
    return next((item for item in EXEMPTIONS if item.object == object_name and item.rule == rule), None)

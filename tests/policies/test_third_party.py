"""Upstream objects are held to the pack's rules; only the listed object-rule pairs are exempt."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs

from policies.platform_policies.pack import build_policies
from policies.platform_policies.third_party import EXEMPTIONS, exemption_for
from tests.offline_plans import STACKS, offline_plan

DIRECTORY_CHAIN = "mlops:platform:Platform$mlops:pipelines:KubeflowPipelines$kubernetes:kustomize/v2:Directory"
OWN_CHAIN = "mlops:platform:Platform$mlops:pipelines:KubeflowPipelines"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PROBES = "k8s-deployment-probes"


def _urn(chain: str, name: str) -> str:
    return f"urn:pulumi:dev::mlops-platform::{chain}${DEPLOYMENT}::{name}"


def _deployment(probes: bool, read_only: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "example/image:1",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": read_only,
        },
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    if probes:
        container["livenessProbe"] = container["readinessProbe"] = {"tcpSocket": {"port": 80}}
    return {"spec": {"template": {"spec": {"containers": [container]}}}}


def _violations(urn: str, name: str, props: dict[str, Any]) -> list[str]:
    """The names of the rules the resource breaks."""
    found: list[str] = []
    for policy in build_policies():
        validate = getattr(policy, "validate", None)
        if policy.name.startswith("k8s-") and validate is not None:
            args = ResourceValidationArgs(DEPLOYMENT, props, urn, name, None, None)  # type: ignore[arg-type]
            validate(args, lambda message, _urn=None, rule=policy.name: found.append(rule))
    return sorted(set(found))


def test_an_exempt_upstream_object_is_still_held_to_every_other_rule() -> None:
    name = "mlops-pipelines-install:kubeflow/metadata-writer"
    assert _violations(_urn(DIRECTORY_CHAIN, name), name, _deployment(probes=False, read_only=True)) == []
    assert _violations(_urn(DIRECTORY_CHAIN, name), name, _deployment(probes=False, read_only=False)) == [
        "k8s-read-only-root-filesystem"
    ]


def test_an_upstream_object_that_is_not_listed_is_not_exempt() -> None:
    name = "mlops-pipelines-install:kubeflow/ml-pipeline"
    assert _violations(_urn(DIRECTORY_CHAIN, name), name, _deployment(probes=False, read_only=True)) == [PROBES]


def test_an_object_of_ours_with_an_exempt_name_is_not_exempt() -> None:
    name = "kubeflow/metadata-writer"
    assert exemption_for(_urn(OWN_CHAIN, name), name, PROBES) is None
    assert _violations(_urn(OWN_CHAIN, name), name, _deployment(probes=False, read_only=True)) == [PROBES]


@pytest.mark.parametrize("exemption", EXEMPTIONS, ids=lambda exemption: f"{exemption.object}:{exemption.rule}")
def test_every_exemption_is_needed_and_explained(exemption: Any) -> None:
    """An exemption names an object every stack installs and that really breaks the rule without it."""
    assert len(exemption.reason) > 40
    for stack in STACKS:
        matches = [
            resource
            for resource in offline_plan(stack)["resources"]
            if resource["name"].endswith(f":{exemption.object}") and resource["type"] == DEPLOYMENT
        ]
        assert len(matches) == 1, f"{stack}: {exemption.object} is not in the install"
        urn = _urn(OWN_CHAIN, matches[0]["name"])  # judged as if it were ours: no exemption applies
        assert exemption.rule in _violations(urn, matches[0]["name"], matches[0]["inputs"])


def test_the_pack_and_checkov_exempt_the_same_upstream_probes() -> None:
    """The overlay's checkov skips for probes name exactly the objects the pack exempts from probes."""
    exempt = {item.object for item in EXEMPTIONS if item.rule == PROBES}
    skipped = set()
    for resource in offline_plan("dev")["resources"]:
        annotations = (resource["inputs"].get("metadata") or {}).get("annotations") or {}
        checks = {
            str(value).partition("=")[0] for key, value in annotations.items() if key.startswith("checkov.io/skip")
        }
        if {"CKV_K8S_8", "CKV_K8S_9"} & checks:
            skipped.add(resource["name"].split(":", 1)[-1])
    assert skipped == exempt

"""The Kubeflow Pipelines install as `pulumi up` registers it: upstream's objects through our overlay.

The offline plan expands the kustomize Directory from `rendered.json` (infra/kubeflow_install.py), so
these tests read KFP's Deployments like the platform's own: every MySQL client on verified TLS, no
v1 cache webhook, the UI reading Argo's archived logs, and every reference resolving.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.kubeflow_install import (
    DESCRIPTION_FILE,
    DIRECTORY_TYPE,
    OVERLAY,
    REPOSITORY_ROOT,
    StaleDescription,
    load_description,
    resource_name,
    resource_type,
)
from infra.kubeflow_pipelines import ARGO_KEY_FORMAT, NAMESPACE, RDS_CA_FILE, RDS_CA_MOUNT, mlmd_connection_config
from infra.offline_plan import load_stack_config
from infra.rds_ca_bundle import bundle_url
from tests.offline_plans import STACKS, offline_plan

INSTALL_PREFIX = "mlops-pipelines-install:"


def _children(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Directory's children by `<namespace>/<name>` (Deployments and others mixed: names are unique)."""
    directory = next(resource for resource in plan["resources"] if resource["type"] == DIRECTORY_TYPE)
    urn_suffix = f"::{directory['name']}"
    return {
        f"{resource['type']}|{resource['name'].removeprefix(INSTALL_PREFIX)}": resource
        for resource in plan["resources"]
        if resource["parent"] and resource["parent"].endswith(urn_suffix)
    }


def _deployments(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key.split("|", 1)[1].split("/", 1)[1]: resource["inputs"]
        for key, resource in _children(plan).items()
        if resource["type"] == "kubernetes:apps/v1:Deployment"
    }


def _declared(plan: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    """An object of ours (not a Directory child) by kind and metadata.name, in the KFP namespace."""
    matches = [
        resource["inputs"]
        for resource in plan["resources"]
        if resource["type"] == f"kubernetes:core/v1:{kind}"
        and (resource["inputs"].get("metadata") or {}).get("name") == name
        and not resource["name"].startswith(INSTALL_PREFIX)
    ]
    assert len(matches) == 1, f"expected one {kind} {name} declared by the platform"
    return matches[0]


def _containers(deployment: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers") or []
    yield from spec["containers"]


def _env(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env") or []}


def _install_config(plan: Mapping[str, Any]) -> dict[str, str]:
    return _declared(plan, "ConfigMap", "pipeline-install-config")["data"]


# ---------------------------------------------------------------------------------------------
# the description


def test_the_description_matches_the_overlay_and_names_its_upstream() -> None:
    description = load_description()
    assert description["upstream"] == {"argoproj/argo-workflows": "v4.0.5", "kubeflow/pipelines": "2.17.0"}
    assert len(description["objects"]) > 40


def test_a_changed_overlay_makes_the_description_stale(tmp_path: Path) -> None:
    copy = tmp_path / OVERLAY
    shutil.copytree(REPOSITORY_ROOT / OVERLAY, copy)
    load_description(tmp_path)  # the copy is current
    patch = copy / "patches" / "ui.yaml"
    patch.write_text(patch.read_text().replace('value: "false"', 'value: "true"', 1))
    with pytest.raises(StaleDescription, match="mlops kfp describe"):
        load_description(tmp_path)


def test_children_are_named_and_typed_as_pulumi_kubernetes_registers_them() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ml-pipeline", "namespace": "kubeflow"},
    }
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ml-pipeline", "namespace": "kubeflow"}}
    assert resource_type(deployment) == "kubernetes:apps/v1:Deployment"
    assert resource_type(service) == "kubernetes:core/v1:Service"
    assert resource_name("p", deployment) == "p:kubeflow/ml-pipeline"
    assert resource_name("p", crd) == "p:a.b"


def test_the_description_keeps_facts_not_upstream_text() -> None:
    description = json.loads((REPOSITORY_ROOT / OVERLAY / DESCRIPTION_FILE).read_text())
    for obj in description["objects"]:
        if obj["kind"] == "ConfigMap":
            assert all(value.startswith("sha256:") for value in obj.get("data", {}).values())
        if obj["kind"] == "CustomResourceDefinition":
            for version in obj["spec"]["versions"]:
                assert set(version.get("schema", {}).get("openAPIV3Schema", {})) <= {"description", "type"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_holds_every_described_object_once(stack: str) -> None:
    children = _children(offline_plan(stack))
    assert len(children) == len(load_description()["objects"])


# ---------------------------------------------------------------------------------------------
# finding 1: TLS to RDS MySQL for every client


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_api_server_holds_database_credentials_in_its_environment(stack: str) -> None:
    """MLMD's come from its connection file (a mounted Secret), not upstream's variables."""
    holders = {
        name
        for name, deployment in _deployments(offline_plan(stack)).items()
        for container in _containers(deployment)
        for variable in _env(container).values()
        if ((variable.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == "mysql-secret"
    }
    assert holders == {"ml-pipeline"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_server_verifies_the_database_certificate(stack: str) -> None:
    plan = offline_plan(stack)
    deployment = _deployments(plan)["ml-pipeline"]
    server = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "ml-pipeline-api-server"
    )
    env = _env(server)
    reference = env["DBCONFIG_MYSQLCONFIG_EXTRAPARAMS"]["valueFrom"]["configMapKeyRef"]
    assert reference["name"] == "pipeline-install-config"
    # go-sql-driver: tls=true verifies the chain and the host name (skip-verify / preferred would not).
    assert json.loads(_install_config(plan)[reference["key"]]) == {"tls": "true"}
    assert RDS_CA_MOUNT in env["SSL_CERT_DIR"]["value"].split(":")
    assert "/etc/ssl/certs" in env["SSL_CERT_DIR"]["value"].split(":"), "S3 must still verify against public CAs"
    _assert_mounts_rds_ca(deployment, server)


@pytest.mark.parametrize("stack", STACKS)
def test_mlmd_reads_a_tls_connection_file_from_its_secret(stack: str) -> None:
    plan = offline_plan(stack)
    deployment = _deployments(plan)["metadata-grpc-deployment"]
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    arguments = server["args"]
    assert "--metadata_source_config_type=config_file" in arguments
    assert not [argument for argument in arguments if argument.startswith("--mysql_config_")]
    config_file = next(a for a in arguments if a.startswith("--metadata_store_server_config_file=")).split("=", 1)[1]
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in server["volumeMounts"] if config_file.startswith(m["mountPath"] + "/"))
    secret_name = volumes[mount["name"]]["secret"]["secretName"]
    secret = _declared(plan, "Secret", secret_name)
    assert secret["stringData"] == "[secret]"  # it holds the password
    _assert_mounts_rds_ca(deployment, server)


def _assert_mounts_rds_ca(deployment: Mapping[str, Any], container: Mapping[str, Any]) -> None:
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == RDS_CA_MOUNT)
    assert volumes[mount["name"]]["configMap"]["name"] == "rds-ca-bundle"


@pytest.mark.parametrize("stack", STACKS)
def test_the_rds_ca_bundle_is_fetched_for_the_stack_region(stack: str) -> None:
    plan = offline_plan(stack)
    bundle = _declared(plan, "ConfigMap", "rds-ca-bundle")
    region = load_stack_config(stack).values["aws:region"]
    fetcher = next(r for r in plan["resources"] if r["type"] == "pulumi-python:dynamic:Resource")
    url = fetcher["inputs"]["url"]
    assert url == bundle_url(region)
    assert url.startswith("https://truststore.pki.rds.amazonaws.com/")
    assert url in bundle["data"][RDS_CA_FILE]  # the mock's stand-in names what `pulumi up` fetches


def test_the_mlmd_connection_file_asks_for_verified_tls() -> None:
    text = mlmd_connection_config("db.example", 3306, "metadb", "kfp", 'p"a\\ss', "/etc/ca/rds.pem")
    assert 'host: "db.example"' in text and "port: 3306" in text and 'database: "metadb"' in text
    assert 'ssl_options { ca: "/etc/ca/rds.pem" verify_server_cert: true }' in text
    assert 'password: "p\\"a\\\\ss"' in text  # text-format escaping: a quote or backslash cannot end the string
    assert "migration_options { enable_upgrade_migration: true }" in text


# ---------------------------------------------------------------------------------------------
# finding 2: no v1 cache webhook (its certificate is never signed on EKS)


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_asks_for_a_kubelet_serving_certificate(stack: str) -> None:
    children = _children(offline_plan(stack))
    names = {key.split("|", 1)[1] for key in children}
    assert not {name for name in names if "cache" in name}
    kinds = {resource["type"] for resource in children.values()}
    assert "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration" not in kinds
    assert "kubernetes:certificates.k8s.io/v1:CertificateSigningRequest" not in kinds
    assert "DEFAULT_CACHE_STALENESS" not in _install_config(offline_plan(stack))


# ---------------------------------------------------------------------------------------------
# finding 14: the UI reads archived logs; nothing is patched after the install


@pytest.mark.parametrize("stack", STACKS)
def test_the_ui_reads_archived_logs_with_argos_key_format(stack: str) -> None:
    plan = offline_plan(stack)
    ui = _deployments(plan)["ml-pipeline-ui"]["spec"]["template"]["spec"]["containers"][0]
    env = _env(ui)
    config = _install_config(plan)
    assert env["ARGO_ARCHIVE_LOGS"]["value"] == "true"
    assert env["ARGO_ARCHIVE_ARTIFACTORY"]["value"] == "s3"
    assert config[env["ARGO_KEYFORMAT"]["valueFrom"]["configMapKeyRef"]["key"]] == ARGO_KEY_FORMAT
    argo = json.loads(_declared(plan, "ConfigMap", "workflow-controller-configmap")["data"]["artifactRepository"])
    assert argo["s3"]["keyFormat"] == ARGO_KEY_FORMAT
    assert argo["archiveLogs"] is True
    # The UI's ownership check ("mlmd-then-prefix") finds the namespace right after the key prefix.
    assert config["ARTIFACT_NAMESPACE_OWNERSHIP_MODE"] == "mlmd-then-prefix"
    assert ARGO_KEY_FORMAT.startswith(f"{config['ARTIFACT_NAMESPACE_KEY_PREFIX']}/{NAMESPACE}/")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_S3_ENDPOINT"} <= set(env)


@pytest.mark.parametrize("stack", STACKS)
def test_no_patch_resource_fights_the_install_and_the_runner_account_is_ours(stack: str) -> None:
    plan = offline_plan(stack)
    assert not [resource["name"] for resource in plan["resources"] if resource["type"].endswith("Patch")]
    runner = _declared(plan, "ServiceAccount", "pipeline-runner")
    assert runner["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert not [key for key in _children(plan) if key.endswith("/pipeline-runner") and "ServiceAccount" in key]


@pytest.mark.parametrize("stack", STACKS)
def test_every_config_reference_of_the_install_resolves(stack: str) -> None:
    """A configMapKeyRef, secretKeyRef or volume that names nothing would keep a pod from starting."""
    plan = offline_plan(stack)
    config_maps: dict[str, set[str]] = {}
    secrets: set[str] = set()
    for resource in plan["resources"]:
        metadata = resource["inputs"].get("metadata") or {}
        if metadata.get("namespace") != NAMESPACE:
            continue
        if resource["type"] == "kubernetes:core/v1:ConfigMap":
            config_maps[metadata["name"]] = set(resource["inputs"].get("data") or {})
        if resource["type"] == "kubernetes:core/v1:Secret":
            secrets.add(metadata["name"])
    missing = []
    for name, deployment in _deployments(plan).items():
        for container in _containers(deployment):
            for variable in _env(container).values():
                source = variable.get("valueFrom") or {}
                ref = source.get("configMapKeyRef")
                if ref and not ref.get("optional") and ref["key"] not in config_maps.get(ref["name"], set()):
                    missing.append(f"{name}: {variable['name']} -> ConfigMap {ref['name']}/{ref['key']}")
                if (ref := source.get("secretKeyRef")) and not ref.get("optional") and ref["name"] not in secrets:
                    missing.append(f"{name}: {variable['name']} -> Secret {ref['name']}")
        for volume in deployment["spec"]["template"]["spec"].get("volumes") or []:
            if (ref := volume.get("configMap")) and not ref.get("optional") and ref["name"] not in config_maps:
                missing.append(f"{name}: volume {volume['name']} -> ConfigMap {ref['name']}")
            if (ref := volume.get("secret")) and not ref.get("optional") and ref["secretName"] not in secrets:
                missing.append(f"{name}: volume {volume['name']} -> Secret {ref['secretName']}")
    assert missing == []

"""`mlops plan render`: every Kubernetes object of every stack, valid for the stack's Kubernetes
version (kubernetes-validate, strict: unknown fields and unknown kinds fail) and clean under
checkov's Kubernetes checks (offline), apart from skips that carry a written reason.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator
from kubernetes_validate.utils import SchemaNotFoundError, all_versions, major_minor
from packaging.version import Version
from typer.testing import CliRunner

from cli import plan_commands
from cli.manifests import api_version_and_kind, kubernetes_objects, manifest_filename, write_manifests
from cli.plan_commands import app
from infra.offline_plan import PROJECT_ROOT, load_stack_config, render_stack
from tests.ci.custom_resources import SCHEMAS as CUSTOM_RESOURCE_SCHEMAS
from tests.offline_plans import STACKS, offline_plan

CHECKOV = Path(os.environ.get("MLOPS_CHECKOV", PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))
# The Makefile sets this, so `make test` fails (rather than skips) when checkov is missing.
REQUIRE_CHECKOV = os.environ.get("MLOPS_REQUIRE_CHECKOV") == "1"
SKIP_ANNOTATION_PREFIX = "checkov.io/skip"


def schema_version_for(kubernetes_version: str) -> str:
    """The newest kubernetes-validate schema not newer than the stack's version (exact when it exists)."""
    wanted = Version(kubernetes_version)
    candidates = [version for version in all_versions() if Version(major_minor(version)) <= wanted]
    assert candidates, f"kubernetes-validate has no schema for Kubernetes <= {kubernetes_version}"
    return major_minor(candidates[-1])


def stack_kubernetes_version(stack: str) -> str:
    return load_stack_config(stack).values["mlops-platform:kubernetesVersion"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("manifests")
    return {stack: _write(offline_plan(stack), root / stack) for stack in STACKS}


def _write(plan: dict[str, Any], directory: Path) -> Path:
    write_manifests(plan, directory)
    return directory


# ---------------------------------------------------------------------------------------------
# the renderer


def test_type_tokens_map_to_api_version_and_kind() -> None:
    assert api_version_and_kind("kubernetes:apps/v1:Deployment") == ("apps/v1", "Deployment")
    assert api_version_and_kind("kubernetes:core/v1:Service") == ("v1", "Service")
    assert api_version_and_kind("kubernetes:networking.k8s.io/v1:NetworkPolicy") == (
        "networking.k8s.io/v1",
        "NetworkPolicy",
    )
    assert api_version_and_kind("kubernetes:batch/v1:CronJob") == ("batch/v1", "CronJob")
    for not_an_object in (
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:kustomize/v2:Directory",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:apps/v1:DeploymentPatch",
        "pulumi:providers:kubernetes",
        "aws:s3/bucket:Bucket",
    ):
        assert api_version_and_kind(not_an_object) is None, not_an_object


def test_renderer_on_a_synthetic_plan(tmp_path: Path) -> None:
    parent = "urn:pulumi:dev::mlops-platform::mlops:platform:Platform"
    plan = {
        "stack": "dev",
        "resources": [
            {"type": "kubernetes:helm.sh/v3:Release", "name": "addon", "parent": parent, "inputs": {"chart": "x"}},
            {
                "type": "pulumi:providers:kubernetes",
                "name": "k8s",
                "parent": parent,
                "inputs": {"kubeconfig": "[secret]"},
            },
            {
                "type": "kubernetes:core/v1:Service",
                "name": "web-service",
                "parent": parent,
                "inputs": {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "web", "namespace": "apps"},
                    "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
                },
            },
            {
                "type": "kubernetes:batch/v1:Job",
                "name": "migrate",
                "parent": parent,
                "inputs": {"metadata": {"namespace": "apps"}, "spec": {"template": {"spec": {"containers": []}}}},
            },
            {
                "type": "kubernetes:core/v1:Secret",
                "name": "credentials",
                "parent": parent,
                "inputs": {"metadata": {"name": "credentials", "namespace": "apps"}, "stringData": "[secret]"},
            },
        ],
    }
    written = write_manifests(plan, tmp_path)
    assert [path.name for path in written] == [
        "apps.job.migrate.yaml",
        "apps.secret.credentials.yaml",
        "apps.service.web.yaml",
    ]
    service = yaml.safe_load((tmp_path / "apps.service.web.yaml").read_text())
    assert service["apiVersion"] == "v1" and service["kind"] == "Service"
    assert service["spec"]["selector"] == {"app": "web"}
    job = yaml.safe_load((tmp_path / "apps.job.migrate.yaml").read_text())
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == ("batch/v1", "Job", "migrate")
    assert yaml.safe_load((tmp_path / "apps.secret.credentials.yaml").read_text())["stringData"] == {}
    # Re-rendering replaces stale manifests.
    write_manifests({"stack": "dev", "resources": plan["resources"][:3]}, tmp_path)
    assert sorted(path.name for path in tmp_path.glob("*.yaml")) == ["apps.service.web.yaml"]


def test_render_command_writes_the_stack_manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The session's cached plan stands in for a fresh render of a known stack (same function, one render less).
    monkeypatch.setattr(
        plan_commands, "render_stack", lambda stack: offline_plan(stack) if stack in STACKS else render_stack(stack)
    )
    result = CliRunner().invoke(app, ["render", "no-such-stack", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no-such-stack" in result.output
    expected = sorted(manifest_filename(obj) for obj in kubernetes_objects(offline_plan("dev")))
    result = CliRunner().invoke(app, ["render", "dev", "--out", str(tmp_path / "dev")])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "dev").glob("*.yaml")) == expected


# ---------------------------------------------------------------------------------------------
# kubernetes-validate, strict, against each stack's Kubernetes version


def test_schema_version_is_the_newest_not_newer_than_the_stack() -> None:
    newest = major_minor(all_versions()[-1])
    assert schema_version_for(newest) == newest
    assert schema_version_for("9.99") == newest
    oldest = major_minor(all_versions()[0])
    assert schema_version_for(oldest) == oldest


def test_an_unknown_field_and_an_unknown_kind_fail_strict_validation() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, "1.33", strict=True)
    with pytest.raises(SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Deploymnet", "metadata": {"name": "x"}}, "1.33", strict=True
        )


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_are_valid_for_the_stack_kubernetes_version(stack: str, rendered: dict[str, Path]) -> None:
    version = schema_version_for(stack_kubernetes_version(stack))
    failures = []
    files = sorted(rendered[stack].glob("*.yaml"))
    for path in files:
        obj = yaml.safe_load(path.read_text())
        custom = CUSTOM_RESOURCE_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if custom is not None:
            failures += [f"{path.name}: {problem}" for problem in custom_resource_problems(obj, custom)]
            continue
        try:
            validated_against = kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{path.name}: {error.message} at {'.'.join(map(str, error.path))}")
        except SchemaNotFoundError as error:
            failures.append(f"{path.name}: unknown kind: {error.message}")
        else:
            assert validated_against == version
    assert failures == []
    assert len(files) == len(kubernetes_objects(offline_plan(stack)))


def custom_resource_problems(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """A custom resource against its CRD's strict subset (tests/ci/custom_resources.py)."""
    errors = Draft202012Validator(schema).iter_errors(obj)
    return sorted(f"{error.message} at {'.'.join(map(str, error.path))}" for error in errors)


def test_custom_resource_schemas_refuse_unknown_and_mistyped_fields() -> None:
    (monitor,) = [obj for obj in kubernetes_objects(offline_plan("dev")) if obj["kind"] == "ServiceMonitor"][:1]
    schema = CUSTOM_RESOURCE_SCHEMAS[(monitor["apiVersion"], "ServiceMonitor")]
    assert custom_resource_problems(monitor, schema) == []
    misspelt = copy.deepcopy(monitor)
    misspelt["spec"]["endpoints"][0]["honourLabels"] = True
    assert custom_resource_problems(misspelt, schema)
    mistyped = copy.deepcopy(monitor)
    mistyped["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert custom_resource_problems(mistyped, schema)
    wrong_version = {**monitor, "apiVersion": "monitoring.coreos.com/v1beta1"}
    assert custom_resource_problems(wrong_version, schema)


# ---------------------------------------------------------------------------------------------
# checkov --framework kubernetes, offline


BAD_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "apps"},
    "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": True}}]},
}
CANARY = "canary"


@pytest.fixture(scope="module")
def checkov_results(rendered: dict[str, Path]) -> list[dict[str, Any]]:
    """One checkov run (it takes ~10 s to start) over every stack's manifests and a known-bad canary."""
    if not CHECKOV.exists():
        if REQUIRE_CHECKOV:
            pytest.fail(f"checkov not found at {CHECKOV}: run `make checkov`")
        pytest.skip(f"checkov not installed at {CHECKOV} (`make checkov` installs it; `make test` requires it)")
    root = next(iter(rendered.values())).parent
    (root / CANARY).mkdir(exist_ok=True)
    (root / CANARY / "bad.yaml").write_text(yaml.safe_dump(BAD_POD))
    completed = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(root),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    results = (report[0] if isinstance(report, list) else report)["results"]
    return [
        {**check, "outcome": outcome}
        for outcome in ("passed_checks", "failed_checks", "skipped_checks")
        for check in results.get(outcome, [])
    ]


def _in(directory: str, checks: list[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    return [
        check for check in checks if check["outcome"] == outcome and Path(check["file_path"]).parts[-2] == directory
    ]


def test_checkov_finds_the_violations_of_a_bad_manifest(checkov_results: list[dict[str, Any]]) -> None:
    failed = {check["check_id"] for check in _in(CANARY, checkov_results, "failed_checks")}
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= failed


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_passes_on_the_stack_manifests(stack: str, checkov_results: list[dict[str, Any]]) -> None:
    failed = sorted(
        f"{check['check_id']} {check['resource']} ({Path(check['file_path']).name}): {check['check_name']}"
        for check in _in(stack, checkov_results, "failed_checks")
    )
    assert failed == []
    for skipped in _in(stack, checkov_results, "skipped_checks"):
        # A skip carries its reason next to the resource: `checkov.io/skipN: CKV_K8S_X=reason`.
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert reason.strip() and reason != "No comment provided", f"{skipped['check_id']} {skipped['resource']}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_skip_annotation_names_a_check_and_a_reason(stack: str, rendered: dict[str, Path]) -> None:
    for path in rendered[stack].glob("*.yaml"):
        annotations = yaml.safe_load(path.read_text())["metadata"].get("annotations") or {}
        for key, value in annotations.items():
            if key.startswith(SKIP_ANNOTATION_PREFIX):
                # checkov splits on "=": exactly one, between the check ID and a non-empty reason.
                check_id, _, reason = str(value).partition("=")
                assert check_id.startswith(("CKV_K8S_", "CKV2_K8S_")) and reason.strip(), f"{path.name}: {key}"
                assert "=" not in reason, f"{path.name}: {key}: checkov cannot parse a reason containing '='"

"""Bad stack config stops the program before any resource is declared, with one clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from infra.config import PROJECT, PlatformConfig
from infra.offline_plan import PROJECT_ROOT, available_stacks, load_stack_config, render_stack

GPU_POOL = {"name": "gpu-t4", "instanceTypes": ["g4dn.xlarge"], "minSize": 0, "maxSize": 2}


def _error_for(stack: str, overrides: dict[str, Any] | None = None, removals: tuple[str, ...] = ()) -> str:
    declared: list[dict[str, Any]] = []
    with pytest.raises(Exception) as raised:
        render_stack(stack, overrides=overrides, removals=removals, declared=declared)
    assert type(raised.value).__name__ == "ConfigError"
    assert declared == [], "no resource may be declared before the config is valid"
    return str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "key", "expected"),
    [
        ({f"{PROJECT}:vpcCdir": "10.0.0.0/16"}, "vpcCdir", "unknown key"),
        ({f"{PROJECT}:availabilityZoneCount": "three"}, "availabilityZoneCount", "valid integer"),
        ({f"{PROJECT}:databaseMultiAz": "maybe"}, "databaseMultiAz", "valid boolean"),
        (
            {f"{PROJECT}:systemNodePool": {"instanceTypes": ["m6i.large"], "minSize": 5, "maxSize": 2}},
            "systemNodePool",
            "minSize (5) must be <= maxSize (2)",
        ),
        (
            {f"{PROJECT}:gpuNodePools": [{**GPU_POOL, "instanceTypes": []}]},
            "gpuNodePools.0.instanceTypes",
            "at least 1 item",
        ),
        ({f"{PROJECT}:vpcCidr": "10.0.0.0/33"}, "vpcCidr", "not a valid IPv4 CIDR"),
        (
            {f"{PROJECT}:clusterPublicAccessCidrs": ["198.51.100.7/16"]},
            "clusterPublicAccessCidrs",
            "not a valid IPv4 CIDR",
        ),
        ({f"{PROJECT}:clusterPublicAccessCidrs": ["0.0.0.0/0"]}, "clusterPublicAccessCidrs", "0.0.0.0/0"),
        ({f"{PROJECT}:kubernetesVersion": "1.24"}, "kubernetesVersion", "expected one of 1.32, 1.33, 1.34"),
        ({f"{PROJECT}:natGateways": "several"}, "natGateways", "expected 'single' or 'perAz'"),
        ({f"{PROJECT}:gpuNodePools": [GPU_POOL, GPU_POOL]}, "gpuNodePools", "duplicate GPU pool name(s): gpu-t4"),
        (
            {
                f"{PROJECT}:postgres": {
                    "engineVersion": "16",
                    "instanceClass": "db.t4g.small",
                    "allocatedStorageGib": 100,
                    "maxAllocatedStorageGib": 50,
                }
            },
            "postgres",
            "maxAllocatedStorageGib must be >= allocatedStorageGib",
        ),
    ],
)
def test_bad_value_names_stack_key_and_expectation(overrides: dict[str, Any], key: str, expected: str) -> None:
    message = _error_for("dev", overrides)
    assert "stack 'dev'" in message
    assert f"{PROJECT}:{key}" in message
    assert expected in message


def test_missing_required_key() -> None:
    message = _error_for("staging", removals=(f"{PROJECT}:kubernetesVersion",))
    assert f"{PROJECT}:kubernetesVersion: required key is missing" in message


def test_missing_region() -> None:
    message = _error_for("dev", removals=("aws:region",))
    assert "stack 'dev': aws:region is not set" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("databaseDeletionProtection", False, "databaseDeletionProtection must be true in prod"),
        ("databaseMultiAz", False, "databaseMultiAz must be true in prod"),
        ("availabilityZoneCount", 2, "availabilityZoneCount must be >= 3 in prod"),
    ],
)
def test_prod_guards(key: str, value: Any, expected: str) -> None:
    assert expected in _error_for("prod", {f"{PROJECT}:{key}": value})


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_automatic_promotion_is_refused_outside_dev(stack: str) -> None:
    models = json.loads(load_stack_config(stack).values[f"{PROJECT}:models"])
    models = {**models, "digits": {**models["digits"], "autoPromote": True}}
    message = _error_for(stack, {f"{PROJECT}:models": models})
    assert f"models.digits.autoPromote: automatic promotion is for dev only, not {stack}" in message


def test_public_endpoint_needs_cidrs() -> None:
    message = _error_for("dev", {f"{PROJECT}:clusterPublicAccessCidrs": []})
    assert "clusterPublicAccessCidrs is empty" in message


def test_cli_reports_config_errors_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stack_file = yaml.safe_load((PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    stack_file["config"][f"{PROJECT}:kubernetesVersion"] = "1.99"
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump(stack_file))
    monkeypatch.setattr("infra.offline_plan.STACKS_DIR", tmp_path)
    result = CliRunner().invoke(app, ["plan", "broken"])
    assert result.exit_code == 2
    assert "stack 'broken'" in result.output and "kubernetesVersion" in result.output
    assert "Traceback" not in result.output


def test_schema_in_pulumi_yaml_matches_the_typed_config() -> None:
    """Pulumi.yaml declares exactly the keys infra/config.py accepts, and every stack sets each one."""
    declared = set(yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["config"])
    accepted = {field.alias for name, field in PlatformConfig.model_fields.items() if name not in ("stack", "region")}
    assert declared == accepted
    for stack in available_stacks():
        keys = {key.removeprefix(f"{PROJECT}:") for key in load_stack_config(stack).values if key.startswith(PROJECT)}
        assert keys == declared, stack

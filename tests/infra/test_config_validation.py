"""Bad stack config stops the program before any resource is declared, with one clear message."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from infra.cluster_addons import CLUSTER_AUTOSCALER_IMAGE_TAGS
from infra.config import (
    EKS_STANDARD_SUPPORT_ENDS,
    PROJECT,
    ConfigError,
    PlatformConfig,
    parse_config,
)
from infra.offline_plan import (
    PROJECT_ROOT,
    available_stacks,
    load_stack_config,
    render_stack,
    stack_config_from_mapping,
)
from tests.infra.conftest import config_error

GPU_POOL = {"name": "gpu-t4", "instanceTypes": ["g4dn.xlarge"], "minSize": 0, "maxSize": 2}


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
        ({f"{PROJECT}:kubernetesVersion": "1.24"}, "kubernetesVersion", "'1.24' is not in the support table"),
        ({f"{PROJECT}:deployerAccess": "vpn"}, "deployerAccess", "expected 'public' or 'private'"),
        ({f"{PROJECT}:clusterPublicAccessCidrs": ["52.0.0.0/8"]}, "clusterPublicAccessCidrs", "broader than /16"),
        ({f"{PROJECT}:clusterPublicAccessCidrs": ["10.1.0.0/24"]}, "clusterPublicAccessCidrs", "not a public range"),
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
    message = config_error("dev", overrides)
    assert "stack 'dev'" in message
    assert f"{PROJECT}:{key}" in message
    assert expected in message


def test_missing_required_key() -> None:
    message = config_error("staging", removals=(f"{PROJECT}:kubernetesVersion",))
    assert f"{PROJECT}:kubernetesVersion: required key is missing" in message


def test_missing_region() -> None:
    message = config_error("dev", removals=("aws:region",))
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
    assert expected in config_error("prod", {f"{PROJECT}:{key}": value})


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_automatic_promotion_is_refused_outside_dev(stack: str) -> None:
    models = json.loads(load_stack_config(stack).values[f"{PROJECT}:models"])
    models = {**models, "digits": {**models["digits"], "autoPromote": True}}
    message = config_error(stack, {f"{PROJECT}:models": models})
    assert f"models.digits.autoPromote: automatic promotion is for dev only, not {stack}" in message


def test_public_endpoint_needs_cidrs() -> None:
    message = config_error("dev", {f"{PROJECT}:clusterPublicAccessCidrs": []})
    assert (
        f"{PROJECT}:clusterPublicAccessCidrs: clusterEndpointPublic is true but clusterPublicAccessCidrs is empty"
        in (message)
    )


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


# --------------------------------------------------------------------------------------------
# Judged as `pulumi up` judges them: a given day, and placeholders refused.

TODAY = date(2026, 12, 1)


def _parse(
    stack: str,
    overrides: dict[str, Any] | None = None,
    removals: tuple[str, ...] = (),
    *,
    refuse_placeholders: bool = False,
    today: date = TODAY,
) -> PlatformConfig:
    values = {key: value for key, value in load_stack_config(stack).values.items() if key not in removals}
    values.update(stack_config_from_mapping(overrides or {}).values)
    return parse_config(stack, values["aws:region"], values, refuse_placeholders=refuse_placeholders, today=today)


def _parse_error(stack: str, overrides: dict[str, Any] | None = None, **options: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        _parse(stack, overrides, **options)
    return str(raised.value)


@pytest.mark.parametrize("stack", available_stacks())
def test_every_stack_runs_versions_in_standard_support(stack: str) -> None:
    config = _parse(stack)
    assert config.kubernetes_version == "1.35"
    assert (config.postgres.engine_version, config.mysql.engine_version) == ("16", "8.4")


@pytest.mark.parametrize(
    ("key", "value", "today", "expected"),
    [
        (
            "kubernetesVersion",
            "1.33",
            TODAY,
            "kubernetesVersion: 1.33 left AWS standard support on 2026-07-29 (extended support is billed extra, "
            "then AWS upgrades it itself); choose 1.34 (until 2026-12-02) or 1.35 (until 2027-03-27)",
        ),
        # The end date itself is the first day of extended support (AWS bills from that day, UTC).
        (
            "kubernetesVersion",
            "1.34",
            date(2026, 12, 2),
            "kubernetesVersion: 1.34 left AWS standard support on 2026-12-02",
        ),
        (
            "mysql",
            {
                "engineVersion": "8.0",
                "instanceClass": "db.t4g.small",
                "allocatedStorageGib": 20,
                "maxAllocatedStorageGib": 50,
            },
            TODAY,
            "mysql.engineVersion: 8.0 left AWS standard support on 2026-07-31 (extended support is billed extra, "
            "then AWS upgrades it itself); choose 8.4 (until 2029-07-31)",
        ),
        (
            "postgres",
            {
                "engineVersion": "13.20",
                "instanceClass": "db.t4g.small",
                "allocatedStorageGib": 20,
                "maxAllocatedStorageGib": 50,
            },
            TODAY,
            "postgres.engineVersion: 13 left AWS standard support on 2026-02-28",
        ),
        (
            "kubernetesVersion",
            "1.35",
            date(2040, 1, 1),
            "kubernetesVersion: 1.35 left AWS standard support on 2027-03-27 (extended support is billed extra, "
            "then AWS upgrades it itself); no version in the table is supported any more",
        ),
    ],
)
def test_an_expired_version_names_its_date_and_what_to_choose(key: str, value: Any, today: date, expected: str) -> None:
    message = _parse_error("dev", {f"{PROJECT}:{key}": value}, today=today)
    assert "stack 'dev'" in message
    assert f"{PROJECT}:{expected}" in message


@pytest.mark.parametrize(("version", "last_day"), [("1.33", date(2026, 7, 28)), ("1.34", date(2026, 12, 1))])
def test_a_version_is_accepted_up_to_the_day_before_its_end(version: str, last_day: date) -> None:
    assert _parse("dev", {f"{PROJECT}:kubernetesVersion": version}, today=last_day).kubernetes_version == version


def test_every_kubernetes_version_still_supported_has_a_cluster_autoscaler_image() -> None:
    current = {version for version, ends in EKS_STANDARD_SUPPORT_ENDS.items() if ends > TODAY}
    assert current == {"1.34", "1.35"}
    assert current <= set(CLUSTER_AUTOSCALER_IMAGE_TAGS)
    for version in current:
        assert CLUSTER_AUTOSCALER_IMAGE_TAGS[version].startswith(f"v{version}.")  # minor matches the cluster's


@pytest.mark.parametrize("placeholder", ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "203.0.113.10/32"])
def test_pulumi_up_refuses_a_documentation_range_placeholder(placeholder: str) -> None:
    message = _parse_error("dev", {f"{PROJECT}:clusterPublicAccessCidrs": [placeholder]}, refuse_placeholders=True)
    assert f"{PROJECT}:clusterPublicAccessCidrs: {placeholder} is a documentation range (RFC 5737)" in message
    assert "replace it with the public egress CIDR" in message


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_shipped_public_stacks_hold_a_placeholder_that_only_a_deploy_refuses(stack: str) -> None:
    assert _parse(stack).placeholders == ["clusterPublicAccessCidrs: 203.0.113.0/24"]
    assert "documentation range" in _parse_error(stack, refuse_placeholders=True)
    real = {f"{PROJECT}:clusterPublicAccessCidrs": ["52.94.76.10/32", "52.95.0.0/16"]}
    assert _parse(stack, real, refuse_placeholders=True).placeholders == []


def test_prod_ships_ready_to_deploy_from_inside_its_vpc() -> None:
    config = _parse("prod", refuse_placeholders=True)
    assert config.deployer_access == "private" and not config.cluster_endpoint_public
    assert config.placeholders == []


def test_the_offline_plan_renders_a_placeholder_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        render_stack("dev")
    assert "mlops-platform:clusterPublicAccessCidrs: 203.0.113.0/24 is a placeholder" in caplog.text


def test_a_stack_without_deployer_access_is_told_what_to_set() -> None:
    message = config_error("prod", removals=(f"{PROJECT}:deployerAccess",))
    assert message.count("\n") == 1, "one message"
    assert f"{PROJECT}:deployerAccess: not set: say how `pulumi up` reaches the EKS API" in message
    assert "`public`" in message and "`private`" in message and "10.30.0.0/16" in message


@pytest.mark.parametrize(
    ("stack", "overrides", "expected"),
    [
        (
            "staging",
            {f"{PROJECT}:clusterEndpointPublic": False, f"{PROJECT}:clusterPublicAccessCidrs": []},
            f"{PROJECT}:clusterEndpointPublic: deployerAccess is public, so the API endpoint must be public",
        ),
        (
            "prod",
            {f"{PROJECT}:clusterPublicAccessCidrs": ["52.94.76.10/32"]},
            f"{PROJECT}:clusterPublicAccessCidrs: set, but the endpoint is private",
        ),
        (
            "prod",
            {
                f"{PROJECT}:deployerAccess": "public",
                f"{PROJECT}:clusterEndpointPublic": True,
                f"{PROJECT}:clusterPublicAccessCidrs": ["52.94.76.10/32"],
            },
            f"{PROJECT}:deployerAccess: public needs a public API endpoint, which prod refuses",
        ),
    ],
)
def test_deployer_access_and_endpoint_must_agree(stack: str, overrides: dict[str, Any], expected: str) -> None:
    message = config_error(stack, overrides)
    assert f"stack '{stack}'" in message
    assert expected in message


def test_a_deployer_inside_the_vpc_may_keep_a_public_endpoint_for_people() -> None:
    overrides = {f"{PROJECT}:deployerAccess": "private", f"{PROJECT}:clusterPublicAccessCidrs": ["52.94.76.10/32"]}
    assert _parse("staging", overrides, refuse_placeholders=True).deployer_access == "private"


def test_a_sixteen_bit_range_is_still_narrow_enough() -> None:
    overrides = {f"{PROJECT}:clusterPublicAccessCidrs": ["52.95.0.0/16"]}
    assert _parse("dev", overrides, refuse_placeholders=True).cluster_public_access_cidrs == ["52.95.0.0/16"]


def test_the_offline_plan_warns_about_an_expired_version_where_a_deploy_refuses_it() -> None:
    """A green commit stays green after a support date passes: only a deployment refuses."""
    later = date(2031, 1, 1)
    values = load_stack_config("dev").values
    config = parse_config("dev", values["aws:region"], values, today=later, enforce_support=False)
    problems = config.support_problems(later)
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "kubernetesVersion",
        "postgres.engineVersion",
        "mysql.engineVersion",
    ]
    assert all("left AWS standard support on" in problem for problem in problems)
    with pytest.raises(ConfigError, match="left AWS standard support"):
        parse_config("dev", values["aws:region"], values, today=later)
    assert config.support_problems(TODAY) == []


def test_a_version_missing_from_the_table_is_refused_even_offline() -> None:
    values = {**load_stack_config("dev").values, f"{PROJECT}:kubernetesVersion": "1.29"}
    with pytest.raises(ConfigError, match="not in the support table"):
        parse_config("dev", values["aws:region"], values, enforce_support=False)

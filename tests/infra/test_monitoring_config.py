"""The monitoring settings are validated with the rest of the stack config, before any resource exists."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse_config
from infra.offline_plan import load_stack_config


def _parse(monitoring: Any) -> None:
    values = {**load_stack_config("dev").values, "mlops-platform:monitoring": monitoring}
    parse_config("dev", "eu-west-1", values)


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [
        ({"prometheusRetentionDays": 2, "prometheusStorageGib": 20}, "monitoring.prometheusRetentionDays"),
        ({"prometheusRetentionDays": 7, "prometheusStorageGib": 5}, "monitoring.prometheusStorageGib"),
        ({"prometheusRetentionDays": 7}, "monitoring.prometheusStorageGib: required key is missing"),
        (
            {"prometheusRetentionDays": 7, "prometheusStorageGib": 20, "retention": "7d"},
            "monitoring.retention: unknown",
        ),
    ],
)
def test_a_bad_monitoring_setting_names_its_key(monitoring: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _parse(monitoring)
    assert message in str(raised.value)


def test_every_stack_file_sets_it() -> None:
    for stack in ("dev", "staging", "prod"):
        assert "mlops-platform:monitoring" in load_stack_config(stack).values, stack


def test_the_smallest_allowed_settings_parse() -> None:
    _parse({"prometheusRetentionDays": 3, "prometheusStorageGib": 10})

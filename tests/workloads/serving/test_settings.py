"""Serving configuration: defaults, per-model batching limits, one clear message per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.serving.settings import (
    ServingSettings,
    ServingVariables,
    SettingsError,
    default_batch_limits,
    describe_variables,
    load_settings,
)


def test_defaults_fit_the_model() -> None:
    settings = load_settings({"MLOPS_MODEL": "digits"})
    assert settings.alias == "production"
    assert settings.max_batch_size == 256 and settings.max_latency_ms == 1000
    assert settings.max_payload_bytes == 8 * 1024 * 1024
    assert settings.torch_threads == 1 and settings.concurrent_batches == 1
    assert load_settings({"MLOPS_MODEL": "digits", "MLOPS_CONCURRENT_BATCHES": "2"}).concurrent_batches == 2
    surface = load_settings({"MLOPS_MODEL": "surface-defects"})
    assert surface.entry.image_shape == (32, 32) and surface.max_batch_size == 256


def test_large_inputs_get_small_batches_and_a_longer_budget() -> None:
    from benchmarks.serving import RESNET_ENTRY

    assert default_batch_limits(RESNET_ENTRY) == (5, 5000)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, r"MLOPS_MODEL is required \(e\.g\. digits\)"),
        ({"MLOPS_MODEL": "nope"}, "unknown model 'nope'"),
        ({"MLOPS_MODEL": "digits", "MLOPS_MAX_BATCH_SIZE": "many"}, "MLOPS_MAX_BATCH_SIZE='many': expected an integer"),
        (
            {"MLOPS_MODEL": "digits", "MLOPS_ALIAS_POLL_SECONDS": "0"},
            "MLOPS_ALIAS_POLL_SECONDS='0': expected a number > 0",
        ),
        (
            {"MLOPS_MODEL": "digits", "MLOPS_CONCURRENT_BATCHES": "0"},
            "MLOPS_CONCURRENT_BATCHES='0': expected an integer >= 1",
        ),
        (
            {"MLOPS_MODEL": "digits", "MLOPS_MAX_PAYLOAD_BYTES": "10"},
            "MLOPS_MAX_PAYLOAD_BYTES='10': expected an integer >= 1024",
        ),
    ],
)
def test_mistakes_name_the_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environment)


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    table = ServingSettings.variables_table()
    assert table in readme, f"README.md: replace the serving variables table with\n{table}"


def test_help_lists_every_field_and_a_bad_value_names_its_variable() -> None:
    help_lines = describe_variables().splitlines()
    assert [line.split()[0] for line in help_lines] == [
        field.validation_alias for field in ServingSettings.model_fields.values()
    ]
    for name, field in ServingSettings.model_fields.items():
        if field.annotation in (int, float) or name.startswith("requested_"):
            with pytest.raises(SettingsError, match=f"^{field.validation_alias}='-5': expected "):
                load_settings({ServingVariables.MODEL: "digits", str(field.validation_alias): "-5"})

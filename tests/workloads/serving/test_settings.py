"""Serving configuration: defaults, per-model batching limits, one clear message per mistake."""

from __future__ import annotations

import pytest

from workloads.serving.settings import SettingsError, default_batch_limits, load_settings


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
        ({}, "MLOPS_MODEL is not set"),
        ({"MLOPS_MODEL": "nope"}, "unknown model 'nope'"),
        ({"MLOPS_MODEL": "digits", "MLOPS_MAX_BATCH_SIZE": "many"}, "MLOPS_MAX_BATCH_SIZE must be an integer"),
        ({"MLOPS_MODEL": "digits", "MLOPS_ALIAS_POLL_SECONDS": "0"}, "MLOPS_ALIAS_POLL_SECONDS must be"),
        ({"MLOPS_MODEL": "digits", "MLOPS_CONCURRENT_BATCHES": "0"}, "MLOPS_CONCURRENT_BATCHES must be an integer"),
        (
            {"MLOPS_MODEL": "digits", "MLOPS_MAX_PAYLOAD_BYTES": "10"},
            "MLOPS_MAX_PAYLOAD_BYTES must be an integer >= 1024",
        ),
    ],
)
def test_mistakes_name_the_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environment)

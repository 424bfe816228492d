"""Configuration mistakes stop the job with one message naming the variable (no server needed)."""

from __future__ import annotations

import pytest

from monitoring.job import main
from monitoring.settings import VARIABLES, DriftSettings, DriftVariables, SettingsError


def test_defaults_are_the_documented_ones() -> None:
    settings = DriftSettings.from_environment({})
    assert settings.cooldown_hours == float(VARIABLES["MLOPS_DRIFT_COOLDOWN_HOURS"][0])
    assert settings.sample_size == int(VARIABLES["MLOPS_DRIFT_SAMPLE_SIZE"][0])
    assert settings.p_value == float(VARIABLES["MLOPS_DRIFT_P_VALUE"][0]) == 0.05
    assert settings.retrain == "off" and settings.webhook_url is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MLOPS_DRIFT_P_VALUE", "0.9", "MLOPS_DRIFT_P_VALUE='0.9': expected a number in [1e-09, 0.5]"),
        ("MLOPS_DRIFT_SAMPLE_SIZE", "lots", "MLOPS_DRIFT_SAMPLE_SIZE='lots': expected an integer in [100, 10000000]"),
        ("MLOPS_DRIFT_RETRAIN", "sometimes", "MLOPS_DRIFT_RETRAIN='sometimes': expected one of off, local, kfp"),
        ("MLOPS_DRIFT_RETRAIN_ARGUMENTS", "[1]", "MLOPS_DRIFT_RETRAIN_ARGUMENTS='[1]': expected a JSON object"),
        ("MLOPS_DRIFT_RETRAIN_ARGUMENTS", "{", "MLOPS_DRIFT_RETRAIN_ARGUMENTS='{': expected a JSON object"),
    ],
)
def test_invalid_variable_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        DriftSettings.from_environment({variable: value})


def test_kfp_retrain_needs_a_host_and_the_entrypoint_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_DRIFT_RETRAIN", "kfp")
    monkeypatch.delenv("MLOPS_KFP_HOST", raising=False)
    assert main(["--model", "digits", "--date", "2026-11-01"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: MLOPS_DRIFT_RETRAIN=kfp needs MLOPS_KFP_HOST (the KFP API endpoint)"
    )


def test_help_lists_every_variable_of_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = [
        line.split()[0]
        for line in capsys.readouterr().out.split("environment variables:\n")[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert listed == [field.validation_alias for field in DriftSettings.model_fields.values()]
    assert DriftVariables.RETRAIN in listed and "MLFLOW_TRACKING_URI" in listed


def test_retrain_is_case_insensitive_and_direct_construction_checks_too() -> None:
    assert DriftSettings.from_environment({DriftVariables.RETRAIN: " Local "}).retrain == "local"
    with pytest.raises(ValueError, match="needs MLOPS_KFP_HOST"):
        DriftSettings(retrain="kfp")

"""Configuration of the drift job, read once from environment variables.

The CronJob (infra), `make demo` (the local loop) and the tests set the same variables; nothing is
read from a file. `VARIABLES` lists every variable with its default and meaning (`--help` prints it).
A mistake raises `SettingsError` naming the variable and what was expected, before any data is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PREDICTIONS_STORE = str(Path(".mlops") / "predictions")
DEFAULT_REPORTS_STORE = str(Path(".mlops") / "reports")
RETRAIN_MODES = ("off", "local", "kfp")

VARIABLES: Mapping[str, tuple[str, str]] = {
    "MLFLOW_TRACKING_URI": ("(required)", "tracking server: registry (reference tables) and the monitoring experiment"),
    "MLFLOW_TRACKING_USERNAME": ("(none)", "tracking server user (basic auth)"),
    "MLFLOW_TRACKING_PASSWORD": ("(none)", "tracking server password"),
    "MLOPS_PREDICTIONS_STORE": (
        DEFAULT_PREDICTIONS_STORE,
        "prediction log root: a folder or s3://bucket[/prefix] (reads <store>/<model>/date=YYYY-MM-DD/*.parquet)",
    ),
    "MLOPS_REPORTS_STORE": (
        DEFAULT_REPORTS_STORE,
        "reports root: a folder or s3://bucket[/prefix] (writes <store>/<model>/date=.../report.html, "
        "summary.json; keeps the alert/retrain cooldown state in <store>/<model>/alert-state.json)",
    ),
    "MLOPS_REPORTS_URL": ("(none)", "public base URL of the reports store, used for links in alerts"),
    "AWS_ENDPOINT_URL_S3": ("(AWS)", "another S3 API (MinIO, moto) for both stores"),
    "MLOPS_DRIFT_WEBHOOK_URL": ("(none)", 'Slack-compatible incoming webhook: POST {"text": ...}'),
    "MLOPS_DRIFT_SNS_TOPIC_ARN": ("(none)", "SNS topic to publish alerts to (boto3; AWS_ENDPOINT_URL_SNS honoured)"),
    "MLOPS_DRIFT_COOLDOWN_HOURS": ("24", "one alert per model and kind, and one retrain, within this many hours"),
    "MLOPS_DRIFT_RETRAIN": ("off", "retrain trigger on dataset drift: off | local (kfp.local here) | kfp (cluster)"),
    "MLOPS_KFP_HOST": ("(none)", "KFP API endpoint for MLOPS_DRIFT_RETRAIN=kfp"),
    "MLOPS_TRAINING_IMAGE": ("(none)", "training image (by digest) for MLOPS_DRIFT_RETRAIN=kfp"),
    "MLOPS_DRIFT_RETRAIN_ARGUMENTS": (
        "{}",
        'JSON object of pipeline parameters for the retrain run, e.g. {"epochs": 3}',
    ),
    "MLOPS_DRIFT_P_VALUE": (
        "0.05",
        "family-wise significance level: the false-alarm rate of the dataset-drift decision, split over the "
        "signal families (Bonferroni) and within each over its columns (see monitoring.drift)",
    ),
    "MLOPS_DRIFT_NUMERICAL_THRESHOLD": (
        "0.1",
        "effect floor of a numerical column (softmax outputs too): normalised Wasserstein distance",
    ),
    "MLOPS_DRIFT_CATEGORICAL_THRESHOLD": ("0.1", "effect floor of the class mix: Jensen-Shannon distance"),
    "MLOPS_DRIFT_EMBEDDING_THRESHOLD": (
        "0.55",
        "effect floor of the embedding: ROC AUC of a reference-vs-current classifier",
    ),
    "MLOPS_DRIFT_SAMPLE_SIZE": ("20000", "rows sampled from the window and from the reference (see monitoring.drift)"),
    "MLOPS_DRIFT_SEED": ("0", "seed of the row sampling (reproducible reports)"),
}


class SettingsError(ValueError):
    """A drift-job variable is invalid; the message names it."""


def _number(environment: Mapping[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = environment.get(name, "").strip() or VARIABLES[name][0]
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a {kind.__name__}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r}: expected a value in [{low}, {high}]")
    return value


def _optional(environment: Mapping[str, str], name: str) -> str | None:
    return environment.get(name, "").strip() or None


@dataclass(frozen=True)
class DriftSettings:
    predictions_store: str = DEFAULT_PREDICTIONS_STORE
    reports_store: str = DEFAULT_REPORTS_STORE
    reports_url: str | None = None
    webhook_url: str | None = None
    sns_topic_arn: str | None = None
    cooldown_hours: float = 24.0
    retrain: str = "off"
    kfp_host: str | None = None
    retrain_arguments: Mapping[str, Any] = field(default_factory=dict)
    numerical_threshold: float = 0.1
    categorical_threshold: float = 0.1
    p_value: float = 0.05
    embedding_threshold: float = 0.55
    sample_size: int = 20_000
    seed: int = 0

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> DriftSettings:
        env = os.environ if environment is None else environment
        retrain = (env.get("MLOPS_DRIFT_RETRAIN", "").strip() or "off").lower()
        if retrain not in RETRAIN_MODES:
            raise SettingsError(f"MLOPS_DRIFT_RETRAIN={retrain!r}: expected one of {', '.join(RETRAIN_MODES)}")
        raw_arguments = env.get("MLOPS_DRIFT_RETRAIN_ARGUMENTS", "").strip() or "{}"
        try:
            arguments = json.loads(raw_arguments)
        except json.JSONDecodeError as error:
            raise SettingsError(f"MLOPS_DRIFT_RETRAIN_ARGUMENTS is not JSON: {error}") from None
        if not isinstance(arguments, dict):
            raise SettingsError("MLOPS_DRIFT_RETRAIN_ARGUMENTS must be a JSON object of pipeline parameters")
        kfp_host = _optional(env, "MLOPS_KFP_HOST")
        if retrain == "kfp" and not kfp_host:
            raise SettingsError("MLOPS_DRIFT_RETRAIN=kfp needs MLOPS_KFP_HOST (the KFP API endpoint)")
        return cls(
            predictions_store=_optional(env, "MLOPS_PREDICTIONS_STORE") or DEFAULT_PREDICTIONS_STORE,
            reports_store=_optional(env, "MLOPS_REPORTS_STORE") or DEFAULT_REPORTS_STORE,
            reports_url=_optional(env, "MLOPS_REPORTS_URL"),
            webhook_url=_optional(env, "MLOPS_DRIFT_WEBHOOK_URL"),
            sns_topic_arn=_optional(env, "MLOPS_DRIFT_SNS_TOPIC_ARN"),
            cooldown_hours=_number(env, "MLOPS_DRIFT_COOLDOWN_HOURS", float, 0, 24 * 365),
            retrain=retrain,
            kfp_host=kfp_host,
            retrain_arguments=arguments,
            numerical_threshold=_number(env, "MLOPS_DRIFT_NUMERICAL_THRESHOLD", float, 0.0, 100.0),
            categorical_threshold=_number(env, "MLOPS_DRIFT_CATEGORICAL_THRESHOLD", float, 0.0, 1.0),
            p_value=_number(env, "MLOPS_DRIFT_P_VALUE", float, 1e-9, 0.5),
            embedding_threshold=_number(env, "MLOPS_DRIFT_EMBEDDING_THRESHOLD", float, 0.5, 1.0),
            sample_size=_number(env, "MLOPS_DRIFT_SAMPLE_SIZE", int, 100, 10_000_000),
            seed=_number(env, "MLOPS_DRIFT_SEED", int, 0, 2**31 - 1),
        )


def variables_help() -> str:
    width = max(len(name) for name in VARIABLES)
    return "\n".join(
        f"  {name:<{width}}  {meaning} (default: {default})" for name, (default, meaning) in VARIABLES.items()
    )

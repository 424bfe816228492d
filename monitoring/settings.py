"""Configuration of the drift job, read once from environment variables.

The CronJob (infra), `make demo` (the local loop) and the tests set the same variables, named in
`DriftVariables`; nothing is read from a file. `DriftSettings` declares each one (default, range,
meaning) and `--help` prints what it generates (`variables_help`). A mistake raises `SettingsError`
naming the variable and what was expected, before any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BeforeValidator, Field, model_validator

from pipelines.remote import IMAGE_ENVIRONMENT_VARIABLE
from workloads.datasets.stores import DEFAULT_STORE, STORE_ENVIRONMENT_VARIABLE
from workloads.labelled_datasets import DEFAULT_HOLDOUT_FRACTION, DEFAULT_LOOKBACK_DAYS
from workloads.serving.settings import DEFAULT_LABELS_STORE, ServingVariables
from workloads.settings import HELP_WIDTH, Stripped, TrackingClientSettings, variable_extra

DEFAULT_PREDICTIONS_STORE = str(Path(".mlops") / "predictions")
DEFAULT_REPORTS_STORE = str(Path(".mlops") / "reports")
RetrainMode = Literal["off", "local", "kfp"]
RETRAIN_MODES: tuple[str, ...] = get_args(RetrainMode)


class DriftVariables:
    """The drift job's environment variables (the MLflow client's are `TrackingClientVariables`)."""

    PREDICTIONS_STORE = "MLOPS_PREDICTIONS_STORE"
    REPORTS_STORE = "MLOPS_REPORTS_STORE"
    REPORTS_URL = "MLOPS_REPORTS_URL"
    S3_ENDPOINT_URL = "AWS_ENDPOINT_URL_S3"
    WEBHOOK_URL = "MLOPS_DRIFT_WEBHOOK_URL"
    SNS_TOPIC_ARN = "MLOPS_DRIFT_SNS_TOPIC_ARN"
    COOLDOWN_HOURS = "MLOPS_DRIFT_COOLDOWN_HOURS"
    RETRAIN = "MLOPS_DRIFT_RETRAIN"
    KFP_HOST = "MLOPS_KFP_HOST"
    TRAINING_IMAGE = IMAGE_ENVIRONMENT_VARIABLE  # read where the run is submitted (pipelines.remote)
    RETRAIN_ARGUMENTS = "MLOPS_DRIFT_RETRAIN_ARGUMENTS"
    LABELS_STORE = ServingVariables.LABELS_STORE  # the store /feedback and `mlops labels import` write
    DATASET_STORE = STORE_ENVIRONMENT_VARIABLE  # where dataset versions live (workloads.datasets.stores)
    MIN_NEW_LABELS = "MLOPS_RETRAIN_MIN_NEW_LABELS"
    HOLDOUT_FRACTION = "MLOPS_RETRAIN_HOLDOUT_FRACTION"
    LABEL_DAYS = "MLOPS_RETRAIN_LABEL_DAYS"
    BASE_VERSION = "MLOPS_RETRAIN_BASE_VERSION"
    P_VALUE = "MLOPS_DRIFT_P_VALUE"
    NUMERICAL_THRESHOLD = "MLOPS_DRIFT_NUMERICAL_THRESHOLD"
    CATEGORICAL_THRESHOLD = "MLOPS_DRIFT_CATEGORICAL_THRESHOLD"
    EMBEDDING_THRESHOLD = "MLOPS_DRIFT_EMBEDDING_THRESHOLD"
    SAMPLE_SIZE = "MLOPS_DRIFT_SAMPLE_SIZE"
    SEED = "MLOPS_DRIFT_SEED"


class SettingsError(ValueError):
    """A drift-job variable is invalid; the message names it."""


def _lowercase(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class MonitoringSettings(TrackingClientSettings):
    """What every monitoring job reads alike: the stores, where alerts go and their cooldown.

    The drift job (`DriftSettings`) and the quality job (`monitoring.quality_settings`) extend it, so
    both read the same variables and the alert helpers take either.
    """

    error_class = SettingsError

    predictions_store: Stripped = Field(
        default=DEFAULT_PREDICTIONS_STORE,
        validation_alias=DriftVariables.PREDICTIONS_STORE,
        description="prediction log root: a folder or s3://bucket[/prefix] "
        "(reads <store>/<model>/date=YYYY-MM-DD/*.parquet)",
    )
    reports_store: Stripped = Field(
        default=DEFAULT_REPORTS_STORE,
        validation_alias=DriftVariables.REPORTS_STORE,
        description="reports root: a folder or s3://bucket[/prefix] (writes <store>/<model>/date=.../report.html, "
        "summary.json; keeps the alert/retrain cooldown state in <store>/<model>/alert-state.json)",
    )
    reports_url: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.REPORTS_URL,
        description="public base URL of the reports store, used for links in alerts",
    )
    s3_endpoint_url: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.S3_ENDPOINT_URL,
        description="another S3 API (MinIO, moto) for both stores; boto3 reads it",
        json_schema_extra=variable_extra(default_text="AWS"),
    )
    webhook_url: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.WEBHOOK_URL,
        description='Slack-compatible incoming webhook: POST {"text": ...}',
    )
    sns_topic_arn: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.SNS_TOPIC_ARN,
        description="SNS topic to publish alerts to (boto3; AWS_ENDPOINT_URL_SNS honoured)",
    )
    cooldown_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 365,
        validation_alias=DriftVariables.COOLDOWN_HOURS,
        description="one alert per model and kind, and one retrain, within this many hours",
    )


class RetrainSettings(MonitoringSettings):
    """The retrain trigger's variables: both jobs read them, since drift and a measured accuracy drop
    (the quality job's `degraded`) can each ask for a retrain (`monitoring.actions.retrain_once`)."""

    retrain: Annotated[RetrainMode, BeforeValidator(_lowercase)] = Field(
        default="off",
        validation_alias=DriftVariables.RETRAIN,
        description="retrain trigger on dataset drift: off, local (kfp.local here) or kfp (the cluster)",
    )
    kfp_host: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.KFP_HOST,
        description="KFP API endpoint for MLOPS_DRIFT_RETRAIN=kfp",
    )
    training_image: Stripped | None = Field(
        default=None,
        validation_alias=DriftVariables.TRAINING_IMAGE,
        description="training image (by digest) for MLOPS_DRIFT_RETRAIN=kfp",
    )
    retrain_arguments: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=DriftVariables.RETRAIN_ARGUMENTS,
        description='JSON object of pipeline parameters for the retrain run, e.g. {"epochs": 3}',
        json_schema_extra=variable_extra(expected="a JSON object of pipeline parameters"),
    )
    labels_store: Stripped = Field(
        default=DEFAULT_LABELS_STORE,
        validation_alias=DriftVariables.LABELS_STORE,
        description="labels root: a folder or s3://bucket[/prefix] (reads <store>/<model>/date=<received day>/)",
    )
    dataset_store: Stripped = Field(
        default=str(DEFAULT_STORE),
        validation_alias=DriftVariables.DATASET_STORE,
        description="dataset versions: the retrain snapshots base + labelled production images here first",
    )
    min_new_labels: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        validation_alias=DriftVariables.MIN_NEW_LABELS,
        description="labelled production images not yet in the newest dataset version that a retrain needs; "
        "with fewer it asks for labels (the labelling queue) instead of retraining on the same data",
    )
    holdout_fraction: float = Field(
        default=DEFAULT_HOLDOUT_FRACTION,
        ge=0.0,
        lt=1.0,
        validation_alias=DriftVariables.HOLDOUT_FRACTION,
        description="share of the labelled production images kept out of training (the recent slice the gate "
        "compares candidate and production on)",
    )
    base_version: Stripped = Field(
        default="latest",
        validation_alias=DriftVariables.BASE_VERSION,
        description="the dataset version a retrain adds the labelled production images to (latest: every "
        "image labelled so far stays in the training data)",
    )
    label_days: int = Field(
        default=DEFAULT_LOOKBACK_DAYS,
        ge=1,
        le=366,
        validation_alias=DriftVariables.LABEL_DAYS,
        description="prediction days whose labelled images a retrain adds, ending with the job's day",
    )

    @model_validator(mode="after")
    def _kfp_needs_a_host(self) -> Self:
        if self.retrain == "kfp" and not self.kfp_host:
            raise SettingsError(f"{DriftVariables.RETRAIN}=kfp needs {DriftVariables.KFP_HOST} (the KFP API endpoint)")
        return self


class DriftSettings(RetrainSettings):
    """Everything the drift job reads from the environment: one field per variable."""

    p_value: float = Field(
        default=0.05,
        ge=1e-9,
        le=0.5,
        validation_alias=DriftVariables.P_VALUE,
        description="family-wise significance level: the false-alarm rate of the dataset-drift decision, split "
        "over the signal families (Bonferroni) and within each over its columns (see monitoring.drift)",
    )
    numerical_threshold: float = Field(
        default=0.1,
        ge=0.0,
        le=100.0,
        validation_alias=DriftVariables.NUMERICAL_THRESHOLD,
        description="effect floor of a numerical column (softmax outputs too): normalised Wasserstein distance",
    )
    categorical_threshold: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        validation_alias=DriftVariables.CATEGORICAL_THRESHOLD,
        description="effect floor of the class mix: Jensen-Shannon distance",
    )
    embedding_threshold: float = Field(
        default=0.55,
        ge=0.5,
        le=1.0,
        validation_alias=DriftVariables.EMBEDDING_THRESHOLD,
        description="effect floor of the embedding: ROC AUC of a reference-vs-current classifier",
    )
    sample_size: int = Field(
        default=20_000,
        ge=100,
        le=10_000_000,
        validation_alias=DriftVariables.SAMPLE_SIZE,
        description="rows sampled from the window and from the reference (see monitoring.drift)",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        validation_alias=DriftVariables.SEED,
        description="seed of the row sampling (reproducible reports)",
    )


VARIABLES: Mapping[str, tuple[str, str]] = DriftSettings.variables()
"""Every variable → (its default as text, its meaning), generated from `DriftSettings`."""


def variables_help() -> str:
    """The variables, one indented line each (the job's `--help` epilog)."""
    return DriftSettings.variables_help(indent="  ", width=HELP_WIDTH)

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

from pydantic import model_validator

from pipelines.remote import IMAGE_ENVIRONMENT_VARIABLE
from workloads.datasets.stores import DEFAULT_STORE, STORE_ENVIRONMENT_VARIABLE
from workloads.labelled_datasets import DEFAULT_HOLDOUT_FRACTION, DEFAULT_LOOKBACK_DAYS
from workloads.serving.settings import DEFAULT_LABELS_STORE, ServingVariables
from workloads.settings import Lowercase, Share, Stripped, TrackingClientSettings, variable

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
    PUSHGATEWAY_URL = "MLOPS_PUSHGATEWAY_URL"


class SettingsError(ValueError):
    """A drift-job variable is invalid; the message names it."""


class MonitoringSettings(TrackingClientSettings):
    """What every monitoring job reads alike: the stores, where alerts go and their cooldown.

    The drift job (`DriftSettings`) and the quality job (`monitoring.quality_settings`) extend it, so
    both read the same variables and the alert helpers take either.
    """

    error_class = SettingsError

    predictions_store: Stripped = variable(DriftVariables.PREDICTIONS_STORE, DEFAULT_PREDICTIONS_STORE)
    """prediction log root: a folder or s3://bucket[/prefix] (reads <store>/<model>/date=YYYY-MM-DD/*.parquet)"""
    reports_store: Stripped = variable(DriftVariables.REPORTS_STORE, DEFAULT_REPORTS_STORE)
    """reports root: a folder or s3://bucket[/prefix] (writes <store>/<model>/date=.../report.html, summary.json;
    keeps the alert/retrain cooldown state in <store>/<model>/alert-state.json)"""
    reports_url: Stripped | None = variable(DriftVariables.REPORTS_URL, None)
    """public base URL of the reports store, used for links in alerts"""
    s3_endpoint_url: Stripped | None = variable(DriftVariables.S3_ENDPOINT_URL, None, default_text="AWS")
    """another S3 API (MinIO, moto) for both stores; boto3 reads it"""
    webhook_url: Stripped | None = variable(DriftVariables.WEBHOOK_URL, None)
    """Slack-compatible incoming webhook: POST {"text": ...}"""
    sns_topic_arn: Stripped | None = variable(DriftVariables.SNS_TOPIC_ARN, None)
    """SNS topic to publish alerts to (boto3; AWS_ENDPOINT_URL_SNS honoured)"""
    cooldown_hours: float = variable(DriftVariables.COOLDOWN_HOURS, 24.0, ge=0, le=24 * 365)
    """one alert per model and kind, and one retrain, within this many hours"""
    pushgateway_url: Stripped | None = variable(DriftVariables.PUSHGATEWAY_URL, None)
    """Prometheus Pushgateway the job pushes its results to at the end of a run (monitoring.job_metrics);
    unset: no push"""


class RetrainSettings(MonitoringSettings):
    """The retrain trigger's variables: both jobs read them, since drift and a measured accuracy drop
    (the quality job's `degraded`) can each ask for a retrain (`monitoring.actions.retrain_once`)."""

    retrain: Annotated[RetrainMode, Lowercase] = variable(DriftVariables.RETRAIN, "off")
    """retrain trigger on dataset drift: off, local (kfp.local here) or kfp (the cluster)"""
    kfp_host: Stripped | None = variable(DriftVariables.KFP_HOST, None)
    """KFP API endpoint for MLOPS_DRIFT_RETRAIN=kfp"""
    training_image: Stripped | None = variable(DriftVariables.TRAINING_IMAGE, None)
    """training image (by digest) for MLOPS_DRIFT_RETRAIN=kfp"""
    retrain_arguments: dict[str, Any] = variable(
        DriftVariables.RETRAIN_ARGUMENTS, {}, expected="a JSON object of pipeline parameters"
    )
    """JSON object of pipeline parameters for the retrain run, e.g. {"epochs": 3}"""
    labels_store: Stripped = variable(DriftVariables.LABELS_STORE, DEFAULT_LABELS_STORE)
    """labels root: a folder or s3://bucket[/prefix] (reads <store>/<model>/date=<received day>/)"""
    dataset_store: Stripped = variable(DriftVariables.DATASET_STORE, str(DEFAULT_STORE))
    """dataset versions: the retrain snapshots base + labelled production images here first"""
    min_new_labels: int = variable(DriftVariables.MIN_NEW_LABELS, 200, ge=1, le=10_000_000)
    """labelled production images not yet in the newest dataset version that a retrain needs; with fewer it asks
    for labels (the labelling queue) instead of retraining on the same data"""
    holdout_fraction: float = variable(DriftVariables.HOLDOUT_FRACTION, DEFAULT_HOLDOUT_FRACTION, ge=0.0, lt=1.0)
    """share of the labelled production images kept out of training (the recent slice the gate compares
    candidate and production on)"""
    base_version: Stripped = variable(DriftVariables.BASE_VERSION, "latest")
    """the dataset version a retrain adds the labelled production images to (latest: every image labelled so far
    stays in the training data)"""
    label_days: int = variable(DriftVariables.LABEL_DAYS, DEFAULT_LOOKBACK_DAYS, ge=1, le=366)
    """prediction days whose labelled images a retrain adds, ending with the job's day"""

    @model_validator(mode="after")
    def _kfp_needs_a_host(self) -> Self:
        if self.retrain == "kfp" and not self.kfp_host:
            raise SettingsError(f"{DriftVariables.RETRAIN}=kfp needs {DriftVariables.KFP_HOST} (the KFP API endpoint)")
        return self


class DriftSettings(RetrainSettings):
    """Everything the drift job reads from the environment: one field per variable."""

    p_value: float = variable(DriftVariables.P_VALUE, 0.05, ge=1e-9, le=0.5)
    """family-wise significance level: the false-alarm rate of the dataset-drift decision, split over the signal
    families (Bonferroni) and within each over its columns (see monitoring.drift)"""
    numerical_threshold: float = variable(DriftVariables.NUMERICAL_THRESHOLD, 0.1, ge=0.0, le=100.0)
    """effect floor of a numerical column (softmax outputs too): normalised Wasserstein distance"""
    categorical_threshold: Share = variable(DriftVariables.CATEGORICAL_THRESHOLD, 0.1)
    """effect floor of the class mix: Jensen-Shannon distance"""
    embedding_threshold: float = variable(DriftVariables.EMBEDDING_THRESHOLD, 0.55, ge=0.5, le=1.0)
    """effect floor of the embedding: ROC AUC of a reference-vs-current classifier"""
    sample_size: int = variable(DriftVariables.SAMPLE_SIZE, 20_000, ge=100, le=10_000_000)
    """rows sampled from the window and from the reference (see monitoring.drift)"""
    seed: int = variable(DriftVariables.SEED, 0, ge=0, le=2**31 - 1)
    """seed of the row sampling (reproducible reports)"""


VARIABLES: Mapping[str, tuple[str, str]] = DriftSettings.variables()
"""Every variable → (its default as text, its meaning), generated from `DriftSettings`."""

"""Configuration of the quality job (`monitoring.quality_job`), read once from environment variables.

The stores, the alert channels and their cooldown are the drift job's own variables
(`MonitoringSettings`): the two jobs of a model read the same prediction log, write beside each other
in the same reports store and share its alert state (each under its own alert kind). The labels store
is the one the model service writes (`MLOPS_LABELS_STORE`, `workloads.labels`); the rest is this
job's own, `MLOPS_QUALITY_*`.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitoring.settings import RetrainSettings
from workloads.serving.settings import ServingVariables
from workloads.settings import Share, variable


class QualityVariables:
    """The quality job's own variables (the shared ones are `DriftVariables`)."""

    LABELS_STORE = ServingVariables.LABELS_STORE  # the store /feedback and `mlops labels import` write
    LOOKBACK_DAYS = "MLOPS_QUALITY_LOOKBACK_DAYS"
    MIN_LABELS = "MLOPS_QUALITY_MIN_LABELS"
    MARGIN = "MLOPS_QUALITY_MARGIN"
    CONFIDENCE = "MLOPS_QUALITY_CONFIDENCE"


class QualitySettings(RetrainSettings):
    """Everything the quality job reads from the environment: one field per variable (the labels store
    and the retrain trigger's with the drift job's `RetrainSettings`: a degraded window can retrain)."""

    lookback_days: int = variable(QualityVariables.LOOKBACK_DAYS, 14, ge=1, le=366)
    """prediction days measured, ending with the job's day: labels arriving up to this late still count for
    their prediction's day"""
    min_labels: int = variable(QualityVariables.MIN_LABELS, 30, ge=1, le=10_000_000)
    """labelled predictions a (day, version) needs before its accuracy is judged; fewer is reported as too few
    labels, never as ok"""
    margin: Share = variable(QualityVariables.MARGIN, 0.02)
    """degraded when the interval's upper bound is below validation accuracy minus this"""
    confidence: float = variable(QualityVariables.CONFIDENCE, 0.95, gt=0.5, lt=1.0)
    """confidence level of the accuracy interval (Wilson score)"""


VARIABLES: Mapping[str, tuple[str, str]] = QualitySettings.variables()
"""Every variable → (its default as text, its meaning), generated from `QualitySettings`."""

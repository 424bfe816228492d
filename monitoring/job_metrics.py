"""The daily jobs' results as Prometheus metrics, pushed to a Pushgateway at the end of each run.

Why a Pushgateway: a drift or quality run lives minutes once a day, so no scrape would find it; the
Pushgateway keeps what a run pushed until the next run of that job and model replaces it (a PUT of
the group `job`, `model`), and Prometheus scrapes it like any target, with `honorLabels` so the
series keep the `job` and `model` they were pushed with. That is Prometheus' own answer for
service-level batch jobs; the textfile collector needs a node_exporter on a shared disk, and
writing to Prometheus directly (remote write) would bypass its scrape, staleness and rules.

What is pushed, with the gauge names observability/metrics.py declares for the rules and dashboards
(tests/monitoring/test_job_metrics.py pushes a real run to a real Pushgateway and checks them):

* drift job (`job="mlops-drift"`): the window's day, its rows; when compared, the dataset-drift
  verdict, the informational drifted share of features, and per signal family that took part its
  p-value, its level and whether it decided;
* quality job (`job="mlops-quality"`): per model version, the newest prediction day it was judged
  on (enough labels): that day, the measured accuracy and its interval, the labelled count, the
  accuracy floor (validation accuracy minus the margin) and whether it is degraded.

A push that fails (no gateway, a timeout) is logged in one line and never fails the job: its real
work, the report and the alert, is done by then.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from monitoring.quality_report import DEGRADED, TOO_FEW_LABELS, QualityRow, QualitySummary
from monitoring.summary import ComparedSummary, DriftSummary

LOG = logging.getLogger("mlops.job_metrics")
DRIFT_JOB = "mlops-drift"
QUALITY_JOB = "mlops-quality"
PUSH_TIMEOUT_SECONDS = 10.0


def _day_seconds(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def drift_registry(summary: DriftSummary) -> Any:
    """A registry of the drift run's gauges (prometheus_client's CollectorRegistry)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    window = summary.window
    gauge("mlops_drift_window_day_timestamp_seconds", "Start (UTC) of the day the run compared").set(
        _day_seconds(window.date)
    )
    gauge("mlops_drift_window_rows", "Predictions logged that day").set(window.rows_in_window)
    if isinstance(summary, ComparedSummary):
        comparison = summary.comparison
        gauge("mlops_drift_dataset_drift", "1 when a signal family rejected at its level").set(
            int(comparison.dataset_drift)
        )
        gauge("mlops_drift_drifted_share", "Share of compared features whose own test rejects").set(
            comparison.drifted_share
        )
        p_value = gauge("mlops_drift_signal_p_value", "Corrected p-value of a signal family", ("signal",))
        level = gauge("mlops_drift_signal_level", "The family's share of the significance level", ("signal",))
        deciding = gauge("mlops_drift_signal_deciding", "1 when the family rejected: it decided", ("signal",))
        for family, signal in comparison.signals.items():
            if "p_value" not in signal:  # a family that did not take part says why, and has no test
                continue
            p_value.labels(family).set(float(signal["p_value"]))
            level.labels(family).set(float(signal["level"]))
            deciding.labels(family).set(int(family in comparison.deciding_signals))
    return registry


def _latest_judged(rows: tuple[QualityRow, ...]) -> dict[str, QualityRow]:
    """Per version, its newest row with an accuracy measured on enough labels."""
    latest: dict[str, QualityRow] = {}
    for row in rows:
        if row.accuracy is None or row.verdict == TOO_FEW_LABELS:
            continue
        if row.model_version not in latest or row.day > latest[row.model_version].day:
            latest[row.model_version] = row
    return latest


def _latest_estimated(rows: tuple[QualityRow, ...]) -> dict[str, QualityRow]:
    """Per version, its newest row with a label-free estimate (labelled or not: that is the point)."""
    latest: dict[str, QualityRow] = {}
    for row in rows:
        if row.estimated_accuracy is None:
            continue
        if row.model_version not in latest or row.day > latest[row.model_version].day:
            latest[row.model_version] = row
    return latest


def quality_registry(summary: QualitySummary) -> Any:
    """A registry of the quality run's gauges, one series per model version."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    names = {
        "day": ("mlops_quality_day_timestamp_seconds", "Start (UTC) of the prediction day measured"),
        "accuracy": ("mlops_quality_accuracy", "Accuracy measured on the labelled predictions of that day"),
        "low": ("mlops_quality_accuracy_interval_low", "Lower bound of the accuracy's Wilson interval"),
        "high": ("mlops_quality_accuracy_interval_high", "Upper bound of the accuracy's Wilson interval"),
        "labelled": ("mlops_quality_labelled", "Labelled predictions of that day"),
        "floor": ("mlops_quality_accuracy_floor", "Validation accuracy minus the margin: degraded below it"),
        "degraded": ("mlops_quality_degraded", "1 when the interval's upper bound is below the floor"),
    }
    gauges = {key: Gauge(name, text, ("model_version",), registry=registry) for key, (name, text) in names.items()}
    for version, row in sorted(_latest_judged(summary.rows).items()):
        values: dict[str, float | None] = {
            "day": _day_seconds(row.day),
            "accuracy": row.accuracy,
            "low": row.interval_low,
            "high": row.interval_high,
            "labelled": row.labelled,
            "floor": None if row.validation_accuracy is None else row.validation_accuracy - summary.margin,
            "degraded": int(row.verdict == DEGRADED),
        }
        for key, value in values.items():
            if value is not None:
                gauges[key].labels(version).set(value)
    estimated = Gauge(
        "mlops_quality_estimated_accuracy",
        "Label-free estimate (CBPE) of the accuracy on every prediction of the version's newest estimated day",
        ("model_version",),
        registry=registry,
    )
    estimated_day = Gauge(
        "mlops_quality_estimated_day_timestamp_seconds",
        "Start (UTC) of the prediction day estimated",
        ("model_version",),
        registry=registry,
    )
    for version, row in sorted(_latest_estimated(summary.rows).items()):
        estimated.labels(version).set(float(row.estimated_accuracy or 0.0))
        estimated_day.labels(version).set(_day_seconds(row.day))
    return registry


def push_results(url: str | None, job: str, model: str, registry: Any) -> str | None:
    """Replace the group (`job`, `model`) on the Pushgateway at `url`; a failure is one log line.

    Returns what went wrong, or None (pushed, or no gateway configured).
    """
    if not url:
        return None
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(url, job=job, grouping_key={"model": model}, registry=registry, timeout=PUSH_TIMEOUT_SECONDS)
    except Exception as error:  # any failure: the job's real work is done, its exit status stays its own
        problem = f"results not pushed to {url} ({type(error).__name__}: {error})"
        LOG.warning("%s %s: %s", job, model, problem)
        return problem
    return None

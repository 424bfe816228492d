"""What the drift job does about a day: alert (at most once per cooldown) and trigger a retrain.

Policy, in order: a kind of alert still in its cooldown is suppressed; with no channel configured
it is logged, not sent; otherwise it goes to every channel (`monitoring.alerts`), and only a
delivery records the cooldown. A retrain is submitted when the trigger is on and its own cooldown
is over, and that cooldown is recorded before the submission (see `retrain_once`) — and only when
enough labelled production images are new since the newest dataset version: the retrain trains on
base + those (`monitoring.retrain_data`); with fewer it asks for labels instead.

`alert_once` and `retrain_once` return their outcome for the summary and, when they failed, the
error that makes the job exit 1 (a suppressed or unconfigured alert is not a failure).
"""

from __future__ import annotations

import logging
from datetime import datetime

from monitoring import alerts
from monitoring.drift import DriftComputation
from monitoring.errors import AlertError
from monitoring.retrain import RetrainSubmitter, submitter_for
from monitoring.retrain_data import count_new_labels, labels_request, snapshot_for_retrain
from monitoring.settings import MonitoringSettings, RetrainSettings
from monitoring.store import Store
from monitoring.summary import NO_TRAFFIC, AlertOutcome, RetrainOutcome, RunLink
from workloads.catalogue_entry import entry_for
from workloads.datasets.errors import DatasetError
from workloads.datasets.stores import open_store

LOG = logging.getLogger("mlops.drift")
NO_DRIFT_REASON = "no dataset drift"


def report_link(settings: MonitoringSettings, key: str, reports: Store, run: RunLink) -> str:
    """Where an alert points: the reports site when configured, else the MLflow run, else the object."""
    if settings.reports_url:
        return f"{settings.reports_url.rstrip('/')}/{key}"
    if run.url:
        return run.url
    return reports.uri_of(key)


def skipped_alert(model: str, day: str, predictions: str, link: str) -> alerts.Alert:
    """Its own kind, never "no drift": nothing was compared."""
    return alerts.Alert(
        model=model,
        kind=alerts.SKIPPED,
        title=f"[drift] {model} {day}: {NO_TRAFFIC}",
        text=f"No predictions were logged for {model} on {day} under {predictions}; drift was not evaluated.",
        link=link,
    )


def drift_alert(
    model: str, version: str, day: str, computation: DriftComputation, compared: int, rows: int, link: str
) -> alerts.Alert:
    """Names the families that decided and the features that drifted, and how many rows were compared."""
    drifted = ", ".join(computation.drifted_features)
    return alerts.Alert(
        model=model,
        kind=alerts.DRIFT,
        title=f"[drift] {model} v{version} {day}: dataset drift detected",
        text=(
            f"decided by {describe_decision(computation)}. Drifted features: {drifted}. "
            f"{compared} of {rows} rows compared with the reference of v{version}."
        ),
        link=link,
    )


def describe_decision(computation: DriftComputation) -> str:
    """`softmax (p 1.2e-05 < 0.0125, softmax_3), class (...)`: the families that rejected."""
    return ", ".join(
        f"{signal.family} (p {signal.p_value:.3g} < {signal.level:.3g}"
        + (f", {signal.deciding_column})" if signal.deciding_column else ")")
        for signal in computation.signals
        if signal.rejected
    )


def alert_once(
    settings: MonitoringSettings, state: alerts.CooldownState, now: datetime, alert: alerts.Alert
) -> tuple[AlertOutcome, str | None]:
    until = state.active_until(alert.kind, settings.cooldown_hours, now)
    if until is not None:
        LOG.info("%s alert for %s suppressed: cooldown until %s", alert.kind, alert.model, until.isoformat())
        return AlertOutcome(sent=False, kind=alert.kind, reason="cooldown", suppressed_until=until.isoformat()), None
    if not settings.webhook_url and not settings.sns_topic_arn:
        LOG.warning("%s for %s: no alert channel configured (MLOPS_DRIFT_WEBHOOK_URL / SNS)", alert.title, alert.model)
        return AlertOutcome(sent=False, kind=alert.kind, reason="no channel configured"), None
    try:
        channels = alerts.send(alert, settings.webhook_url, settings.sns_topic_arn)
    except AlertError as error:
        return (
            AlertOutcome(sent=False, kind=alert.kind, reason=f"delivery failed: {error}"),
            f"alert not delivered: {error}",
        )
    state.record(alert.kind, now, title=alert.title)
    return AlertOutcome(sent=True, kind=alert.kind, channels=tuple(channels), text=alert.message()), None


def retrain_once(
    model: str,
    settings: RetrainSettings,
    state: alerts.CooldownState,
    now: datetime,
    submitter: RetrainSubmitter | None,
    day: str,
    trigger: str = "dataset drift",
) -> tuple[RetrainOutcome, str | None]:
    """Retrain on base + the new labelled production images, or ask for labels when there are too few."""
    submitter = submitter or submitter_for(settings.retrain, settings.kfp_host)
    if submitter is None:
        return RetrainOutcome(submitted=False, reason="retrain trigger off (MLOPS_DRIFT_RETRAIN)"), None
    until = state.active_until(alerts.RETRAIN, settings.cooldown_hours, now)
    if until is not None:
        return RetrainOutcome(submitted=False, reason="cooldown", suppressed_until=until.isoformat()), None
    entry = entry_for(model)
    try:
        found = count_new_labels(entry, settings, day, now)
    except (OSError, ValueError, DatasetError) as error:
        return RetrainOutcome(submitted=False, reason=f"labels unreadable: {error}"), f"retrain: {error}"
    if found.count < settings.min_new_labels:
        asked, failure = alert_once(settings, state, now, labels_request(model, day, trigger, found.count, settings))
        reason = f"needs labels: {found.count} new labelled images of {settings.min_new_labels}; asked for labels"
        reason += "" if asked.sent else f" (request not sent: {asked.reason})"
        return RetrainOutcome(submitted=False, reason=reason, new_labels=found.count), failure
    # Recorded before the run: a local run takes minutes, and a crash mid-way must not resubmit hourly.
    state.record(alerts.RETRAIN, now, arguments=dict(settings.retrain_arguments), trigger=trigger)
    try:
        made = snapshot_for_retrain(entry, settings, found.window, now)
        arguments = {"dataset_store": open_store(settings.dataset_store).uri, **settings.retrain_arguments}
        arguments["dataset_version"] = made.published.version
        LOG.info("retrain of %s on %s", model, made.describe())
        outcome = submitter(model, arguments)
    except Exception as error:  # any snapshot or submission failure is reported, with its message
        return RetrainOutcome(
            submitted=False, reason=f"submission failed: {error}", new_labels=found.count
        ), f"retrain submission failed: {error}"
    LOG.info("retrain of %s submitted: %s", model, outcome)
    return RetrainOutcome(
        submitted=True, outcome=outcome, new_labels=found.count, dataset_version=made.published.version
    ), None

"""Prometheus rule groups for the catalogue's models: one group per model, as plain dicts.

`catalogue_rules()` is a standard Prometheus rules file (`{"groups": [...]}`), which `rules_yaml`
writes and `promtool check rules` reads; infra can hand the same groups to a PrometheusRule's spec.
Every rule carries the `model` label; every alert `severity` `page` or `ticket` and the annotations
`summary` and `runbook` (what to look at first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import yaml

from observability import metrics
from observability.burn_rate import BURN_RATE_WINDOWS, SLI_WINDOWS, BurnRateWindow
from observability.durations import hours
from observability.objectives import Objectives, objectives
from observability.targets import ModelTargets
from workloads.catalogue_entry import CatalogueEntry

Rule = dict[str, Any]


@dataclass(frozen=True)
class Sli:
    """A ratio of bad requests, recorded at every SLI window as `<record><window>`."""

    slo: str
    """`availability` or `latency`: names the alerts (`ModelAvailabilityBurn1h`)."""
    record: str
    """Recording rule name without its window, e.g. `model:request_errors:ratio_rate`."""
    meaning: str
    """What a bad request is, for the annotations."""


AVAILABILITY = Sli("availability", "model:request_errors:ratio_rate", "answered with a 5xx")
LATENCY = Sli("latency", "model:request_slow:ratio_rate", "successful but slower than the p99 threshold")

NO_REPLICA_ALERT = "ModelNoReplicaAvailable"
REPLICAS_NOT_READY_ALERT = "ModelReplicasNotReady"
SHEDDING_ALERT = "ModelRequestsShed"
NO_TRAFFIC_ALERT = "ModelNoTraffic"
DRIFT_JOB_STALE_ALERT = "ModelDriftJobStale"
QUALITY_JOB_STALE_ALERT = "ModelQualityJobStale"
DAILY_JOB_STALE_ALERTS = (DRIFT_JOB_STALE_ALERT, QUALITY_JOB_STALE_ALERT)
ACCURACY_DEGRADED_ALERT = "ModelAccuracyDegraded"

SHEDDING_WINDOW = "5m"
SHEDDING_FOR = "10m"
REPLICAS_NOT_READY_FOR = "15m"
NO_REPLICA_FOR = "5m"
NO_TRAFFIC_FOR = "15m"

# BentoML's status-code label: 503 is what the service answers when it sheds or has no model loaded.
_SERVER_ERROR = 'http_response_code=~"5.."'
SUCCESS = 'http_response_code=~"2.."'
_SHED = 'http_response_code="503"'


def burn_alert_name(sli: Sli, window: BurnRateWindow) -> str:
    return f"Model{sli.slo.capitalize()}Burn{window.long}"


def group_name(model: str) -> str:
    return f"mlops-model-{model}"


def model_rule_group(entry: CatalogueEntry, namespace: str | None = None) -> dict[str, Any]:
    """The rule group of one model: its SLI recording rules, then its alerts."""
    targets = ModelTargets(entry.name, namespace)
    goals = objectives(entry)
    rules = [
        *_sli_records(AVAILABILITY, partial(_availability_ratio, targets), entry.name),
        *_sli_records(LATENCY, partial(_latency_ratio, targets, goals), entry.name),
        *_burn_alerts(AVAILABILITY, goals.availability_budget, entry.name),
        *_burn_alerts(LATENCY, goals.latency_budget, entry.name),
        *_replica_alerts(targets),
        _shedding_alert(targets, goals),
        *([_no_traffic_alert(targets, goals)] if goals.traffic_expected else []),
        _daily_job_alert(targets, goals, DailyJob(DRIFT_JOB_STALE_ALERT, "drift", targets.cronjob, _DRIFT_STEPS)),
        _daily_job_alert(
            targets, goals, DailyJob(QUALITY_JOB_STALE_ALERT, "quality", targets.quality_cronjob, _QUALITY_STEPS)
        ),
        _accuracy_alert(targets),
    ]
    return {"name": group_name(entry.name), "rules": rules}


def catalogue_rules(entries: Iterable[CatalogueEntry], namespace: str | None = None) -> dict[str, Any]:
    """A Prometheus rules file with one group per entry, in catalogue order."""
    return {"groups": [model_rule_group(entry, namespace) for entry in entries]}


def rules_yaml(document: dict[str, Any]) -> str:
    """The rules file as YAML, keys in the order written (Prometheus' own order: alert, expr, for, ...)."""
    return yaml.safe_dump(document, sort_keys=False, width=1_000_000)  # one line per expression


def _availability_ratio(targets: ModelTargets, window: str) -> str:
    errors = f"{metrics.REQUESTS_TOTAL}{targets.requests(_SERVER_ERROR)}"
    total = f"{metrics.REQUESTS_TOTAL}{targets.requests()}"
    return f"sum(rate({errors}[{window}])) / sum(rate({total}[{window}]))"


def _latency_ratio(targets: ModelTargets, goals: Objectives, window: str) -> str:
    # Shed and failed requests are answered fast and would flatter the latency; availability counts them.
    bucket = f'le="{goals.latency_bucket}"'
    fast = f"{metrics.REQUEST_DURATION_BUCKET}{targets.requests(SUCCESS, bucket)}"
    answered = f"{metrics.REQUEST_DURATION_COUNT}{targets.requests(SUCCESS)}"
    return f"1 - sum(rate({fast}[{window}])) / sum(rate({answered}[{window}]))"


def _sli_records(sli: Sli, ratio: Callable[[str], str], model: str) -> list[Rule]:
    return [
        {"record": f"{sli.record}{window}", "expr": ratio(window), "labels": {"model": model}} for window in SLI_WINDOWS
    ]


def _burn_alerts(sli: Sli, budget: float, model: str) -> list[Rule]:
    alerts = []
    for window in BURN_RATE_WINDOWS:
        ratio = window.threshold(budget)
        threshold = _number(ratio)
        series = f'{{model="{model}"}}'
        long, short = f"{sli.record}{window.long}{series}", f"{sli.record}{window.short}{series}"
        summary = (
            f"{model}: {sli.slo} error budget burning {_number(window.factor)}x too fast "
            f"(over {window.long} and {window.short}, more than {_percent(ratio)} of requests {sli.meaning})"
        )
        runbook = (
            f"At this rate {_percent(window.budget_spent)} of the 30-day budget is gone in {window.long}. "
            f"Compare {sli.record}{window.short} with the last deployment or promotion of {model}; "
            "roll back the alias (mlops rollback) if it started with a new version."
        )
        expression = f"{long} > {threshold} and {short} > {threshold}"
        alerts.append(_alert(burn_alert_name(sli, window), expression, model, window.severity, summary, runbook))
    return alerts


def _replica_alerts(targets: ModelTargets) -> list[Rule]:
    available = f"max by (namespace) ({metrics.DEPLOYMENT_AVAILABLE_REPLICAS.name}{targets.deployment_objects()})"
    desired = f"max by (namespace) ({metrics.DEPLOYMENT_SPEC_REPLICAS.name}{targets.deployment_objects()})"
    model, deployment = targets.model, targets.deployment
    # No pod, no /metrics: the SLIs go silent instead of red, so this is the outage's only signal.
    none_available = _alert(
        NO_REPLICA_ALERT,
        f"{available} == 0 and {desired} > 0",
        model,
        "page",
        f"{model}: no replica of {deployment} available for {NO_REPLICA_FOR}",
        f"kubectl describe deployment {deployment}; look for image pulls, OOM kills "
        "and a /readyz that stays 503 (no version behind the alias).",
        pending=NO_REPLICA_FOR,
    )
    too_few = _alert(
        REPLICAS_NOT_READY_ALERT,
        f"{available} < {desired}",
        model,
        "ticket",
        f"{model}: fewer replicas of {deployment} available than desired for {REPLICAS_NOT_READY_FOR}",
        f"kubectl get pods -l app.kubernetes.io/name={deployment}: pending pods "
        "(capacity; on a GPU pool a node from zero takes minutes: node start, image pull, model load) "
        "or pods failing readiness.",
        pending=REPLICAS_NOT_READY_FOR,
    )
    return [none_available, too_few]


def _shedding_alert(targets: ModelTargets, goals: Objectives) -> Rule:
    shed = f"{metrics.REQUESTS_TOTAL}{targets.requests(_SHED)}"
    total = f"{metrics.REQUESTS_TOTAL}{targets.requests()}"
    # The whole error budget's rate, from sheds alone: capacity is short even if nothing else fails.
    threshold = _number(goals.availability_budget)
    model = targets.model
    summary = (
        f"{model}: more than {_percent(goals.availability_budget)} of requests answered 503 "
        f"for {SHEDDING_FOR} (shed by adaptive batching, or no version loaded)"
    )
    runbook = (
        "Requests wait longer than MLOPS_MAX_LATENCY_MS in the batching queue: is the autoscaler "
        f"at its ceiling (kubectl -n models get hpa; on a GPU pool KEDA's keda-hpa-{targets.deployment})? "
        "Raise maxReplicas (on a GPU pool, or lower inFlightPerReplica); else add CPU or raise "
        "MLOPS_MAX_BATCH_SIZE. The service log says whether a version is loaded."
    )
    expression = f"sum(rate({shed}[{SHEDDING_WINDOW}])) / sum(rate({total}[{SHEDDING_WINDOW}])) > {threshold}"
    return _alert(SHEDDING_ALERT, expression, model, "ticket", summary, runbook, pending=SHEDDING_FOR)


def _no_traffic_alert(targets: ModelTargets, goals: Objectives) -> Rule:
    window = hours(goals.no_traffic_hours)
    requests = f"{metrics.REQUESTS_TOTAL}{targets.requests()}"
    model = targets.model
    summary = f"{model}: no request to a model route in {window}, where traffic is expected"
    runbook = (
        "Check the clients and the gateway in front of the service, and that Prometheus still "
        f"scrapes {targets.deployment}; set traffic_expected=False in the catalogue if none is."
    )
    # `or vector(0)`: a service that never answered a request has no request series at all.
    expression = f"(sum(increase({requests}[{window}])) or vector(0)) == 0"
    return _alert(NO_TRAFFIC_ALERT, expression, model, "ticket", summary, runbook, pending=NO_TRAFFIC_FOR)


@dataclass(frozen=True)
class DailyJob:
    """One of a model's daily CronJobs, as its staleness alert names it."""

    alert: str
    kind: str
    cronjob: str
    steps: str
    """What its log names when it fails (the runbook's pointer)."""


_DRIFT_STEPS = "prediction log, reference, tracking server"
_QUALITY_STEPS = "prediction log, labels store, registry's validation accuracy, tracking server"


def _daily_job_alert(targets: ModelTargets, goals: Objectives, job: DailyJob) -> Rule:
    # Both daily jobs run once a day, so both share the catalogue's `drift_max_age_hours` (the schedule
    # plus the time a run may take); the quality job runs an hour after the drift job.
    age = goals.drift_max_age_hours * 3600
    success = f"max by (namespace) ({metrics.CRONJOB_LAST_SUCCESS.name}{targets.cronjob_objects(job.cronjob)})"
    created = f"max by (namespace) ({metrics.CRONJOB_CREATED.name}{targets.cronjob_objects(job.cronjob)})"
    model = targets.model
    summary = f"{model}: the {job.kind} job {job.cronjob} has not succeeded in {goals.drift_max_age_hours} hours"
    runbook = (
        f"kubectl get jobs -l app.kubernetes.io/name={job.cronjob}; the job's log names the failing step ({job.steps})."
    )
    # The second branch: a CronJob older than the limit that never succeeded has no success sample.
    expression = f"(time() - {success} > {age}) or (time() - {created} > {age} unless on (namespace) {success})"
    return _alert(job.alert, expression, model, "ticket", summary, runbook)


def _accuracy_alert(targets: ModelTargets) -> Rule:
    # The quality job's own rule on the numbers it pushed: degraded while even the interval's upper
    # bound is below the floor. The job posts once per cooldown; this alert stays active until a run
    # measures the version at or above it, so the state shows in Alertmanager and Grafana meanwhile.
    pushed = targets.job_results(metrics.QUALITY_JOB)
    high, floor = f"{metrics.QUALITY_INTERVAL_HIGH}{pushed}", f"{metrics.QUALITY_ACCURACY_FLOOR}{pushed}"
    model = targets.model
    # No template: the version is the alert's `model_version` label (promtool compares the text).
    summary = (
        f"{model}: a version's measured accuracy is below its validation accuracy minus the "
        "margin (the upper bound of its interval under the floor)"
    )
    runbook = (
        f"quality.json of {model}'s last quality run names the day and the labels; compare with "
        "that day's drift report, and roll back the alias (mlops rollback) if a new version started it."
    )
    expression = f"max by (model_version) ({high} < {floor})"
    return _alert(ACCURACY_DEGRADED_ALERT, expression, model, "ticket", summary, runbook)


def _alert(
    name: str, expression: str, model: str, severity: str, summary: str, runbook: str, pending: str | None = None
) -> Rule:
    """An alerting rule in the one shape every alert of the group has; `for` only where it waits `pending`."""
    waits = {} if pending is None else {"for": pending}
    return {
        "alert": name,
        "expr": expression,
        **waits,
        "labels": _labels(model, severity),
        "annotations": {"summary": summary, "runbook": runbook},
    }


def _labels(model: str, severity: str) -> dict[str, str]:
    return {"severity": severity, "model": model}


def _number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (14.4 x 0.01 is 0.14400000000000002)."""
    return f"{value:.6g}"


def _percent(value: float) -> str:
    return f"{value * 100:.3g} %"

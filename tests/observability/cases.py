"""promtool unit tests for a model's rule group: for every alert, series that must fire it and
series that must leave it quiet.

Burn-rate alerts get four cases each, built from the window and the threshold the rule uses: a
sustained burn a quarter above the threshold fires; one a fifth below stays quiet; a burn that
stopped two short windows ago stays quiet although the long window is still over (the short window
resets it); a fresh spike stays quiet although the short window is over (the long window is not).
The others get cases for their condition, their `for` and their selector (routes, deployment).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from observability import metrics
from observability.burn_rate import BURN_RATE_WINDOWS, BurnRateWindow
from observability.durations import seconds
from observability.objectives import Objectives, objectives
from observability.rules import (
    ACCURACY_DEGRADED_ALERT,
    AVAILABILITY,
    DRIFT_JOB_STALE_ALERT,
    LATENCY,
    NO_REPLICA_ALERT,
    NO_TRAFFIC_ALERT,
    QUALITY_JOB_STALE_ALERT,
    REPLICAS_NOT_READY_ALERT,
    SHEDDING_ALERT,
    Sli,
    burn_alert_name,
)
from observability.targets import ModelTargets
from tests.observability.series import counter, gauge
from workloads.catalogue_entry import CatalogueEntry

NAMESPACE = "models"
REQUESTS_PER_MINUTE = 100.0
KSM = 'job="kube-state-metrics",instance="10.0.0.9:8080"'
"""Labels Prometheus adds to kube-state-metrics' series; the rules aggregate them away."""


@dataclass(frozen=True)
class Case:
    """One promtool test of one alerting rule: the series it is fed, and whether it fires at the end."""

    alert: str
    """The alert under test (its rule and the recording rules it reads form the case's rules file)."""
    name: str
    """What the case shows, e.g. "none of 2 available for 10m fires"."""
    fires: bool
    """Whether the alert is firing at `eval_minutes` (else promtool expects no alert at all)."""
    series: dict[str, str]
    """promtool input series: selector -> values."""
    eval_minutes: int
    step_minutes: int = 1
    """Sample spacing of the series, and of the rule evaluations of the file the case goes in."""
    result_labels: dict[str, str] = field(default_factory=dict)
    """Labels the alert's expression leaves on the firing series (beside the rule's own)."""


def model_cases(entry: CatalogueEntry) -> list[Case]:
    goals = objectives(entry)
    targets = ModelTargets(entry.name)
    cases: list[Case] = []
    for window in BURN_RATE_WINDOWS:
        cases += _burn_cases(AVAILABILITY, window, goals.availability_budget, _availability_series(targets))
        cases += _burn_cases(LATENCY, window, goals.latency_budget, _latency_series(targets, goals))
    cases += _replica_cases(targets)
    cases += _shedding_cases(targets, goals)
    if goals.traffic_expected:
        cases += _no_traffic_cases(targets, goals)
    cases += _daily_job_cases(targets, goals, DRIFT_JOB_STALE_ALERT, targets.cronjob)
    cases += _daily_job_cases(targets, goals, QUALITY_JOB_STALE_ALERT, targets.quality_cronjob)
    cases += _accuracy_cases(targets)
    return cases


def alert_rules(group: dict[str, Any], alert: str) -> dict[str, Any]:
    """A rules file of `group`'s rule `alert` and the recording rules its expression reads, verbatim:
    promtool then evaluates two or three rules per step instead of the whole group."""
    rules = group["rules"]
    (alerting,) = [rule for rule in rules if rule.get("alert") == alert]
    recorded = [
        rule for rule in rules if "record" in rule and re.search(rf"\b{re.escape(rule['record'])}\b", alerting["expr"])
    ]
    return {"groups": [{"name": group["name"], "rules": [*recorded, alerting]}]}


def promtool_tests(group: dict[str, Any], cases: list[Case], rule_file: str) -> dict[str, Any]:
    """A promtool test file of the cases of one alert (one sample spacing, evaluated as often)."""
    (alert,) = {case.alert for case in cases}
    (step,) = {case.step_minutes for case in cases}
    (rule,) = [rule for rule in group["rules"] if rule.get("alert") == alert]
    tests = []
    for case in cases:
        expected = [{"exp_labels": {**rule["labels"], **case.result_labels}, "exp_annotations": rule["annotations"]}]
        tests.append(
            {
                "name": f"{group['name']} {alert}: {case.name}",
                "interval": f"{step}m",
                "input_series": [{"series": series, "values": values} for series, values in case.series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": f"{case.eval_minutes}m",
                        "alertname": alert,
                        "exp_alerts": expected if case.fires else [],
                    }
                ],
            }
        )
    return {"rule_files": [rule_file], "evaluation_interval": f"{step}m", "tests": tests}


SeriesBuilder = Callable[[list[tuple[int, float]], int], dict[str, str]]
"""(phases of (minutes, bad ratio), step minutes) -> input series."""


def _availability_series(targets: ModelTargets) -> SeriesBuilder:
    def build(phases: list[tuple[int, float]], step: int) -> dict[str, str]:
        per_step = REQUESTS_PER_MINUTE * step
        good = [(minutes // step, per_step * (1 - ratio)) for minutes, ratio in phases]
        bad = [(minutes // step, per_step * ratio) for minutes, ratio in phases]
        return {
            _request(targets, "/classify_array", "200"): counter(good),
            _request(targets, "/classify_array", "500"): counter(bad),
        }

    return build


def _latency_series(targets: ModelTargets, goals: Objectives) -> SeriesBuilder:
    def build(phases: list[tuple[int, float]], step: int) -> dict[str, str]:
        per_step = REQUESTS_PER_MINUTE * step
        fast = [(minutes // step, per_step * (1 - ratio)) for minutes, ratio in phases]
        every = [(minutes // step, per_step) for minutes, _ in phases]
        labels = _request_labels(targets, "/classify_image", "200")
        return {
            f'{metrics.REQUEST_DURATION_BUCKET}{{{labels},le="{goals.latency_bucket}"}}': counter(fast),
            f'{metrics.REQUEST_DURATION_BUCKET}{{{labels},le="+Inf"}}': counter(every),
            f"{metrics.REQUEST_DURATION_COUNT}{{{labels}}}": counter(every),
        }

    return build


def _burn_cases(sli: Sli, window: BurnRateWindow, budget: float, build: SeriesBuilder) -> list[Case]:
    long, short = seconds(window.long) // 60, seconds(window.short) // 60
    threshold = window.threshold(budget)
    step = max(1, short // 6)  # six samples in the short window: enough for rate(), and few evaluations
    alert = burn_alert_name(sli, window)

    def case(name: str, fires: bool, phases: list[tuple[int, float]]) -> Case:
        return Case(alert, name, fires, build(phases, step), sum(minutes for minutes, _ in phases), step)

    return [
        case("sustained 1.25x the threshold fires", True, [(long + short, 1.25 * threshold)]),
        case("sustained 0.8x the threshold stays quiet", False, [(long + short, 0.8 * threshold)]),
        case(
            "stopped two short windows ago: long window over, short clean, quiet",
            False,
            [(long, 2 * threshold), (2 * short, 0.0)],
        ),
        case(
            "fresh spike: short window over, long window under, quiet",
            False,
            [(long, 0.0), (short + short // 2, 4 * threshold)],
        ),
    ]


def _replica_cases(targets: ModelTargets) -> list[Case]:
    def series(desired: float, available: float, deployment: str = targets.deployment) -> dict[str, str]:
        labels = f'namespace="{NAMESPACE}",deployment="{deployment}",{KSM}'
        return {
            f"{metrics.DEPLOYMENT_SPEC_REPLICAS.name}{{{labels}}}": gauge([(60, desired)]),
            f"{metrics.DEPLOYMENT_AVAILABLE_REPLICAS.name}{{{labels}}}": gauge([(60, available)]),
        }

    scoped = {"namespace": NAMESPACE}
    none, short = NO_REPLICA_ALERT, REPLICAS_NOT_READY_ALERT
    return [
        Case(none, "none of 2 available for 10m fires", True, series(2, 0), 10, result_labels=scoped),
        Case(none, "none available for 3m is still pending", False, series(2, 0), 3),
        Case(none, "1 of 2 available stays quiet", False, series(2, 1), 10),
        Case(none, "another model's deployment stays quiet", False, series(2, 0, "serve-other"), 10),
        Case(short, "2 of 3 available for 20m fires", True, series(3, 2), 20, result_labels=scoped),
        Case(short, "2 of 3 available for 10m is still pending", False, series(3, 2), 10),
        Case(short, "3 of 3 available stays quiet", False, series(3, 3), 20),
    ]


def _shedding_cases(targets: ModelTargets, goals: Objectives) -> list[Case]:
    budget = goals.availability_budget

    def series(shed_ratio: float, code: str = "503", route: str = "/classify_array") -> dict[str, str]:
        return {
            _request(targets, "/classify_array", "200"): counter([(30, REQUESTS_PER_MINUTE * (1 - shed_ratio))]),
            _request(targets, route, code): counter([(30, REQUESTS_PER_MINUTE * shed_ratio)]),
        }

    return [
        Case(SHEDDING_ALERT, "2x the budget in 503s for 20m fires", True, series(2 * budget), 20),
        Case(SHEDDING_ALERT, "half the budget in 503s stays quiet", False, series(0.5 * budget), 20),
        Case(SHEDDING_ALERT, "500s are not shedding: quiet", False, series(0.5, code="500"), 20),
        Case(SHEDDING_ALERT, "503s of /readyz probes are not requests: quiet", False, series(0.5, route="/readyz"), 20),
    ]


def _no_traffic_cases(targets: ModelTargets, goals: Objectives) -> list[Case]:
    window = goals.no_traffic_hours * 60
    after = window + 30
    requests = _request(targets, "/classify_array", "200")
    probes = _request(targets, "/readyz", "200")
    other = f'up{{job="{targets.deployment}"}}'
    return [
        Case(
            NO_TRAFFIC_ALERT,
            "traffic that stopped a window and 20m ago fires",
            True,
            {requests: counter([(30, 10), (window + 20, 0)])},
            window + 50,
        ),
        Case(NO_TRAFFIC_ALERT, "no request series at all fires", True, {other: gauge([(60, 1)])}, 30),
        Case(NO_TRAFFIC_ALERT, "only probes: fires", True, {probes: counter([(after, 2)])}, after),
        Case(NO_TRAFFIC_ALERT, "steady traffic stays quiet", False, {requests: counter([(after, 10)])}, after),
        Case(
            NO_TRAFFIC_ALERT,
            "one request half an hour inside the window stays quiet",
            False,
            {requests: counter([(60, 0), (1, 1), (after - 61, 0)])},
            after,
        ),
    ]


def _daily_job_cases(targets: ModelTargets, goals: Objectives, alert: str, cronjob: str) -> list[Case]:
    labels = f'namespace="{NAMESPACE}",cronjob="{cronjob}",{KSM}'
    created = f"{metrics.CRONJOB_CREATED.name}{{{labels}}}"
    success = f"{metrics.CRONJOB_LAST_SUCCESS.name}{{{labels}}}"
    limit = goals.drift_max_age_hours
    hour = 60  # the series below are sampled hourly: values are Unix seconds of the test's clock
    scoped = {"namespace": NAMESPACE}

    def case(name: str, fires: bool, series: dict[str, str], at_hours: int) -> Case:
        return Case(alert, name, fires, series, at_hours * hour, hour, scoped if fires else {})

    always = gauge([(limit + 8, 0)])  # created (or succeeded) at 0 h
    again = gauge([(limit - 2, 0), (10, (limit - 2) * 3600)])  # succeeded at 0 h and again at limit - 2 h
    return [
        case("last success 1h past the limit fires", True, {created: always, success: always}, limit + 1),
        case("succeeded again 3h ago stays quiet", False, {created: always, success: again}, limit + 1),
        case("never succeeded, created past the limit, fires", True, {created: always}, limit + 1),
        case("never succeeded, created within the limit, quiet", False, {created: always}, limit - 1),
    ]


def _accuracy_cases(targets: ModelTargets) -> list[Case]:
    def series(high: float, floor: float | None, model: str = targets.model) -> dict[str, str]:
        # What Prometheus stores from the Pushgateway: the pushed labels, and its target's namespace.
        labels = f'job="{metrics.QUALITY_JOB}",model="{model}",model_version="3",instance="",namespace="monitoring"'
        pushed = {f"{metrics.QUALITY_INTERVAL_HIGH}{{{labels}}}": gauge([(10, high)])}
        if floor is not None:
            pushed[f"{metrics.QUALITY_ACCURACY_FLOOR}{{{labels}}}"] = gauge([(10, floor)])
        return pushed

    version = {"model_version": "3"}
    alert = ACCURACY_DEGRADED_ALERT
    return [
        Case(alert, "interval's upper bound under the floor fires", True, series(0.90, 0.95), 5, result_labels=version),
        Case(alert, "upper bound above the floor stays quiet", False, series(0.97, 0.95), 5),
        Case(alert, "no validation accuracy (no floor) stays quiet", False, series(0.50, None), 5),
        Case(alert, "another model's degraded version stays quiet", False, series(0.90, 0.95, "other"), 5),
    ]


def _request_labels(targets: ModelTargets, route: str, code: str) -> str:
    return (
        f'job="{targets.deployment}",endpoint="{route}",http_response_code="{code}",'
        'service_name="image-classifier",service_version="not available",instance="10.0.1.5:3000"'
    )


def _request(targets: ModelTargets, route: str, code: str) -> str:
    return f"{metrics.REQUESTS_TOTAL}{{{_request_labels(targets, route, code)}}}"

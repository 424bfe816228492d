"""Grafana dashboards for the catalogue's models, as plain dicts of Grafana's dashboard JSON.

One dashboard per model (`model_dashboard`) and one overview across models (`overview_dashboard`).
Every query is built from the names in `observability.metrics` and the recording rules of
`observability.rules`, with the selectors of `observability.targets`, so a dashboard reads exactly
the series the alerts read.

Why our own small functions rather than grafana-foundation-sdk: the SDK's releases are built per
Grafana schema (10.1 to 11.6) and ordered by a PEP 440 epoch, so the newest epoch is its 10.1 build,
while the pinned Grafana chart 12.10.4 runs Grafana 13.1.3; and the few panel fields used here
(timeseries and stat, thresholds, one Prometheus datasource) are stable across those versions.
Standard library only, like the rest of observability/ (the Pulumi program imports it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from observability import metrics
from observability.burn_rate import BURN_RATE_WINDOWS
from observability.objectives import LATENCY_OBJECTIVE, Objectives, objectives
from observability.rules import AVAILABILITY, LATENCY, SUCCESS, Sli
from observability.targets import ModelTargets
from workloads.catalogue_entry import CatalogueEntry

Panel = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
"""The datasource kube-prometheus-stack 88.3.0 provisions (`grafana.sidecar.datasources.uid`)."""
SCHEMA_VERSION = 39
RATE_WINDOW = "5m"
"""The shortest SLI window: the recorded ratios and the raw rates then cover the same span."""
PAGE_WINDOW = BURN_RATE_WINDOWS[0].long
"""The fast page's long window (1h), drawn beside the 5m ratio."""
BUDGET_WINDOW = BURN_RATE_WINDOWS[-1].long
"""The longest SLI window recorded: the overview's availability is read over it."""
UID_MAX_LENGTH = 40
"""Grafana refuses a dashboard uid longer than this."""
TAGS = ("mlops-platform",)

_WIDTH = 24
_HEIGHT = 8


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


def model_uid(model: str) -> str:
    """Stable across deployments, so links to a model's dashboard survive a re-provisioning."""
    return _checked_uid(f"mlops-model-{model}")


OVERVIEW_UID = "mlops-models-overview"


def model_dashboard(entry: CatalogueEntry, namespace: str | None = None, on_gpu: bool = False) -> dict[str, Any]:
    """Traffic, latency, capacity and burn rates of one model, with its objectives drawn as thresholds;
    `on_gpu` (the model serves on a GPU pool) adds its replicas' GPU utilisation and memory (DCGM)."""
    targets = ModelTargets(entry.name, namespace)
    goals = objectives(entry)
    rows: list[tuple[str, list[Panel]]] = [
        ("Traffic", [_request_rate(targets), _error_ratio(entry.name, goals)]),
        ("Latency", [_latency_quantiles(targets, goals), _slow_ratio(entry.name, goals)]),
        ("Capacity", [_replicas(targets), _in_progress(targets), _batch_sizes(targets)]),
        *([("GPU", [_gpu_utilization(targets), _gpu_memory(targets)])] if on_gpu else []),
        (
            "Burn rate",
            [
                _burn_rate(AVAILABILITY, entry.name, goals.availability_budget),
                _burn_rate(LATENCY, entry.name, goals.latency_budget),
            ],
        ),
        ("Daily jobs", [_drift_by_day(targets), _deciding_signals(targets), _accuracy_by_day(targets)]),
    ]
    return _dashboard(model_uid(entry.name), f"Model {entry.name}", _layout(rows))


def overview_dashboard(entries: Iterable[CatalogueEntry], namespace: str | None = None) -> dict[str, Any]:
    """Every model side by side: request rate, error ratio, p99, and availability against its objective."""
    chosen = list(entries)
    every = [ModelTargets(entry.name, namespace) for entry in chosen]
    rows: list[tuple[str, list[Panel]]] = [
        (
            "Models",
            [
                _timeseries("Request rate", "reqps", [Target(_rate(t), t.model) for t in every]),
                _timeseries(
                    "Error ratio (5xx)",
                    "percentunit",
                    [Target(_recorded(AVAILABILITY, RATE_WINDOW, t.model), t.model) for t in every],
                ),
                _timeseries("p99 latency", "s", [Target(_quantile(t, LATENCY_OBJECTIVE), t.model) for t in every]),
            ],
        ),
        ("Availability against objective", [_availability(entry) for entry in chosen]),
        (
            "Daily jobs",
            [
                _timeseries(
                    "Drifted share of features by day",
                    "percentunit",
                    [Target(_pushed(metrics.DRIFT_DRIFTED_SHARE, metrics.DRIFT_JOB, t), t.model) for t in every],
                ),
                _timeseries(
                    "Measured accuracy by day",
                    "percentunit",
                    [
                        Target(
                            _pushed(metrics.QUALITY_ACCURACY, metrics.QUALITY_JOB, t),
                            f"{t.model} v{{{{model_version}}}}",
                        )
                        for t in every
                    ],
                ),
            ]
            if every
            else [],
        ),
    ]
    return _dashboard(OVERVIEW_UID, "Models overview", _layout(rows))


def dashboard_json(dashboard: dict[str, Any]) -> str:
    """Sorted keys: the same entry gives the same ConfigMap, so a plan changes only when a dashboard does."""
    return json.dumps(dashboard, sort_keys=True, indent=2)


def _checked_uid(uid: str) -> str:
    if len(uid) > UID_MAX_LENGTH:
        raise ValueError(f"dashboard uid {uid!r} is longer than Grafana's {UID_MAX_LENGTH} characters")
    return uid


def _rate(targets: ModelTargets, *extra: str) -> str:
    return f"sum(rate({metrics.REQUESTS_TOTAL}{targets.requests(*extra)}[{RATE_WINDOW}]))"


def _quantile(targets: ModelTargets, quantile: float) -> str:
    # Successful requests only, as the latency SLI: sheds and failures answer fast and would flatter it.
    buckets = f"{metrics.REQUEST_DURATION_BUCKET}{targets.requests(SUCCESS)}"
    return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[{RATE_WINDOW}])))"


def _recorded(sli: Sli, window: str, model: str) -> str:
    return f'{sli.record}{window}{{model="{model}"}}'


def _request_rate(targets: ModelTargets) -> Panel:
    by_route = f"sum by (endpoint) (rate({metrics.REQUESTS_TOTAL}{targets.requests()}[{RATE_WINDOW}]))"
    return _timeseries("Request rate by route", "reqps", [Target(by_route, "{{endpoint}}")])


def _error_ratio(model: str, goals: Objectives) -> Panel:
    series = [Target(_recorded(AVAILABILITY, window, model), window) for window in (RATE_WINDOW, PAGE_WINDOW)]
    return _timeseries("Error ratio (5xx) vs budget", "percentunit", series, threshold=goals.availability_budget)


def _latency_quantiles(targets: ModelTargets, goals: Objectives) -> Panel:
    series = [Target(_quantile(targets, 0.5), "p50"), Target(_quantile(targets, LATENCY_OBJECTIVE), "p99")]
    return _timeseries("Latency p50 / p99 vs objective", "s", series, threshold=goals.latency_seconds)


def _slow_ratio(model: str, goals: Objectives) -> Panel:
    series = [Target(_recorded(LATENCY, window, model), window) for window in (RATE_WINDOW, PAGE_WINDOW)]
    return _timeseries("Slower than the p99 objective", "percentunit", series, threshold=goals.latency_budget)


def _replicas(targets: ModelTargets) -> Panel:
    objects = targets.deployment_objects()
    series = [
        Target(f"max({metrics.DEPLOYMENT_SPEC_REPLICAS.name}{objects})", "desired"),
        Target(f"max({metrics.DEPLOYMENT_AVAILABLE_REPLICAS.name}{objects})", "available"),
    ]
    return _timeseries("Replicas desired vs available", "short", series)


def _in_progress(targets: ModelTargets) -> Panel:
    # The requests a replica holds at once: with adaptive batching, what fills (or starves) its batches.
    in_flight = f"sum by (endpoint) ({metrics.REQUESTS_IN_PROGRESS}{targets.requests()})"
    return _timeseries("Requests in flight", "short", [Target(in_flight, "{{endpoint}}")])


def _batch_sizes(targets: ModelTargets) -> Panel:
    # Whether adaptive batching batches at all: a mean near 1 under load means the latency budget or
    # the traffic leaves nothing to merge; a p90 at max_batch_size means the batches are full.
    service = targets.service()
    mean = f"sum(rate({metrics.BATCH_IMAGES_SUM}{service}[5m])) / sum(rate({metrics.BATCH_IMAGES_COUNT}{service}[5m]))"
    p90 = f"histogram_quantile(0.9, sum by (le) (rate({metrics.BATCH_IMAGES_BUCKET}{service}[5m])))"
    return _timeseries("Images per batch (mean, p90)", "short", [Target(mean, "mean"), Target(p90, "p90")])


def _gpu_utilization(targets: ModelTargets) -> Panel:
    # Per replica: with time-slicing (infra/gpu_sharing.py) pods sharing a GPU each show its whole use.
    busy = f"max by (pod) ({metrics.GPU_UTILIZATION.name}{targets.replica_pods()})"
    panel = _timeseries("GPU utilisation per replica", "percent", [Target(busy, "{{pod}}")])
    panel["fieldConfig"]["defaults"].update({"min": 0, "max": 100})
    return panel


def _gpu_memory(targets: ModelTargets) -> Panel:
    # DCGM reports MiB: the "mbytes" unit reads them as 2^20 bytes.
    used = f"max by (pod) ({metrics.GPU_MEMORY_USED.name}{targets.replica_pods()})"
    free = f"max by (pod) ({metrics.GPU_MEMORY_FREE.name}{targets.replica_pods()})"
    series = [Target(used, "used {{pod}}"), Target(free, "free {{pod}}")]
    return _timeseries("GPU memory per replica", "mbytes", series)


def _burn_rate(sli: Sli, model: str, budget: float) -> Panel:
    # The recorded ratio over the budget: 1 spends the budget exactly in the SLO period.
    windows = [window.long for window in BURN_RATE_WINDOWS]
    series = [Target(f"{_recorded(sli, window, model)} / {budget:.6g}", window) for window in windows]
    return _timeseries(f"{sli.slo.capitalize()} burn rate", "short", series, threshold=1.0)


def _pushed(name: str, job: str, targets: ModelTargets) -> str:
    # A pushed gauge holds each run's result until the next run replaces it: a step per day.
    return f"{name}{targets.job_results(job)}"


def _drift_by_day(targets: ModelTargets) -> Panel:
    series = [
        Target(_pushed(metrics.DRIFT_DRIFTED_SHARE, metrics.DRIFT_JOB, targets), "drifted share of features"),
        Target(_pushed(metrics.DRIFT_DATASET_DRIFT, metrics.DRIFT_JOB, targets), "dataset drift (1 = yes)"),
    ]
    return _timeseries("Drift by day", "percentunit", series)


def _deciding_signals(targets: ModelTargets) -> Panel:
    # Each family's p-value beside its level: a family under its level rejected and decided the day.
    series = [
        Target(_pushed(metrics.DRIFT_SIGNAL_P_VALUE, metrics.DRIFT_JOB, targets), "{{signal}} p-value"),
        Target(_pushed(metrics.DRIFT_SIGNAL_LEVEL, metrics.DRIFT_JOB, targets), "{{signal}} level"),
        Target(f"{_pushed(metrics.DRIFT_SIGNAL_DECIDING, metrics.DRIFT_JOB, targets)} == 1", "{{signal}} decided"),
    ]
    return _timeseries("Signal families: p-value vs level", "short", series)


def _accuracy_by_day(targets: ModelTargets) -> Panel:
    names = (
        (metrics.QUALITY_ACCURACY, "accuracy"),
        (metrics.QUALITY_INTERVAL_LOW, "interval low"),
        (metrics.QUALITY_INTERVAL_HIGH, "interval high"),
        (metrics.QUALITY_ACCURACY_FLOOR, "floor (validation - margin)"),
        (metrics.QUALITY_ESTIMATED_ACCURACY, "estimated (label-free)"),
    )
    series = [
        Target(_pushed(name, metrics.QUALITY_JOB, targets), f"v{{{{model_version}}}} {legend}")
        for name, legend in names
    ]
    return _timeseries("Measured and estimated accuracy by day", "percentunit", series)


def _availability(entry: CatalogueEntry) -> Panel:
    goals = objectives(entry)
    expr = f"1 - {_recorded(AVAILABILITY, BUDGET_WINDOW, entry.name)}"
    panel = _panel("stat", f"{entry.name} availability ({BUDGET_WINDOW})", [Target(expr, entry.name)])
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "percentunit",
            "decimals": 3,
            "thresholds": _thresholds(goals.availability, "red", "green"),
        },
        "overrides": [],
    }
    return panel


def _timeseries(title: str, unit: str, series: list[Target], threshold: float | None = None) -> Panel:
    panel = _panel("timeseries", title, series)
    defaults: dict[str, Any] = {"unit": unit}
    if threshold is not None:
        # The objective as a dashed line: a curve above it is spending budget faster than allowed.
        defaults["thresholds"] = _thresholds(threshold, "green", "red")
        defaults["custom"] = {"thresholdsStyle": {"mode": "dashed"}}
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    return panel


def _thresholds(value: float, below: str, above: str) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": below, "value": None}, {"color": above, "value": value}]}


def _panel(kind: str, title: str, series: list[Target]) -> Panel:
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for index, target in enumerate(series)
        ],
    }


def _layout(rows: list[tuple[str, list[Panel]]]) -> list[Panel]:
    """Rows one under the other, each row's panels side by side; ids in order (Grafana needs them unique)."""
    laid: list[Panel] = []
    y = 0
    for title, panels in rows:
        if not panels:  # a stack without models: no empty row on the overview
            continue
        laid.append(
            {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": _grid(0, y, _WIDTH, 1)}
        )
        y += 1
        width = max(_WIDTH // len(panels), 4)
        for index, panel in enumerate(panels):
            x = (index * width) % _WIDTH
            row_y = y + (index * width) // _WIDTH * _HEIGHT
            laid.append({**panel, "gridPos": _grid(x, row_y, width, _HEIGHT)})
        y += -(-len(panels) * width // _WIDTH) * _HEIGHT
    return [{**panel, "id": index} for index, panel in enumerate(laid, start=1)]


def _grid(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "w": w, "h": h}


def _dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": list(TAGS),
        "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION,
        # Provisioned from code: edits in the UI would be lost at the next sidecar sync.
        "editable": False,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    }

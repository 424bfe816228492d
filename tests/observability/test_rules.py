"""The shape of the generated rules: labels, annotations, thresholds from the catalogue, scoping."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import yaml

from observability import metrics
from observability.rules import NO_TRAFFIC_ALERT, catalogue_rules, model_rule_group, rules_yaml
from workloads import catalogue
from workloads.catalogue_entry import ServiceLevel
from workloads.serving.local import REPOSITORY_ROOT


def _rules(group: dict) -> dict[str, dict]:
    return {rule.get("alert") or rule["record"]: rule for rule in group["rules"]}


def test_one_group_per_model_and_every_rule_names_its_model() -> None:
    document = catalogue_rules(catalogue.CATALOGUE.values())
    assert [group["name"] for group in document["groups"]] == [f"mlops-model-{name}" for name in catalogue.names()]
    for group, name in zip(document["groups"], catalogue.names(), strict=True):
        for rule in group["rules"]:
            assert rule["labels"]["model"] == name
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("page", "ticket")
                assert set(rule["annotations"]) == {"summary", "runbook"}
                assert rule["annotations"]["summary"].startswith(f"{name}: ")


def test_the_yaml_is_the_dict() -> None:
    document = catalogue_rules(catalogue.CATALOGUE.values())
    assert yaml.safe_load(rules_yaml(document)) == document


def test_thresholds_follow_the_service_level() -> None:
    strict = dataclasses.replace(
        catalogue.get("digits"),
        service_level=ServiceLevel(availability=0.999, no_traffic_hours=48, drift_max_age_hours=50),
    )
    rules = _rules(model_rule_group(strict))
    assert rules["ModelAvailabilityBurn1h"]["expr"] == (
        'model:request_errors:ratio_rate1h{model="digits"} > 0.0144 and '
        'model:request_errors:ratio_rate5m{model="digits"} > 0.0144'
    )
    # Latency keeps its p99 budget (1 %) whatever the availability.
    assert "> 0.144 and" in rules["ModelLatencyBurn1h"]["expr"]
    assert "[2d]" in rules[NO_TRAFFIC_ALERT]["expr"]
    assert "> 180000" in rules["ModelDriftJobStale"]["expr"]
    assert "> 180000" in rules["ModelQualityJobStale"]["expr"]  # both daily jobs share the limit
    assert 'cronjob="quality-digits"' in rules["ModelQualityJobStale"]["expr"]
    default = _rules(model_rule_group(catalogue.get("digits")))
    assert 'le="1.0"' in default["model:request_slow:ratio_rate5m"]["expr"]
    assert "> 93600" in default["ModelDriftJobStale"]["expr"]


def test_no_traffic_alert_only_where_traffic_is_expected() -> None:
    quiet = dataclasses.replace(catalogue.get("digits"), service_level=ServiceLevel(traffic_expected=False))
    assert NO_TRAFFIC_ALERT not in _rules(model_rule_group(quiet))
    assert NO_TRAFFIC_ALERT in _rules(model_rule_group(catalogue.get("digits")))


def test_a_namespace_scopes_every_selector_of_a_scraped_metric() -> None:
    scoped = 0
    for rule in model_rule_group(catalogue.get("digits"), namespace="models")["rules"]:
        # Burn-rate alerts read the group's own recorded series, selected by `model` alone; what the
        # daily jobs pushed carries the Pushgateway's namespace, so it is selected by `job` and `model`.
        for selector in rule["expr"].split("{")[1:]:
            if not selector.startswith(('model="', f'job="{metrics.QUALITY_JOB}",model="digits"')):
                assert 'namespace="models"' in selector.split("}")[0], rule["expr"]
                scoped += 1
    assert scoped > 20


def test_importing_the_generator_imports_neither_torch_nor_bentoml() -> None:
    probe = (
        "import sys, observability.rules, observability.metrics; "
        "heavy = sorted(name for name in ('torch', 'bentoml', 'mlflow', 'pulumi') if name in sys.modules); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

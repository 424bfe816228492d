"""The generated rules through Prometheus' own tooling: `promtool check rules` on the catalogue's
file, and `promtool test rules` with the cases of tests/observability/cases.py for every alert.

Mutation checks make sure those cases can fail: each alert made never to fire must fail its firing
cases, made always to fire must fail its quiet ones, and each burn-rate alert without its short (or
its long) window must fail too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from observability.burn_rate import BURN_RATE_WINDOWS
from observability.rules import AVAILABILITY, LATENCY, burn_alert_name, catalogue_rules, model_rule_group, rules_yaml
from tests.observability.cases import Case, alert_rules, model_cases, promtool_tests
from tests.observability.promtool import run_promtool
from workloads import catalogue

MUTATED_MODEL = "digits"
BURN_ALERTS = [burn_alert_name(sli, window) for sli in (AVAILABILITY, LATENCY) for window in BURN_RATE_WINDOWS]


def _alerts(group: dict[str, Any]) -> list[str]:
    return [rule["alert"] for rule in group["rules"] if "alert" in rule]


def _write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1_000_000))
    return path


def _promtool_test(folder: Path, group: dict[str, Any], cases: list[Case]) -> tuple[int, str]:
    """Run promtool on `cases`, one rules and one test file per alert; (exit status, output)."""
    files = []
    for alert in dict.fromkeys(case.alert for case in cases):
        rule_file = f"rules-{alert}.yml"
        (folder / rule_file).write_text(rules_yaml(alert_rules(group, alert)))
        chosen = [case for case in cases if case.alert == alert]
        files.append(_write_yaml(folder / f"tests-{alert}.yml", promtool_tests(group, chosen, rule_file)).name)
    result = run_promtool("test", "rules", *files, cwd=folder)
    return result.returncode, result.stdout + result.stderr


def test_check_rules_accepts_the_catalogue_file(tmp_path: Path) -> None:
    document = catalogue_rules(catalogue.CATALOGUE.values())
    (tmp_path / "rules.yml").write_text(rules_yaml(document))
    result = run_promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in document["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.parametrize("model", catalogue.names())
def test_every_alert_fires_and_stays_quiet_as_its_cases_say(model: str, tmp_path: Path) -> None:
    entry = catalogue.get(model)
    status, output = _promtool_test(tmp_path, model_rule_group(entry), model_cases(entry))
    assert status == 0, output
    assert output.count("SUCCESS") == len(_alerts(model_rule_group(entry)))


@pytest.mark.parametrize("model", catalogue.names())
def test_every_generated_alert_has_a_firing_and_a_quiet_case(model: str) -> None:
    entry = catalogue.get(model)
    cases = model_cases(entry)
    for alert in _alerts(model_rule_group(entry)):
        outcomes = {case.fires for case in cases if case.alert == alert}
        assert outcomes == {True, False}, f"{alert} needs a case that fires and one that stays quiet, has {outcomes}"
    assert {case.alert for case in cases} <= set(_alerts(model_rule_group(entry))), "a case for no generated alert"


def _mutated(group: dict[str, Any], alert: str, expr: str) -> dict[str, Any]:
    changed = copy.deepcopy(group)
    for rule in changed["rules"]:
        if rule.get("alert") == alert:
            rule["expr"] = expr
    return changed


@pytest.mark.parametrize("alert", _alerts(model_rule_group(catalogue.get(MUTATED_MODEL))))
def test_the_cases_of_each_alert_fail_when_it_never_or_always_fires(alert: str, tmp_path: Path) -> None:
    group = model_rule_group(catalogue.get(MUTATED_MODEL))
    cases = [case for case in model_cases(catalogue.get(MUTATED_MODEL)) if case.alert == alert]
    never = _mutated(group, alert, "vector(1) > 2")
    status, output = _promtool_test(tmp_path, never, [case for case in cases if case.fires])
    assert status != 0, f"{alert} never firing still passes its firing cases:\n{output}"
    always = _mutated(group, alert, "vector(1)")
    status, output = _promtool_test(tmp_path, always, [case for case in cases if not case.fires])
    assert status != 0, f"{alert} always firing still passes its quiet cases:\n{output}"


@pytest.mark.parametrize("alert", BURN_ALERTS)
def test_each_burn_rate_alert_needs_both_of_its_windows(alert: str, tmp_path: Path) -> None:
    group = model_rule_group(catalogue.get(MUTATED_MODEL))
    cases = [case for case in model_cases(catalogue.get(MUTATED_MODEL)) if case.alert == alert]
    (rule,) = [rule for rule in group["rules"] if rule.get("alert") == alert]
    long_window, short_window = rule["expr"].split(" and ")
    for kept, dropped in ((long_window, "short"), (short_window, "long")):
        status, output = _promtool_test(tmp_path, _mutated(group, alert, kept), cases)
        assert status != 0, f"{alert} without its {dropped} window still passes its cases:\n{output}"

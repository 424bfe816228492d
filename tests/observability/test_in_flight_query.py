"""The query KEDA scales a GPU model on (infra/model_service.py), evaluated by Prometheus' own engine
(`promtool test rules`, `promql_expr_test`) on synthetic series: it sums the model's replicas' in-flight
requests on its routes only, in its namespace, and returns the one sample KEDA's scaler wants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model_service import in_flight_query
from observability.metrics import REQUESTS_IN_PROGRESS
from tests.observability.promtool import run_promtool
from workloads import catalogue

MODEL = catalogue.get("surface-defects")
NAMESPACE = "models"


def _series(
    pod: str, endpoint: str, values: str, job: str = "serve-surface-defects", namespace: str = NAMESPACE
) -> dict:
    labels = f'job="{job}",namespace="{namespace}",pod="{pod}",endpoint="{endpoint}",service_name="image-classifier"'
    return {"series": f"{REQUESTS_IN_PROGRESS}{{{labels}}}", "values": values}


# Every 30 s (the scrape interval) for three minutes: two replicas of the model, plus series the query
# must leave out: a probe route of the model, another model, the same job name in another namespace.
SERIES = [
    _series("serve-surface-defects-7d9f-a", "/classify_image", "4x6"),
    _series("serve-surface-defects-7d9f-a", "/classify_array", "2x6"),
    _series("serve-surface-defects-7d9f-b", "/classify_image", "6x6"),
    _series("serve-surface-defects-7d9f-b", "/readyz", "50x6"),
    _series("serve-digits-5c4b-a", "/classify_image", "90x6", job="serve-digits"),
    _series("serve-surface-defects-x", "/classify_image", "70x6", namespace="staging-copy"),
]


def _test_file(folder: Path, expected: list[dict[str, Any]]) -> Path:
    path = folder / "in_flight_test.yaml"
    document = {
        "rule_files": [],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": SERIES,
                "promql_expr_test": [
                    {"expr": in_flight_query(MODEL, NAMESPACE), "eval_time": "2m", "exp_samples": expected}
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_query_sums_the_models_routes_across_its_replicas(tmp_path: Path) -> None:
    result = run_promtool("test", "rules", _test_file(tmp_path, [{"labels": "{}", "value": 12}]), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("wrong", [62, 4, 0])
def test_a_query_that_let_in_a_probe_or_missed_a_replica_would_fail(tmp_path: Path, wrong: int) -> None:
    """The same case with the totals a too-wide or too-narrow selector would give: promtool refuses them."""
    result = run_promtool("test", "rules", _test_file(tmp_path, [{"labels": "{}", "value": wrong}]), cwd=tmp_path)
    assert result.returncode != 0

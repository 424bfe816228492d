"""Adding a catalogue entry adds exactly that model's resources to a stack that enables it, and nothing else.

In memory (the catalogue is patched, not edited): fast, but blind to what a real entry changes on
disk, the catalogue file and the compiled pipeline, and so to the images whose tags hash files.
`tests/e2e/test_model_new.py` runs `mlops model new` on a copy of the repository for that.
"""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType
from typing import Any

import pytest

import infra.platform
from infra.config import PROJECT
from infra.offline_plan import load_stack_config, render_stack
from pipelines.contract import compiled_pipeline_path
from workloads import catalogue

NEW_MODEL = "digits-v2"
OVERVIEW_DASHBOARD = ("kubernetes:core/v1:ConfigMap", "mlops-monitoring-overview-dashboard")


def _by_key(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in plan["resources"]}


@pytest.fixture
def catalogue_with_new_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = dataclasses.replace(catalogue.get("digits"), name=NEW_MODEL)
    monkeypatch.setattr(catalogue, "CATALOGUE", MappingProxyType({**catalogue.CATALOGUE, NEW_MODEL: entry}))
    digits_pipeline = compiled_pipeline_path("digits")
    monkeypatch.setattr(infra.platform, "compiled_pipeline_path", lambda model, directory=None: digits_pipeline)


@pytest.mark.usefixtures("catalogue_with_new_entry")
def test_one_entry_adds_only_its_own_resources_and_removing_it_removes_them() -> None:
    models = json.loads(load_stack_config("dev").values[f"{PROJECT}:models"])
    before = _by_key(render_stack("dev"))
    after = _by_key(render_stack("dev", overrides={f"{PROJECT}:models": {**models, NEW_MODEL: {}}}))

    added = set(after) - set(before)
    assert not set(before) - set(after), "adding a model removed something"
    assert added and all(name.startswith(f"mlops-model-{NEW_MODEL}") for _, name in added)
    assert {kind for kind, _ in added} >= {
        "mlops:platform:Model",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:batch/v1:Job",
        "aws:iam/role:Role",
    }
    changed = [key for key in before if before[key] != after[key]]
    # The one shared object that lists every model by design: the overview dashboard gets its panels.
    assert changed == [OVERVIEW_DASHBOARD], f"adding a model changed other resources: {changed}"
    assert NEW_MODEL in json.dumps(after[OVERVIEW_DASHBOARD]) and NEW_MODEL not in json.dumps(
        before[OVERVIEW_DASHBOARD]
    )

    # Removing it again (the stack without the entry) gives back exactly the original plan.
    assert _by_key(render_stack("dev")) == before


def test_an_invalid_model_name_is_refused_by_the_catalogue() -> None:
    with pytest.raises(catalogue.CatalogueError, match="DNS label"):
        dataclasses.replace(catalogue.get("digits"), name="Digits_V2")

"""Model registry conventions: one registered model per catalogue model, promotion by alias.

* A version is registered with its lineage as tags: `git.commit`, `dataset.name`, `dataset.version`,
  `dataset.digest` (copied from the training run's tags), `pipeline.run_id`, one `metric.<name>` per
  evaluation metric and `quality_gate` = `passed` / `failed`.
* Only two aliases exist, `staging` and `production`; registry stages are deprecated and never used.
  Serving loads `models:/NAME@production`, so moving the alias is the deployment.
* `promote(..., to="production")` refuses a version whose gate did not pass (unless `force`) and
  appends the version it replaces to the registered-model tag `production.history` (a JSON list,
  oldest first); `rollback` pops that list and moves `production` back.
* Unknown models or versions raise `UnknownModelError` / `UnknownVersionError` before anything is
  changed; every `RegistryError` carries one message fit for a user.

The client comes from the environment, as for any MLflow client: MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

ALIASES = ("staging", "production")
PRODUCTION = "production"
HISTORY_TAG = "production.history"
QUALITY_GATE_TAG = "quality_gate"
GATE_PASSED = "passed"
GATE_FAILED = "failed"
METRIC_TAG_PREFIX = "metric."
FORCED_TAG = "quality_gate.forced"
LINEAGE_RUN_TAGS = {
    "mlflow.source.git.commit": "git.commit",
    "dataset.name": "dataset.name",
    "dataset.version": "dataset.version",
    "dataset.digest": "dataset.digest",
}


class RegistryError(Exception):
    """A registry operation the user asked for cannot be done; the message says why."""


class UnknownModelError(RegistryError):
    """No registered model has this name."""


class UnknownVersionError(RegistryError):
    """The registered model has no such version."""


class QualityGateError(RegistryError):
    """The version did not pass the quality gate and promotion was not forced."""


class NoRollbackTargetError(RegistryError):
    """There is no earlier production version to go back to."""


@dataclass(frozen=True)
class VersionSummary:
    """One model version as `mlops models` shows it."""

    version: str
    aliases: tuple[str, ...]
    quality_gate: str
    metrics: dict[str, float]
    run_id: str | None


@dataclass(frozen=True)
class ModelSummary:
    """One registered model with its versions, newest first."""

    name: str
    aliases: dict[str, str]
    versions: list[VersionSummary] = field(default_factory=list)


@dataclass(frozen=True)
class AliasMove:
    """Result of a promotion or rollback: where the alias pointed before and after."""

    model: str
    alias: str
    previous: str | None
    current: str

    def describe(self) -> str:
        """`digits: production v1 → v2` (or `none → v1` for a first promotion)."""
        before = f"v{self.previous}" if self.previous else "none"
        return f"{self.model}: {self.alias} {before} → v{self.current}"


def registry_client() -> MlflowClient:
    """An MlflowClient configured from the standard MLflow environment variables."""
    return MlflowClient()


def _is_missing(error: MlflowException) -> bool:
    return error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def _aliases_of(client: MlflowClient, model: str) -> dict[str, str]:
    try:
        registered = client.get_registered_model(model)
    except MlflowException as error:
        if _is_missing(error):
            raise UnknownModelError(f"unknown model {model!r}: no registered model has this name") from None
        raise
    return dict(registered.aliases)


def _get_version(client: MlflowClient, model: str, version: str) -> ModelVersion:
    if not str(version).isdigit():
        raise UnknownVersionError(f"model {model!r} has no version {version!r}: versions are positive integers")
    try:
        return client.get_model_version(model, str(version))
    except MlflowException as error:
        if _is_missing(error):
            raise UnknownVersionError(f"model {model!r} has no version {version}") from None
        raise


def _history(client: MlflowClient, model: str) -> list[str]:
    raw = client.get_registered_model(model).tags.get(HISTORY_TAG)
    if not raw:
        return []
    try:
        versions = json.loads(raw)
    except json.JSONDecodeError as error:
        raise RegistryError(f"model {model!r}: tag {HISTORY_TAG} is not valid JSON ({error.msg})") from None
    return [str(version) for version in versions]


def register_version(
    model: str,
    model_uri: str,
    run_id: str,
    metrics: Mapping[str, float],
    quality_gate_passed: bool,
    pipeline_run_id: str | None = None,
    client: MlflowClient | None = None,
) -> ModelVersion:
    """Register `model_uri` (e.g. `models:/m-...` from `log_model`) as a new version with lineage tags.

    Lineage (git commit, dataset name/version/digest) is copied from the training run's tags, which
    `tracked_run` wrote, so the pipeline cannot register a version whose lineage disagrees with its run.
    """
    client = client or registry_client()
    run = client.get_run(run_id)
    tags = {version_tag: run.data.tags.get(run_tag, "unknown") for run_tag, version_tag in LINEAGE_RUN_TAGS.items()}
    tags["pipeline.run_id"] = pipeline_run_id or "none"
    tags[QUALITY_GATE_TAG] = GATE_PASSED if quality_gate_passed else GATE_FAILED
    tags.update({f"{METRIC_TAG_PREFIX}{name}": repr(float(value)) for name, value in metrics.items()})
    try:
        client.create_registered_model(model)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.create_model_version(model, source=model_uri, run_id=run_id, tags=tags, model_id=_model_id(model_uri))


def _model_id(model_uri: str) -> str | None:
    """`models:/m-abc` → `m-abc`: links the version to MLflow 3's LoggedModel entity."""
    prefix = "models:/"
    if model_uri.startswith(prefix) and "/" not in model_uri[len(prefix) :] and "@" not in model_uri:
        candidate = model_uri[len(prefix) :]
        return candidate if candidate.startswith("m-") else None
    return None


def set_alias(model: str, alias: str, version: str, client: MlflowClient | None = None) -> AliasMove:
    """Point `alias` (staging or production) at `version` without gate checks or history."""
    client = client or registry_client()
    if alias not in ALIASES:
        raise RegistryError(f"unknown alias {alias!r}: use one of {', '.join(ALIASES)}")
    previous = _aliases_of(client, model).get(alias)
    _get_version(client, model, version)
    client.set_registered_model_alias(model, alias, str(version))
    return AliasMove(model=model, alias=alias, previous=previous, current=str(version))


def promote(
    model: str,
    version: str,
    to: str = PRODUCTION,
    force: bool = False,
    client: MlflowClient | None = None,
) -> AliasMove:
    """Move alias `to` to `version` after checking the quality gate; remember the replaced production."""
    client = client or registry_client()
    if to not in ALIASES:
        raise RegistryError(f"unknown alias {to!r}: use one of {', '.join(ALIASES)}")
    aliases = _aliases_of(client, model)
    model_version = _get_version(client, model, version)
    gate = model_version.tags.get(QUALITY_GATE_TAG, "missing")
    if gate != GATE_PASSED and not force:
        raise QualityGateError(
            f"{model} v{version} did not pass the quality gate ({QUALITY_GATE_TAG}={gate}); "
            "promote a passing version or use --force"
        )
    previous = aliases.get(to)
    target = str(model_version.version)
    if previous == target:
        return AliasMove(model=model, alias=to, previous=previous, current=target)
    history = _history(client, model) if to == PRODUCTION else []
    client.set_registered_model_alias(model, to, target)
    if gate != GATE_PASSED:
        client.set_model_version_tag(model, target, FORCED_TAG, f"promoted to {to} despite gate={gate}")
    if to == PRODUCTION and previous is not None:
        client.set_registered_model_tag(model, HISTORY_TAG, json.dumps([*history, previous]))
    return AliasMove(model=model, alias=to, previous=previous, current=target)


def rollback(model: str, client: MlflowClient | None = None) -> AliasMove:
    """Move `production` back to the version it pointed at before the last promotion."""
    client = client or registry_client()
    current = _aliases_of(client, model).get(PRODUCTION)
    history = _history(client, model)
    if not history:
        raise NoRollbackTargetError(f"{model}: no earlier production version recorded, nothing to roll back to")
    target = history[-1]
    _get_version(client, model, target)
    client.set_registered_model_alias(model, PRODUCTION, target)
    client.set_registered_model_tag(model, HISTORY_TAG, json.dumps(history[:-1]))
    return AliasMove(model=model, alias=PRODUCTION, previous=current, current=target)


def _metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG_PREFIX) and key != FORCED_TAG:
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue
    return metrics


def list_models(client: MlflowClient | None = None) -> list[ModelSummary]:
    """Every registered model with its versions (newest first), aliases, gate and metrics."""
    client = client or registry_client()
    summaries: list[ModelSummary] = []
    for registered in client.search_registered_models(max_results=1000):
        aliases = dict(registered.aliases)
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name = '{registered.name}'", max_results=1000)
        rows = [
            VersionSummary(
                version=str(version.version),
                aliases=tuple(sorted(by_version.get(str(version.version), []))),
                quality_gate=version.tags.get(QUALITY_GATE_TAG, "missing"),
                metrics=_metrics_from_tags(version.tags),
                run_id=version.run_id,
            )
            for version in versions
        ]
        rows.sort(key=lambda row: int(row.version), reverse=True)
        summaries.append(ModelSummary(name=registered.name, aliases=aliases, versions=rows))
    return sorted(summaries, key=lambda summary: summary.name)


def load_production_model(model: str) -> PyFuncModel:
    """Load what serving loads: `models:/NAME@production` as a pyfunc model."""
    from mlflow.pyfunc import load_model

    return load_model(f"models:/{model}@{PRODUCTION}")

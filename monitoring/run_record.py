"""The drift job's MLflow run: one per execution, in the experiment `monitoring/<model>`.

It holds the report and summary.json as artifacts, the scores as metrics, the job's parameters, and
three tags to filter runs by (`drift.status`, `drift.dataset_drift`, `model_version`). A run whose
job failed (an alert not delivered, a retrain not submitted) ends FAILED.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitoring.drift import DriftComputation
from monitoring.settings import DriftSettings
from monitoring.summary import SUMMARY_FILE, ComparedSummary, DriftSummary, RunLink
from workloads.settings import TrackingClientVariables

if TYPE_CHECKING:  # the client is imported where it is used: mlflow is heavy
    from mlflow.tracking import MlflowClient

EXPERIMENT_PREFIX = "monitoring/"
PARAM_LIMIT = 6000
"""Characters MLflow keeps of a parameter's value."""


def experiment_name(model: str) -> str:
    return f"{EXPERIMENT_PREFIX}{model}"


def registry_client(client: MlflowClient | None, error_class: type[Exception], reads: str) -> MlflowClient:
    """`client` (a test's), else an MlflowClient; either way the tracking server must be named, since
    the job `reads` what it compares with from the registry: `error_class` says so otherwise."""
    if not os.environ.get(TrackingClientVariables.URI):
        raise error_class(f"{TrackingClientVariables.URI} is not set: the job reads {reads} from the registry")
    from mlflow.tracking import MlflowClient

    return client or MlflowClient()


class MonitoringRun:
    """The run of one job execution, created at once and finished with the summary."""

    def __init__(self, client: Any, model: str, day: str, job: str = "drift") -> None:
        """`job` names the run, `<job>-<day>` (the drift job's and the quality job's, side by side)."""
        self.client = client
        name = experiment_name(model)
        experiment = client.get_experiment_by_name(name)
        self.experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run = client.create_run(self.experiment_id, run_name=f"{job}-{day}", tags={"model": model, "date": day})
        base = os.environ.get(TrackingClientVariables.URI, "").rstrip("/")
        url = f"{base}/#/experiments/{self.experiment_id}/runs/{run.info.run_id}" if base.startswith("http") else None
        self.link = RunLink(run_id=run.info.run_id, url=url)

    def log_file(self, path: Path) -> None:
        self.client.log_artifact(self.link.run_id, str(path))

    def finish(
        self, summary: DriftSummary, metrics: Mapping[str, float], params: Mapping[str, Any], failed: bool
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(datetime.now(tz=UTC).timestamp() * 1000)
        version = summary.comparison.model_version if isinstance(summary, ComparedSummary) else None
        self.client.log_batch(
            self.link.run_id,
            metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)[:PARAM_LIMIT]) for key, value in params.items()],
            tags=[
                RunTag("drift.status", summary.status),
                RunTag("drift.dataset_drift", str(summary.dataset_drift).lower()),  # `none` when skipped
                RunTag("model_version", version or "none"),
            ],
        )
        self.client.log_dict(self.link.run_id, summary.as_dict(), SUMMARY_FILE)
        self.client.set_terminated(self.link.run_id, status="FAILED" if failed else "FINISHED")


def comparison_metrics(computation: DriftComputation, rows_in_window: int, rows_compared: int) -> dict[str, float]:
    """The scores a compared day records: each signal family's p-value and each feature's score."""
    return {
        "drifted_share": computation.drifted_share,
        "dataset_drift": float(computation.dataset_drift),
        **{f"p_value.{signal.family}": signal.p_value for signal in computation.signals},
        "rows_in_window": float(rows_in_window),
        "rows_compared": float(rows_compared),
        "rows_repeated": float(computation.repeated_rows.get("current", 0)),
        **{f"score.{feature.name}": feature.score for feature in computation.features},
    }


def comparison_params(computation: DriftComputation, day: str, version: str, settings: DriftSettings) -> dict[str, Any]:
    """How the day was compared: the version, the sample, the level, the deciding families and methods."""
    return {
        "date": day,
        "model_version": version,
        "sample_size": settings.sample_size,
        "significance_level": settings.p_value,
        "deciding_signals": ",".join(computation.deciding_signals) or "none",
        "methods": json.dumps({feature.name: feature.method for feature in computation.features}),
    }

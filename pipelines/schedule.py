"""Keep a model's training pipeline uploaded and scheduled in Kubeflow Pipelines, idempotently.

Run by the `TrainingSchedule` Job that `pulumi up` creates for each model (a new Job whenever the
compiled pipeline's content changes), and usable by hand:

    python -m pipelines.schedule --host http://ml-pipeline.kubeflow.svc.cluster.local:8888 \\
        --model digits --package /pipeline/pipeline.yaml --version 3f2a9c1d --cron "0 3 * * *"

Running it twice with the same arguments changes nothing; with a new version it uploads that
version and moves the model's recurring run onto it. While the model's experiment has no run at
all (a new platform), it also starts one run at once, so serving gets a first version without
waiting for the schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

PAGE_SIZE = 100


class PipelinesClient(Protocol):
    """The part of `kfp.Client` this module uses (a fake one stands in for it in tests)."""

    def get_pipeline_id(self, name: str) -> str | None: ...
    def upload_pipeline(self, pipeline_package_path: str, pipeline_name: str | None = None) -> Any: ...
    def upload_pipeline_version(
        self, pipeline_package_path: str, pipeline_version_name: str, pipeline_id: str | None = None
    ) -> Any: ...
    def list_pipeline_versions(self, pipeline_id: str, page_token: str = "", page_size: int = 10) -> Any: ...
    def get_experiment(self, experiment_id: str | None = None, experiment_name: str | None = None) -> Any: ...
    def create_experiment(self, name: str) -> Any: ...
    def list_recurring_runs(
        self, page_token: str = "", page_size: int = 10, experiment_id: str | None = None
    ) -> Any: ...
    def create_recurring_run(self, experiment_id: str, job_name: str, **kwargs: Any) -> Any: ...
    def delete_recurring_run(self, recurring_run_id: str) -> Any: ...
    def list_runs(self, page_token: str = "", page_size: int = 10, experiment_id: str | None = None) -> Any: ...
    def run_pipeline(self, experiment_id: str, job_name: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ScheduleRequest:
    model: str
    package_path: str
    version: str
    """Content hash of the compiled pipeline: the pipeline version's name."""
    cron: str
    """Standard five-field cron (`0 3 * * *`); KFP's six-field form is derived from it."""
    parameters: Mapping[str, Any]

    @property
    def run_name(self) -> str:
        return f"{self.model}-scheduled-training"

    @property
    def initial_run_name(self) -> str:
        return f"{self.model}-initial-training"

    @property
    def kfp_cron(self) -> str:
        fields = self.cron.split()
        if len(fields) != 5:
            raise ValueError(f"cron {self.cron!r} must have five fields (minute hour day month weekday)")
        return "0 " + self.cron  # KFP's cron has a leading seconds field


def _pages(fetch: Any, items: str) -> list[Any]:
    found: list[Any] = []
    token = ""
    while True:
        response = fetch(token)
        found.extend(getattr(response, items, None) or [])
        token = getattr(response, "next_page_token", None) or ""
        if not token:
            return found


def sync_schedule(client: PipelinesClient, request: ScheduleRequest) -> list[str]:
    """Make KFP hold `request.version` of the model's pipeline and one recurring run on it.

    Returns what was done, one line per action ("unchanged" when nothing was).
    """
    actions: list[str] = []
    cron = request.kfp_cron
    pipeline_id = client.get_pipeline_id(request.model)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(request.package_path, pipeline_name=request.model).pipeline_id
        actions.append(f"uploaded pipeline {request.model}")

    versions = _pages(
        lambda token: client.list_pipeline_versions(pipeline_id, page_token=token, page_size=PAGE_SIZE),
        "pipeline_versions",
    )
    version_id = next((v.pipeline_version_id for v in versions if v.display_name == request.version), None)
    if version_id is None:
        version_id = client.upload_pipeline_version(
            request.package_path, pipeline_version_name=request.version, pipeline_id=pipeline_id
        ).pipeline_version_id
        actions.append(f"uploaded version {request.version}")

    try:
        experiment_id = client.get_experiment(experiment_name=request.model).experiment_id
    except ValueError:  # kfp raises ValueError for an unknown experiment name
        experiment_id = client.create_experiment(name=request.model).experiment_id
        actions.append(f"created experiment {request.model}")

    # A new platform has no model version until a run registers one, and the first cron tick may be
    # days away (weekly by default): while the experiment has no run at all, start one now.
    if not getattr(client.list_runs(page_size=1, experiment_id=experiment_id), "runs", None):
        client.run_pipeline(
            experiment_id,
            request.initial_run_name,
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=dict(request.parameters),
        )
        actions.append(f"started {request.initial_run_name} on version {request.version} (no run yet)")

    runs = _pages(
        lambda token: client.list_recurring_runs(page_token=token, page_size=PAGE_SIZE, experiment_id=experiment_id),
        "recurring_runs",
    )
    ours = [run for run in runs if run.display_name == request.run_name]
    current = [
        run
        for run in ours
        if run.pipeline_version_reference is not None
        and run.pipeline_version_reference.pipeline_version_id == version_id
        and run.trigger is not None
        and run.trigger.cron_schedule is not None
        and run.trigger.cron_schedule.cron == cron
    ]
    if len(current) == 1 and len(ours) == 1:
        return actions or ["unchanged"]
    for run in ours:
        client.delete_recurring_run(run.recurring_run_id)
        actions.append(f"deleted recurring run {run.recurring_run_id}")
    client.create_recurring_run(
        experiment_id,
        request.run_name,
        cron_expression=cron,
        pipeline_id=pipeline_id,
        version_id=version_id,
        params=dict(request.parameters),
        max_concurrency=1,
        no_catchup=True,
        enabled=True,
    )
    actions.append(f"scheduled {request.run_name} at '{request.cron}' on version {request.version}")
    return actions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", required=True, help="KFP API URL")
    parser.add_argument("--model", required=True)
    parser.add_argument("--package", required=True, help="compiled pipeline YAML")
    parser.add_argument("--version", required=True, help="pipeline version name (content hash)")
    parser.add_argument("--cron", required=True, help="five-field cron, UTC")
    parser.add_argument("--parameters", default="{}", help="JSON object of pipeline parameters")
    args = parser.parse_args(argv)
    try:
        request = ScheduleRequest(args.model, args.package, args.version, args.cron, json.loads(args.parameters))
        request.kfp_cron  # noqa: B018 - validates the cron before talking to the server
    except (ValueError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import kfp  # imported late: --help and argument errors need no client libraries

    # kfp 2.17 annotates its optional parameters as `str = None`, so its Client does not match the
    # Protocol's (correct) `str | None` signatures for the type checker; at run time it does.
    client = cast(PipelinesClient, kfp.Client(host=args.host))
    for action in sync_schedule(client, request):
        print(action)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The schedule sync is idempotent, moves the recurring run to a new version, and rejects bad cron."""

from __future__ import annotations

import itertools
from typing import Any

import kfp_server_api as api
import pytest

from pipelines.schedule import ScheduleRequest, main, sync_schedule


class FakePipelinesServer:
    """An in-memory KFP API holding pipelines, versions, experiments and recurring runs."""

    def __init__(self) -> None:
        self.ids = (f"id-{n}" for n in itertools.count())
        self.pipelines: dict[str, str] = {}
        self.versions: dict[str, list[api.V2beta1PipelineVersion]] = {}
        self.experiments: dict[str, str] = {}
        self.runs: list[api.V2beta1RecurringRun] = []
        self.one_off_runs: list[api.V2beta1Run] = []
        self.uploads = 0

    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipelines.get(name)

    def upload_pipeline(self, pipeline_package_path: str, pipeline_name: str | None = None) -> Any:
        pipeline_id = next(self.ids)
        self.pipelines[str(pipeline_name)] = pipeline_id
        self.versions[pipeline_id] = []
        self.uploads += 1
        return api.V2beta1Pipeline(pipeline_id=pipeline_id, display_name=pipeline_name)

    def upload_pipeline_version(
        self, pipeline_package_path: str, pipeline_version_name: str, pipeline_id: str | None = None
    ) -> Any:
        version = api.V2beta1PipelineVersion(
            pipeline_id=pipeline_id, pipeline_version_id=next(self.ids), display_name=pipeline_version_name
        )
        self.versions[str(pipeline_id)].append(version)
        self.uploads += 1
        return version

    def list_pipeline_versions(self, pipeline_id: str, page_token: str = "", page_size: int = 10) -> Any:
        return api.V2beta1ListPipelineVersionsResponse(pipeline_versions=self.versions[pipeline_id])

    def get_experiment(self, experiment_id: str | None = None, experiment_name: str | None = None) -> Any:
        if experiment_name not in self.experiments:
            raise ValueError(f"No experiment is found with name {experiment_name}.")
        return api.V2beta1Experiment(experiment_id=self.experiments[experiment_name], display_name=experiment_name)

    def create_experiment(self, name: str) -> Any:
        self.experiments[name] = next(self.ids)
        return api.V2beta1Experiment(experiment_id=self.experiments[name], display_name=name)

    def list_recurring_runs(self, page_token: str = "", page_size: int = 10, experiment_id: str | None = None) -> Any:
        return api.V2beta1ListRecurringRunsResponse(
            recurring_runs=[run for run in self.runs if run.experiment_id == experiment_id]
        )

    def create_recurring_run(self, experiment_id: str, job_name: str, **kwargs: Any) -> Any:
        run = api.V2beta1RecurringRun(
            recurring_run_id=next(self.ids),
            display_name=job_name,
            experiment_id=experiment_id,
            trigger=api.V2beta1Trigger(cron_schedule=api.V2beta1CronSchedule(cron=kwargs["cron_expression"])),
            pipeline_version_reference=api.V2beta1PipelineVersionReference(
                pipeline_id=kwargs["pipeline_id"], pipeline_version_id=kwargs["version_id"]
            ),
        )
        self.runs.append(run)
        return run

    def delete_recurring_run(self, recurring_run_id: str) -> Any:
        self.runs = [run for run in self.runs if run.recurring_run_id != recurring_run_id]
        return {}

    def list_runs(self, page_token: str = "", page_size: int = 10, experiment_id: str | None = None) -> Any:
        runs = [run for run in self.one_off_runs if run.experiment_id == experiment_id]
        return api.V2beta1ListRunsResponse(runs=runs[:page_size] or None)

    def run_pipeline(self, experiment_id: str, job_name: str, **kwargs: Any) -> Any:
        run = api.V2beta1Run(
            run_id=next(self.ids),
            display_name=job_name,
            experiment_id=experiment_id,
            pipeline_version_reference=api.V2beta1PipelineVersionReference(
                pipeline_id=kwargs["pipeline_id"], pipeline_version_id=kwargs["version_id"]
            ),
            runtime_config=api.V2beta1RuntimeConfig(parameters=kwargs["params"]),
        )
        self.one_off_runs.append(run)
        return run


def _request(version: str, cron: str = "0 3 * * *") -> ScheduleRequest:
    return ScheduleRequest("digits", "/pipeline/pipeline.yaml", version, cron, {"epochs": 8})


def test_first_sync_uploads_and_schedules_then_nothing_changes() -> None:
    server = FakePipelinesServer()
    first = sync_schedule(server, _request("aaaa"))
    assert any(line.startswith("uploaded version aaaa") for line in first)
    assert len(server.runs) == 1 and server.runs[0].trigger.cron_schedule.cron == "0 0 3 * * *"
    uploads = server.uploads
    assert sync_schedule(server, _request("aaaa")) == ["unchanged"]
    assert server.uploads == uploads and len(server.runs) == 1


def test_a_new_platform_gets_one_training_run_at_once() -> None:
    """No model version exists before a run: the first sync starts one instead of waiting for cron."""
    server = FakePipelinesServer()
    first = sync_schedule(server, _request("aaaa"))
    assert "started digits-initial-training on version aaaa (no run yet)" in first
    (run,) = server.one_off_runs
    assert run.runtime_config.parameters == {"epochs": 8}
    versions = {v.pipeline_version_id: v.display_name for vs in server.versions.values() for v in vs}
    assert versions[run.pipeline_version_reference.pipeline_version_id] == "aaaa"
    sync_schedule(server, _request("aaaa"))
    sync_schedule(server, _request("bbbb"))  # a new version of a model that has runs: the schedule only
    assert len(server.one_off_runs) == 1


def test_new_version_or_cron_replaces_the_recurring_run() -> None:
    server = FakePipelinesServer()
    sync_schedule(server, _request("aaaa"))
    old_run = server.runs[0].recurring_run_id
    sync_schedule(server, _request("bbbb"))
    (run,) = server.runs
    assert run.recurring_run_id != old_run
    versions = {v.pipeline_version_id: v.display_name for vs in server.versions.values() for v in vs}
    assert versions[run.pipeline_version_reference.pipeline_version_id] == "bbbb"
    sync_schedule(server, _request("bbbb", cron="30 1 * * 1"))
    (run,) = server.runs
    assert run.trigger.cron_schedule.cron == "0 30 1 * * 1"


def test_bad_cron_is_refused_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--host",
            "http://127.0.0.1:9",
            "--model",
            "digits",
            "--package",
            "p.yaml",
            "--version",
            "v1",
            "--cron",
            "every day",
        ]
    )
    assert code == 2
    assert "must have five fields" in capsys.readouterr().err

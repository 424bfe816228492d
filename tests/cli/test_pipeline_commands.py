"""`mlops pipeline run`: argument wiring, clear errors (exit 2), and submission to a KFP endpoint.

Submission is tested against a fake `kfp.Client` (no cluster here): it checks what would be sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kfp
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from pipelines import contract
from workloads.tracking.local import LocalTrackingServer

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev/training@sha256:" + "b" * 64
STORE = "s3://mlops-dev-datasets-1a2b3c/datasets"


class FakeKfpClient:
    """Records what `mlops pipeline run --host` asks of kfp.Client."""

    instances: list[FakeKfpClient] = []

    def __init__(self, host: str, namespace: str | None = None) -> None:
        self.host = host
        self.namespace = namespace
        self.runs: list[dict[str, Any]] = []
        FakeKfpClient.instances.append(self)

    def create_run_from_pipeline_package(self, pipeline_file: str, **kwargs: Any) -> Any:
        self.runs.append({"package": Path(pipeline_file).read_text(encoding="utf-8"), **kwargs})

        class Result:
            run_id = "run-123"

        return Result()


@pytest.fixture
def fake_kfp(monkeypatch: pytest.MonkeyPatch) -> type[FakeKfpClient]:
    FakeKfpClient.instances = []
    monkeypatch.setattr(kfp, "Client", FakeKfpClient)
    return FakeKfpClient


def test_host_submission_sends_the_rendered_package_and_parameters(fake_kfp: type[FakeKfpClient]) -> None:
    result = CliRunner().invoke(
        app,
        [
            "pipeline", "run", "surface-defects", "--host", "http://kfp.example:8888", "--image", IMAGE,
            "--epochs", "3", "--threshold", "0.85", "--auto-promote", "--dataset-version", "v4",
            "--namespace", "team-vision", "--store", STORE,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "submitted surface-defects to http://kfp.example:8888: run run-123 (experiment training-surface-defects)"
    )
    (client,) = fake_kfp.instances
    assert (client.host, client.namespace) == ("http://kfp.example:8888", "team-vision")
    (run,) = client.runs
    assert run["arguments"] == {
        "dataset_version": "v4",
        "auto_promote": True,
        "epochs": 3,
        "quality_threshold": 0.85,
        "dataset_store": STORE,
    }
    assert run["experiment_name"] == "training-surface-defects"
    assert run["namespace"] == "team-vision"
    assert contract.TRAINING_IMAGE_PLACEHOLDER not in run["package"]
    spec, _ = yaml.safe_load_all(run["package"])
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {IMAGE}
    assert spec["pipelineInfo"]["name"] == "training-surface-defects"


def test_host_submission_without_an_image_is_refused(
    fake_kfp: type[FakeKfpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLOPS_TRAINING_IMAGE", raising=False)
    result = CliRunner().invoke(app, ["pipeline", "run", "digits", "--host", "http://kfp.example:8888"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no training image: pass --image or set MLOPS_TRAINING_IMAGE")
    assert fake_kfp.instances == []


def test_host_submission_takes_the_store_from_the_environment(
    fake_kfp: type[FakeKfpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_DATASET_STORE", STORE)
    result = CliRunner().invoke(app, ["pipeline", "run", "digits", "--host", "http://kfp:8888", "--image", IMAGE])
    assert result.exit_code == 0, result.output
    assert fake_kfp.instances[0].runs[0]["arguments"]["dataset_store"] == STORE


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (None, "error: no dataset store for a cluster run: pass --store s3://BUCKET/datasets or set MLOPS_DATASET_"),
        (".mlops/datasets", "error: a cluster run reads its dataset from S3, not '.mlops/datasets'"),
        ("s3:///datasets", "error: a cluster run reads its dataset from S3, not 's3:///datasets'"),
    ],
)
def test_host_submission_needs_a_store_the_step_pods_can_read(
    fake_kfp: type[FakeKfpClient], monkeypatch: pytest.MonkeyPatch, store: str | None, message: str
) -> None:
    """A step pod's default store is a folder inside the pod: the run would fail at fetch."""
    monkeypatch.delenv("MLOPS_DATASET_STORE", raising=False)
    arguments = ["pipeline", "run", "digits", "--host", "http://kfp:8888", "--image", IMAGE]
    result = CliRunner().invoke(app, [*arguments, *(["--store", store] if store else [])])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert fake_kfp.instances == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["cats", "--local"], "error: unknown model 'cats': the catalogue has digits, surface-defects"),
        (["digits"], "error: choose exactly one of --local or --host URL"),
        (["digits", "--local", "--host", "http://x"], "error: choose exactly one of --local or --host URL"),
        (["digits", "--local", "--epochs", "0"], "error: --epochs must be >= 1, got 0"),
        (["digits", "--local", "--threshold", "1.5"], "error: --threshold must be in [0, 1], got 1.5"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", *arguments])
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_unknown_dataset_version_is_refused_before_anything_runs(
    snapshot_store: Path, tracking_environment: LocalTrackingServer, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["pipeline", "run", "digits", "--local", "--store", str(snapshot_store), "--dataset-version", "v9"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: dataset 'digits' has no version 'v9' in {snapshot_store.resolve()} (versions: v1)"
    )


def test_local_run_of_a_corrupt_dataset_exits_1_naming_the_step_and_file(
    private_store: Path, tracking_environment: LocalTrackingServer, tmp_path: Path
) -> None:
    labels = private_store / "digits" / "v1" / "labels.npy"
    labels.write_bytes(labels.read_bytes()[:-8])
    result = CliRunner().invoke(
        app,
        ["pipeline", "run", "digits", "--local", "--store", str(private_store), "--pipeline-root", str(tmp_path)],
    )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: pipeline training-digits failed at step 'fetch-dataset': DatasetIntegrityError:")
    assert "file labels.npy is corrupt" in last

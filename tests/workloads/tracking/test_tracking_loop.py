"""The tracking loop end to end against real servers: train → log → register → promote → load → roll back.

Runs twice: against the cluster's configuration (PostgreSQL + S3 API, marked `services`) and against
the embedded defaults of `mlops local tracking` (SQLite + a local folder).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli import registry_commands
from tests.services import MotoS3Server, point_client_at
from tests.workloads.tracking.conftest import ARTIFACT_BUCKET
from tests.workloads.tracking.tiny_model import TinyClassifier, random_batch, training_step
from workloads.tracking import registry
from workloads.tracking.instrument import DatasetRef, tracked_run
from workloads.tracking.local import LocalTrackingServer

TRAINING_STEPS = 20
DATASET = DatasetRef(
    name="digits",
    version="v7",
    digest="a" * 24 + "b" * 40,  # 64 characters, like a sha256: longer than MLflow's digest column
    source="s3://datasets/digits/v7",
)


@dataclass(frozen=True)
class TrainedRun:
    run_id: str
    model_uri: str
    model: TinyClassifier
    losses: list[float]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("embedded", id="embedded-sqlite"),
        pytest.param("postgres", id="postgres-s3", marks=pytest.mark.services),
    ],
)
def backend(request: pytest.FixtureRequest, tracking_server: LocalTrackingServer) -> Iterator[str]:
    """The backend's name, with this process's MLflow client pointed at its server."""
    server = tracking_server if request.param == "embedded" else request.getfixturevalue("postgres_tracking_server")
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_client_at(monkeypatch, server)
        yield request.param


@pytest.fixture(scope="module")
def trained_run(backend: str) -> TrainedRun:
    """Train the tiny model for a few steps through the instrumentation helper."""
    torch.manual_seed(0)
    model = TinyClassifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses: list[float] = []
    with tracked_run(
        experiment=f"tests-{uuid.uuid4().hex[:8]}",
        params={"lr": 0.1, "steps": TRAINING_STEPS},
        dataset=DATASET,
        tags={"team": "vision"},
    ) as run:
        for step in range(TRAINING_STEPS):
            loss = training_step(model, optimizer, seed=step)
            losses.append(loss)
            run.log_metric("loss", loss, step)
        run.log_metrics({"accuracy": 0.91, "f1": 0.9}, step=TRAINING_STEPS)
        example, _ = random_batch(4, seed=999)
        info = run.log_model(model, input_example=example)
    return TrainedRun(run_id=run.run_id, model_uri=info.model_uri, model=model, losses=losses)


def _register(name: str, trained: TrainedRun, passed: bool, accuracy: float = 0.91) -> str:
    version = registry.register_version(
        name,
        trained.model_uri,
        run_id=trained.run_id,
        metrics={"accuracy": accuracy},
        quality_gate_passed=passed,
        pipeline_run_id="pipeline-run-1",
    )
    return str(version.version)


def _cli(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(registry_commands.app, list(arguments))
    return result.exit_code, result.stdout, result.stderr


def _aliases(name: str) -> dict[str, str]:
    return dict(MlflowClient().get_registered_model(name).aliases)


def _model_name() -> str:
    return f"digits-{uuid.uuid4().hex[:8]}"


def test_run_records_metrics_dataset_params_and_commit(trained_run: TrainedRun) -> None:
    client = MlflowClient()
    history = client.get_metric_history(trained_run.run_id, "loss")
    assert [metric.step for metric in sorted(history, key=lambda m: m.step)] == list(range(TRAINING_STEPS))
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(trained_run.losses)
    run = client.get_run(trained_run.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["accuracy"] == pytest.approx(0.91)
    assert run.data.params == {"lr": "0.1", "steps": str(TRAINING_STEPS)}
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["dataset.digest"] == DATASET.digest
    assert run.data.tags["mlflow.source.git.commit"]  # a commit hash, or "unknown" outside git
    assert run.inputs is not None
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "digits"
    assert DATASET.digest.startswith(dataset_input.dataset.digest)
    assert json.loads(dataset_input.dataset.source) == {"uri": DATASET.source}
    input_tags = {tag.key: tag.value for tag in dataset_input.tags}
    assert input_tags["version"] == "v7"
    assert input_tags["digest"] == DATASET.digest
    assert input_tags["mlflow.data.context"] == "training"


def test_registered_version_carries_lineage_tags(trained_run: TrainedRun) -> None:
    name = _model_name()
    version = _register(name, trained_run, passed=True)
    tags = MlflowClient().get_model_version(name, version).tags
    assert tags["dataset.name"] == "digits"
    assert tags["dataset.version"] == "v7"
    assert tags["dataset.digest"] == DATASET.digest
    assert tags["pipeline.run_id"] == "pipeline-run-1"
    assert tags["quality_gate"] == "passed"
    assert float(tags["metric.accuracy"]) == pytest.approx(0.91)
    assert tags["git.commit"] == MlflowClient().get_run(trained_run.run_id).data.tags["mlflow.source.git.commit"]


def test_production_alias_serves_a_batch_size_other_than_the_example(trained_run: TrainedRun) -> None:
    name = _model_name()
    version = _register(name, trained_run, passed=True)
    registry.promote(name, version)
    features, _ = random_batch(7, seed=123)  # the input example had 4 rows
    loaded = registry.load_production_model(name)
    predictions = np.asarray(loaded.predict(features.numpy()))
    with torch.no_grad():
        expected = trained_run.model.eval()(features).numpy()
    assert predictions.shape == (7, 3)
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)


def test_promote_and_rollback_through_the_cli(trained_run: TrainedRun) -> None:
    name = _model_name()
    first = _register(name, trained_run, passed=True)
    second = _register(name, trained_run, passed=True)
    assert _cli("promote", name, first, "--to", "production") == (
        0,
        f"{name}: production none → v{first}\n",
        "",
    )
    assert _cli("promote", name, second, "--to", "production")[1] == f"{name}: production v{first} → v{second}\n"
    assert _aliases(name) == {"production": second}
    assert _cli("promote", name, second, "--to", "staging")[1] == f"{name}: staging none → v{second}\n"

    assert _cli("rollback", name)[:2] == (0, f"{name}: production v{second} → v{first}\n")
    assert _aliases(name) == {"production": first, "staging": second}

    code, stdout, stderr = _cli("rollback", name)
    assert (code, stdout) == (2, "")
    assert stderr.strip() == f"error: {name}: no earlier production version recorded, nothing to roll back to"
    assert _aliases(name)["production"] == first


def test_cli_rejects_bad_promotions_and_leaves_aliases_unchanged(trained_run: TrainedRun) -> None:
    name = _model_name()
    passing = _register(name, trained_run, passed=True)
    failing = _register(name, trained_run, passed=False, accuracy=0.42)
    assert _cli("promote", name, passing)[0] == 0
    before = MlflowClient().get_registered_model(name)

    cases = {
        ("promote", name, "99"): f"error: model {name!r} has no version 99",
        (
            "promote",
            "no-such-model",
            "1",
        ): "error: unknown model 'no-such-model': no registered model has this name",
        ("promote", name, failing): (
            f"error: {name} v{failing} did not pass the quality gate (quality_gate=failed); "
            "promote a passing version or use --force"
        ),
        (
            "promote",
            name,
            passing,
            "--to",
            "canary",
        ): "error: unknown alias 'canary': use one of staging, production",
        (
            "rollback",
            "no-such-model",
        ): "error: unknown model 'no-such-model': no registered model has this name",
    }
    for arguments, message in cases.items():
        code, stdout, stderr = _cli(*arguments)
        assert (code, stdout, stderr.strip()) == (2, "", message), arguments

    after = MlflowClient().get_registered_model(name)
    assert dict(after.aliases) == dict(before.aliases) == {"production": passing}
    assert after.tags == before.tags

    assert _cli("promote", name, failing, "--force")[:2] == (
        0,
        f"{name}: production v{passing} → v{failing}\n",
    )
    assert "quality_gate.forced" in MlflowClient().get_model_version(name, failing).tags


def test_models_command_lists_versions_aliases_gate_and_metrics(trained_run: TrainedRun) -> None:
    name = _model_name()
    first = _register(name, trained_run, passed=True, accuracy=0.93)
    second = _register(name, trained_run, passed=False, accuracy=0.5)
    registry.promote(name, first)
    registry.set_alias(name, "staging", second)
    code, stdout, _ = _cli("models")
    assert code == 0
    lines = {line.split()[1]: line.split() for line in stdout.splitlines() if line.startswith(name + " ")}
    assert lines[f"v{first}"][2:] == ["production", "passed", "accuracy=0.93"]
    assert lines[f"v{second}"][2:] == ["staging", "failed", "accuracy=0.5"]


def test_artifacts_land_in_the_configured_store(
    backend: str, trained_run: TrainedRun, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        s3: MotoS3Server = request.getfixturevalue("s3_server")
        keys = [item["Key"] for item in s3.client().list_objects_v2(Bucket=ARTIFACT_BUCKET).get("Contents", [])]
        assert any(key.startswith("mlflow/") and key.endswith("MLmodel") for key in keys), keys
    else:
        embedded: LocalTrackingServer = request.getfixturevalue("tracking_server")
        artifacts = embedded.log_path.parent / "artifacts"
        assert list(artifacts.rglob("MLmodel")), f"no MLmodel under {artifacts}"
    # Whatever the store, clients only ever see the server's proxy URI.
    assert str(mlflow.get_run(trained_run.run_id).info.artifact_uri).startswith("mlflow-artifacts:")

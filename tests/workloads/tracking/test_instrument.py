"""The training-side helper: what it refuses and that it never loses failures silently."""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.pytorch import load_model as load_pytorch_model

from tests.workloads.tracking.tiny_model import TinyClassifier, random_batch
from workloads.tracking.instrument import (
    InvalidInputExampleError,
    TrackingFlushError,
    current_git_commit,
    tracked_run,
)
from workloads.tracking.local import LocalTrackingServer


def test_log_model_refuses_an_input_example_of_one_row(tracking_environment: LocalTrackingServer) -> None:
    with tracked_run(experiment=f"tests-{uuid.uuid4().hex[:8]}") as run:
        single_row, _ = random_batch(1, seed=0)
        with pytest.raises(InvalidInputExampleError, match="at least 2 rows, got shape \\(1, 8\\)"):
            run.log_model(TinyClassifier(), input_example=single_row)
        run_id = run.run_id
    assert mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list") == []


def test_failing_block_marks_the_run_failed(tracking_environment: LocalTrackingServer) -> None:
    with pytest.raises(ZeroDivisionError), tracked_run(experiment=f"tests-{uuid.uuid4().hex[:8]}") as run:
        run.log_metric("loss", 1.0, 0)
        _ = 1 / 0
    assert mlflow.get_run(run.run_id).info.status == "FAILED"
    assert [m.value for m in mlflow.MlflowClient().get_metric_history(run.run_id, "loss")] == [1.0]


def test_flush_raises_when_metrics_cannot_be_written(tracking_environment: LocalTrackingServer) -> None:
    with tracked_run(experiment=f"tests-{uuid.uuid4().hex[:8]}") as run:
        run.log_metric("loss", 0.5, 0)
        run.flush()
        # The server rejects metric names with illegal characters: a failure only it can detect.
        run.log_metric("bad//name", 1.0, 1)
        with pytest.raises(TrackingFlushError, match=f"1 metric batch\\(es\\) of run {run.run_id}"):
            run.flush()
    assert [m.key for m in mlflow.MlflowClient().get_metric_history(run.run_id, "loss")] == ["loss"]


def test_git_commit_comes_from_the_environment_or_is_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_GIT_COMMIT", "0123abcd")
    assert current_git_commit() == "0123abcd"
    monkeypatch.delenv("MLOPS_GIT_COMMIT")
    monkeypatch.chdir(tmp_path)  # not a git repository
    assert current_git_commit() == "unknown"


def test_model_output_is_unchanged_by_logging(tracking_environment: LocalTrackingServer) -> None:
    model = TinyClassifier().train()
    example, _ = random_batch(4, seed=1)
    with tracked_run(experiment=f"tests-{uuid.uuid4().hex[:8]}") as run:
        info = run.log_model(model, input_example=example)
    assert model.training  # log_model evaluates in eval mode, then restores the mode
    assert info.signature is not None
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 8]
    loaded = load_pytorch_model(info.model_uri)
    with torch.no_grad():
        torch.testing.assert_close(loaded(example), model.eval()(example))

"""Real local pipeline runs (kfp.local, one subprocess per step) against a real tracking server.

Each run trains for real; the registry is shared by the session, so every test compares the state
around its own run (versions, aliases) instead of assuming an empty registry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipelines.local import PipelineRunError, run_local
from pipelines.steps import experiment_name, promotion_decision
from workloads import catalogue, features
from workloads.reference import ORIGINAL_GROUP, REFERENCE_GROUP_COLUMN, VALIDATION_PREDICTIONS_TAG, download_reference
from workloads.tracking import registry
from workloads.tracking.instrument import current_git_commit
from workloads.tracking.local import LocalTrackingServer

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _versions(client: MlflowClient, model: str) -> set[str]:
    return {str(v.version) for v in client.search_model_versions(f"name = '{model}'")}


def _aliases(client: MlflowClient, model: str) -> dict[str, str]:
    try:
        return dict(client.get_registered_model(model).aliases)
    except MlflowException:  # not registered yet
        return {}


def _stand_in_production(client: MlflowClient, model: str, quality: float) -> str:
    """A production version of `model` whose only job is to have a known quality to beat.

    It points at a run without a model: promotion decisions read the version's metric tags only.
    """
    experiment = client.get_experiment_by_name("stand-ins") or client.get_experiment(
        client.create_experiment("stand-ins")
    )
    run = client.create_run(experiment.experiment_id)
    client.set_terminated(run.info.run_id)
    metrics = {"accuracy": quality, "macro_f1": quality}
    version = registry.register_version(model, f"runs:/{run.info.run_id}/model", run.info.run_id, metrics, True)
    registry.promote(model, str(version.version), to="production")
    return str(version.version)


def _run(model: str, store: Path, root: Path, **arguments: object):
    return run_local(model, pipeline_root=root, dataset_store=str(store), **arguments)


def _promoting_run_against(quality: float, model: str, store: Path, root: Path, **arguments: object):
    """A stand-in production of `quality`, then a run with automatic promotion on: (stand-in, result)."""
    stand_in = _stand_in_production(MlflowClient(), model, quality)
    result = _run(model, store, root, auto_promote=True, **arguments)
    assert result.registered, result.summary
    return stand_in, result


def _assert_lineage(tags: dict[str, str], model: str) -> None:
    """The version's lineage tags: gate verdict, dataset version and digest, commit, pipeline run, features."""
    assert tags["quality_gate"] == "passed"
    assert tags["dataset.name"] == catalogue.get(model).dataset and tags["dataset.version"] == "v1"
    assert len(tags["dataset.digest"]) == 64
    assert tags["git.commit"] == current_git_commit()
    assert tags["pipeline.run_id"] not in ("", "none")
    assert tags["features.version"] == features.FEATURES_VERSION


def test_digits_run_registers_a_staging_version_with_lineage_and_reference(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient()
    production_before = _aliases(client, "digits").get("production")

    result = _run("digits", snapshot_store, tmp_path)  # the catalogue's default epochs

    assert result.registered, result.summary
    version = client.get_model_version("digits", result.version)
    tags = version.tags
    _assert_lineage(tags, "digits")
    assert float(tags["metric.accuracy"]) >= 0.95  # the digit model really learns
    assert float(tags["metric.macro_f1"]) >= 0.95
    assert _aliases(client, "digits")["staging"] == result.version
    # auto_promote defaults to off: production did not move.
    assert _aliases(client, "digits").get("production") == production_before
    assert "automatic promotion is off" in result.summary

    reference, provenance = download_reference("digits", result.version)
    assert list(reference.columns) == [*features.FEATURE_COLUMNS, "label", REFERENCE_GROUP_COLUMN]
    assert len(reference) == 1438  # the training split of 1,797 images
    assert set(reference[REFERENCE_GROUP_COLUMN]) == {ORIGINAL_GROUP}  # no production images in v1
    assert provenance["dataset_version"] == "v1" and provenance["split"] == "train"
    predictions, _ = download_reference("digits", result.version, VALIDATION_PREDICTIONS_TAG)
    assert {"prediction", "confidence", "label"} <= set(predictions.columns)
    assert (predictions["prediction"] == predictions["label"]).mean() == pytest.approx(float(tags["metric.accuracy"]))
    # The whole softmax vector per held-out image (the drift job's BBSD reference), in class order.
    softmax = predictions[features.softmax_columns(len(catalogue.get("digits").class_names))].to_numpy()
    assert softmax.dtype == "float64" and softmax.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert (softmax.argmax(axis=1) == predictions["prediction"].to_numpy()).all()

    run = client.get_run(version.run_id)
    assert run.data.tags["pipeline.run_id"] == tags["pipeline.run_id"]
    assert run.data.params["epochs"] == str(catalogue.get("digits").training.epochs)
    assert {"loss", "val_accuracy", "val_macro_f1", "val_f1.7"} <= set(run.data.metrics)
    # The evaluation's report, and the gate's decision against production (the pipeline's gate step).
    evaluation = {a.path for a in client.list_artifacts(version.run_id, "evaluation")}
    assert evaluation == {"evaluation/report.json", "evaluation/gate.json"}
    assert "quality gate passed" in capfd.readouterr().out


def test_gpu_model_runs_locally_and_is_not_promoted_when_not_better(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path
) -> None:
    client = MlflowClient()
    # A regression margin of 1: the gate lets a weaker candidate register, promotion still refuses it.
    strong, result = _promoting_run_against(
        0.999, "surface-defects", snapshot_store, tmp_path, epochs=3, quality_threshold=0.8, regression_margin=1.0
    )

    version = client.get_model_version("surface-defects", result.version)
    assert float(version.tags["metric.macro_f1"]) >= 0.8  # three classes: chance is 0.33
    _assert_lineage(version.tags, "surface-defects")
    assert version.tags["reference.features"] == "reference/features.parquet"
    reference, provenance = download_reference("surface-defects", result.version)
    assert list(reference.columns) == [*features.FEATURE_COLUMNS, "label", REFERENCE_GROUP_COLUMN]
    assert provenance["dataset_version"] == "v1" and provenance["split"] == "train"
    predictions, _ = download_reference("surface-defects", result.version, VALIDATION_PREDICTIONS_TAG)
    softmax = [column for column in predictions.columns if column.startswith(features.SOFTMAX_PREFIX)]
    assert softmax == ["softmax_0", "softmax_1", "softmax_2"]  # one per class: clean, scratch, stain
    aliases = _aliases(client, "surface-defects")
    assert aliases["staging"] == result.version
    # Automatic promotion was on, but the candidate does not beat production: production stays.
    assert aliases["production"] == strong
    assert "does not beat production's 0.9990" in result.summary
    assert client.get_run(version.run_id).data.tags["training.device"] == "cpu"


def test_threshold_above_reach_registers_nothing_and_says_so(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient()
    versions_before, aliases_before = _versions(client, "digits"), _aliases(client, "digits")

    result = _run("digits", snapshot_store, tmp_path, epochs=1, quality_threshold=1.0)

    assert not result.registered
    assert result.summary.startswith("NOT REGISTERED: quality gate FAILED: digits accuracy ")
    assert "< threshold 1.0000" in result.summary
    assert _versions(client, "digits") == versions_before
    assert _aliases(client, "digits") == aliases_before
    log = ANSI.sub("", capfd.readouterr().out)
    assert "nothing will be registered" in log
    assert "Executing task 'reject'" in log
    assert "Executing task 'register'" not in log
    experiment = client.get_experiment_by_name(experiment_name("digits"))
    (latest,) = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)
    assert latest.data.tags["registered_version"] == "none"
    assert latest.data.tags["quality_gate.verdict"] == "failed"


def test_corrupt_dataset_fails_at_fetch_and_registers_nothing(
    tracking_environment: LocalTrackingServer, private_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient()
    versions_before = _versions(client, "digits")
    experiment = client.get_experiment_by_name(experiment_name("digits"))
    runs_before = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    images = private_store / "digits" / "v1" / "images.npy"
    data = bytearray(images.read_bytes())
    data[200] ^= 0x10
    images.write_bytes(bytes(data))

    with pytest.raises(PipelineRunError) as caught:
        _run("digits", private_store, tmp_path)

    assert caught.value.step == "fetch-dataset"
    message = str(caught.value)
    assert message.startswith("pipeline training-digits failed at step 'fetch-dataset': DatasetIntegrityError: ")
    assert "file images.npy is corrupt: sha256" in message
    assert "file images.npy is corrupt: sha256" in capfd.readouterr().out
    assert _versions(client, "digits") == versions_before
    experiment = client.get_experiment_by_name(experiment_name("digits"))
    assert (len(client.search_runs([experiment.experiment_id])) if experiment else 0) == runs_before


def test_auto_promotion_moves_production_to_a_better_candidate(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path
) -> None:
    client = MlflowClient()
    weak, better = _promoting_run_against(0.5, "digits", snapshot_store, tmp_path, epochs=2, quality_threshold=0.5)

    assert _aliases(client, "digits")["production"] == better.version
    assert f"production v{weak} → v{better.version}" in better.summary
    assert registry.rollback("digits").current == weak  # the replaced version was remembered


@pytest.mark.parametrize(
    ("enabled", "candidate", "production", "margin", "promote"),
    [
        (False, 0.99, 0.5, 0.0, False),
        (True, 0.99, None, 0.0, True),
        (True, 0.99, 0.98, 0.005, True),
        (True, 0.984, 0.98, 0.005, False),
        (True, 0.98, 0.98, 0.0, False),
    ],
)
def test_promotion_decision(
    enabled: bool, candidate: float, production: float | None, margin: float, promote: bool
) -> None:
    assert promotion_decision(enabled, "accuracy", candidate, production, margin).promote is promote


def test_a_candidate_that_regresses_on_the_original_split_is_refused(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path
) -> None:
    """Above the threshold, but 0.01 (the margin) or more below production on the same split: not registered."""
    client = MlflowClient()
    stand_in = _stand_in_production(client, "digits", 0.999)
    versions_before = _versions(client, "digits")

    result = _run("digits", snapshot_store, tmp_path, epochs=1, quality_threshold=0.3, auto_promote=True)

    assert not result.registered
    assert "regresses on the original validation split" in result.summary
    assert f"production v{stand_in}'s 0.9990 - margin 0.0100" in result.summary
    assert _versions(client, "digits") == versions_before
    assert _aliases(client, "digits")["production"] == stand_in

    # The same candidate with a margin it stays within is registered (the check is the margin, not chance).
    kept = _run("digits", snapshot_store, tmp_path, epochs=1, quality_threshold=0.3, regression_margin=0.9)
    assert kept.registered, kept.summary

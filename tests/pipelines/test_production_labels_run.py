"""A real pipeline run on a dataset version with labelled production images (kfp.local, real MLflow).

v1 is trained on the original digits and made production; production then serves inverted images
(dark ink on light paper), which v1 gets wrong; they are labelled (a Label Studio export through
`mlops labels import`) and snapshotted into v2 with a held-out slice. The candidate trained on v2 is
measured on the original validation split and on the held-out slice, production on the same slice,
and promoted because it beats production there without regressing on the original split.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from pipelines.local import run_local
from tests.production_traffic import import_answers, served_request
from workloads import catalogue
from workloads.datasets.builders import build
from workloads.datasets.stores import open_store
from workloads.labelled_datasets import LabelledWindow, snapshot_with_labels
from workloads.reference import ORIGINAL_GROUP, REFERENCE_GROUP_COLUMN, download_reference, production_group
from workloads.tracking import registry
from workloads.tracking.local import LocalTrackingServer


def test_a_version_with_production_labels_is_judged_on_both_splits_and_wins_on_the_recent_slice(
    tracking_environment: LocalTrackingServer, snapshot_store: Path, tmp_path: Path
) -> None:
    client = MlflowClient()
    store = tmp_path / "datasets"
    shutil.copytree(snapshot_store / "digits", store / "digits")
    # Whatever production the session's registry holds, this v1 becomes it (margin 1: never refused).
    first = run_local(
        "digits", pipeline_root=tmp_path / "runs", dataset_store=str(store), epochs=4, regression_margin=1.0
    )
    assert first.registered, first.summary
    registry.promote("digits", first.version, to="production")

    today = datetime.now(tz=UTC).date()
    data = build("digits")
    shifted, truth = 255 - data.images[:400], data.labels[:400]
    answers = {}
    for start in range(0, 400, 16):
        request = served_request(tmp_path / "predictions", today, shifted[start : start + 16], version=first.version)
        answers.update({(request, index): str(truth[start + index]) for index in range(16)})
    import_answers(tmp_path / "labels", tmp_path / "export.json", answers)
    window = LabelledWindow.ending("digits", str(tmp_path / "predictions"), str(tmp_path / "labels"), today, 1)
    made = snapshot_with_labels(catalogue.get("digits"), window, open_store(store))
    assert made.published.version == "v2" and made.added == 400 and 50 < made.held_out < 110

    second = run_local(
        "digits",
        pipeline_root=tmp_path / "runs",
        dataset_store=str(store),
        dataset_version="v2",
        epochs=4,
        auto_promote=True,
    )

    assert second.registered, second.summary
    assert "promoted to production" in second.summary and "on the held-out production slice" in second.summary
    tags = client.get_model_version("digits", second.version).tags
    assert tags["dataset.version"] == "v2"
    assert float(tags["metric.recent_accuracy"]) > 0.8  # learned the inverted images it was never shown held out
    assert (
        float(tags["metric.accuracy"])
        >= float(client.get_model_version("digits", first.version).tags["metric.accuracy"])
        - catalogue.get("digits").regression_margin
    )
    run_id = client.get_model_version("digits", second.version).run_id
    report = json.loads(Path(client.download_artifacts(run_id, "evaluation/report.json", str(tmp_path))).read_text())
    assert report["production_holdout"]["samples"] == made.held_out
    # The drift reference of v2 is what v2 trained on: the original training rows and the production
    # ones, each marked with the distribution it came from (the production rows by prediction day).
    reference, provenance = download_reference("digits", second.version)
    assert provenance["dataset_version"] == "v2"
    assert len(reference) == 1797 - 359 + made.trained
    groups = reference[REFERENCE_GROUP_COLUMN].value_counts().to_dict()
    assert groups == {ORIGINAL_GROUP: 1797 - 359, production_group(today.isoformat()): made.trained}

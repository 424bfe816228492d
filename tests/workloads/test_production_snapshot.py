"""`mlops data snapshot MODEL --with-labels`: base version + labelled production images, as a new version.

Predictions are logged by the serving log's writer, labels imported from Label Studio exports with
`mlops labels import`; the new version is fetched back (every sha256 verified) and read.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.local_annotator import DEMO_ANNOTATOR
from cli.main import app
from tests.production_traffic import import_answers, served_request
from workloads.datasets.dataset import load
from workloads.datasets.roles import ORIGINAL, PRODUCTION_HOLDOUT, PRODUCTION_TRAIN, ROLES_FILE, load_roles
from workloads.datasets.versions import fetch, snapshot
from workloads.labelled_datasets import PROVENANCE_FILE, holdout_role

TODAY = datetime.now(tz=UTC).date()


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("datasets", "predictions", "labels", "exports")}
    paths["exports"].mkdir()
    snapshot("digits", paths["datasets"])  # v1, the base
    return paths


def snapshot_with_labels(stores: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    arguments = ["data", "snapshot", "digits", "--with-labels", "--store", str(stores["datasets"])]
    arguments += ["--predictions-store", str(stores["predictions"]), "--labels-store", str(stores["labels"])]
    result = CliRunner().invoke(app, [*arguments, *extra])
    return result.exit_code, result.stdout, result.stderr


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 8, 8), dtype=np.uint8)


def read_version(stores: dict[str, Path], version: str, into: Path) -> tuple[object, np.ndarray, dict, dict]:
    folder = fetch("digits", version, stores["datasets"], into)  # verifies every sha256
    data = load(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    provenance = json.loads((folder / PROVENANCE_FILE).read_text())
    return data, load_roles(folder, data.images.shape[0]), manifest, provenance


def test_a_version_adds_the_labelled_logged_images_and_records_where_each_came_from(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    day = TODAY - timedelta(days=1)
    served = images(40, seed=1)
    request = served_request(stores["predictions"], day, served)
    unlabelled = served_request(stores["predictions"], day, images(5, seed=2))
    truth = {(request, index): str(index % 10) for index in range(40)}
    import_answers(stores["labels"], stores["exports"] / "day1.json", truth)

    code, out, err = snapshot_with_labels(stores)

    assert code == 0, err
    assert out.strip() == "v2"
    assert "v2 = v1 (1797 rows) + 40 labelled production images" in err
    data, roles, manifest, provenance = read_version(stores, "v2", tmp_path / "v2")
    base = load(fetch("digits", "v1", stores["datasets"], tmp_path / "v1"))
    assert data.images.shape == (1797 + 40, 8, 8)
    assert np.array_equal(data.images[:1797], base.images) and (roles[:1797] == ORIGINAL).all()
    assert np.array_equal(data.images[1797:], served)  # bit for bit what was served
    assert list(data.labels[1797:]) == [index % 10 for index in range(40)]
    expected_roles = [holdout_role(request, index, 0.2) for index in range(40)]
    assert list(roles[1797:]) == expected_roles  # deterministic, per image
    assert PRODUCTION_HOLDOUT in expected_roles and PRODUCTION_TRAIN in expected_roles
    assert {ROLES_FILE, PROVENANCE_FILE} <= set(manifest["files"])
    derived = manifest["derived_from"]
    assert derived["base"]["version"] == "v1" and derived["holdout"]["fraction"] == 0.2
    assert len(derived["prediction_log_files"]) == 2 and all(len(f["sha256"]) == 64 for f in derived["label_files"])
    rows = provenance["rows"]
    assert {row["request_id"] for row in rows} == {request}  # the unlabelled request is not there
    assert unlabelled not in json.dumps(rows)
    assert {row["label_source"] for row in rows} == {"label-studio:day1.json"}
    assert {row["annotator"] for row in rows} == {DEMO_ANNOTATOR.email}  # who labelled, from the export
    assert rows[0]["prediction_day"] == day.isoformat() and rows[0]["served_by_version"] == "1"


def test_late_labels_count_and_the_last_label_of_an_image_wins(stores: dict[str, Path], tmp_path: Path) -> None:
    day = TODAY - timedelta(days=5)  # labels arrive five days after the predictions
    request = served_request(stores["predictions"], day, images(12, seed=3))
    import_answers(stores["labels"], stores["exports"] / "first.json", {(request, i): "3" for i in range(12)})
    import_answers(stores["labels"], stores["exports"] / "fix.json", {(request, 4): "8"})  # a correction

    assert snapshot_with_labels(stores)[0] == 0
    data, _, _, provenance = read_version(stores, "v2", tmp_path / "v2")
    assert data.images.shape[0] == 1797 + 12  # the corrected image once, not twice
    by_index = {row["image_index"]: row for row in provenance["rows"]}
    assert by_index[4]["label"] == "8" and by_index[4]["label_source"] == "label-studio:fix.json"
    assert data.labels[1797 + 4] == 8

    # A later correction: v3 replaces the image's row of v2 instead of adding it again.
    import_answers(stores["labels"], stores["exports"] / "fix2.json", {(request, 4): "9"})
    assert snapshot_with_labels(stores)[0] == 0
    data3, roles3, manifest3, provenance3 = read_version(stores, "v3", tmp_path / "v3")
    assert data3.images.shape[0] == 1797 + 12 and (roles3 != ORIGINAL).sum() == 12
    assert [row["label"] for row in provenance3["rows"] if row["image_index"] == 4] == ["9"]
    assert manifest3["derived_from"]["base"]["version"] == "v2"


def test_zero_labels_is_one_clear_message_and_no_version(stores: dict[str, Path]) -> None:
    served_request(stores["predictions"], TODAY, images(8, seed=4))

    code, out, err = snapshot_with_labels(stores)

    assert code == 2 and out == ""
    assert err.startswith("error: no labelled production images for the prediction days ")
    assert "no labels in" in err and "mlops labels queue digits" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (stores["datasets"] / "digits").iterdir()) == ["v1"]


def test_nothing_new_since_the_base_is_refused(stores: dict[str, Path]) -> None:
    request = served_request(stores["predictions"], TODAY, images(6, seed=5))
    import_answers(stores["labels"], stores["exports"] / "a.json", {(request, i): "1" for i in range(6)})
    assert snapshot_with_labels(stores)[0] == 0

    code, _, err = snapshot_with_labels(stores)

    assert code == 2 and "is in digits v2 already, with the same label: nothing new to train on" in err


def test_labels_outside_the_window_are_not_joined(stores: dict[str, Path]) -> None:
    old = TODAY - timedelta(days=30)
    request = served_request(stores["predictions"], old, images(6, seed=6))
    import_answers(stores["labels"], stores["exports"] / "a.json", {(request, i): "1" for i in range(6)})

    code, _, err = snapshot_with_labels(stores, "--days", "7")

    assert code == 2 and "none of them naming a logged image" in err
    assert snapshot_with_labels(stores, "--days", "31", "--last-day", date.today().isoformat())[0] == 0


def test_labels_stored_before_annotators_were_recorded_read_as_unknown(stores: dict[str, Path], tmp_path: Path) -> None:
    """A labels file of the earlier format (no `annotator` column) beside a feedback that names one."""
    import pandas as pd

    from workloads.labels.record import LabelRecord
    from workloads.labels.store import LabelStore

    request = served_request(stores["predictions"], TODAY, images(4, seed=5))
    received = pd.DatetimeIndex([datetime.now(tz=UTC)] * 3, dtype="datetime64[us, UTC]")
    old = pd.DataFrame(
        {
            "model": ["digits"] * 3,
            "request_id": [request] * 3,
            "image_index": pd.Series([0, 1, 2], dtype="int64"),
            "label": ["1", "2", "3"],
            "source": ["feedback"] * 3,
            "received_at": received,
        }
    )
    folder = stores["labels"] / "digits" / f"date={TODAY.isoformat()}"
    folder.mkdir(parents=True)
    old.to_parquet(folder / "000000000000-1-old.parquet", index=False)
    LabelStore(str(stores["labels"])).write(
        [LabelRecord("digits", request, 3, "4", "feedback", datetime.now(tz=UTC), "ana@example.org")]
    )

    code, _, err = snapshot_with_labels(stores)

    assert code == 0, err
    _, _, _, provenance = read_version(stores, "v2", tmp_path / "v2")
    assert {row["image_index"]: row["annotator"] for row in provenance["rows"]} == {
        0: None,
        1: None,
        2: None,
        3: "ana@example.org",
    }

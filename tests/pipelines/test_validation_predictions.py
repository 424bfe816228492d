"""The evaluate step's validation predictions table: the drift job's reference for the model outputs.

Besides `prediction` and `confidence` it holds the whole softmax vector of every held-out image
(`features.softmax_columns`, the BBSD reference), from the same forward pass as the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import steps
from workloads import catalogue, features
from workloads.reference import read_feature_table
from workloads.training import predict_probabilities

MODEL = "digits"


@pytest.fixture(scope="module")
def evaluated(snapshot_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fetch, preprocess and evaluate digits with seeded, untrained weights (no tracking server needed)."""
    work = tmp_path_factory.mktemp("validation-predictions")
    entry = catalogue.get(MODEL)
    steps.fetch_step(entry.dataset, "latest", str(snapshot_store), work / "dataset")
    steps.preprocess_step(
        MODEL, work / "dataset", 0.2, 0, work / "train.npz", work / "validation.npz", work / "reference.parquet"
    )
    torch.manual_seed(0)
    torch.save(entry.build_model().state_dict(), work / "weights.pt")
    steps.evaluate_step(
        MODEL, work / "weights.pt", work / "validation.npz", 0.0, work / "report.json", work / "predictions.parquet"
    )
    return {name: work / name for name in ("weights.pt", "validation.npz", "report.json", "predictions.parquet")}


def test_the_table_holds_one_softmax_column_per_class_after_the_other_columns(evaluated: dict[str, Path]) -> None:
    table, provenance = read_feature_table(evaluated["predictions.parquet"])
    softmax = features.softmax_columns(len(catalogue.get(MODEL).class_names))
    assert softmax == [f"softmax_{index}" for index in range(10)]
    assert list(table.columns) == [*features.FEATURE_COLUMNS, "label", "prediction", "confidence", *softmax]
    assert all(str(table[column].dtype) == "float64" for column in softmax)
    assert provenance["split"] == "validation"


def test_softmax_rows_sum_to_one_and_their_argmax_is_the_prediction(evaluated: dict[str, Path]) -> None:
    table, _ = read_feature_table(evaluated["predictions.parquet"])
    softmax = table[features.softmax_columns(10)].to_numpy()
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, atol=1e-5)  # float32 softmax, stored as float64
    np.testing.assert_array_equal(table["prediction"].to_numpy(), softmax.argmax(axis=1))
    np.testing.assert_array_equal(table["confidence"].to_numpy(), softmax.max(axis=1))
    # The report's accuracy was computed from the same probabilities as the table.
    report = json.loads(evaluated["report.json"].read_text(encoding="utf-8"))
    assert report["accuracy"] == pytest.approx((table["prediction"] == table["label"]).mean())


def test_softmax_column_i_is_output_i_of_the_model(evaluated: dict[str, Path]) -> None:
    network = catalogue.get(MODEL).build_model()
    network.load_state_dict(torch.load(evaluated["weights.pt"], map_location="cpu", weights_only=True))
    inputs = steps.load_split(evaluated["validation.npz"])[steps.SPLIT_INPUTS]
    table, _ = read_feature_table(evaluated["predictions.parquet"])
    np.testing.assert_allclose(
        table[features.softmax_columns(10)].to_numpy(), predict_probabilities(network, inputs), rtol=0, atol=1e-6
    )


def test_softmax_columns_need_at_least_one_class() -> None:
    assert features.softmax_columns(1) == [f"{features.SOFTMAX_PREFIX}0"]
    with pytest.raises(ValueError, match="at least one class"):
        features.softmax_columns(0)

"""The model catalogue: typed, frozen entries; clear errors; models that match their entries."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from workloads import catalogue, features
from workloads.datasets.builders import build


def test_catalogue_has_a_cpu_digit_model_and_a_gpu_model() -> None:
    assert catalogue.names()[:2] == ("digits", "surface-defects")
    assert catalogue.get("digits").gpu is False
    assert catalogue.get("surface-defects").gpu is True
    assert catalogue.get("digits").quality_threshold == pytest.approx(0.95)


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(catalogue.UnknownModelError) as caught:
        catalogue.get("cats")
    assert str(caught.value) == "unknown model 'cats': the catalogue has digits, surface-defects"


def test_entries_are_frozen() -> None:
    entry = catalogue.get("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.quality_threshold = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.tags["owner"] = "me"  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"name": "Digits_2"}, "DNS label"),
        ({"quality_metric": "auc"}, "quality_metric"),
        ({"quality_threshold": 1.5}, "quality_threshold"),
        ({"model_factory": "workloads.models.digits.DigitClassifier"}, "module:callable"),
        ({"class_names": ("a", "a")}, "distinct"),
    ],
)
def test_invalid_entries_are_refused(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(catalogue.CatalogueError, match=fragment):
        dataclasses.replace(catalogue.get("digits"), **change)


@pytest.mark.parametrize("name", catalogue.names())
def test_each_model_takes_its_datasets_preprocessed_images(name: str) -> None:
    entry = catalogue.get(name)
    data = build(entry.dataset)
    assert data.class_names == entry.class_names
    assert tuple(data.images.shape[1:]) == entry.image_shape
    model = entry.build_model().eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(features.preprocess(data.images[:5])))
    assert logits.shape == (5, entry.num_classes)
    assert np.isfinite(logits.numpy()).all()

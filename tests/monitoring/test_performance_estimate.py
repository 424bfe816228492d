"""CBPE: accuracy estimated without labels, on cases whose expected accuracy is known.

Synthetic days draw each label from a known probability vector, so a day's expected accuracy is
known analytically: the mean, over its images, of the true probability of the predicted class.
The model's reported softmax is that vector sharpened (over-confident, as trained networks often
are), so the raw confidence overstates accuracy and only a working calibration gets it right.
Then a real model: the digits version the training pipeline registered, calibrated on one half of
its validation predictions and estimated on the other, against the accuracy measured there.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.performance_estimate import Calibration, expected_calibration_error, needs_calibration
from tests.monitoring.conftest import MODEL, RegisteredDigits

CLASSES = 4


def calibrated_day(rows: int, seed: int, spread: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """(true probabilities, labels drawn from them) of one synthetic day."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(0.0, spread, size=(rows, CLASSES))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (generator.random((rows, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    return truth, labels


def sharpened(truth: np.ndarray, power: float = 3.0) -> np.ndarray:
    """What an over-confident model reports: the same ranking, probabilities pushed towards 0 and 1."""
    powered = truth**power
    return powered / powered.sum(axis=1, keepdims=True)


def test_a_calibrated_model_is_estimated_at_its_analytic_accuracy() -> None:
    validation_truth, validation_labels = calibrated_day(20_000, seed=1)
    day, _ = calibrated_day(20_000, seed=2)
    expected = float(day.max(axis=1).mean())  # calibrated: P(right) = probability of the argmax

    estimate = Calibration.fit(validation_truth, validation_labels).estimate(day)

    assert abs(estimate.accuracy - expected) < 0.01
    assert estimate.standard_error == pytest.approx(np.sqrt((day.max(1) * (1 - day.max(1))).sum()) / len(day), rel=0.1)


def test_an_over_confident_model_is_estimated_at_its_true_accuracy_not_its_confidence() -> None:
    validation_truth, validation_labels = calibrated_day(20_000, seed=3)
    day, day_labels = calibrated_day(20_000, seed=4)
    expected = float(day[np.arange(len(day)), day.argmax(axis=1)].mean())
    reported = sharpened(day)
    assert reported.max(axis=1).mean() - expected > 0.1  # the raw confidence is far off

    calibration = Calibration.fit(sharpened(validation_truth), validation_labels)
    estimate = calibration.estimate(reported)

    assert calibration.calibrated_classes == CLASSES
    assert abs(estimate.accuracy - expected) < 0.01
    measured = float((reported.argmax(axis=1) == day_labels).mean())
    assert abs(estimate.accuracy - measured) < 4 * estimate.standard_error + 0.005


def test_calibration_is_skipped_where_it_does_not_help() -> None:
    outcomes = np.array([0.0, 0.0, 1.0, 1.0] * 50)
    assert not needs_calibration(outcomes, outcomes * 0.98 + 0.01)  # separable: AUROC 1
    assert not needs_calibration(np.zeros(100), np.linspace(0, 1, 100))  # one outcome only
    scores = np.linspace(0, 1, 10)
    assert expected_calibration_error(scores, scores) == 0.0


def test_the_digits_models_validation_accuracy_is_estimated_from_its_confidence(
    tracking_client_environment: dict[str, str], registered_digits: RegisteredDigits, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workloads import features
    from workloads.reference import VALIDATION_PREDICTIONS_TAG, download_reference

    for name, value in tracking_client_environment.items():
        monkeypatch.setenv(name, value)
    table, _ = download_reference(MODEL, registered_digits.version, VALIDATION_PREDICTIONS_TAG)
    softmax = table[features.softmax_columns(10)].to_numpy()
    labels = table["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(table))
    fit, held_out = order[: len(order) // 2], order[len(order) // 2 :]

    estimate = Calibration.fit(softmax[fit], labels[fit]).estimate(softmax[held_out])

    measured = float((softmax[held_out].argmax(axis=1) == labels[held_out]).mean())
    assert 0.3 < measured < 1.0  # a 2-epoch model: room for the estimate to be wrong either way
    assert abs(estimate.accuracy - measured) < 3 * estimate.standard_error + 0.02, (estimate, measured)

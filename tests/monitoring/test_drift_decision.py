"""The family-wise drift decision on small synthetic frames (no server, no model): a shift in one
signal decides alone, nothing shifting decides nothing, and a reference without softmax columns
falls back to the confidence with the reason said."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.actions import describe_decision
from monitoring.drift import (
    CLASS,
    CONFIDENCE,
    IMAGE_STATISTICS,
    SOFTMAX,
    DriftThresholds,
    build_reference,
    class_mix_test,
    compute_drift,
    embedding_auc_threshold,
    softmax_columns,
    summarise_signals,
)
from workloads import features

CLASSES = tuple(str(index) for index in range(10))
UNIFORM = np.full(10, 0.1)


def outputs_table(rows: int, class_mix: np.ndarray, seed: int, softmax: bool = True) -> pd.DataFrame:
    """Drift features of one distribution, classes drawn from `class_mix`, and a softmax vector
    peaked on each row's class (what a confident model outputs)."""
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame(
        generator.normal(size=(rows, len(features.FEATURE_COLUMNS))), columns=pd.Index(features.FEATURE_COLUMNS)
    )
    classes = generator.choice(len(class_mix), size=rows, p=class_mix)
    probabilities = generator.dirichlet(np.full(len(class_mix), 0.3), size=rows) * 0.2
    probabilities[np.arange(rows), classes] += 0.8
    frame["prediction"] = classes
    frame["confidence"] = probabilities.max(axis=1)
    if softmax:
        for index, column in enumerate(softmax_columns(len(class_mix))):
            frame[column] = probabilities[:, index]
    frame["label"] = classes
    return frame


def reference(softmax: bool = True) -> pd.DataFrame:
    built, _ = build_reference(
        outputs_table(600, UNIFORM, seed=1), outputs_table(400, UNIFORM, seed=2, softmax=softmax), CLASSES, 20_000, 0
    )
    return built


def window(rows: int, class_mix: np.ndarray, seed: int, softmax: bool = True) -> pd.DataFrame:
    frame = outputs_table(rows, class_mix, seed, softmax).drop(columns="label")
    frame["prediction"] = np.asarray(CLASSES, dtype=object)[frame["prediction"].to_numpy()]
    return frame


SKEWED = np.array([0.55, *([0.05] * 9)])
"""Half the window is class 0: a strong class-mix shift, nothing else moves."""


def test_a_strong_class_mix_shift_decides_alone() -> None:
    computation = compute_drift(window(300, SKEWED, seed=3), reference(), DriftThresholds())

    assert computation.dataset_drift is True
    assert computation.deciding_signals and set(computation.deciding_signals) <= {CLASS, SOFTMAX}
    signals = summarise_signals(computation)
    assert signals[CLASS]["rejected"] is True and signals[CLASS]["p_value"] < signals[CLASS]["level"]
    assert signals[IMAGE_STATISTICS]["rejected"] is False
    # statistics and embedding 0.01 each; the class and the softmax one joint test at 0.03 (3 shares of 5)
    assert signals[CLASS]["level"] == pytest.approx(0.03) and signals[SOFTMAX]["level"] == pytest.approx(0.03)
    assert signals[CONFIDENCE] == {
        "skipped": "covered by the softmax family (the confidence is the largest softmax output)"
    }
    # The old rule (>= 30 % of the features drifted) would have stayed quiet: one or two of 26 moved.
    assert computation.drifted_share < 0.3
    assert describe_decision(computation).startswith(computation.deciding_signals[0])


def test_nothing_shifts_nothing_is_flagged() -> None:
    computation = compute_drift(window(300, UNIFORM, seed=4), reference(), DriftThresholds())

    assert computation.dataset_drift is False
    assert computation.deciding_signals == []
    assert {signal.family for signal in computation.signals} == {IMAGE_STATISTICS, "embedding", CLASS, SOFTMAX}
    assert all(signal.p_value >= signal.level for signal in computation.signals)


def test_without_softmax_columns_the_softmax_family_is_skipped_and_the_confidence_decides() -> None:
    old_reference = reference(softmax=False)

    computation = compute_drift(window(300, SKEWED, seed=5), old_reference, DriftThresholds())

    assert computation.deciding_signals == [CLASS]
    signals = summarise_signals(computation)
    assert signals[CLASS]["level"] == pytest.approx(0.0125)  # 4 families, one share each
    assert signals[SOFTMAX] == {
        "skipped": "the reference has no softmax columns (a version registered before they were recorded)"
    }
    assert "p_value" in signals[CONFIDENCE] and not any(name.startswith("softmax_") for name in signals)
    assert {feature.name for feature in computation.features} >= {"confidence", "prediction", "embedding"}


def test_a_window_logged_without_softmax_falls_back_too() -> None:
    computation = compute_drift(window(200, UNIFORM, seed=6, softmax=False), reference(), DriftThresholds())

    assert computation.dataset_drift is False
    assert (
        computation.skipped_signals[SOFTMAX] == "the window has no softmax columns (logged without the model's outputs)"
    )
    assert CONFIDENCE in {signal.family for signal in computation.signals}


def test_the_class_test_holds_its_level_on_small_windows_and_sees_a_missing_class() -> None:
    generator = np.random.default_rng(7)
    reference_classes = pd.Series(generator.choice(10, size=300).astype(str))
    # 20-row windows: most expected counts are below 5, so the exact null is drawn.
    p_values = [
        class_mix_test(reference_classes, pd.Series(generator.choice(10, size=20).astype(str)))[0] for _ in range(200)
    ]
    assert np.mean(np.asarray(p_values) < 0.05) <= 0.08
    without_zero = pd.Series(generator.choice(np.arange(1, 10), size=1000).astype(str))
    p_value, distance = class_mix_test(reference_classes, without_zero)
    assert p_value < 1e-6 and distance > 0.1


def test_embedding_threshold_is_the_floor_for_large_windows_and_rises_for_small_ones() -> None:
    assert embedding_auc_threshold(20_000, 20_000, 0.55, 0.0125) == 0.55
    # 0.5 + z(0.0125) sigma0, sigma0 for a conservative 701 vs 132 rows in the held-out half
    assert 0.56 < embedding_auc_threshold(1_438, 300, 0.55, 0.0125) < 0.57


KNOCKED_OUT = np.array([0.0, *([1 / 9] * 9)])
"""Class 0 knocked out of the window (a pure label shift, the paper's knock-out): images unchanged."""


def test_a_knocked_out_class_decides_alone_through_the_joint_output_test() -> None:
    computation = compute_drift(window(150, KNOCKED_OUT, seed=8), reference(), DriftThresholds())

    assert computation.dataset_drift is True
    assert computation.deciding_signals and set(computation.deciding_signals) <= {CLASS, SOFTMAX}
    signals = summarise_signals(computation)
    assert signals[IMAGE_STATISTICS]["rejected"] is False and signals["embedding"]["rejected"] is False
    for family in (CLASS, SOFTMAX):  # one permutation test, its p-value adjusted over all 11 outputs' tests
        assert "permutation minP" in signals[family]["method"] and signals[family]["level"] == pytest.approx(0.03)
    decided = signals[computation.deciding_signals[0]]
    assert decided["p_value"] < decided["level"] and decided["deciding_column"] in {"prediction", "softmax_0"}


def test_an_unshifted_window_is_not_flagged_by_the_joint_output_test() -> None:
    computation = compute_drift(window(150, UNIFORM, seed=9), reference(), DriftThresholds())

    assert computation.dataset_drift is False
    signals = summarise_signals(computation)
    assert signals[CLASS]["rejected"] is False and signals[SOFTMAX]["rejected"] is False
    assert signals[SOFTMAX]["p_value"] >= signals[SOFTMAX]["level"]

"""The drift computation's parts on tiny frames (a few hundred rows, no server, no model): each test,
each family's level, and which family decides when one kind of input shifts.

tests/monitoring/test_drift_decision.py holds the decisions on class-mix shifts and missing softmax
columns; this file covers the tests the decision is built from, the levels the families get, and
one shift per remaining family (image statistics, embedding, softmax) against the same unshifted control.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest

from monitoring import drift
from monitoring.drift import CLASS, CONFIDENCE, EMBEDDING, IMAGE_STATISTICS, SOFTMAX
from workloads import features

CLASSES = tuple(str(index) for index in range(10))
SOFTMAX_COLUMNS = features.softmax_columns(len(CLASSES))
ALPHA = drift.DriftThresholds().p_value


def image_features(rows: int, generator: np.random.Generator, statistics: float, embedding: float) -> pd.DataFrame:
    """Standard-normal drift features; `statistics` / `embedding` move the mean of every column of that
    kind by that many standard deviations."""
    table = pd.DataFrame(
        generator.normal(size=(rows, len(features.FEATURE_COLUMNS))), columns=pd.Index(features.FEATURE_COLUMNS)
    )
    table[list(features.STATISTIC_COLUMNS)] += statistics
    table[list(features.EMBEDDING_COLUMNS)] += embedding
    return table


def with_outputs(table: pd.DataFrame, generator: np.random.Generator, uncertainty: float) -> pd.DataFrame:
    """A model's outputs on those rows: uniform classes, and a softmax vector that puts 1 - `uncertainty`
    on the predicted class plus a Dirichlet share of the rest (a less sure model: a larger `uncertainty`)."""
    rows = len(table)
    classes = generator.integers(0, len(CLASSES), size=rows)
    probabilities = generator.dirichlet(np.full(len(CLASSES), 0.5), size=rows) * uncertainty
    probabilities[np.arange(rows), classes] += 1 - uncertainty
    table["prediction"] = classes
    table["confidence"] = probabilities.max(axis=1)
    table[SOFTMAX_COLUMNS] = probabilities
    return table


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    generator = np.random.default_rng(0)
    training = image_features(600, generator, statistics=0.0, embedding=0.0)
    training["label"] = generator.integers(0, len(CLASSES), size=600)
    validation = with_outputs(image_features(300, generator, statistics=0.0, embedding=0.0), generator, 0.3)
    built, _ = drift.build_reference(training, validation, CLASSES, 20_000, 0)
    return built


def window(statistics: float = 0.0, embedding: float = 0.0, uncertainty: float = 0.3) -> pd.DataFrame:
    """300 logged rows, as the drift job reads them (predicted classes by name)."""
    generator = np.random.default_rng(5)
    table = with_outputs(image_features(300, generator, statistics, embedding), generator, uncertainty)
    table["prediction"] = np.asarray(CLASSES, dtype=object)[table["prediction"].to_numpy()]
    return table


# ----------------------------------------------------------------------------- the family decision


@pytest.mark.parametrize(
    ("shift", "deciding"),
    [
        pytest.param({}, [], id="unshifted"),
        pytest.param({"statistics": 0.6}, [IMAGE_STATISTICS], id="image-statistics"),
        pytest.param({"embedding": 0.5}, [EMBEDDING], id="embedding"),
        pytest.param({"uncertainty": 0.6}, [SOFTMAX], id="softmax"),
    ],
)
def test_one_shifted_kind_of_input_is_flagged_by_its_family_alone(
    reference: pd.DataFrame, shift: dict[str, float], deciding: list[str]
) -> None:
    computation = drift.compute_drift(window(**shift), reference, drift.DriftThresholds())

    assert computation.dataset_drift is bool(deciding)
    assert computation.deciding_signals == deciding
    assert {signal.family for signal in computation.signals} == {IMAGE_STATISTICS, EMBEDDING, CLASS, SOFTMAX}
    assert drift.spent_level({signal.family: signal.level for signal in computation.signals}) == pytest.approx(ALPHA)
    for signal in computation.signals:
        assert 0.0 <= signal.p_value <= 1.0
        assert signal.rejected is (signal.p_value < signal.level)
        members = [feature for feature in computation.features if feature.family == signal.family]
        assert signal.columns == len(members)
        if signal.family == IMAGE_STATISTICS:  # Bonferroni within the family, over the columns that reach their floor
            relevant = [member.score for member in members if member.effect >= member.effect_floor]
            assert signal.p_value == pytest.approx(min(1.0, len(members) * min(relevant)) if relevant else 1.0)
    for signal in computation.signals:
        if signal.rejected:  # the column that decided is one of the family's own
            column = signal.deciding_column or ""
            assert {
                IMAGE_STATISTICS: column in features.STATISTIC_COLUMNS,
                EMBEDDING: column == "embedding",
                SOFTMAX: column in SOFTMAX_COLUMNS,
            }[signal.family], column


# ---------------------------------------------------------------------- which families, which levels


def test_with_softmax_on_both_sides_the_class_and_the_softmax_share_one_joint_level_of_three_shares(
    reference: pd.DataFrame,
) -> None:
    plan = drift.plan_signals(window(), reference, ALPHA)

    assert set(plan.families) == {IMAGE_STATISTICS, EMBEDDING, CLASS, SOFTMAX}
    assert plan.families[SOFTMAX] == SOFTMAX_COLUMNS and plan.families[IMAGE_STATISTICS] == list(
        features.STATISTIC_COLUMNS
    )
    assert plan.joint_outputs and drift.spent_level(plan.levels) == pytest.approx(ALPHA)
    # one share each for statistics and embedding; the class's one and the softmax's two, together
    assert plan.levels[SOFTMAX] == plan.levels[CLASS] == pytest.approx(3 * plan.levels[EMBEDDING])
    assert plan.levels[EMBEDDING] == plan.levels[IMAGE_STATISTICS] == pytest.approx(ALPHA / 5)
    # The report's per-column verdict: Bonferroni over the joint family's 10 softmax outputs + the class.
    assert plan.column_level("softmax_3") == pytest.approx(plan.levels[SOFTMAX] / (len(CLASSES) + 1))
    assert CONFIDENCE in plan.skipped and CONFIDENCE in plan.shown  # shown in the report, decides nothing


def test_without_the_embedding_the_other_families_take_its_share(reference: pd.DataFrame) -> None:
    plan = drift.plan_signals(window(), reference, ALPHA, include_embedding=False)

    assert EMBEDDING not in plan.families and plan.skipped[EMBEDDING] == "not requested"
    assert drift.spent_level(plan.levels) == pytest.approx(ALPHA)
    assert plan.levels[CLASS] == pytest.approx(3 * ALPHA / 4)  # statistics, then class + the softmax's two shares


def test_a_column_without_values_on_one_side_is_left_out_of_its_family(reference: pd.DataFrame) -> None:
    current = window()
    current["brightness_mean"] = np.nan

    plan = drift.plan_signals(current, reference, ALPHA)

    assert "brightness_mean" not in plan.families[IMAGE_STATISTICS]
    assert len(plan.families[IMAGE_STATISTICS]) == len(features.STATISTIC_COLUMNS) - 1
    assert plan.counts["brightness_mean"] == (len(reference) - reference["brightness_mean"].isna().sum(), 0)


def test_softmax_vectors_of_different_lengths_are_not_compared_and_the_confidence_decides_instead(
    reference: pd.DataFrame,
) -> None:
    current = window().drop(columns=SOFTMAX_COLUMNS[3:])

    plan = drift.plan_signals(current, reference, ALPHA)

    assert (
        SOFTMAX not in plan.families and plan.skipped[SOFTMAX] == "the window has 3 softmax outputs, the reference 10"
    )
    assert plan.families[CONFIDENCE] == ["confidence"]
    assert math.fsum(plan.levels.values()) == pytest.approx(ALPHA)


def test_a_reference_without_model_outputs_compares_no_class_and_no_confidence() -> None:
    generator = np.random.default_rng(1)
    training_only, _ = drift.build_reference(image_features(200, generator, 0.0, 0.0), None, CLASSES, 20_000, 0)

    plan = drift.plan_signals(window(), training_only, ALPHA)

    assert set(plan.families) == {IMAGE_STATISTICS, EMBEDDING}
    assert CLASS in plan.skipped and CONFIDENCE in plan.skipped
    assert plan.levels == {IMAGE_STATISTICS: pytest.approx(ALPHA / 2), EMBEDDING: pytest.approx(ALPHA / 2)}


# ------------------------------------------------------------------------------------- the tests


def test_class_mix_test_of_a_sample_with_itself_finds_nothing() -> None:
    classes = pd.Series(np.random.default_rng(2).choice(CLASSES, size=400))

    p_value, distance = drift.class_mix_test(classes, classes)

    assert p_value == pytest.approx(1.0) and distance == pytest.approx(0.0)


def test_class_mix_test_holds_its_level_on_large_samples_and_rejects_a_moved_mix() -> None:
    generator = np.random.default_rng(3)
    # 500 rows a side: every expected count is above 5, so the chi-square approximation decides.
    null = [
        drift.class_mix_test(pd.Series(generator.choice(CLASSES, 500)), pd.Series(generator.choice(CLASSES, 500)))[0]
        for _ in range(200)
    ]
    assert all(0.0 <= p <= 1.0 for p in null)
    assert np.mean(np.asarray(null) < 0.05) <= 0.08
    assert kstest(null, "uniform").pvalue > 0.01  # valid p-values: uniform when nothing moved
    moved = pd.Series(generator.choice(CLASSES, 500, p=[0.3, *([0.7 / 9] * 9)]))
    p_value, distance = drift.class_mix_test(pd.Series(generator.choice(CLASSES, 500)), moved)
    assert p_value < 1e-6 and distance > 0.1


@pytest.mark.parametrize(
    ("reference_classes", "current_classes"),
    [(["3"] * 50, ["3"] * 20), (list(CLASSES) * 5, []), ([None] * 10, list(CLASSES))],
    ids=["one-class", "empty-window", "no-reference-classes"],
)
def test_class_mix_test_with_nothing_to_compare_is_no_evidence(
    reference_classes: list[str | None], current_classes: list[str]
) -> None:
    reference, current = pd.Series(reference_classes, dtype=object), pd.Series(current_classes, dtype=object)

    assert drift.class_mix_test(reference, current) == (1.0, 0.0)


def test_normalised_wasserstein_is_the_shift_in_reference_standard_deviations() -> None:
    reference = np.random.default_rng(4).normal(size=500)

    assert drift.normalised_wasserstein(reference, reference) == 0.0
    shifted = drift.normalised_wasserstein(reference, reference + 0.5 * reference.std())
    assert shifted == pytest.approx(0.5)
    assert drift.normalised_wasserstein(10 * reference, 10 * reference + 5 * reference.std()) == pytest.approx(shifted)


def test_normalised_wasserstein_of_a_constant_reference_is_zero_or_infinite() -> None:
    constant = np.full(100, 3.0)

    assert drift.normalised_wasserstein(constant, constant) == 0.0
    assert drift.normalised_wasserstein(constant, constant + 0.1) == math.inf


def test_embedding_p_value_is_one_half_for_a_useless_classifier_and_falls_as_the_auc_rises() -> None:
    assert drift.embedding_p_value(0.5, 1_000, 300) == pytest.approx(0.5)
    p_values = [drift.embedding_p_value(auc, 1_000, 300) for auc in (0.5, 0.55, 0.6, 0.7, 0.9)]
    assert all(0.0 <= p <= 1.0 for p in p_values)
    assert p_values == sorted(p_values, reverse=True) and p_values[-1] < 1e-6
    # The same AUC is stronger evidence from more rows.
    assert drift.embedding_p_value(0.56, 20_000, 20_000) < drift.embedding_p_value(0.56, 1_000, 300)


@pytest.mark.parametrize(("reference_rows", "current_rows"), [(1_438, 300), (400, 60), (200, 20)])
def test_the_embedding_threshold_is_where_the_p_value_reaches_the_level(reference_rows: int, current_rows: int) -> None:
    level = ALPHA / 4
    threshold = drift.embedding_auc_threshold(reference_rows, current_rows, floor=0.5, level=level)

    assert threshold > 0.5
    assert drift.embedding_p_value(threshold, reference_rows, current_rows) == pytest.approx(level)
    assert drift.embedding_auc_threshold(reference_rows, current_rows, floor=0.99, level=level) == 0.99

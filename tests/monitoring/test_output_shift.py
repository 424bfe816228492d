"""The joint permutation test of the model's outputs (`monitoring.output_shift`) on small frames:
its KS statistic is scipy's (ties included), its adjusted p-values hold their level when nothing
moved, and with dependent outputs they are below Bonferroni's over the same tests (its reason to be)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from monitoring.output_shift import _ks_statistics, outputs_test

SOFTMAX = ["softmax_0", "softmax_1", "softmax_2"]


def outputs(rows: int, class_mix: list[float], generator: np.random.Generator) -> pd.DataFrame:
    """A confident 3-class model's outputs: the predicted class gets 0.8 plus a share of the rest."""
    classes = generator.choice(3, size=rows, p=class_mix)
    probabilities = generator.dirichlet(np.full(3, 0.3), size=rows) * 0.2
    probabilities[np.arange(rows), classes] += 0.8
    frame = pd.DataFrame(probabilities, columns=pd.Index(SOFTMAX))
    frame["prediction"] = np.asarray(["clean", "scratch", "stain"], dtype=object)[classes]
    return frame


def test_the_ks_statistic_is_scipys_also_with_ties() -> None:
    generator = np.random.default_rng(0)
    current = np.round(generator.random(40), 1)  # saturated outputs: many equal values
    reference = np.round(generator.random(70) ** 2, 1)
    labels = np.r_[np.ones(40, dtype=bool), np.zeros(70, dtype=bool)][None, :]

    statistic = _ks_statistics(np.r_[current, reference], labels, 40, 70)[0]

    assert statistic == pytest.approx(ks_2samp(current, reference).statistic)  # pyright: ignore[reportAttributeAccessIssue]


def test_adjusted_p_values_hold_their_level_when_nothing_moved() -> None:
    generator = np.random.default_rng(1)
    p_values = []
    for _ in range(150):
        tested = outputs_test(
            outputs(30, [0.5, 0.3, 0.2], generator), outputs(100, [0.5, 0.3, 0.2], generator),
            "prediction", SOFTMAX, seed=int(generator.integers(1 << 30)), permutations=199,
        )  # fmt: skip
        assert tested is not None
        p_values.append(min(tested.adjusted(column) for column in tested.p_values))
    assert np.mean(np.asarray(p_values) < 0.05) <= 0.09  # 0.05 plus two binomial standard errors over 150


def test_a_label_shift_gets_a_smaller_p_value_than_bonferroni_over_the_same_tests() -> None:
    generator = np.random.default_rng(2)
    reference = outputs(300, [0.5, 0.3, 0.2], generator)
    shifted = outputs(200, [0.62, 0.3, 0.08], generator)  # half of the rarest class knocked out

    tested = outputs_test(shifted, reference, "prediction", SOFTMAX, seed=0)

    assert tested is not None and set(tested.p_values) == {*SOFTMAX, "prediction"}
    deciding = min(tested.p_values, key=tested.weighted)
    assert tested.adjusted(deciding) < 0.03
    # Weighted Bonferroni over the same tests (class 1/3 of the level, each output 2/9) would give
    # p / weight; the class is the softmax's argmax and the outputs sum to 1, so far less is needed.
    assert tested.adjusted(deciding) < 0.75 * min(1.0, tested.weighted(deciding))


def test_no_rows_with_every_output_on_one_side_means_no_test() -> None:
    generator = np.random.default_rng(3)
    window = outputs(20, [0.5, 0.3, 0.2], generator)
    window["softmax_1"] = np.nan

    assert outputs_test(window, outputs(50, [0.5, 0.3, 0.2], generator), "prediction", SOFTMAX) is None

"""The model's outputs — the predicted class and the softmax vector — tested as ONE family, by
permutation (Westfall-Young single-step minP), so a label shift gets the outputs' whole level.

Why one family. A label shift (a class knocked out, the class mix moving) shows in the model's
outputs only: in the predicted-class counts (chi-square) and in the softmax outputs (BBSD's KS per
output). Tested as two Bonferroni families (0.01 for the class, 0.02 for the softmax, Bonferroni over
the k outputs inside it) each sees the shift at a fraction of the level the two hold together, as if
the k + 1 tests were unrelated. They are not: the predicted class is the argmax of the softmax, and
the k outputs sum to 1 (with 3 classes, two outputs nearly fix the third). The full power benchmark
(`benchmarks/drift_power.py`) lost knock-out windows BBSD flags exactly there: softmax p 0.024 and
0.036 against a level of 0.02, class p 0.018 against 0.01 (README, drift section).

The test. Under "the window's outputs come from the reference's distribution" the window rows and
the reference rows are exchangeable, so relabelling the pooled rows at random draws the statistic's
null distribution with the tests' dependence kept. Each test's p-value is divided by its weight —
the share of the level it had under Bonferroni (the class 1 of 3 shares, each of the k softmax
outputs 2 / (3 k)) — and for each draw the smallest weighted p-value over all k + 1 tests is
recorded; a column's adjusted p-value is the share of draws whose smallest weighted p-value reaches
its own, (1 + count) / (draws + 1): a valid p-value for every column at once. With the weights of
the Bonferroni split the joint test rejects wherever that split did (the union bound makes its
threshold at least the split's; only the draws' Monte Carlo noise is in between), and more where
the tests depend on each other; with equal weights the class, the strongest single test of a label
shift, would be diluted among the k outputs. The
per-test p-values inside the permutation are the asymptotic ones (Kolmogorov's distribution for
KS, chi-square for the class counts): any fixed monotone function of each statistic keeps the test
exact, and the asymptotic forms are the ones that vectorise over a thousand draws. The adjusted
p-value is never much above Bonferroni's (the minimum of dependent p-values is stochastically larger
than that of independent ones) and is smaller the more the tests depend on each other.

Cost: one sort per column, then a cumulative sum per draw and column; the number of draws is
bounded by a budget (`DRAW_BUDGET`), and they are drawn in blocks so memory stays at tens of MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PERMUTATIONS = 999
"""Draws of the null at most: the adjusted p-value's resolution is 1 / 1,000, far below the level."""
MIN_PERMUTATIONS = 199
"""Draws at least: resolution 1 / 200, so a level of 0.03 is still reached by 5 draws or fewer."""
DRAW_BUDGET = 100_000_000
"""Cells (draws x pooled rows x columns) one test may cost: the job's full 20,000 + 20,000-row sample
with 11 columns gets 227 draws (16 s measured, niced, on the two shared cores at load 6), a
benchmark window of 10,000 + 300 rows and 4 columns all 999 (2.5 s measured at load 7). The
p-value is exact for any number of draws."""
BLOCK = 64
"""Draws computed at once (memory: BLOCK x rows per side x 2 x 8 bytes per column)."""


@dataclass(frozen=True)
class OutputsTest:
    """Observed p-value per column and the null distribution of the smallest one."""

    p_values: dict[str, float]
    """Column -> asymptotic p-value on the observed window (KS or chi-square)."""
    weights: dict[str, float]
    """Column -> its share of the level (they sum to 1)."""
    null_minimum: np.ndarray
    """Per draw, the smallest weighted p-value (p / weight) over every column."""

    def weighted(self, column: str) -> float:
        return self.p_values[column] / self.weights[column]

    def adjusted(self, column: str) -> float:
        """Share of null draws whose smallest weighted p-value reaches the column's: family-wise valid."""
        exceed = int(np.count_nonzero(self.null_minimum <= self.weighted(column) * (1 + 1e-9)))
        return (1 + exceed) / (len(self.null_minimum) + 1)


def _ks_p_values(statistics: np.ndarray, current_rows: int, reference_rows: int) -> np.ndarray:
    from scipy.stats import kstwobign

    scale = math.sqrt(current_rows * reference_rows / (current_rows + reference_rows))
    return np.asarray(kstwobign.sf(statistics * scale), dtype=np.float64)


def _ks_statistics(values: np.ndarray, is_current: np.ndarray, current_rows: int, reference_rows: int) -> np.ndarray:
    """Two-sample KS statistic for each row of `is_current` (draws x pooled rows), ties handled
    (the empirical distributions are compared only at the end of each run of equal values)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    current_below = np.cumsum(is_current[:, order], axis=1, dtype=np.int32)[:, ends]
    reference_below = (ends + 1)[None, :] - current_below
    return np.abs(current_below / current_rows - reference_below / reference_rows).max(axis=1)


def _chi_square_p_values(one_hot: np.ndarray, is_current: np.ndarray) -> np.ndarray:
    """Two-sample chi-square homogeneity test of the class counts, for each draw."""
    from scipy.stats import chi2

    pooled = one_hot.sum(axis=0).astype(np.float64)
    share = is_current[0].sum() / is_current.shape[1]
    current = is_current.astype(np.float64) @ one_hot
    expected_current, expected_reference = pooled * share, pooled * (1 - share)
    statistic = ((current - expected_current) ** 2 / expected_current).sum(axis=1) + (
        ((pooled - current) - expected_reference) ** 2 / expected_reference
    ).sum(axis=1)
    return np.asarray(chi2.sf(statistic, one_hot.shape[1] - 1), dtype=np.float64)


@dataclass(frozen=True)
class _Pooled:
    """The window's rows first, then the reference's: softmax values and one-hot classes."""

    numeric: dict[str, np.ndarray]
    classes: tuple[str, np.ndarray] | None
    """(class column, one-hot matrix); None when there is no class column or a single class."""
    rows: tuple[int, int]

    def p_values(self, is_current: np.ndarray) -> dict[str, np.ndarray]:
        """Column -> p-value per row of `is_current` (draws x pooled rows)."""
        result = {
            name: _ks_p_values(_ks_statistics(values, is_current, *self.rows), *self.rows)
            for name, values in self.numeric.items()
        }
        if self.classes is not None:
            result[self.classes[0]] = _chi_square_p_values(self.classes[1], is_current)
        return result


def _pooled(current: pd.DataFrame, reference: pd.DataFrame, class_column: str | None, softmax: list[str]) -> _Pooled:
    columns = [*softmax, *([class_column] if class_column else [])]
    current_part, reference_part = current[columns].dropna(), reference[columns].dropna()
    pooled = pd.concat([current_part, reference_part], ignore_index=True)
    classes = None
    if class_column:
        codes = pd.factorize(pooled[class_column].astype(str))[0]
        classes = (class_column, np.eye(int(codes.max()) + 1)[codes]) if len(codes) and codes.max() >= 1 else None
    numeric = {name: np.asarray(pooled[name], dtype=np.float64) for name in softmax}
    return _Pooled(numeric=numeric, classes=classes, rows=(len(current_part), len(reference_part)))


def _weights(
    class_column: str | None, softmax: list[str], class_share: float, softmax_share: float
) -> dict[str, float]:
    total = softmax_share + (class_share if class_column else 0.0)
    weights = {name: softmax_share / total / len(softmax) for name in softmax}
    if class_column:
        weights[class_column] = class_share / total
    return weights


def outputs_test(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    class_column: str | None,
    softmax: list[str],
    class_share: float = 1.0,
    softmax_share: float = 2.0,
    seed: int = 0,
    permutations: int | None = None,
) -> OutputsTest | None:
    """The joint test over the rows both sides hold every output for; None without rows on a side.
    The shares weigh the class test against the k softmax tests (split evenly among them)."""
    pooled = _pooled(current, reference, class_column, softmax)
    if not all(pooled.rows):
        return None
    weights = _weights(class_column, softmax, class_share, softmax_share)
    observed_labels = np.zeros((1, sum(pooled.rows)), dtype=bool)
    observed_labels[0, : pooled.rows[0]] = True
    observed = {name: float(values[0]) for name, values in pooled.p_values(observed_labels).items()}
    if permutations is None:
        affordable = DRAW_BUDGET // (sum(pooled.rows) * len(weights))
        permutations = int(min(PERMUTATIONS, max(MIN_PERMUTATIONS, affordable)))
    generator = np.random.default_rng(seed)
    minima: list[np.ndarray] = []
    for start in range(0, permutations, BLOCK):
        draws = generator.permuted(np.repeat(observed_labels, min(BLOCK, permutations - start), axis=0), axis=1)
        tested = pooled.p_values(draws)
        minima.append(np.min(np.vstack([values / weights[name] for name, values in tested.items()]), axis=0))
    if class_column and class_column not in observed:  # one class on both sides: nothing to test
        observed[class_column] = 1.0
    return OutputsTest(p_values=observed, weights=weights, null_minimum=np.concatenate(minima))

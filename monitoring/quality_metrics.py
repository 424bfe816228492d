"""Measured accuracy and macro-F1 per (prediction day, model version), with a confidence interval.

A day on which a new version went live holds predictions of two versions; each version is measured
on its own rows, so the day has one row per version, and a rollout never averages two models.

The interval is the Wilson score interval (scipy's `binomtest(...).proportion_ci(method="wilson")`):
unlike the normal approximation it stays inside [0, 1] and keeps near its nominal coverage at the
small counts labels come in (a few dozen a day), including accuracies near 1. Macro-F1 is
scikit-learn's `f1_score(average="macro")` over the classes present in the row's labels or
predictions (computed with numpy, `macro_f1`): a class nobody sent that day neither helps nor hurts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from monitoring.quality_join import DAY_COLUMN, LABEL_COLUMN, Joined
from monitoring.window import CLASS_NAME_COLUMN, VERSION_COLUMN

GROUP = [DAY_COLUMN, VERSION_COLUMN]


@dataclass(frozen=True)
class Counted:
    """One version on one prediction day: what it served and how much of it its labels confirm (the
    measurement and the judged row of `monitoring.quality_report` both carry these)."""

    day: str
    model_version: str
    predictions: int
    """Predictions the version served that day (labelled or not)."""
    labelled: int
    correct: int
    accuracy: float | None
    """None without labels: nothing was measured."""
    macro_f1: float | None


@dataclass(frozen=True)
class Measured(Counted):
    """What the labels say about one version on one prediction day."""

    interval: tuple[float, float] | None


def wilson_interval(correct: int, total: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of `correct` successes in `total` trials at `confidence`."""
    from scipy.stats import binomtest

    interval = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def macro_f1(labels: pd.Series, predicted: pd.Series) -> float:
    """scikit-learn's `f1_score(labels, predicted, average="macro", zero_division=0)`, counted with numpy.

    The same definition — per class F1 = 2 TP / (2 TP + FP + FN) over the classes present in either
    column, a class predicted but never labelled (or the reverse) scoring 0, then their mean — but
    from one factorisation and three bincounts: scikit-learn's input checks sort the string columns
    several times and took 1.5 s of a 7.7 s job on 100,000 labels (benchmarks/quality_join.py).
    `tests/monitoring/test_quality.py` holds it to scikit-learn's value."""
    codes, classes = pd.factorize(pd.concat([labels, predicted], ignore_index=True), sort=False)
    truth, guess = codes[: len(labels)], codes[len(labels) :]
    count = len(classes)
    true_positive = np.bincount(truth[truth == guess], minlength=count)
    labelled = np.bincount(truth, minlength=count)
    chosen = np.bincount(guess, minlength=count)
    denominator = labelled + chosen  # = 2 TP + FP + FN, never 0 for a class present in either column
    return float(np.mean(2.0 * true_positive / denominator))


def measure(joined: Joined, confidence: float) -> list[Measured]:
    """One row per (day, version) that served predictions in the window, oldest day first."""
    served = _served(joined)
    labelled = joined.table.select([*GROUP, CLASS_NAME_COLUMN, LABEL_COLUMN]).to_pandas()
    by_group = dict(_groups(labelled))
    rows = []
    for (day, version), count in served.items():
        group = by_group.get((day, version))
        rows.append(_row(day, version, count, group, confidence))
    return rows


def _served(joined: Joined) -> dict[tuple[str, str], int]:
    counted = joined.predictions.group_by(GROUP).aggregate([([], "count_all")])
    pairs = zip(counted[DAY_COLUMN].to_pylist(), counted[VERSION_COLUMN].to_pylist(), strict=True)
    totals = dict(zip(pairs, counted["count_all"].to_pylist(), strict=True))
    return {key: int(totals[key]) for key in sorted(totals)}


def _groups(labelled: pd.DataFrame) -> Iterator[tuple[tuple[str, str], pd.DataFrame]]:
    for key, group in labelled.groupby(GROUP, sort=True):
        day, version = cast(tuple[str, str], key)
        yield (day, version), group


def _row(day: str, version: str, served: int, group: pd.DataFrame | None, confidence: float) -> Measured:
    if group is None or group.empty:
        return Measured(day, version, served, 0, 0, None, None, None)
    labels, predicted = cast(pd.Series, group[LABEL_COLUMN]), cast(pd.Series, group[CLASS_NAME_COLUMN])
    correct = int((predicted == labels).sum())
    total = len(group)
    return Measured(
        day=day,
        model_version=version,
        predictions=served,
        labelled=total,
        correct=correct,
        accuracy=correct / total,
        interval=wilson_interval(correct, total, confidence),
        macro_f1=macro_f1(labels, predicted),
    )

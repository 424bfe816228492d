"""Accuracy without labels: confidence-based performance estimation (CBPE), as NannyML does it.

A calibrated classifier's probability for the class it predicts is the chance that prediction is
right, so over a day the mean calibrated probability of the predicted classes is the expected
accuracy — no label needed. The model's own softmax is not calibrated in general (networks trained
with cross-entropy are often over-confident), so it is calibrated first on data with labels: the
version's validation predictions (`reference/validation_predictions.parquet`, which the training
pipeline attaches to every registered version: true label, prediction, softmax vector).

**Why not NannyML itself.** `nannyml==0.13.1` does not install beside our pins: it requires `s3fs`,
whose `aiobotocore` pins `botocore<1.43.118` (aiobotocore 3.10), while our `boto3` 1.44.8 needs
`botocore>=1.44.8` — pip reports ResolutionImpossible for `nannyml==0.13.1 boto3==1.44.8` (checked
with `pip install --dry-run` beside the pins of `.venv`). In a venv of its own it installs only
with botocore downgraded to 1.43.117, pulls xgboost (with `nvidia-nccl-cu12`), lightgbm, FLAML,
gcsfs and `segment-analytics-python` (usage telemetry) into the monitoring image, and fails to import
until `statsmodels` is added by hand (a dependency it does not declare). So this module implements
NannyML 0.13.1's multiclass CBPE accuracy, as its source does it
(`nannyml/performance_estimation/confidence_based/cbpe.py`, `metrics.py`, `nannyml/calibration.py`):

1. per class, one-vs-rest: the class's softmax column against "the label is this class", calibrated
   by isotonic regression (`IsotonicRegression(out_of_bounds="clip")`) — but only when calibration
   helps: not when the class has one outcome only, not when its AUROC exceeds 0.999 (already
   separable), and not unless the expected calibration error (10 equal-count bins) on 10 stratified
   90/10 splits is lower after calibration than before (`needs_calibration`);
2. the calibrated columns of a row are renormalised to sum to 1 (uniform when all are 0);
3. estimated accuracy = the mean, over the day's predictions, of the calibrated probability of the
   class the model predicted (its argmax, the logged `prediction`).

Its spread: if the calibrated probabilities are right, each prediction is right with probability
p_i independently, so the accuracy of n predictions has standard error sqrt(sum p_i (1 - p_i)) / n
(the sampling error; the calibration's own error, from a finite validation split, is not in it).

What it cannot see: CBPE assumes the relation between images and labels is unchanged (covariate
shift only) and that calibration made on validation data still holds on production inputs; a shift
that makes the model confidently wrong (inputs far from the training data) is estimated too high.
`benchmarks/performance_estimate.py` measures the error on normal and shifted days.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

AUROC_SEPARABLE = 0.999
CALIBRATION_SPLITS = 10
CALIBRATION_TEST_SHARE = 0.1
ECE_BINS = 10
SPLIT_SEED = 42


@dataclass(frozen=True)
class Estimate:
    accuracy: float
    standard_error: float
    predictions: int


def expected_calibration_error(outcomes: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over bins of equal count (scores sorted): sum of |mean score - mean outcome| x the bin's share.

    Binned as NannyML 0.13.1 does (`_get_bin_index_edges`): a width of n // bins rows, the last edge
    moved to n (so the last bin takes the remainder), at most n // 2 bins."""
    order = np.argsort(scores, kind="stable")
    scores, outcomes = scores[order], outcomes[order]
    count = len(scores)
    bins = max(1, min(bins, count // 2))
    edges = list(range(0, count + 1, max(1, count // bins)))
    edges[-1] = count
    total = 0.0
    for left, right in itertools.pairwise(edges):
        if right > left:
            total += (right - left) / count * abs(scores[left:right].mean() - outcomes[left:right].mean())
    return float(total)


def needs_calibration(outcomes: np.ndarray, scores: np.ndarray) -> bool:
    """Whether isotonic calibration lowers the calibration error of one class's scores (cross-validated)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    positives = int(outcomes.sum())
    if positives in (0, len(outcomes)):
        return False
    if roc_auc_score(outcomes, scores) > AUROC_SEPARABLE:
        return False
    if min(positives, len(outcomes) - positives) < 2:
        return False  # too few of one outcome to split in a stratified way: nothing to learn a map from
    splits = StratifiedShuffleSplit(
        n_splits=CALIBRATION_SPLITS, test_size=CALIBRATION_TEST_SHARE, random_state=SPLIT_SEED
    )
    tested, raw, calibrated = [], [], []
    for train, test in splits.split(scores.reshape(-1, 1), outcomes):
        regressor = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores[train], outcomes[train])
        tested.append(outcomes[test])
        raw.append(scores[test])
        calibrated.append(regressor.predict(scores[test]))
    truth = np.concatenate(tested)
    before = expected_calibration_error(truth, np.concatenate(raw))
    after = expected_calibration_error(truth, np.concatenate(calibrated))
    return after < before


@dataclass(frozen=True)
class Calibration:
    """One isotonic map per class (None: the class's scores are used as they are)."""

    maps: tuple[Any, ...]

    @classmethod
    def fit(cls, softmax: np.ndarray, labels: np.ndarray) -> Calibration:
        """Calibrate on validation predictions: `softmax` (n, classes), `labels` the true class indices."""
        from sklearn.isotonic import IsotonicRegression

        softmax = np.asarray(softmax, dtype=np.float64)
        labels = np.asarray(labels)
        if softmax.ndim != 2 or len(softmax) != len(labels) or not len(labels):
            raise ValueError(f"calibration needs (n, classes) probabilities and n labels, got {softmax.shape}")
        maps = []
        for index in range(softmax.shape[1]):
            outcomes = (labels == index).astype(np.float64)
            scores = softmax[:, index]
            if needs_calibration(outcomes, scores):
                maps.append(IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores, outcomes))
            else:
                maps.append(None)
        return cls(tuple(maps))

    @property
    def calibrated_classes(self) -> int:
        return sum(item is not None for item in self.maps)

    def calibrate(self, softmax: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, each row renormalised to 1 (uniform where every class got 0)."""
        softmax = np.asarray(softmax, dtype=np.float64)
        if softmax.ndim != 2 or softmax.shape[1] != len(self.maps):
            raise ValueError(f"expected probabilities of {len(self.maps)} classes, got shape {softmax.shape}")
        columns = [
            softmax[:, index] if item is None else item.predict(softmax[:, index])
            for index, item in enumerate(self.maps)
        ]
        calibrated = np.column_stack(columns)
        totals = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        return np.divide(calibrated, totals, out=uniform, where=totals != 0)

    def estimate(self, softmax: np.ndarray, predictions: np.ndarray | None = None) -> Estimate:
        """Expected accuracy of these predictions (default: the argmax of `softmax`, as the service logs it)."""
        softmax = np.asarray(softmax, dtype=np.float64)
        if not len(softmax):
            raise ValueError("no predictions to estimate the accuracy of")
        chosen = softmax.argmax(axis=1) if predictions is None else np.asarray(predictions, dtype=np.int64)
        right = self.calibrate(softmax)[np.arange(len(softmax)), chosen]
        error = float(np.sqrt(np.sum(right * (1.0 - right)))) / len(right)
        return Estimate(accuracy=float(right.mean()), standard_error=error, predictions=len(right))

"""The drift computation: one Evidently report comparing a window of predictions with the reference,
and a family-wise decision on top of it.

What is compared
----------------
* the 15 image statistics of `workloads.features` (one KS test each);
* the 8 embedding components, as ONE embedding with Evidently's domain-classifier method
  (`ModelDriftMethod`: a linear classifier tries to tell reference rows from current rows; its ROC
  AUC on a held-out half is the score). Testing the components one by one would give the embedding
  8 tests, and would miss shifts that only move a direction of the space;
* the predicted class (categorical) and the confidence (numerical);
* the model's softmax vector, `softmax_0` .. `softmax_<k-1>` (the columns of
  `workloads.features.softmax_columns`), when both the window and the reference carry it: BBSD,
  "black-box shift detection" — Rabanser, Guennemann, Lipton, *Failing Loudly: An Empirical Study of
  Methods for Detecting Dataset Shift* (NeurIPS 2019) found a KS test per softmax dimension,
  Bonferroni-corrected, the best detector of the ones they compared, on every shift type.

The reference for the image statistics is the training feature table of the model version that
served the window (`reference/features.parquet`): what the model learned from. The reference for the
predicted class, the confidence and the softmax is the validation prediction table of the same
version (`reference/validation_predictions.parquet`): outputs of *that* model on images it did not
train on. Comparing with the training labels instead would flag the model's own errors as drift, and
outputs on training images are over-confident (the model has seen them), so every healthy day would
look "less confident". When a version has no validation table, the predicted classes are compared
with the training labels (the class mix it learned) and neither confidence nor softmax is compared;
the summary says so.

The decision: signal families, each with its own test (`SIGNAL_FAMILIES`)
--------------------------------------------------------------------------
Dataset drift = at least one signal family rejects "same distribution as the reference":

    image_statistics  15 KS tests, Bonferroni within the family (the smallest p-value x 15)
    embedding         the domain classifier's AUC, z-test against a useless classifier (Mann-Whitney)
    class             two-sample chi-square test of the predicted-class counts (homogeneity)
    softmax           BBSD: k KS tests, one per softmax output
    confidence        KS test; decides only when the softmax is not compared (it is the softmax's
                      largest value, which the softmax family already tests)

The families share alpha (MLOPS_DRIFT_P_VALUE = 0.05) by weighted Bonferroni: one share each, two
for the softmax, which takes the share of the confidence it replaces (`FAMILY_SHARES`). With the
softmax: 0.01 each for image statistics and embedding, and 0.03 for the class and the softmax
together, which are ONE test (`monitoring.output_shift`, `OUTPUT_FAMILIES`): a permutation minP test
over the class test and the k KS tests, each weighted by its share (the class 1 of 3, each output
2 / 3k), which keeps their dependence (the class is the softmax's argmax) instead of paying for it.
Its threshold is at least that of the former split (0.01 for the class, 0.02 / k per output; the
union bound), so it loses no window the split caught — up to the asymptotic p-values it ranks the
tests by and the draws' Monte Carlo noise — and gains where the tests depend on each other: a
label shift — the paper's knock-out — shows in these outputs only, and the full power benchmark
lost knock-out windows BBSD flags at softmax p 0.024 against 0.02 (README, drift section). Each
of the two families reports its own adjusted p-value and the joint level. Without the softmax,
0.0125 for each of the four families. The levels spent sum to alpha (`spent_level`: the joint test
counts once), so the chance that a window without drift raises the alarm is at most alpha at every
window size, whatever the dependence between the families (for "does any family reject", Holm's
procedure decides the same). The families that rejected are
`deciding_signals`. Why not the share of drifted features
(the previous rule: dataset drift when >= 30 % of 18 features drift): a shift that shows in one
signal only — the class mix moving, which the class test alone sees at once — was outvoted by the
17 others; `benchmarks/drift_power.py` measures both against BBSD (README, drift section).

Three corrections make the p-values valid where the tools' defaults are not:
* the class test is a two-sample homogeneity test on the 2 x k table of counts (both samples are
  samples). Evidently's `chisquare` takes the reference's proportions as exact, which is anti-
  conservative when the window is larger than the reference (a 10,000-row window against ~360
  validation rows). Where an expected count is below 5 the p-value comes from 2,000 draws of the
  table's exact null distribution (multivariate hypergeometric, seeded) instead of the chi-square
  approximation. Evidently runs the same test (registered as `chisquare_two_sample`), so the report
  shows it beside the softmax outputs' KS tests; the joint test's adjusted p-values, which decide,
  are in the summary (`signals`);
* the embedding's AUC is measured on the classifier's random held-out half: the null's spread is
  computed for a conservative count of current rows in that half (two standard deviations below
  n/2), so a tiny window cannot alarm because its half happened to be small;
* rows that repeat an earlier row exactly (the same image sent again) are compared once
  (`distinct_rows`): every test takes rows as independent, and copies are not.

Sample-size-aware thresholds
----------------------------
A column (and so its family) rejects only when its test is significant at its corrected level AND
its effect reaches a floor: normalised Wasserstein distance (earth mover's distance / reference
standard deviation) >= MLOPS_DRIFT_NUMERICAL_THRESHOLD (0.1) for numbers, softmax outputs included;
Jensen-Shannon distance >= MLOPS_DRIFT_CATEGORICAL_THRESHOLD (0.1) for the class mix; AUC >=
MLOPS_DRIFT_EMBEDDING_THRESHOLD (0.55) for the embedding. On small windows the significance level is
the binding threshold (a significant difference among a few hundred rows is far above the floors);
on large ones the floor is: a p-value on 20,000 rows flags differences nobody acts on, a
0.1-standard-deviation move is drift whatever the traffic. Requiring both can only lower the
false-alarm rate, so it stays <= alpha at every size. The embedding's AUC threshold that results,
max(floor, 0.5 + z(level) sigma0), is what the report shows (`embedding_auc_threshold`).

Sample size (MLOPS_DRIFT_SAMPLE_SIZE, default 20,000 rows from each side)
------------------------------------------------------------------------
For large windows the floors decide. The normalised Wasserstein distance estimated from n current and
m reference rows is the true distance plus sampling noise of order sqrt(1/n + 1/m). Measured here (200
repetitions per size, standard normal samples; `benchmarks/drift.py --power` prints this table):

    rows per side      1,000   2,000   5,000   10,000   20,000   50,000
    null mean          0.057   0.042   0.026    0.019    0.013    0.0085
    null 99th pct      0.123   0.084   0.049    0.042    0.028    0.018
    detect 0.12 sd     0.67    0.77    0.87     0.90     0.98     1.00

At 20,000 rows per side the distance of two samples of the same distribution stays below 0.03 in
99 % of cases, and a shift of 0.12 standard deviations (20 % above the floor) is detected in 98 % of
windows; more rows only sharpen the boundary between 0.10 and 0.12. The same holds for the
Jensen-Shannon distance of the class mix (10 classes: null noise of order sqrt(k / n) ~ 0.02 at 20,000
rows) and for the embedding AUC (sigma0 = 0.004). So the job samples at most 20,000 rows uniformly
(seeded) from the window and from the reference, and Evidently's cost stops growing with the traffic:
only reading the log is linear.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from monitoring.output_shift import OutputsTest, outputs_test
from workloads import features

try:
    from workloads.features import SOFTMAX_PREFIX, softmax_columns
except ImportError:  # the softmax contract's module side (another change) has not landed in this checkout
    SOFTMAX_PREFIX = "softmax_"

    def softmax_columns(n_classes: int) -> list[str]:
        return [f"{SOFTMAX_PREFIX}{index}" for index in range(n_classes)]


PREDICTION_COLUMN = "prediction"
CONFIDENCE_COLUMN = "confidence"
EMBEDDING_NAME = "embedding"
CLASS_TEST = "chisquare_two_sample"
"""Name under which the two-sample class test is registered with Evidently (the report shows it)."""
NULL_DRAWS = 2000
"""Draws of the exact null distribution of the class test where the chi-square approximation is poor."""
MIN_EXPECTED_COUNT = 5.0

IMAGE_STATISTICS, EMBEDDING, CLASS, SOFTMAX, CONFIDENCE = (
    "image_statistics",
    "embedding",
    "class",
    "softmax",
    "confidence",
)
SIGNAL_FAMILIES = (IMAGE_STATISTICS, EMBEDDING, CLASS, SOFTMAX, CONFIDENCE)
OUTPUT_FAMILIES = (CLASS, SOFTMAX)
"""Tested jointly when both are compared (`monitoring.output_shift`): one level, the sum of their shares."""
FAMILY_SHARES = {SOFTMAX: 2.0}
"""Shares of alpha (default 1 each): the softmax family takes its own and the confidence family's,
which it replaces (the confidence is its largest output) — BBSD, the paper's best detector, gets
the largest level. Measured by the full power benchmark (benchmarks/drift_power.py, equal shares vs
these): cells of 210 (size >= 100) where ours trails BBSD 4 -> 2, knock-out windows BBSD flags that
ours misses 5 -> 3, false alarms and the aggregated detection rate (61.0 %) unchanged."""


@dataclass(frozen=True)
class DriftThresholds:
    p_value: float = 0.05
    """Family-wise significance level: the false-alarm rate of the whole decision."""
    numerical: float = 0.1
    """Effect floor: normalised Wasserstein distance of a numerical column (softmax outputs included)."""
    categorical: float = 0.1
    """Effect floor: Jensen-Shannon distance of the class mix."""
    embedding: float = 0.55
    """Effect floor: the embedding domain classifier's ROC AUC."""


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    """`numerical`, `categorical` or `embedding`."""
    method: str
    score: float
    """p-value (KS, chi-square) or ROC AUC (embedding)."""
    threshold: float
    """The score's threshold: the corrected per-test level, or the AUC threshold for the embedding."""
    drifted: bool
    reference_rows: int
    current_rows: int
    family: str = ""
    effect: float = 0.0
    """Normalised Wasserstein distance, Jensen-Shannon distance or AUC."""
    effect_floor: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "family": self.family,
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "effect": self.effect,
            "effect_floor": self.effect_floor,
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }


@dataclass(frozen=True)
class SignalTest:
    """One family's test: rejected when its Bonferroni-adjusted p-value is below its level."""

    family: str
    method: str
    p_value: float
    """min over the family's columns that reach their effect floor of (columns x p), capped at 1."""
    level: float
    """alpha x the family's share of it (`FAMILY_SHARES`)."""
    rejected: bool
    columns: int
    deciding_column: str | None
    """The column with the smallest p-value among those that reach the floor (None when none does)."""
    effect: float
    effect_floor: float

    def as_dict(self) -> dict[str, Any]:
        """Every field but the family, which the summary lists the test under (`signals_summary`)."""
        return {key: value for key, value in asdict(self).items() if key != "family"}


@dataclass
class DriftComputation:
    features: list[FeatureDrift]
    signals: list[SignalTest]
    dataset_drift: bool
    significance_level: float
    snapshot: Any
    """The Evidently snapshot (`save_html`, `dict`)."""
    skipped_signals: dict[str, str] = field(default_factory=dict)
    """Family -> why it did not take part (no softmax columns, covered by another family, ...)."""
    repeated_rows: dict[str, int] = field(default_factory=dict)
    """Side (`current`, `reference`) -> rows left out because they repeat an earlier row exactly."""

    @property
    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.drifted]

    @property
    def drifted_share(self) -> float:
        """Informational: the share of compared features whose own test rejects (no longer the rule)."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def deciding_signals(self) -> list[str]:
        return [signal.family for signal in self.signals if signal.rejected]


def class_names_for(model: str) -> tuple[str, ...] | None:
    """The model's class names: from the entry the CronJob hands the pod (the image has no catalogue)."""
    from workloads.catalogue_entry import UnknownModelError, entry_for

    try:
        return entry_for(model).class_names
    except UnknownModelError:
        return None


def as_class_names(values: pd.Series, class_names: Sequence[str] | None) -> pd.Series:
    """Predicted classes as names (the log may hold indices or names; the reference holds indices)."""
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(values):
        return values.astype(object).where(values.notna(), None).astype("object")
    indices = values.astype("Int64")
    if class_names is None:
        return indices.astype(str).where(indices.notna(), None).astype("object")
    lookup = np.asarray(class_names, dtype=object)
    result = pd.Series([None] * len(values), index=values.index, dtype="object")
    valid = indices.notna() & (indices >= 0) & (indices < len(lookup))
    result[valid] = lookup[np.asarray(indices[valid], dtype=np.int64)]
    return result


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """One column as a Series (pandas' stubs type `frame[name]` as a frame or a series)."""
    return cast(pd.Series, frame[name])


def sample_rows(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    if len(frame) <= size:
        return frame.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=size, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def identity_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that identify an image's row: its statistics, embedding and the model's outputs
    (request ids or timestamps would make every copy of a resent image look new)."""
    names = [*features.FEATURE_COLUMNS, PREDICTION_COLUMN, CONFIDENCE_COLUMN, *present_softmax_columns(frame)]
    return [name for name in names if name in frame.columns]


def distinct_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The frame without rows that repeat an earlier one exactly, and how many were dropped.

    Every test here takes rows as independent draws. A row repeated exactly is the same image again
    (a client's retry, a replayed batch, a window drawn with replacement): it adds no information
    about the distribution, yet each copy counts as evidence, and the test grows over-confident. In
    the power benchmark a 539-image pool drawn up to 10,000 rows failed the image statistics at
    p 0.0004-0.003 while the same pool, each image once, passed at p 1.0: 20 % false alarms at
    1,000 and 10,000 rows (README, drift section). Images from a live camera differ in every pixel
    from frame to frame, so only true copies collapse; how many there were is in the summary."""
    columns = identity_columns(frame)
    if not columns:
        return frame, 0
    repeated = frame.duplicated(subset=columns, keep="first").to_numpy()
    count = int(repeated.sum())
    return (frame.loc[~repeated].reset_index(drop=True), count) if count else (frame, 0)


def present_softmax_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's softmax columns when they are the complete `softmax_columns(k)` set, else []."""
    suffixes = [name[len(SOFTMAX_PREFIX) :] for name in frame.columns if str(name).startswith(SOFTMAX_PREFIX)]
    count = len(suffixes)
    expected = softmax_columns(count) if count else []
    return expected if count and set(expected) <= set(frame.columns) else []


def build_reference(
    training: pd.DataFrame,
    validation: pd.DataFrame | None,
    class_names: Sequence[str] | None,
    sample_size: int,
    seed: int,
) -> tuple[pd.DataFrame, str]:
    """One reference frame: image statistics from the training table; predicted class, confidence
    and softmax (when the table has it) from the validation predictions; embedding from both (every
    row is a real image of the version's dataset). Cells a part does not provide are NaN, which
    Evidently drops per column. Returns the frame and a sentence saying where each part came from."""
    image_columns = list(features.FEATURE_COLUMNS)
    missing = [column for column in image_columns if column not in training.columns]
    if missing:
        raise ValueError(f"reference table lacks feature columns {', '.join(missing)} (features version mismatch?)")
    train_part = sample_rows(training, sample_size, seed)
    reference = pd.DataFrame(train_part[image_columns]).copy()
    reference[PREDICTION_COLUMN] = pd.Series([None] * len(reference), dtype="object")
    reference[CONFIDENCE_COLUMN] = np.nan
    if validation is not None and {PREDICTION_COLUMN, CONFIDENCE_COLUMN, *features.EMBEDDING_COLUMNS} <= set(
        validation.columns
    ):
        outputs = sample_rows(validation, sample_size, seed + 1)
        softmax = present_softmax_columns(outputs)
        held_out = pd.DataFrame(np.nan, index=outputs.index, columns=pd.Index(image_columns))
        held_out[list(features.EMBEDDING_COLUMNS)] = outputs[list(features.EMBEDDING_COLUMNS)]
        held_out[PREDICTION_COLUMN] = as_class_names(_column(outputs, PREDICTION_COLUMN), class_names)
        held_out[CONFIDENCE_COLUMN] = outputs[CONFIDENCE_COLUMN].astype("float64")
        for column in softmax:
            held_out[column] = outputs[column].astype("float64")
        reference = pd.DataFrame(pd.concat([reference, held_out], ignore_index=True))
        source = (
            "image statistics: training table; predicted class, confidence"
            + (" and softmax" if softmax else "")
            + ": validation predictions"
            + ("" if softmax else " (no softmax columns: an older version)")
            + "; embedding: both"
        )
    elif "label" in train_part.columns:
        reference[PREDICTION_COLUMN] = as_class_names(_column(train_part, "label"), class_names).to_numpy()
        source = (
            "image features: training table; predicted class vs training labels (no validation predictions "
            "attached); confidence and softmax not compared"
        )
    else:
        source = "image features: training table; no predictions or labels to compare classes and confidence with"
    reference[PREDICTION_COLUMN] = reference[PREDICTION_COLUMN].astype("object")
    return reference, source


@contextlib.contextmanager
def _fast_embedding_layout() -> Iterator[None]:
    """Evidently's embedding metric computes a t-SNE layout of up to 5,000 points only to draw its
    contour plot: ~70 s on two cores, more than everything else in the job, for a picture. A PCA
    projection draws the same kind of 2-D picture in milliseconds; the drift score is unaffected
    (it comes from the drift method, not from the layout)."""
    from evidently.legacy.metrics.data_drift import embeddings_drift
    from sklearn.decomposition import PCA

    class _PrincipalComponentsLayout:
        def __init__(self, n_components: int = 2, **_: Any) -> None:
            self._pca = PCA(n_components=n_components, random_state=0)

        def fit_transform(self, data: Any) -> np.ndarray:
            return self._pca.fit_transform(np.asarray(data, dtype=np.float64))

    original = embeddings_drift.TSNE
    embeddings_drift.TSNE = _PrincipalComponentsLayout  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        embeddings_drift.TSNE = original


# ------------------------------------------------------------------------------------------ the tests


def class_mix_test(reference: pd.Series, current: pd.Series, seed: int = 0) -> tuple[float, float]:
    """Two-sample chi-square test of homogeneity of two class samples: (p-value, Jensen-Shannon distance).

    Both rows of the 2 x k table are samples, so the reference's sampling noise is part of the null
    (Evidently's `chisquare` takes the reference proportions as exact). Where an expected count is
    below 5 the chi-square approximation fails (10 classes in a 20-row window), and the p-value is
    the share of draws from the exact null (the window's counts are multivariate hypergeometric
    given the pooled counts) whose statistic reaches the observed one."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2

    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    categories = sorted(set(ref) | set(cur))
    if len(categories) < 2 or ref.empty or cur.empty:
        return 1.0, 0.0
    ref_counts = np.asarray(ref.value_counts().reindex(categories, fill_value=0), dtype=np.int64)
    cur_counts = np.asarray(cur.value_counts().reindex(categories, fill_value=0), dtype=np.int64)
    pooled = ref_counts + cur_counts
    share = cur_counts.sum() / pooled.sum()

    def statistic(window: np.ndarray) -> np.ndarray:
        expected_cur, expected_ref = pooled * share, pooled * (1 - share)
        return ((window - expected_cur) ** 2 / expected_cur).sum(axis=-1) + (
            ((pooled - window) - expected_ref) ** 2 / expected_ref
        ).sum(axis=-1)

    observed = float(statistic(cur_counts))
    if min(share, 1 - share) * pooled.min() >= MIN_EXPECTED_COUNT:
        p_value = float(chi2.sf(observed, len(categories) - 1))
    else:
        draws = np.random.default_rng(seed).multivariate_hypergeometric(pooled, int(cur_counts.sum()), NULL_DRAWS)
        p_value = float((1 + np.sum(statistic(draws) >= observed - 1e-9)) / (NULL_DRAWS + 1))
    distance = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()))
    return p_value, distance


def _register_class_test() -> None:
    """Make Evidently run `class_mix_test` for the predicted class, so its report shows the deciding p-value."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def _impl(reference: pd.Series, current: pd.Series, _: Any, threshold: float) -> tuple[float, bool]:
        p_value, _distance = class_mix_test(reference, current)
        return p_value, p_value < threshold

    register_stattest(
        StatTest(
            name=CLASS_TEST,
            display_name="two-sample chi-square p_value",
            allowed_feature_types=[ColumnType.Categorical],
        ),
        default_impl=_impl,
    )


def normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Earth mover's distance in reference standard deviations (inf when a constant column moved)."""
    from scipy.stats import wasserstein_distance

    distance = float(wasserstein_distance(reference, current))
    spread = float(np.std(reference))
    if spread > 0:
        return distance / spread
    return math.inf if distance > 0 else 0.0


def _embedding_sigma(reference_rows: int, current_rows: int) -> float:
    """Spread of a useless classifier's AUC on Evidently's random held-out half (Mann-Whitney), for a
    conservative count of rows per side in that half: two standard deviations below half."""
    n1 = max(math.floor(reference_rows / 2 - math.sqrt(reference_rows)), 1)
    n2 = max(math.floor(current_rows / 2 - math.sqrt(current_rows)), 1)
    return math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))


def embedding_p_value(auc: float, reference_rows: int, current_rows: int) -> float:
    """One-sided p-value of the domain classifier's AUC under "reference and window are alike"."""
    from scipy.stats import norm

    return float(norm.sf((auc - 0.5) / _embedding_sigma(reference_rows, current_rows)))


def embedding_auc_threshold(reference_rows: int, current_rows: int, floor: float, level: float) -> float:
    """The AUC above which the embedding rejects: max(floor, 0.5 + z(level) sigma0)."""
    from scipy.stats import norm

    return max(floor, 0.5 + float(norm.isf(level)) * _embedding_sigma(reference_rows, current_rows))


# ------------------------------------------------------------------------------ which signals decide


@dataclass(frozen=True)
class SignalPlan:
    """Which columns each deciding family tests, at which level; what the report shows besides."""

    families: dict[str, list[str]]
    """Deciding family -> its columns (the embedding family: the embedding's name)."""
    levels: dict[str, float]
    """Deciding family -> its level: alpha x its share (weighted Bonferroni, `FAMILY_SHARES`)."""
    shown: list[str]
    """Columns Evidently tests and shows: every deciding column, and the confidence even when covered."""
    counts: dict[str, tuple[int, int]]
    """Column -> non-missing rows (reference, current)."""
    skipped: dict[str, str]

    @property
    def joint_outputs(self) -> bool:
        """The class and the softmax are tested as one family (`monitoring.output_shift`)."""
        return all(family in self.families for family in OUTPUT_FAMILIES)

    def family_of(self, column: str) -> str:
        return next((family for family, columns in self.families.items() if column in columns), CONFIDENCE)

    def column_level(self, column: str) -> float:
        """The per-test level: the family's level, Bonferroni-split over its columns (a column shown
        but covered by another family: the smallest family level, for the report's verdict)."""
        family = self.family_of(column)
        if family not in self.families:
            return min(self.levels.values(), default=0.0)
        if self.joint_outputs and family in OUTPUT_FAMILIES:  # the report's verdict: Bonferroni over k + 1
            return self.levels[family] / sum(len(self.families[name]) for name in OUTPUT_FAMILIES)
        return self.levels[family] / len(self.families[family])


def _rows(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].notna().sum()) if column in frame.columns else 0


def _softmax_availability(current: pd.DataFrame, reference: pd.DataFrame) -> tuple[list[str], str | None]:
    """The softmax columns both sides carry with values, or [] and why not."""
    in_current, in_reference = present_softmax_columns(current), present_softmax_columns(reference)
    if not in_current and not in_reference:
        return [], "no softmax columns in the window or the reference (logged before the model's outputs were)"
    if not in_current:
        return [], "the window has no softmax columns (logged without the model's outputs)"
    if not in_reference:
        return [], "the reference has no softmax columns (a version registered before they were recorded)"
    if in_current != in_reference:
        return [], f"the window has {len(in_current)} softmax outputs, the reference {len(in_reference)}"
    empty = [name for name in in_current if not _rows(current, name) or not _rows(reference, name)]
    if empty:
        return [], f"softmax columns without values on one side ({', '.join(empty[:3])})"
    return in_current, None


def plan_signals(
    current: pd.DataFrame, reference: pd.DataFrame, significance: float, include_embedding: bool = True
) -> SignalPlan:
    """The deciding families for this pair of frames and the level each gets."""
    columns = [*features.STATISTIC_COLUMNS, PREDICTION_COLUMN, CONFIDENCE_COLUMN]
    softmax, softmax_reason = _softmax_availability(current, reference)
    counts = {name: (_rows(reference, name), _rows(current, name)) for name in [*columns, *softmax]}
    compared = {name for name, (ref_rows, cur_rows) in counts.items() if ref_rows and cur_rows}
    families: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    statistics = [name for name in features.STATISTIC_COLUMNS if name in compared]
    if statistics:
        families[IMAGE_STATISTICS] = statistics
    embedding_rows = (_rows(reference, features.EMBEDDING_COLUMNS[0]), _rows(current, features.EMBEDDING_COLUMNS[0]))
    counts[EMBEDDING_NAME] = embedding_rows
    if include_embedding and all(embedding_rows):
        families[EMBEDDING] = [EMBEDDING_NAME]
    else:
        skipped[EMBEDDING] = "not requested" if not include_embedding else "no embedding rows on one side"
    if PREDICTION_COLUMN in compared:
        families[CLASS] = [PREDICTION_COLUMN]
    else:
        skipped[CLASS] = "no predicted classes (or labels) on one side"
    if softmax:
        families[SOFTMAX] = softmax
        skipped[CONFIDENCE] = "covered by the softmax family (the confidence is the largest softmax output)"
    else:
        skipped[SOFTMAX] = softmax_reason or "not compared"
        if CONFIDENCE_COLUMN in compared:
            families[CONFIDENCE] = [CONFIDENCE_COLUMN]
        else:
            skipped[CONFIDENCE] = "no confidence in the reference (no validation predictions attached)"
    shown = [name for name in [*columns, *softmax] if name in compared]
    shares = {family: FAMILY_SHARES.get(family, 1.0) for family in families}
    levels = {family: significance * share / sum(shares.values()) for family, share in shares.items()}
    if all(family in families for family in OUTPUT_FAMILIES):  # one joint family: one level, both shares
        joint = math.fsum(levels[family] for family in OUTPUT_FAMILIES)
        levels.update(dict.fromkeys(OUTPUT_FAMILIES, joint))
    return SignalPlan(families=families, levels=levels, shown=shown, counts=counts, skipped=skipped)


def spent_level(levels: Mapping[str, float]) -> float:
    """The family-wise level the families spend together: the joint class and softmax test counts
    once (its two families share one permutation test and one level)."""
    joint = [levels[family] for family in OUTPUT_FAMILIES if family in levels]
    others = [level for family, level in levels.items() if family not in OUTPUT_FAMILIES]
    single = joint[0] if len(joint) == len(OUTPUT_FAMILIES) else math.fsum(joint)
    return math.fsum([*others, single])


# ---------------------------------------------------------------------------------- the computation


def _run_report(
    current: pd.DataFrame, reference: pd.DataFrame, plan: SignalPlan, embedding_threshold: float | None
) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import ModelDriftMethod
    from evidently.presets import DataDriftPreset

    _register_class_test()
    numerical = [name for name in plan.shown if name != PREDICTION_COLUMN]
    embedding_columns = list(features.EMBEDDING_COLUMNS)
    current = current.copy()
    reference = reference.copy()
    current[PREDICTION_COLUMN] = current[PREDICTION_COLUMN].astype("object")
    definition = DataDefinition(
        numerical_columns=[*numerical, *embedding_columns],
        categorical_columns=[PREDICTION_COLUMN],
        embeddings={EMBEDDING_NAME: embedding_columns},
    )
    metrics: list[Any] = [
        DataDriftPreset(
            columns=plan.shown,
            per_column_method={name: CLASS_TEST if name == PREDICTION_COLUMN else "ks" for name in plan.shown},
            per_column_threshold={name: plan.column_level(name) for name in plan.shown},
            # The report's own headline: "any column drifted" at the corrected levels, the nearest
            # Evidently has to the family-wise rule (the summary holds the decision itself).
            drift_share=1.0 / max(len(plan.shown), 1),
        )
    ]
    if embedding_threshold is not None:
        metrics.append(
            EmbeddingsDrift(
                embeddings_name=EMBEDDING_NAME,
                # A pydantic-v1-style model whose metaclass pyright cannot read (it asks for `type`).
                drift_method=cast(Any, ModelDriftMethod)(threshold=embedding_threshold, bootstrap=False),
            )
        )
    with _fast_embedding_layout(), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Report(metrics).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )


def _column_effect(current: pd.DataFrame, reference: pd.DataFrame, name: str) -> float:
    if name == PREDICTION_COLUMN:
        return class_mix_test(pd.Series(reference[name]), pd.Series(current[name]))[1]
    return normalised_wasserstein(
        reference[name].dropna().to_numpy(dtype=np.float64), current[name].dropna().to_numpy(dtype=np.float64)
    )


def _family_test(family: str, members: list[FeatureDrift], level: float, outputs: OutputsTest | None) -> SignalTest:
    """Bonferroni within the family, over the columns whose effect reaches the floor; for the class
    and the softmax, when tested jointly (`outputs`), the permutation minP p-value instead."""
    count = len(members)
    relevant = [member for member in members if member.effect >= member.effect_floor]
    method = members[0].method + (f", Bonferroni over {count}" if count > 1 else "")
    if family == EMBEDDING:
        (member,) = members
        p_value = embedding_p_value(member.score, member.reference_rows, member.current_rows) if relevant else 1.0
        deciding = member if relevant else None
    elif outputs is not None and family in OUTPUT_FAMILIES:
        deciding = min(relevant, key=lambda member: outputs.weighted(member.name), default=None)
        p_value = outputs.adjusted(deciding.name) if deciding is not None else 1.0
        method = f"{members[0].method}, jointly with the {'softmax' if family == CLASS else 'class'}: permutation minP"
    else:
        deciding = min(relevant, key=lambda member: member.score, default=None)
        p_value = min(1.0, count * deciding.score) if deciding is not None else 1.0
    shown = deciding or max(members, key=lambda member: member.effect)
    return SignalTest(
        family=family,
        method=method,
        p_value=p_value,
        level=level,
        rejected=p_value < level,
        columns=count,
        deciding_column=deciding.name if deciding is not None else None,
        effect=shown.effect,
        effect_floor=shown.effect_floor,
    )


def _joint_outputs(
    current: pd.DataFrame, reference: pd.DataFrame, plan: SignalPlan
) -> tuple[OutputsTest | None, dict[str, float]]:
    """The joint test of the class and the softmax, and the levels the families are judged at. In
    the rare case that no row carries every output on one side, the joint level is split between the
    two by Bonferroni (by their column counts), so the sum stays what the plan gave them."""
    levels = dict(plan.levels)
    if not plan.joint_outputs:
        return None, levels
    outputs = outputs_test(
        current, reference, PREDICTION_COLUMN, plan.families[SOFTMAX],
        class_share=FAMILY_SHARES.get(CLASS, 1.0), softmax_share=FAMILY_SHARES.get(SOFTMAX, 1.0),
    )  # fmt: skip
    if outputs is None:
        total = sum(len(plan.families[family]) for family in OUTPUT_FAMILIES)
        for family in OUTPUT_FAMILIES:
            levels[family] = plan.levels[family] * len(plan.families[family]) / total
    return outputs, levels


def compute_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    thresholds: DriftThresholds,
    *,
    include_embedding: bool = True,
) -> DriftComputation:
    """Run the Evidently report and decide. `current` has the feature columns + prediction (class
    names) + confidence (+ softmax columns); `reference` comes from `build_reference`. Both should
    already be sampled. Rows repeated exactly are compared once (`distinct_rows`)."""
    current, repeated_current = distinct_rows(current)
    reference, repeated_reference = distinct_rows(reference)
    plan = plan_signals(current, reference, thresholds.p_value, include_embedding)
    embedding_threshold = None
    if EMBEDDING in plan.families:
        embedding_threshold = embedding_auc_threshold(
            *plan.counts[EMBEDDING_NAME], thresholds.embedding, plan.column_level(EMBEDDING_NAME)
        )
    snapshot = _run_report(current, reference, plan, embedding_threshold)
    floors = {"numerical": thresholds.numerical, "categorical": thresholds.categorical}

    results: list[FeatureDrift] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            name = config["column"]
            family = plan.family_of(name)
            if family not in plan.families:
                continue  # shown in the report, covered by another family
            column_kind = "categorical" if name == PREDICTION_COLUMN else "numerical"
            score, threshold = float(metric["value"]), float(config["threshold"])
            effect = _column_effect(current, reference, name)
            drifted = score < threshold and effect >= floors[column_kind]
            results.append(
                FeatureDrift(
                    name, column_kind, config["method"], score, threshold, drifted, *plan.counts[name],
                    family=family, effect=effect, effect_floor=floors[column_kind],
                )
            )  # fmt: skip
        elif kind.endswith(":EmbeddingsDrift") and embedding_threshold is not None:
            auc = float(metric["value"])
            results.append(
                FeatureDrift(
                    EMBEDDING_NAME, "embedding", "domain classifier ROC AUC", auc, embedding_threshold,
                    auc > embedding_threshold, *plan.counts[EMBEDDING_NAME],
                    family=EMBEDDING, effect=auc, effect_floor=thresholds.embedding,
                )
            )  # fmt: skip
    outputs, levels = _joint_outputs(current, reference, plan)
    signals = [
        _family_test(family, [result for result in results if result.family == family], levels[family], outputs)
        for family in SIGNAL_FAMILIES
        if any(result.family == family for result in results)
    ]
    return DriftComputation(
        features=results,
        signals=signals,
        dataset_drift=any(signal.rejected for signal in signals),
        significance_level=thresholds.p_value,
        snapshot=snapshot,
        skipped_signals=plan.skipped,
        repeated_rows={"current": repeated_current, "reference": repeated_reference},
    )


def summarise_features(computation: DriftComputation) -> Mapping[str, Any]:
    return {feature.name: feature.as_dict() for feature in computation.features}


def summarise_signals(computation: DriftComputation) -> Mapping[str, Any]:
    """Each family's test, and why the others did not take part."""
    tested: dict[str, Any] = {signal.family: signal.as_dict() for signal in computation.signals}
    for family, reason in computation.skipped_signals.items():
        tested.setdefault(family, {"skipped": reason})
    return tested

"""The drift computation: one Evidently report comparing a window of predictions with the reference.

What is compared
----------------
* the 15 image statistics of `workloads.features` (one per-column test each);
* the 8 embedding components, as ONE embedding with Evidently's domain-classifier method
  (`ModelDriftMethod`: a linear classifier tries to tell reference rows from current rows; its ROC
  AUC on a held-out half is the score). Testing the components one by one would give the embedding
  8 votes in the drifted share, and would miss shifts that only move a direction of the space;
* the predicted class (categorical) and the confidence (numerical).

The reference for the image statistics is the training feature table of the model version that
served the window (`reference/features.parquet`): what the model learned from. The reference for the
predicted class and the confidence is the validation prediction table of the same version
(`reference/validation_predictions.parquet`): predictions of *that* model on images it did not train
on. Comparing with the training labels instead would flag the model's own errors as drift, and the
confidence on training images is inflated (the model has seen them), so every healthy day would look
"less confident". When a version has no validation table, the predicted classes are compared with the
training labels (the class mix it learned) and the confidence is not compared; the summary says so.

Per-column tests (both sides' sizes decide, per column)
-------------------------------------------------------
* when both sides have >= 1,000 rows: normalised Wasserstein distance (the earth mover's distance
  divided by the reference's standard deviation; drift when >= MLOPS_DRIFT_NUMERICAL_THRESHOLD, 0.1)
  for numbers and Jensen-Shannon distance (drift when >= 0.1) for the predicted class. These are effect
  sizes: a 0.1-standard-deviation move is drift whatever the traffic, whereas a p-value test on a
  million rows flags differences nobody cares about;
* below 1,000 rows on a side: two-sample Kolmogorov-Smirnov / chi-square p-values (drift when
  p < MLOPS_DRIFT_P_VALUE, 0.05), whose false-alarm rate is controlled at any size, where a distance
  estimated from a few hundred rows is too noisy to compare with a fixed threshold;
* the embedding drifts when the AUC exceeds max(MLOPS_DRIFT_EMBEDDING_THRESHOLD (0.55),
  0.5 + 3 sigma0), where sigma0 = sqrt((n1 + n2 + 1) / (12 n1 n2)) is the standard deviation of the AUC
  of a useless classifier on the held-out halves (Mann-Whitney): small windows do not alarm on noise.

The dataset drifts when the share of drifted features (15 statistics + class + confidence +
embedding) is >= MLOPS_DRIFT_SHARE (0.3: a shift that moves a third of what we look at).

Sample size (MLOPS_DRIFT_SAMPLE_SIZE, default 20,000 rows from each side)
------------------------------------------------------------------------
The decision for large windows rests on the normalised Wasserstein distance with threshold 0.1. Its
estimate from n current and m reference rows is the true distance plus sampling noise of order
sqrt(1/n + 1/m). Measured here (200 repetitions per size, standard normal samples;
`benchmarks/drift.py --power` prints this table):

    rows per side      1,000   2,000   5,000   10,000   20,000   50,000
    null mean          0.057   0.042   0.026    0.019    0.013    0.0085
    null 99th pct      0.123   0.084   0.049    0.042    0.028    0.018
    detect 0.12 sd     0.67    0.77    0.87     0.90     0.98     1.00

At 20,000 rows per side the distance of two samples of the same distribution stays below 0.03 in
99 % of cases (a per-column false alarm needs 0.1: practically never), and a shift of 0.12 standard
deviations (20 % above the threshold) is detected in 98 % of windows; past that, more rows only
sharpen the boundary between 0.10 and 0.12, they do not change any decision at the effect sizes the
quality benchmark uses (all of which, at their strongest magnitude, move several statistics by far
more than 0.12 sd). The same holds for the Jensen-Shannon distance of the class mix (10 classes:
null noise of order sqrt(k / n) ~ 0.02 at 20,000 rows) and for the embedding AUC (sigma0 = 0.004).
So the job samples at most 20,000 rows uniformly (seeded) from the window and from the reference,
and Evidently's cost stops growing with the traffic: only reading the log is linear.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workloads import features

PREDICTION_COLUMN = "prediction"
CONFIDENCE_COLUMN = "confidence"
EMBEDDING_NAME = "embedding"
SMALL_SAMPLE_ROWS = 1000
P_VALUE_METHODS = frozenset({"ks", "chisquare"})


@dataclass(frozen=True)
class DriftThresholds:
    drift_share: float = 0.3
    numerical: float = 0.1
    categorical: float = 0.1
    p_value: float = 0.05
    embedding: float = 0.55


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    """`numerical`, `categorical` or `embedding`."""
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }


@dataclass
class DriftComputation:
    features: list[FeatureDrift]
    drifted_share: float
    dataset_drift: bool
    drift_share_threshold: float
    snapshot: Any
    """The Evidently snapshot (`save_html`, `dict`)."""

    @property
    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.drifted]


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
    result[valid] = lookup[indices[valid].to_numpy(dtype=np.int64)]
    return result


def sample_rows(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    if len(frame) <= size:
        return frame.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=size, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def build_reference(
    training: pd.DataFrame,
    validation: pd.DataFrame | None,
    class_names: Sequence[str] | None,
    sample_size: int,
    seed: int,
) -> tuple[pd.DataFrame, str]:
    """One reference frame: image statistics from the training table; predicted class and confidence
    from the validation predictions; embedding from both (every row is a real image of the version's
    dataset). Cells a part does not provide are NaN, which Evidently drops per column.
    Returns the frame and a sentence saying where each part came from."""
    image_columns = list(features.FEATURE_COLUMNS)
    missing = [column for column in image_columns if column not in training.columns]
    if missing:
        raise ValueError(f"reference table lacks feature columns {', '.join(missing)} (features version mismatch?)")
    train_part = sample_rows(training, sample_size, seed)
    reference = train_part[image_columns].copy()
    reference[PREDICTION_COLUMN] = pd.Series([None] * len(reference), dtype="object")
    reference[CONFIDENCE_COLUMN] = np.nan
    if validation is not None and {PREDICTION_COLUMN, CONFIDENCE_COLUMN, *features.EMBEDDING_COLUMNS} <= set(
        validation.columns
    ):
        outputs = sample_rows(validation, sample_size, seed + 1)
        held_out = pd.DataFrame(np.nan, index=outputs.index, columns=image_columns)
        held_out[list(features.EMBEDDING_COLUMNS)] = outputs[list(features.EMBEDDING_COLUMNS)]
        held_out[PREDICTION_COLUMN] = as_class_names(outputs[PREDICTION_COLUMN], class_names)
        held_out[CONFIDENCE_COLUMN] = outputs[CONFIDENCE_COLUMN].astype("float64")
        reference = pd.concat([reference, held_out], ignore_index=True)
        source = (
            "image statistics: training table; predicted class and confidence: validation predictions; embedding: both"
        )
    elif "label" in train_part.columns:
        reference[PREDICTION_COLUMN] = as_class_names(train_part["label"], class_names).to_numpy()
        source = (
            "image features: training table; predicted class vs training labels (no validation predictions "
            "attached); confidence not compared"
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


def embedding_auc_threshold(reference_rows: int, current_rows: int, floor: float) -> float:
    """max(floor, 0.5 + 3 sigma0) for the AUC of a useless classifier on the held-out halves."""
    n1, n2 = max(reference_rows // 2, 1), max(current_rows // 2, 1)
    sigma = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
    return max(floor, 0.5 + 3.0 * sigma)


def _column_method(kind: str, reference_rows: int, current_rows: int, thresholds: DriftThresholds) -> tuple[str, float]:
    small = min(reference_rows, current_rows) < SMALL_SAMPLE_ROWS
    if kind == "categorical":
        return ("chisquare", thresholds.p_value) if small else ("jensenshannon", thresholds.categorical)
    return ("ks", thresholds.p_value) if small else ("wasserstein", thresholds.numerical)


def compute_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    thresholds: DriftThresholds,
    *,
    include_embedding: bool = True,
) -> DriftComputation:
    """Run the Evidently report. `current` has the feature columns + prediction (class names) +
    confidence; `reference` comes from `build_reference`. Both should already be sampled."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import ModelDriftMethod
    from evidently.presets import DataDriftPreset

    numerical = [*features.STATISTIC_COLUMNS, CONFIDENCE_COLUMN]
    embedding_columns = list(features.EMBEDDING_COLUMNS)
    kinds: dict[str, str] = {name: "numerical" for name in numerical}
    kinds[PREDICTION_COLUMN] = "categorical"
    counts: dict[str, tuple[int, int]] = {}
    for name in kinds:
        counts[name] = (int(reference[name].notna().sum()), int(current[name].notna().sum()))
    compared = [name for name, (ref_rows, cur_rows) in counts.items() if ref_rows > 0 and cur_rows > 0]
    methods: dict[str, str] = {}
    column_thresholds: dict[str, float] = {}
    for name in compared:
        methods[name], column_thresholds[name] = _column_method(kinds[name], *counts[name], thresholds)

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
            columns=compared,
            per_column_method=methods,
            per_column_threshold=column_thresholds,
            drift_share=thresholds.drift_share,
        )
    ]
    image_reference_rows = int(reference[embedding_columns[0]].notna().sum())
    embedding_threshold = embedding_auc_threshold(image_reference_rows, len(current), thresholds.embedding)
    if include_embedding:
        metrics.append(
            EmbeddingsDrift(
                embeddings_name=EMBEDDING_NAME,
                drift_method=ModelDriftMethod(threshold=embedding_threshold, bootstrap=False),
            )
        )
    report = Report(metrics)
    with _fast_embedding_layout(), np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = report.run(
                current_data=Dataset.from_pandas(current, data_definition=definition),
                reference_data=Dataset.from_pandas(reference, data_definition=definition),
            )

    results: list[FeatureDrift] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            name = config["column"]
            method, threshold, score = config["method"], float(config["threshold"]), float(metric["value"])
            drifted = score < threshold if method in P_VALUE_METHODS else score >= threshold
            results.append(FeatureDrift(name, kinds[name], method, score, threshold, drifted, *counts[name]))
        elif kind.endswith(":EmbeddingsDrift"):
            score = float(metric["value"])
            results.append(
                FeatureDrift(
                    EMBEDDING_NAME,
                    "embedding",
                    "domain classifier ROC AUC",
                    score,
                    embedding_threshold,
                    score > embedding_threshold,
                    image_reference_rows,
                    len(current),
                )
            )
    share = sum(feature.drifted for feature in results) / len(results) if results else 0.0
    return DriftComputation(
        features=results,
        drifted_share=share,
        dataset_drift=bool(results) and share >= thresholds.drift_share,
        drift_share_threshold=thresholds.drift_share,
        snapshot=snapshot,
    )


def summarise_features(computation: DriftComputation) -> Mapping[str, Any]:
    return {feature.name: feature.as_dict() for feature in computation.features}

"""A version that learned a shifted distribution stops alarming on it, and still alarms on a new one.

Tiny frames (no server, no model), through the drift job's own `compare`: a training table of 600
original rows and 400 rows of a learned shift (every image statistic and the embedding moved by
1.5 standard deviations), as the training pipeline marks them (`reference_group`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitoring.comparison import compare
from monitoring.reference_groups import MIN_GROUP_ROWS, group_reference
from monitoring.reference_loader import Reference
from monitoring.settings import DriftSettings
from monitoring.window import VERSION_COLUMN, Window
from tests.monitoring.test_drift import CLASSES, image_features, with_outputs
from workloads.reference import ORIGINAL_GROUP, REFERENCE_GROUP_COLUMN, production_group

LEARNED_DAY = "2026-11-02"
LEARNED = production_group(LEARNED_DAY)
SHIFT = 1.5


def training_table(production_rows: int = 400) -> pd.DataFrame:
    generator = np.random.default_rng(0)
    original = image_features(600, generator, statistics=0.0, embedding=0.0)
    original[REFERENCE_GROUP_COLUMN] = ORIGINAL_GROUP
    learned = image_features(production_rows, generator, statistics=SHIFT, embedding=SHIFT)
    learned[REFERENCE_GROUP_COLUMN] = LEARNED
    table = pd.concat([original, learned], ignore_index=True)
    table["label"] = generator.integers(0, len(CLASSES), size=len(table))
    return table


def reference_of(training: pd.DataFrame) -> Reference:
    generator = np.random.default_rng(1)
    validation = with_outputs(image_features(300, generator, statistics=0.0, embedding=0.0), generator, 0.3)
    return Reference(training=training, validation=validation, provenance={"dataset": "tiny", "dataset_version": "v2"})


def window_of(shift: float, seed: int = 5) -> Window:
    """300 logged rows served by v2, its images moved by `shift` standard deviations."""
    generator = np.random.default_rng(seed)
    table = with_outputs(image_features(300, generator, statistics=shift, embedding=shift), generator, 0.3)
    table["prediction"] = np.asarray(CLASSES, dtype=object)[table["prediction"].to_numpy()]
    table[VERSION_COLUMN] = "2"
    return Window("tiny", "2026-11-20", [], len(table), {"2": len(table)}, pa.Table.from_pandas(table))


@pytest.fixture(scope="module")
def settings() -> DriftSettings:
    return DriftSettings()


def test_the_learned_shift_is_quiet_against_its_own_group(settings: DriftSettings) -> None:
    comparison = compare(window_of(SHIFT), "2", reference_of(training_table()), settings, CLASSES).comparison
    assert not comparison.dataset_drift
    verdicts = {group.name: group for group in comparison.reference_groups}
    assert verdicts[ORIGINAL_GROUP].dataset_drift is True
    assert verdicts[LEARNED].dataset_drift is False and verdicts[LEARNED].reported
    assert comparison.reference_rows.training == 400
    assert comparison.as_dict()["reference_groups"][1]["name"] == LEARNED


def test_the_same_table_pooled_alarms_on_the_learned_shift(settings: DriftSettings) -> None:
    """The control: without the marks, the learned shift is a minority of a mixture and drifts."""
    pooled = training_table().drop(columns=[REFERENCE_GROUP_COLUMN])
    comparison = compare(window_of(SHIFT), "2", reference_of(pooled), settings, CLASSES).comparison
    assert comparison.dataset_drift
    assert comparison.reference_groups == ()
    assert "reference_groups" not in comparison.as_dict()


def test_an_original_day_is_quiet_and_stops_at_the_original_group(settings: DriftSettings) -> None:
    comparison = compare(window_of(0.0), "2", reference_of(training_table()), settings, CLASSES).comparison
    assert not comparison.dataset_drift
    original, learned = comparison.reference_groups
    assert original.reported and original.dataset_drift is False
    assert learned.skipped == "an earlier group matched"


def test_a_new_shift_still_alarms_and_reports_the_original_group(settings: DriftSettings) -> None:
    comparison = compare(window_of(-SHIFT), "2", reference_of(training_table()), settings, CLASSES).comparison
    assert comparison.dataset_drift
    assert [group.dataset_drift for group in comparison.reference_groups] == [True, True]
    assert comparison.reference_groups[0].reported
    assert comparison.reference_rows.validation == 300  # the original group's comparison, with its outputs


def test_a_group_too_small_to_judge_is_not_compared(settings: DriftSettings) -> None:
    training = training_table(production_rows=MIN_GROUP_ROWS - 1)
    grouped = group_reference(reference_of(training))
    assert [group.name for group in grouped.groups] == [ORIGINAL_GROUP]
    assert grouped.too_small == ((LEARNED, MIN_GROUP_ROWS - 1),)
    comparison = compare(window_of(SHIFT), "2", reference_of(training), settings, CLASSES).comparison
    assert comparison.dataset_drift
    assert comparison.reference_groups[-1].skipped == f"fewer than {MIN_GROUP_ROWS} images"

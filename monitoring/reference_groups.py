"""The distributions a model version learned from, each a reference of its own.

A version retrained on labelled production images (`mlops data snapshot --with-labels`) learned
two kinds of data: the dataset as first built, and the shifted days it was given labels for. Its
training table marks each row with where it came from (`workloads.reference.REFERENCE_GROUP_COLUMN`).
Pooled into one reference, either kind of day is a minority of a mixture, and the tests reject it
for that alone: in `make demo` the retrained digits version, compared with its pooled training
table, flagged the second drifted day (drifted share 0.33) and the normal day too (0.26), although
it had learned both. So the drift job compares a window with each group in turn and calls the day
drifted only when it differs from every one of them.

- The `original` group keeps the validation predictions (the model's outputs on images it did not
  train on), so it is tested on every signal, as a version without production rows always was.
- A production group has no such held-out outputs (its images were trained on, and the model's
  outputs on its own training images are over-confident), so its predicted class is compared with
  the group's labels and the confidence and softmax are not compared (`build_reference`'s path for a
  reference without validation predictions).
- A group of fewer than `MIN_GROUP_ROWS` training images is not compared on its own: the image
  statistics of a few dozen images say little, and a quiet verdict against them would hide a shift.

Requiring every group to differ can only lower the false-alarm rate; its price is that a new shift
close to a learned one is not flagged, which is what having learned it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workloads.reference import ORIGINAL_GROUP, REFERENCE_GROUP_COLUMN

if TYPE_CHECKING:
    import pandas as pd

    from monitoring.reference_loader import Reference

MIN_GROUP_ROWS = 100


@dataclass(frozen=True)
class ReferenceGroup:
    name: str
    training: pd.DataFrame
    validation: pd.DataFrame | None
    """The validation predictions for the `original` group; None for a production group."""


@dataclass(frozen=True)
class GroupedReference:
    groups: tuple[ReferenceGroup, ...]
    """The groups to compare with, `original` first, then production groups by day."""
    too_small: tuple[tuple[str, int], ...]
    """(group, training rows) of the groups below MIN_GROUP_ROWS, not compared."""


def group_reference(reference: Reference) -> GroupedReference:
    """Split `reference` into the distributions its version learned (one group for a table without marks)."""
    training = reference.training
    if REFERENCE_GROUP_COLUMN not in training.columns:
        return GroupedReference((ReferenceGroup(ORIGINAL_GROUP, training, reference.validation),), ())
    names = training[REFERENCE_GROUP_COLUMN].astype(str)
    groups: list[ReferenceGroup] = []
    too_small: list[tuple[str, int]] = []
    for name in sorted(set(names), key=lambda group: (group != ORIGINAL_GROUP, group)):
        rows = training.loc[names == name].drop(columns=[REFERENCE_GROUP_COLUMN]).reset_index(drop=True)
        original = name == ORIGINAL_GROUP
        if original or len(rows) >= MIN_GROUP_ROWS:
            groups.append(ReferenceGroup(name, rows, reference.validation if original else None))
        else:
            too_small.append((name, len(rows)))
    if not groups:  # no original rows and only small production groups: compare with them all at once
        return GroupedReference((ReferenceGroup(ORIGINAL_GROUP, training, reference.validation),), ())
    return GroupedReference(tuple(groups), tuple(too_small))

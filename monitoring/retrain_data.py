"""Retrain on new data only: how many labelled production images a retrain would add, and asking for them.

A retrain on the dataset the model already learned registers the same model again (issue 15 saw
0.9805 → 0.9805). So the trigger (`monitoring.actions.retrain_once`) first counts the labelled
production images of its window — the prediction log joined with the labels store,
`workloads.labelled_datasets` — that the newest dataset version does not hold yet. With enough of
them it snapshots base + those images as a new version and trains on it; with fewer it asks for
labels instead: an alert of its own kind (`labels`, once per cooldown) naming the labelling queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from monitoring import alerts
from monitoring.settings import DriftVariables, RetrainSettings
from workloads.catalogue_entry import CatalogueEntry
from workloads.datasets.stores import open_store
from workloads.labelled_datasets import (
    LabelledWindow,
    ProductionSnapshot,
    labels_in_version,
    new_labelled_images,
    read_labelled_images,
    snapshot_with_labels,
)

LABELS = "labels"
"""Alert kind of a request for labels (its own cooldown, beside drift and quality)."""


@dataclass(frozen=True)
class NewLabels:
    count: int
    """Labelled production images of the window the newest dataset version lacks."""
    window: LabelledWindow


def window_for(model: str, settings: RetrainSettings, day: str) -> LabelledWindow:
    return LabelledWindow.ending(
        model, settings.predictions_store, settings.labels_store, date.fromisoformat(day), settings.label_days
    )


def count_new_labels(entry: CatalogueEntry, settings: RetrainSettings, day: str, now: datetime) -> NewLabels:
    window = window_for(entry.name, settings, day)
    images = read_labelled_images(window, now)
    known = labels_in_version(entry.dataset, open_store(settings.dataset_store), settings.base_version)
    return NewLabels(new_labelled_images(images, known), window)


def labels_request(model: str, day: str, trigger: str, found: int, settings: RetrainSettings) -> alerts.Alert:
    """The alert that asks for labels instead of a retrain on the same data."""
    needed = settings.min_new_labels
    return alerts.Alert(
        model=model,
        kind=LABELS,
        title=f"[labels] {model} {day}: {trigger}, but retraining needs labelled production images",
        text=(
            f"{found} new labelled production images of the {needed} a retrain needs "
            f"({DriftVariables.MIN_NEW_LABELS}); not retraining on the data the model already learned. "
            f"Label the day's queue: `mlops labels queue {model} --day {day} --budget {max(needed - found, 1)} "
            f"--out DIR`, load DIR/tasks.json into Label Studio, then `mlops labels import {model} EXPORT.json` "
            "(or send POST /feedback); the next run retrains."
        ),
        link=None,
    )


def snapshot_for_retrain(
    entry: CatalogueEntry, settings: RetrainSettings, window: LabelledWindow, now: datetime
) -> ProductionSnapshot:
    """The dataset version the retrain trains on: the newest one + the window's labelled images."""
    return snapshot_with_labels(
        entry,
        window,
        open_store(settings.dataset_store),
        base_version=settings.base_version,
        holdout_fraction=settings.holdout_fraction,
        now=now,
    )

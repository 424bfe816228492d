"""The loop closing in `make demo`: ground truth for the drifted day, a retrain on it, a second drifted day.

For each model whose entry says `retrain_on_drift`, after the drift job has alerted on the drifted day
(and, finding no labels, asked for them instead of retraining):

1. the quality job's label-free estimate of the day (when the job has one), before any label exists;
2. the day's images through the labelling queue, answered by the demo's annotator, imported
   (`cli.local_ground_truth`); the quality job measures v1's accuracy on the day, finds it degraded,
   and its retrain trigger snapshots base + those labelled images as a new dataset version and runs
   the training pipeline on it; the gate promotes the candidate when it beats production on the
   held-out production slice without regressing on the original validation split;
3. the service swaps to the new version; a second drifted day (the same shift, images no retrain
   saw inverted) is served by it, labelled the same way and measured by the quality job;
4. the drift job on that day, against the new version's reference (its own training data).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli import local_ground_truth, local_traffic
from workloads import catalogue

DRIFTED_DAY_IMAGES = 500
"""Images per drifted day (digits: 1,438 training images, so two days of 500 stay disjoint)."""
LABELLING_BUDGET = 500
"""The queue's budget per day: every image of a drifted day."""
SWAP_TIMEOUT_SECONDS = 90.0


class ClosureError(RuntimeError):
    """The loop did not close as it should; the message says where."""


@dataclass
class Measured:
    """One version's accuracy on one day, as the quality job reported it."""

    version: str
    day: str
    accuracy: float | None
    labelled: int
    estimated: float | None = None
    validation: float | None = None


@dataclass
class Closure:
    """What the loop closing showed for one model."""

    estimated_before_labels: Measured | None = None
    first_day: Measured | None = None
    retrain: dict[str, Any] = field(default_factory=dict)
    second_day: Measured | None = None
    second_day_drift: str = ""
    versions: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """version → accuracy on the original validation split (`original`), on its held-out production
    slice (`recent`), and production's on that slice when it was registered (`production_recent`)."""


def measured_row(summary: Any, day: str, version: str | None = None) -> Measured | None:
    """The quality job's row of `day` (and `version`), as a `Measured`."""
    for row in summary.rows:
        if row.day == day and (version is None or row.model_version == version):
            return Measured(
                version=row.model_version,
                day=day,
                accuracy=row.accuracy,
                labelled=row.labelled,
                estimated=getattr(row, "estimated_accuracy", None),  # the label-free estimate, where the job has it
                validation=row.validation_accuracy,
            )
    return None


def describe_measured(measured: Measured | None) -> str:
    if measured is None:
        return "no row in quality.json"
    text = f"v{measured.version} on {measured.day}: "
    text += (
        f"measured accuracy {measured.accuracy:.3f} ({measured.labelled} labels)"
        if measured.accuracy is not None
        else "no labels yet"
    )
    if measured.estimated is not None:
        text += f", estimated {measured.estimated:.3f}"
    if measured.validation is not None:
        text += f"; validation accuracy {measured.validation:.3f}"
    return text


def describe_retrain(retrain: dict[str, Any]) -> str:
    if retrain.get("submitted"):
        return f"on dataset {retrain.get('dataset_version')}: {retrain.get('outcome')}"
    return f"not submitted: {retrain.get('reason')}"


def wait_for_version(service_url: str, version: str, probe: Any, timeout: float = SWAP_TIMEOUT_SECONDS) -> None:
    """Until the service answers with `version` (it follows the alias every few seconds)."""
    deadline = time.monotonic() + timeout
    while (served := local_traffic.served_version(service_url, probe)) != version:
        if time.monotonic() > deadline:
            raise ClosureError(f"{service_url} still serves v{served} {timeout:.0f} s after v{version} was promoted")
        time.sleep(1.0)


def version_metrics(model: str) -> dict[str, dict[str, float | None]]:
    """Each registered version's accuracy on the original validation split and on its recent slice."""
    from mlflow.tracking import MlflowClient

    from pipelines.steps import GATE_PRODUCTION_RECENT_TAG
    from workloads.tracking.registry import METRIC_TAG_PREFIX

    found: dict[str, dict[str, float | None]] = {}
    for version in MlflowClient().search_model_versions(f"name = '{model}'"):
        tags = version.tags

        def tag(name: str, tags: dict[str, str] = tags) -> float | None:
            value = tags.get(f"{METRIC_TAG_PREFIX}{name}")
            return float(value) if value is not None else None

        production_recent = tags.get(GATE_PRODUCTION_RECENT_TAG)
        found[str(version.version)] = {
            "original": tag("accuracy"),
            "recent": tag("recent_accuracy"),
            "production_recent": float(production_recent) if production_recent is not None else None,
        }
    return found


def labelled_day(
    entry: catalogue.CatalogueEntry,
    day: str,
    requests: list[tuple[str, int, int]],
    labels: Any,
    stores: dict[str, Path],
    log: Path,
    say: Callable[[str], None],
) -> None:
    truth = local_ground_truth.truth_of(requests, labels, entry.class_names)
    done = local_ground_truth.label_day(entry.name, day, LABELLING_BUDGET, stores["queue"], stores, truth, log)
    say(
        f"{entry.name} {day}: `mlops labels queue` queued {done.queued} images; the annotator answered "
        f"{done.answered} (Label Studio export {done.export.name}); `mlops labels import` stored them"
    )


def problems(model: str, closure: Closure) -> list[str]:
    """What the demo promises and did not show: the retrain, the promotion, the gain on new images."""
    found: list[str] = []
    first, second = closure.first_day, closure.second_day
    if first is None or first.accuracy is None:
        found.append(f"{model}: no measured accuracy on the drifted day")
    if not closure.retrain.get("submitted"):
        found.append(f"{model}: the labelled drifted day did not retrain ({closure.retrain.get('reason')})")
    if second is None or second.accuracy is None:
        found.append(f"{model}: no measured accuracy on the second drifted day")
    elif first is not None and first.version == second.version:
        found.append(f"{model}: the retrained version was not promoted (v{second.version} still serves)")
    elif first is not None and first.accuracy is not None and second.accuracy <= first.accuracy:
        found.append(
            f"{model}: v{second.version} measured {second.accuracy:.3f} on the second drifted day, "
            f"not above v{first.version}'s {first.accuracy:.3f} on the first"
        )
    return found


def _cell(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def summary_lines(model: str, closure: Closure) -> list[str]:
    """v1 vs v2 on both distributions: the closing summary's table."""
    first, second = closure.first_day, closure.second_day
    if first is None or second is None:
        return [f"Loop closing ({model}): incomplete, see above"]
    old, new = first.version, second.version
    before, after = closure.versions.get(old, {}), closure.versions.get(new, {})
    estimated = closure.estimated_before_labels.estimated if closure.estimated_before_labels else None
    return [
        f"The loop closed ({model}): v{old} → v{new}, trained on dataset {closure.retrain.get('dataset_version')}",
        f"  {'accuracy':52} {'v' + old:>7} {'v' + new:>7}",
        f"  {'original distribution (validation split)':52} {_cell(before.get('original')):>7} "
        f"{_cell(after.get('original')):>7}",
        f"  {'drifted, held-out production slice (same images)':52} {_cell(after.get('production_recent')):>7} "
        f"{_cell(after.get('recent')):>7}",
        f"  {'drifted day 1, measured (served by v' + old + ')':52} {_cell(first.accuracy):>7} {'':>7}",
        f"  {'drifted day 2, new images, measured (served by v' + new + ')':52} {'':>7} {_cell(second.accuracy):>7}",
        f"  estimated before any label (day 1, v{old}): {_cell(estimated)}; day 2 drift: {closure.second_day_drift}",
    ]

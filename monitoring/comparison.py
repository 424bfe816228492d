"""Step 3 of the drift job: a sample of the window against the reference, in one Evidently report.

The window's rows of the version that served most of the day are sampled (seeded), the reference is
built from that version's tables — once per distribution the version learned
(`monitoring.reference_groups`) — and `monitoring.drift` decides family-wise. The result keeps the
computation (its report is saved as report.html, its scores become MLflow metrics) beside the
typed `Comparison` the summary holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitoring.drift import (
    DriftComputation,
    DriftThresholds,
    build_reference,
    compute_drift,
    summarise_features,
    summarise_signals,
)
from monitoring.reference_groups import MIN_GROUP_ROWS, GroupedReference, ReferenceGroup, group_reference
from monitoring.reference_loader import Reference
from monitoring.settings import DriftSettings
from monitoring.summary import Comparison, GroupVerdict, ReferenceRows
from monitoring.window import Window, sample_window


@dataclass(frozen=True)
class Compared:
    computation: DriftComputation
    comparison: Comparison


def thresholds_of(settings: DriftSettings) -> DriftThresholds:
    return DriftThresholds(
        numerical=settings.numerical_threshold,
        categorical=settings.categorical_threshold,
        p_value=settings.p_value,
        embedding=settings.embedding_threshold,
    )


def mixed_versions_note(window: Window, version: str) -> str | None:
    """Says which version was compared when a rollout split the day; None when one version served it."""
    if len(window.versions) <= 1:
        return None
    return (
        f"the window mixes model versions {window.versions}: compared the majority version v{version} "
        f"({window.versions[version]} of {window.rows} rows) with its reference"
    )


def compare(
    window: Window, version: str, reference: Reference, settings: DriftSettings, class_names: Sequence[str] | None
) -> Compared:
    """Compare the rows `version` served in `window` with each distribution of its `reference`
    (`monitoring.reference_groups`): the first group the window does not differ from decides "no
    drift"; when it differs from all, the `original` group's comparison is the one reported."""
    grouped = group_reference(reference)
    current = sample_window(window, version, settings.sample_size, settings.seed, class_names)
    tried: list[tuple[ReferenceGroup, DriftComputation, str]] = []
    for group in grouped.groups:
        sampled_reference, source = build_reference(
            group.training, group.validation, class_names, settings.sample_size, settings.seed
        )
        tried.append((group, compute_drift(current, sampled_reference, thresholds_of(settings)), source))
        if not tried[-1][1].dataset_drift:
            break
    group, computation, source = tried[-1] if not tried[-1][1].dataset_drift else tried[0]
    validation_rows = len(group.validation) if group.validation is not None else 0
    comparison = Comparison(
        note=mixed_versions_note(window, version),
        dataset_drift=computation.dataset_drift,
        deciding_signals=tuple(computation.deciding_signals),
        significance_level=computation.significance_level,
        signals=summarise_signals(computation),
        drifted_share=computation.drifted_share,
        drifted_features=tuple(computation.drifted_features),
        model_version=version,
        rows_compared=len(current),
        rows_repeated=computation.repeated_rows.get("current", 0),
        rows_of_version=window.versions[version],
        reference_rows=ReferenceRows(training=len(group.training), validation=validation_rows),
        reference_source=source,
        reference_dataset=reference.dataset,
        sample_size=settings.sample_size,
        features=summarise_features(computation),
        reference_groups=group_verdicts(grouped, tried, group.name),
    )
    return Compared(computation=computation, comparison=comparison)


def group_verdicts(
    grouped: GroupedReference, tried: Sequence[tuple[ReferenceGroup, DriftComputation, str]], reported: str
) -> tuple[GroupVerdict, ...]:
    """What each group said, for a reference of more than one group (empty otherwise: the summary of
    a version without production rows stays as it was)."""
    if len(grouped.groups) == 1 and not grouped.too_small:
        return ()
    said = {group.name: computation for group, computation, _ in tried}
    verdicts = [
        GroupVerdict(group.name, len(group.training), said[group.name].dataset_drift, said[group.name].drifted_share,
                     reported=group.name == reported)
        if group.name in said
        else GroupVerdict(group.name, len(group.training), None, None, skipped="an earlier group matched")
        for group in grouped.groups
    ]  # fmt: skip
    small = f"fewer than {MIN_GROUP_ROWS} images"
    return (*verdicts, *(GroupVerdict(name, rows, None, None, skipped=small) for name, rows in grouped.too_small))

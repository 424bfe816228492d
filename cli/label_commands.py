"""`mlops labels import MODEL FILE`: ground truth from a Label Studio JSON export into the labels store;
`mlops labels queue MODEL`: the day's production images worth labelling, as a Label Studio import.

The same store the model service's `/feedback` writes (`workloads.labels`): each imported task
becomes one label of (request_id, index) from its `data`, source `label-studio:<file name>`, annotator
the Label Studio user who gave the answer (its email when the export carries it, else `user:<id>`). A
malformed file or a class the model does not have stores nothing and exits 2 with one line.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.errors import RUN_FAILED_EXIT_CODE, fail
from cli.options import DayOption, LabelsStoreOption, ModelArgument, PredictionsStoreOption

if TYPE_CHECKING:
    from workloads.labels.record import LabelRecord

app = typer.Typer(no_args_is_help=True, help="Ground truth for served predictions: queue images, import labels.")


@app.command("import")
def import_labels(
    model: ModelArgument,
    export: Annotated[Path, typer.Argument(help="Label Studio JSON export (a list of tasks)", metavar="FILE")],
    store: LabelsStoreOption = None,
    from_name: Annotated[
        str | None, typer.Option("--from-name", help="the Choices tag to read, when the project has several")
    ] = None,
) -> None:
    """Import FILE's latest non-cancelled choice per task as MODEL's labels; print what was skipped."""
    from workloads.catalogue_entry import UnknownModelError, entry_for
    from workloads.labels.label_studio import LabelStudioError, read_export
    from workloads.labels.record import InvalidLabelError
    from workloads.labels.store import LabelStore
    from workloads.serving.settings import DEFAULT_LABELS_STORE, ServingVariables

    try:
        entry = entry_for(model)
    except UnknownModelError as error:
        fail(str(error))
    try:
        parsed = read_export(export, entry.name, entry.class_names, datetime.now(tz=UTC), from_name)
    except (LabelStudioError, InvalidLabelError) as error:
        fail(f"{export.name}: {error}; nothing was imported")
    target = LabelStore(store or os.environ.get(ServingVariables.LABELS_STORE, "").strip() or DEFAULT_LABELS_STORE)
    try:
        target.write(parsed.records)
    except Exception as error:  # an unreachable bucket, a read-only folder: one line, no traceback
        fail(f"writing to {target.uri} failed: {error}; nothing was imported", code=RUN_FAILED_EXIT_CODE)
    typer.echo(f"imported {len(parsed.records)} labels for {entry.name} from {export.name} into {target.uri}")
    if parsed.records:
        typer.echo(f"annotators: {_annotators(parsed.records)}")
    for reason, count in sorted(parsed.skipped.items()):
        typer.echo(f"skipped {count} task{'s' if count != 1 else ''}: {reason}")


SHOWN_ANNOTATORS = 5


def _annotators(records: Sequence[LabelRecord]) -> str:
    """`user:1` (3 labels), …: the busiest first, a count beyond SHOWN_ANNOTATORS; `unknown` for none named."""
    counts = Counter(record.annotator or "unknown" for record in records)
    shown = [f"{name} ({count})" for name, count in counts.most_common(SHOWN_ANNOTATORS)]
    more = len(counts) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


@app.command("queue")
def queue(
    model: ModelArgument,
    day: DayOption = None,
    budget: Annotated[
        int | None,
        typer.Option(help="images at most (default: $MLOPS_LABELLING_BUDGET, else the entry's labelling_budget)"),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            help="folder or s3://BUCKET/PREFIX for images/, tasks.json, label_config.xml "
            "(default: $MLOPS_LABELLING_QUEUE_STORE/MODEL/date=DAY)"
        ),
    ] = None,
    predictions_store: PredictionsStoreOption = None,
    reports_store: Annotated[
        str | None,
        typer.Option(
            help="reports root: drift summaries, and the record of what was queued (default: $MLOPS_REPORTS_STORE)"
        ),
    ] = None,
    labels_store: LabelsStoreOption = None,
    local_files_path: Annotated[
        str | None,
        typer.Option(
            help="OUT's path below Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default: OUT's name)"
        ),
    ] = None,
) -> None:
    """Queue up to BUDGET of MODEL's production images for labelling: drifted days first, low confidence
    first, none labelled or queued before. Writes images/<request_id>-<index>.png and tasks.json (Label
    Studio's import format, the model's prediction as pre-annotation); export the annotated project as
    JSON and `mlops labels import` it. Environment: `python -m monitoring.labelling_queue --help`."""
    from monitoring.labelling_queue import main
    from monitoring.quality_settings import QualityVariables
    from monitoring.settings import DriftVariables

    overrides = {
        DriftVariables.PREDICTIONS_STORE: predictions_store,
        DriftVariables.REPORTS_STORE: reports_store,
        QualityVariables.LABELS_STORE: labels_store,
    }
    for variable, value in overrides.items():
        if value is not None:
            os.environ[variable] = value
    options = {"--day": day, "--budget": None if budget is None else str(budget), "--out": out}
    options["--local-files-path"] = local_files_path
    code = main([model, *(item for name, value in options.items() if value is not None for item in (name, value))])
    if code:
        raise typer.Exit(code)

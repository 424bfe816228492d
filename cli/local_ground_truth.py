"""The demo's ground truth: queue a day's images, answer them as an annotator would, import the answers.

What a labelling team does, with the platform's own commands, run as a user runs them:

1. `mlops labels queue MODEL --day DAY --budget N --out DIR` writes the day's images worth labelling
   and `DIR/tasks.json` (Label Studio's import format);
2. the demo plays the annotator (`cli.local_annotator`): it knows what it replayed, so it answers each
   task with the image's true class and writes the file Label Studio's JSON export would hold;
3. `mlops labels import MODEL EXPORT` stores those labels beside the prediction log.

The quality job then measures the served version's accuracy on the day (`monitoring.quality_job`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.local_annotator import annotated_export
from workloads.serving.settings import ServingVariables


class GroundTruthError(RuntimeError):
    """A labelling command failed; the message holds its output."""


@dataclass(frozen=True)
class LabelledDay:
    queued: int
    answered: int
    export: Path


def truth_of(requests: Sequence[tuple[str, int, int]], labels: Sequence[int], class_names: Sequence[str]) -> dict:
    """(request_id, index) → true class name, from the replay's requests and the images' labels."""
    return {
        (request_id, index): class_names[int(labels[start + index])]
        for request_id, start, count in requests
        for index in range(count)
    }


def _mlops(arguments: Sequence[str], environment: Mapping[str, str], log: Path) -> str:
    """One `mlops` command in its own process (as a user types it); its output goes to `log` too."""
    command = [sys.executable, "-m", "cli.main", *arguments]
    done = subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True, check=False)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ mlops {' '.join(arguments)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise GroundTruthError(
            f"`mlops {' '.join(arguments)}` failed ({done.returncode}): {done.stderr.strip()[-400:]}"
        )
    return done.stdout


def label_day(
    model: str,
    day: str,
    budget: int,
    folder: Path,
    stores: Mapping[str, Path],
    truth: Mapping[tuple[str, int], str],
    log: Path,
) -> LabelledDay:
    """Queue up to `budget` of `day`'s images, answer every queued task with its truth, import the export."""
    environment = {
        "MLOPS_PREDICTIONS_STORE": str(stores["predictions"]),
        "MLOPS_REPORTS_STORE": str(stores["reports"]),
        ServingVariables.LABELS_STORE: str(stores["labels"]),
    }
    out = folder / model / f"date={day}"
    _mlops(["labels", "queue", model, "--day", day, "--budget", str(budget), "--out", str(out)], environment, log)
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    export = annotated_export(tasks, lambda request_id, index: truth.get((request_id, index)))
    path = out / "label-studio-export.json"
    path.write_text(json.dumps(export, indent=1), encoding="utf-8")
    _mlops(["labels", "import", model, str(path), "--store", str(stores["labels"])], environment, log)
    answered = sum(1 for task in export if task["annotations"])
    return LabelledDay(queued=len(tasks), answered=answered, export=path)

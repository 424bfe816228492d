"""The demo's v1 → v2 accuracy on the drifted distribution, measured by running the demo's own loop.

    PYTHONPATH=. .venv/bin/python benchmarks/closed_loop.py [--model digits] [--epochs N] [--runs 1]

Each run is `cli.local_loop.run_loop` — what `make demo` (`mlops local up`) runs, nothing copied —
for one model whose entry says `retrain_on_drift`, in a fresh state directory on free ports, kept up
at the end (`keep=True`) so the registry can still be read, then stopped as `mlops local down`
stops it. The figures, and who measured each:

* **original validation split**: v1's and v2's `accuracy`, measured by the pipeline's evaluate step
  on the split training never sees (registry tags, `cli.local_closure.version_metrics`);
* **held-out production slice of drifted day 1** (the images the retrain learned from are the
  rest of that day): v2's `recent_accuracy` from evaluate, and production's (v1's) on the same
  images, measured by the gate when it compared them;
* **drifted day 1**: v1 measured by the quality job on every labelled image it served;
* **drifted day 2** (images no retrain saw inverted): v2 measured by the quality job on what it
  served. v1 never serves that day in the demo, so v1 is scored on the same images offline, with
  the service's own loader (`workloads.serving.model_source.load_version`) and preprocessing
  (`workloads.serving.inputs.model_inputs`) against the images' true labels — and v2 is scored the
  same way, which checks the offline path against the served one;
* **labels**: per day the labelled images the quality job joined, and dataset v2's production
  rows (trained on / held out) and their annotators (`production.json`).

The baseline of each ratio is v1 in the same run: v2's error (1 - accuracy) over v1's. The images
and the training seeds come from the catalogue entry, but each run's requests get new ids and the
held-out slice is chosen by a hash of the request id, so each run trains v2 on a different 80 % of
the day: `--runs N` shows that variation. Writes `benchmarks/results/closed_loop.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli import local_closure, local_state, local_traffic
from cli.local_loop import LoopOptions, LoopResult, run_loop
from workloads import catalogue

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "closed_loop.json"


def offline_accuracy(model: str, version: str, images: np.ndarray, labels: np.ndarray) -> float:
    """`version`'s accuracy on `images`, loaded and preprocessed as the service does."""
    from workloads.serving.inputs import model_inputs
    from workloads.serving.model_source import load_version

    loaded = load_version(model, version)
    predicted = loaded.predict(model_inputs(images)).argmax(axis=1)
    return float((predicted == labels).mean())


def dataset_rows(state: Path, dataset: str, version: str) -> dict[str, Any]:
    """Dataset `version`'s production rows: trained on, held out, and who labelled them."""
    from collections import Counter

    from workloads.datasets.roles import PRODUCTION_HOLDOUT, PRODUCTION_TRAIN
    from workloads.datasets.stores import open_store
    from workloads.datasets.versions import fetch
    from workloads.labelled_datasets import PROVENANCE_FILE

    with tempfile.TemporaryDirectory(prefix="closed-loop-") as scratch:
        folder = fetch(dataset, version, open_store(state / "datasets"), scratch)
        roles = np.load(folder / "roles.npy")
        rows = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))["rows"]
    return {
        "trained": int((roles == PRODUCTION_TRAIN).sum()),
        "held_out": int((roles == PRODUCTION_HOLDOUT).sum()),
        "annotators": dict(Counter(str(row.get("annotator")) for row in rows)),
    }


def figures(model: str, state: Path, result: LoopResult) -> dict[str, Any]:
    """One run's table: every figure and who measured it."""
    (outcome,) = [outcome for outcome in result.models if outcome.name == model]
    closure = outcome.closure
    if closure is None or closure.first_day is None or closure.second_day is None:
        raise SystemExit(f"{model}: the loop did not close: {result.problems}")
    old, new = closure.first_day.version, closure.second_day.version
    before, after = closure.versions.get(old, {}), closure.versions.get(new, {})
    entry = catalogue.get(model)
    images, labels = local_traffic.drifted_day_images(entry, 1, local_closure.DRIFTED_DAY_IMAGES)
    dataset_version = str(closure.retrain.get("dataset_version"))
    return {
        "versions": {"before": old, "after": new},
        "dataset_version": dataset_version,
        "original_validation": {"v1": before.get("original"), "v2": after.get("original")},
        "day1_holdout_slice": {"v1": after.get("production_recent"), "v2": after.get("recent")},
        "day1_measured": {"v1": closure.first_day.accuracy, "labels": closure.first_day.labelled},
        "day2_measured": {"v2": closure.second_day.accuracy, "labels": closure.second_day.labelled},
        "day2_offline": {
            "v1": offline_accuracy(model, old, images, labels),
            "v2": offline_accuracy(model, new, images, labels),
            "images": len(labels),
        },
        "estimated_day1_before_labels": (
            closure.estimated_before_labels.estimated if closure.estimated_before_labels else None
        ),
        "day2_drift": closure.second_day_drift,
        "dataset_rows": dataset_rows(state, entry.dataset, dataset_version),
        "problems": result.problems,
    }


def run_once(model: str, epochs: int | None, log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="closed-loop-state-") as scratch:
        state = Path(scratch)
        options = LoopOptions(
            models=(model,), state_directory=state, tracking_port=0, service_port=0, epochs=epochs, keep=True
        )
        started = time.monotonic()
        with log.open("a", encoding="utf-8") as handle:
            try:
                result = run_loop(options, lambda line: print(line, file=handle, flush=True))
                run = figures(model, state, result)
            finally:
                local_state.stop_kept(state)
        run["seconds"] = round(time.monotonic() - started, 1)
        return run


def _cell(value: float | None) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "  n/a"


def _error_ratio(v1: float | None, v2: float | None) -> str:
    if not isinstance(v1, float) or not isinstance(v2, float) or v1 >= 1.0:
        return "n/a"
    return f"{(1.0 - v2) / (1.0 - v1):.3f}"


def table(model: str, run: dict[str, Any]) -> list[str]:
    measured1, measured2, offline = run["day1_measured"], run["day2_measured"], run["day2_offline"]
    rows = [
        ("original distribution (validation split)", run["original_validation"]),
        (
            f"drifted day 1, held-out production slice ({run['dataset_rows']['held_out']} images)",
            run["day1_holdout_slice"],
        ),
        (f"drifted day 1, measured ({measured1['labels']} labels, served by v1)", {"v1": measured1["v1"]}),
        (f"drifted day 2, measured ({measured2['labels']} labels, served by v2)", {"v2": measured2["v2"]}),
        (f"drifted day 2, offline ({offline['images']} images, same loader)", offline),
    ]
    old, new = run["versions"]["before"], run["versions"]["after"]
    lines = [f"{model}: v{old} → v{new} on dataset {run['dataset_version']} ({run['seconds']:.0f} s)"]
    lines.append(f"  {'accuracy':58} {'v' + old:>6} {'v' + new:>6} {'error v2/v1':>11}")
    for name, cells in rows:
        ratio = _error_ratio(cells.get("v1"), cells.get("v2"))
        lines.append(f"  {name:58} {_cell(cells.get('v1')):>6} {_cell(cells.get('v2')):>6} {ratio:>11}")
    data = run["dataset_rows"]
    lines.append(
        f"  dataset {run['dataset_version']}: {data['trained']} production rows trained on, {data['held_out']} held "
        f"out; annotators {data['annotators']}"
    )
    if run["problems"]:
        lines.append(f"  the loop's own checks failed: {run['problems']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="digits", help="a catalogue model with retrain_on_drift")
    parser.add_argument("--epochs", type=int, default=None, help="v1's epochs (default the catalogue's, as make demo)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "closed_loop.log")
    arguments = parser.parse_args()
    entry = catalogue.get(arguments.model)
    if not entry.retrain_on_drift:
        parser.error(f"{entry.name} does not retrain on drift: its loop does not close")
    # The loop runs `mlops labels ...` as subprocesses (`cli.local_ground_truth`): they import the project too.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    runs = []
    for number in range(arguments.runs):
        print(f"run {number + 1}/{arguments.runs}: the demo's loop for {entry.name} (log {arguments.log})", flush=True)
        runs.append(run_once(entry.name, arguments.epochs, arguments.log))
        print("\n".join(table(entry.name, runs[-1])), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    summary = {"model": entry.name, "epochs": arguments.epochs or entry.training.epochs, "runs": runs}
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

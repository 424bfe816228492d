"""How far the label-free accuracy estimate (CBPE) lies from the measured accuracy, on normal and shifted days.

    .venv/bin/python benchmarks/performance_estimate.py [--models digits surface-defects] [--runs 3]

Per model and run: the model's split (`benchmarks.drift_data.model_splits`, the run's seed), a model
trained on it with the platform's training code and the catalogue's hyper-parameters, calibrated
(`monitoring.performance_estimate.Calibration`) on its validation predictions — what the quality
job calibrates on. Each day is the whole held-out pool (never seen by the model or the calibration),
unshifted or shifted, every image labelled, so the measured accuracy is exact for that day and the
error |estimated - measured| is the estimate's alone (plus the day's own sampling noise, which the
estimate's standard error describes):

* the demo's days (`cli/local_traffic.py`, as `cli/local_loop.py` picks them per model): the normal
  day, and the drifted day — for a model whose loop closes (`retrain_on_drift`: digits) the scanner
  that images dark ink on light paper (`invert_images`), for the others a camera change, every image
  brighter by 70 grey levels plus Gaussian noise sigma 25 (`shift_images`); each model also gets the
  other model's drifted day, as a shift of its own family;
* the drift-quality shifts (`benchmarks/drift_data.py`: brightness, noise, blur, rotation at three
  magnitudes, class mix 10 / 30 / 60 %);
* the paper's shifts of the drift-power benchmark (Gaussian noise, random affine transforms, at
  10 / 50 / 100 % of the images; knock-out of class 0).

Also shown: the model's raw mean confidence as the estimate (what CBPE improves on), so the table says
what calibration buys. Writes `benchmarks/results/performance_estimate.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.drift_data import (
    PAPER_SHIFTS,
    SHIFTS,
    TRANSFORMS,
    ModelSplits,
    model_splits,
    power_window,
)
from cli.local_traffic import invert_images, shift_images
from monitoring.performance_estimate import Calibration
from workloads import catalogue, features

RESULTS = Path(__file__).resolve().parent / "results" / "performance_estimate.json"
DEMO_DAYS = ("demo normal day", "demo drifted day")
"""The demo's two days; the drifted one's name says which drift the demo gives the model."""
GOAL_POINTS = 2.0


Day = tuple[str, str, np.ndarray, np.ndarray]
"""(family, day, images, labels)."""


def demo_days(entry: catalogue.CatalogueEntry, splits: ModelSplits, seed: int) -> list[Day]:
    """The demo's normal and drifted day for `entry` (the drift `cli/local_loop.py` replays for it), and
    the other demo drift as a plain shift."""
    pool, labels = splits.pool_images, splits.pool_labels
    inverted, camera = ("inverted scanner", invert_images(pool)), ("camera change", shift_images(pool, seed=seed))
    demo, other = (inverted, camera) if entry.retrain_on_drift else (camera, inverted)
    return [
        ("demo", DEMO_DAYS[0], pool, labels),
        ("demo", f"{DEMO_DAYS[1]} ({demo[0]})", demo[1], labels),
        ("demo shift", other[0], other[1], labels),
    ]


def shifted_days(entry: catalogue.CatalogueEntry, splits: ModelSplits, seed: int, demo_only: bool = False) -> list[Day]:
    """(family, day, images, labels) of every day: the demo's, the drift-quality and the paper's shifts."""
    generator = np.random.default_rng(seed)
    pool, labels = splits.pool_images, splits.pool_labels
    days = demo_days(entry, splits, seed)
    if demo_only:
        return days
    for shift, magnitudes in SHIFTS.items():
        for magnitude in magnitudes:
            if shift == "class_mix":
                # The same share of the pool's images replaced by images of the digits 0 and 1 (labels follow).
                mixed = np.flatnonzero(np.isin(labels, (0, 1)))
                rows = np.arange(len(pool))
                replaced = generator.choice(len(pool), size=round(magnitude * len(pool)), replace=False)
                rows[replaced] = generator.choice(mixed, size=replaced.size)
                days.append(("drift quality", f"class mix {magnitude:.0%}", pool[rows], labels[rows]))
            else:
                shifted = TRANSFORMS[shift](pool, magnitude, generator)
                days.append(("drift quality", f"{shift} {magnitude:g}", shifted, labels))
    for shift in PAPER_SHIFTS:
        images, truth = power_window(splits, shift, len(pool), generator)
        days.append(("paper", shift.label, images, truth))
    return days


def run(model: str, seed: int, demo_only: bool = False) -> list[dict[str, Any]]:
    from workloads.training import configure_threads, predict_probabilities, train_model

    configure_threads()
    started = time.perf_counter()
    splits = model_splits(model, seed)
    entry = catalogue.get(model)
    network = train_model(
        entry, features.preprocess(splits.train_images), splits.train_labels, replace(entry.training, seed=seed)
    ).model
    validation = predict_probabilities(network, features.preprocess(splits.validation_images)).astype(np.float64)
    calibration = Calibration.fit(validation, splits.validation_labels)
    threshold = atc_threshold(validation.max(axis=1), validation.argmax(axis=1) == splits.validation_labels)
    rows = []
    for family, day, images, labels in shifted_days(entry, splits, seed, demo_only):
        softmax = predict_probabilities(network, features.preprocess(images)).astype(np.float64)
        estimate = calibration.estimate(softmax)
        measured = float((softmax.argmax(axis=1) == labels).mean())
        atc = float((softmax.max(axis=1) > threshold).mean())
        rows.append(
            {
                "model": model,
                "run": seed,
                "family": family,
                "day": day,
                "images": len(images),
                "measured": measured,
                "estimated": estimate.accuracy,
                "standard_error": estimate.standard_error,
                "raw_confidence": float(softmax.max(axis=1).mean()),
                "error_points": 100 * abs(estimate.accuracy - measured),
                "raw_error_points": 100 * abs(float(softmax.max(axis=1).mean()) - measured),
                "atc": atc,
                "atc_error_points": 100 * abs(atc - measured),
            }
        )
    seconds = time.perf_counter() - started
    calibrated = calibration.calibrated_classes
    print(f"  {model} run {seed}: {len(rows)} days, {calibrated} classes recalibrated, {seconds:.0f} s", flush=True)
    return rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def atc_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Average Thresholded Confidence (Garg et al., ICLR 2022), for comparison: the confidence above
    which as many validation predictions lie as were right."""
    return float(np.quantile(confidence, 1.0 - correct.mean()))


def report(results: pd.DataFrame) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for model, rows in results.groupby("model"):
        demo = rows[rows["family"] == "demo"]
        worst = rows.loc[rows["error_points"].idxmax()]
        summary[str(model)] = {
            "demo_days_worst_points": float(demo["error_points"].max()),
            "demo_days_mean_points": float(demo["error_points"].mean()),
            "all_days_mean_points": float(rows["error_points"].mean()),
            "all_days_median_points": float(rows["error_points"].median()),
            "within_goal_share": float((rows["error_points"] <= GOAL_POINTS).mean()),
            "raw_confidence_mean_points": float(rows["raw_error_points"].mean()),
            "atc_mean_points": float(rows["atc_error_points"].mean()),
            "atc_demo_days_worst_points": float(demo["atc_error_points"].max()),
            "worst": {key: _plain(worst[key]) for key in ("day", "run", "measured", "estimated", "error_points")},
        }
        worst_columns = ("error_points", "raw_error_points", "atc_error_points")
        aggregate = {"measured": "mean", "estimated": "mean", **dict.fromkeys(worst_columns, "max")}
        table = rows.groupby(["family", "day"], sort=False)[list(aggregate)].agg(aggregate)
        print(f"\n{model}: per day, mean over runs; error = worst run, in accuracy points")
        print(table.to_string(float_format=lambda value: f"{value:.3f}"))
        print(json.dumps(summary[str(model)], indent=1, default=str))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["digits", "surface-defects"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--demo-only", action="store_true", help="only the demo's days (a few minutes)")
    parser.add_argument("--output", type=Path, default=None, help=f"results file (default {RESULTS})")
    arguments = parser.parse_args()
    started = time.perf_counter()
    rows = [
        row
        for model in arguments.models
        for seed in range(arguments.runs)
        for row in run(model, seed, arguments.demo_only)
    ]
    results = pd.DataFrame(rows)
    summary = report(results)
    output = arguments.output or RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    meta = {"runs": arguments.runs, "seconds": round(time.perf_counter() - started, 1), "goal_points": GOAL_POINTS}
    meta["demo_only"] = arguments.demo_only
    output.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {output} ({meta['seconds']} s)")


if __name__ == "__main__":
    main()

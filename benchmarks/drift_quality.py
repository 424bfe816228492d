"""Detection quality of the drift job's computation on digit images with controlled shifts.

    .venv/bin/python benchmarks/drift_quality.py [--windows 4] [--null-windows 25] [--size 300]

A digits classifier is trained here with the platform's training code; the reference is built
exactly as the job builds it (training feature table + validation predictions with the softmax
columns, `build_reference`), and every window goes through the job's `compute_drift` (Evidently,
default thresholds, the family-wise decision; `--no-softmax` drops the softmax columns, as for a
version registered before they were recorded). Windows are
drawn from a held-out pool (see benchmarks/drift_data.py). Prints the detection rate per shift and
magnitude and the false-alarm rate on unshifted windows. Goals: false alarms <= 5 %; every shift
detected at its strongest magnitude.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.drift_data import SHIFTS, digit_splits, window_images
from monitoring.drift import DriftThresholds, build_reference, compute_drift, softmax_columns
from workloads import catalogue, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=4, help="windows per shift and magnitude")
    parser.add_argument("--null-windows", type=int, default=25, help="windows without a shift")
    parser.add_argument("--size", type=int, default=300, help="images per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-softmax", action="store_true", help="compare without the softmax columns")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    arguments = parser.parse_args()

    import torch

    from workloads.training import configure_threads, predict_probabilities, train_model

    configure_threads()
    torch.manual_seed(arguments.seed)
    entry = catalogue.get("digits")
    splits = digit_splits(arguments.seed)
    started = time.perf_counter()
    trained = train_model(entry, features.preprocess(splits.train_images), splits.train_labels, entry.training)
    network = trained.model.eval()

    def predict(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probabilities = predict_probabilities(network, features.preprocess(images))
        return probabilities.argmax(axis=1), probabilities.max(axis=1), probabilities.astype(np.float64)

    def with_softmax(frame: pd.DataFrame, probabilities: np.ndarray) -> pd.DataFrame:
        if not arguments.no_softmax:
            for index, column in enumerate(softmax_columns(probabilities.shape[1])):
                frame[column] = probabilities[:, index]
        return frame

    training = features.drift_features(splits.train_images)
    training["label"] = splits.train_labels
    validation = features.drift_features(splits.validation_images)
    predictions, confidences, probabilities = predict(splits.validation_images)
    validation["label"] = splits.validation_labels
    validation["prediction"] = predictions
    validation["confidence"] = confidences
    validation = with_softmax(validation, probabilities)
    accuracy = float((predictions == splits.validation_labels).mean())
    reference, _ = build_reference(training, validation, entry.class_names, 20_000, arguments.seed)
    print(
        f"model trained in {time.perf_counter() - started:.1f} s (validation accuracy {accuracy:.3f}); reference: "
        f"{len(training)} training + {len(validation)} validation rows; pool {len(splits.pool_images)} images; "
        f"windows of {arguments.size}",
        flush=True,
    )

    thresholds = DriftThresholds()
    generator = np.random.default_rng(arguments.seed + 1)

    def detect(images: np.ndarray) -> tuple[bool, float, list[str]]:
        classes, confidence, outputs = predict(images)
        current = features.drift_features(images)
        current["prediction"] = np.asarray(entry.class_names, dtype=object)[classes]
        current["confidence"] = confidence.astype(np.float64)
        computation = compute_drift(with_softmax(current, outputs), reference, thresholds)
        return computation.dataset_drift, computation.drifted_share, computation.deciding_signals

    rows = []
    timings = []
    for index in range(arguments.null_windows):
        tick = time.perf_counter()
        drifted, share, which = detect(window_images(splits, None, 0.0, arguments.size, generator))
        timings.append(time.perf_counter() - tick)
        rows.append({"shift": "none", "magnitude": 0.0, "level": 0, "detected": drifted, "share": share})
        if drifted:
            print(f"  false alarm in null window {index}: decided by {', '.join(which)}", flush=True)
    for shift, magnitudes in SHIFTS.items():
        for level, magnitude in enumerate(magnitudes, start=1):
            for _ in range(arguments.windows):
                tick = time.perf_counter()
                drifted, share, _ = detect(window_images(splits, shift, magnitude, arguments.size, generator))
                timings.append(time.perf_counter() - tick)
                rows.append(
                    {"shift": shift, "magnitude": magnitude, "level": level, "detected": drifted, "share": share}
                )
            done = [row for row in rows if row["shift"] == shift and row["level"] == level]
            print(
                f"  {shift:<10} level {level} ({magnitude:g}): "
                f"detected {sum(r['detected'] for r in done)}/{len(done)}, "
                f"mean drifted share {np.mean([r['share'] for r in done]):.2f}",
                flush=True,
            )

    results = pd.DataFrame(rows)
    null = results[results["shift"] == "none"]
    false_alarms = float(null["detected"].mean())
    table = (
        results[results["shift"] != "none"]
        .groupby(["shift", "level", "magnitude"], sort=False)
        .agg(detection_rate=("detected", "mean"), mean_share=("share", "mean"), windows=("detected", "size"))
        .reset_index()
    )
    print()
    print(table.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
    strongest = table[table["level"] == 3]
    print()
    print(
        f"false alarms: {int(null['detected'].sum())}/{len(null)} = {false_alarms:.1%} (goal <= 5 %): "
        f"{'OK' if false_alarms <= 0.05 else 'MISSED'}"
    )
    all_strongest = bool((strongest["detection_rate"] == 1.0).all())
    print(
        f"every shift detected at its strongest magnitude: {'OK' if all_strongest else 'MISSED'} "
        f"({', '.join(f'{s} {r:.0%}' for s, r in zip(strongest['shift'], strongest['detection_rate'], strict=True))})"
    )
    print(f"drift computation per window: median {np.median(timings):.2f} s over {len(timings)} windows")
    if arguments.json:
        arguments.json.write_text(
            json.dumps(
                {
                    "false_alarm_rate": false_alarms,
                    "table": table.to_dict(orient="records"),
                    "window_size": arguments.size,
                    "significance_level": thresholds.p_value,
                    "softmax": not arguments.no_softmax,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

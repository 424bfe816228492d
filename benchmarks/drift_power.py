"""Detection power and false alarms of the drift job's decision, against BBSD, on the paper's protocol.

    .venv/bin/python benchmarks/drift_power.py --quick      # ~4 minutes on two cores (measured 212 s)
    .venv/bin/python benchmarks/drift_power.py --jobs 2     # the full protocol: 46-84 minutes (2,737 s; 5,054 s loaded)
    .venv/bin/python benchmarks/drift_power.py --report benchmarks/results/drift_power.json   # re-print a run
        # (add --markdown for the README's table)
    .venv/bin/python benchmarks/drift_power.py --family knockout --sizes 100 1000 --runs 2 --output /tmp/ko
        # one shift family (and the unshifted windows) at chosen sizes, for iterating on the detector

Anchor: Rabanser, Guennemann, Lipton, "Failing Loudly: An Empirical Study of Methods for Detecting
Dataset Shift" (NeurIPS 2019). Its protocol, run on both catalogue models (digits, surface-defects):

* sample sizes 10, 20, 50, 100, 200, 500, 1,000, 10,000 images per window;
* shifts (benchmarks/drift_data.py, `PAPER_SHIFTS`): Gaussian noise sigma 1 / 10 / 100 grey levels,
  image transforms small / medium / large (rotation, translation, shear, zoom, flips, the paper's
  ranges), knock-out of class 0; each on 10 / 50 / 100 % of the window (knock-out: of the class);
* 5 random runs; significance 0.05.

A random run is one split of the data and one model trained on it with the platform's training code
(`workloads.training.train_model`, the catalogue's hyper-parameters, the run's seed), so the false-
alarm rate is averaged over references too, not conditional on one. Per run, for every shift and
size, one window is drawn from the held-out pool; `--null-windows` unshifted windows per run and size
measure the false alarms. Every window goes through three detectors, on the same images:

* ours: `monitoring.drift.compute_drift`, the job's own function (Evidently report + family-wise
  decision), against the reference `monitoring.drift.build_reference` builds from the run's training
  feature table and validation predictions (with the softmax columns of the data contract);
* BBSD as the paper describes it: a two-sample KS test (scipy) per softmax output, Bonferroni over
  the k outputs (reject when the smallest p-value < 0.05 / k), against the validation split's
  softmax. The paper subsamples its source set to the window's size; here the whole validation
  split is the source, which only gives BBSD more power;
* raw-feature baseline: a KS test per raw PIXEL (the paper's "no reduction"), Bonferroni over the
  pixels (64 for digits, 1,024 for surface-defects), against the training images (what the job's
  image statistics compare with).

Softmax values come straight from the trained model (`predict_probabilities`). Pools are small for
digits (~540 images, 30 % of the dataset; the validation split ~250): windows larger than the pool
are drawn WITH replacement, so at 1,000 and 10,000 images a digits window repeats images, and any
test that treats its rows as independent draws understates the window's noise. The job compares a
repeated row once (`monitoring.drift.distinct_rows`); the baselines take the window as the paper
does, every row as a draw. A noisy or transformed copy is a new image, so only the unshifted share
of a window collapses. surface-defects' pool is 10,002 freshly generated images: no window repeats
one. Both pools are printed with the results.

`--quick` runs a subset (sizes 20 / 100 / 1,000; 2 runs; 5 null windows per run and size; shifts:
noise medium and large at 50 %, image small at 100 % and large at 50 %, knock-out 50 % and 100 %).
Prints a detection-rate table per shift and size (ours / BBSD / pixel KS), the false-alarm rate per
size, each family's detection rate per size, and which signal decided; writes a JSON and a heat map
(`benchmarks/results/drift_power[_quick].{json,png}`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.drift_data import NO_SHIFT, PAPER_SHIFTS, ModelSplits, PowerShift, model_splits, power_window
from monitoring.drift import DriftThresholds, build_reference, compute_drift, softmax_columns
from workloads import catalogue, features

SIGNIFICANCE = 0.05
MODELS = ("digits", "surface-defects")
FULL_SIZES = (10, 20, 50, 100, 200, 500, 1_000, 10_000)
QUICK_SIZES = (20, 100, 1_000)
QUICK_SHIFTS = (
    PowerShift("gaussian_noise", "medium", 0.5),
    PowerShift("gaussian_noise", "large", 0.5),
    PowerShift("image", "small", 1.0),
    PowerShift("image", "large", 0.5),
    PowerShift("knockout", "0.5", 0.5),
    PowerShift("knockout", "1", 1.0),
)
DETECTORS = ("ours", "bbsd", "pixels")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    models: tuple[str, ...]
    sizes: tuple[int, ...]
    shifts: tuple[PowerShift, ...]
    runs: int
    null_windows: int


@dataclass(frozen=True)
class Trained:
    """One run's model and references."""

    network: Any
    reference: pd.DataFrame
    validation_softmax: np.ndarray
    train_pixels: np.ndarray
    class_names: tuple[str, ...]
    accuracy: float


def _train(splits: ModelSplits, run: int) -> Trained:
    from dataclasses import replace

    from workloads.training import predict_probabilities, train_model

    entry = catalogue.get(splits.model)
    parameters = replace(entry.training, seed=run)
    network = train_model(entry, features.preprocess(splits.train_images), splits.train_labels, parameters).model
    training = features.drift_features(splits.train_images)
    training["label"] = splits.train_labels
    probabilities = predict_probabilities(network, features.preprocess(splits.validation_images))
    validation = _outputs_table(splits.validation_images, probabilities, entry.class_names, indices=True)
    validation["label"] = splits.validation_labels
    reference, _ = build_reference(training, validation, entry.class_names, 20_000, run)
    return Trained(
        network=network,
        reference=reference,
        validation_softmax=probabilities.astype(np.float64),
        train_pixels=splits.train_images.reshape(splits.train_images.shape[0], -1),
        class_names=entry.class_names,
        accuracy=float((probabilities.argmax(axis=1) == splits.validation_labels).mean()),
    )


def _outputs_table(
    images: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], indices: bool
) -> pd.DataFrame:
    """Drift features + prediction + confidence + softmax columns, as the log and the validation table hold them."""
    frame = features.drift_features(images)
    predicted = probabilities.argmax(axis=1)
    frame["prediction"] = predicted if indices else np.asarray(class_names, dtype=object)[predicted]
    frame["confidence"] = probabilities.max(axis=1).astype(np.float64)
    for index, column in enumerate(softmax_columns(probabilities.shape[1])):
        frame[column] = probabilities[:, index].astype(np.float64)
    return frame


def bbsd_detects(reference_softmax: np.ndarray, window_softmax: np.ndarray, significance: float) -> bool:
    """The paper's BBSD: KS per softmax dimension, Bonferroni over the dimensions."""
    from scipy.stats import ks_2samp

    p_values = np.atleast_1d(ks_2samp(reference_softmax, window_softmax, axis=0).pvalue)  # pyright: ignore[reportCallIssue]
    return bool(np.nanmin(p_values) < significance / reference_softmax.shape[1])


def pixels_detect(reference_pixels: np.ndarray, window_pixels: np.ndarray, significance: float) -> bool:
    """The paper's no-reduction baseline: KS per raw pixel, Bonferroni over the pixels
    (a pixel constant on both sides has no p-value and counts as unchanged)."""
    from scipy.stats import ks_2samp

    with np.errstate(all="ignore"):
        p_values = np.atleast_1d(ks_2samp(reference_pixels, window_pixels, axis=0).pvalue)  # pyright: ignore[reportCallIssue]
    p_values = np.where(np.isnan(p_values), 1.0, p_values)
    return bool(p_values.min() < significance / reference_pixels.shape[1])


def _evaluate(trained: Trained, images: np.ndarray) -> dict[str, Any]:
    from workloads.training import predict_probabilities

    probabilities = predict_probabilities(trained.network, features.preprocess(images))
    current = _outputs_table(images, probabilities, trained.class_names, indices=False)
    computation = compute_drift(current, trained.reference, DriftThresholds(p_value=SIGNIFICANCE))
    return {
        "ours": computation.dataset_drift,
        "bbsd": bbsd_detects(trained.validation_softmax, probabilities.astype(np.float64), SIGNIFICANCE),
        "pixels": pixels_detect(trained.train_pixels, images.reshape(images.shape[0], -1), SIGNIFICANCE),
        "deciding": getattr(computation, "deciding_signals", []),
        "p_values": {signal.family: signal.p_value for signal in getattr(computation, "signals", [])},
        "repeated": computation.repeated_rows.get("current", 0),
    }


def run_task(model: str, run: int, plan: Plan) -> dict[str, Any]:
    """One random run of one model: split, train, every window. Top-level: runs in a worker process."""
    from workloads.training import configure_threads

    configure_threads()
    started = time.perf_counter()
    splits = model_splits(model, run)
    trained = _train(splits, run)
    generator = np.random.default_rng(1_000 + run)
    records: list[dict[str, Any]] = []
    for size in plan.sizes:
        windows = [(NO_SHIFT, index) for index in range(plan.null_windows)] + [(shift, 0) for shift in plan.shifts]
        for shift, index in windows:
            images, _ = power_window(splits, shift, size, generator)
            outcome = _evaluate(trained, images)
            records.append({"model": model, "run": run, "size": size, "window": index, **asdict(shift), **outcome})
    seconds = time.perf_counter() - started
    print(f"  {model} run {run}: accuracy {trained.accuracy:.3f}, {len(records)} windows, {seconds:.0f} s", flush=True)
    return {
        "records": records,
        "accuracy": trained.accuracy,
        "pool": int(splits.pool_images.shape[0]),
        "validation": int(splits.validation_images.shape[0]),
        "training": int(splits.train_images.shape[0]),
        "seconds": seconds,
    }


def _label(row: pd.Series) -> str:
    return PowerShift(row["family"], row["strength"], row["fraction"]).label


def detection_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per model, shift and size: detection rate of each detector."""
    shifted = results[results["family"] != "none"].copy()
    shifted["shift"] = shifted.apply(_label, axis=1)
    return shifted.groupby(["model", "family", "shift", "size"], sort=False)[list(DETECTORS)].mean().reset_index()


def false_alarm_table(results: pd.DataFrame) -> pd.DataFrame:
    null = results[results["family"] == "none"]
    table = null.groupby(["model", "size"])[list(DETECTORS)].mean()
    table["windows"] = null.groupby(["model", "size"]).size()
    return table.reset_index()


def _cells(table: pd.DataFrame, index: Sequence[str]) -> pd.DataFrame:
    """'ours / bbsd / pixels' in percent, one column per size."""
    text = table.assign(
        cell=lambda frame: frame.apply(lambda row: "/".join(f"{100 * row[name]:.0f}" for name in DETECTORS), axis=1)
    )
    return text.pivot_table(index=list(index), columns="size", values="cell", aggfunc="first", sort=False)


def _deciding_counts(rows: pd.DataFrame) -> str:
    counts = pd.Series([signal for signals in rows["deciding"] for signal in signals]).value_counts()
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def print_report(results: pd.DataFrame, meta: dict[str, Any]) -> None:
    detection = detection_table(results)
    alarms = false_alarm_table(results)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    print("\nDetection rate (%), ours / BBSD / pixel KS, per shift and window size:")
    print(_cells(detection, ["model", "shift"]).to_string())
    print("\nFalse alarms on unshifted windows (%), ours / BBSD / pixel KS, per size:")
    print(_cells(alarms, ["model"]).to_string())
    print(
        "  windows per cell:",
        {int(size): int(count) for size, count in alarms.groupby("size")["windows"].sum().items()},
    )
    alarmed = results[(results["family"] == "none") & results["ours"]]
    if len(alarmed):
        print("  our false alarms, decided by:", _deciding_counts(alarmed))
    family = detection.groupby(["family", "size"], sort=False)[list(DETECTORS)].mean().reset_index()
    print("\nDetection rate per shift family (%, mean over its shifts and both models), ours / BBSD / pixel KS:")
    print(_cells(family, ["family"]).to_string())
    overall = detection[list(DETECTORS)].mean()
    print("\nAggregated over the table:", ", ".join(f"{name} {100 * overall[name]:.1f} %" for name in DETECTORS))
    decided = results[(results["family"] != "none") & results["ours"]]
    print("Deciding signals of our detections (a window may have several):", _deciding_counts(decided))
    print_goals(detection, alarms, results, {model: info["pool"] for model, info in meta["models"].items()})
    for model, info in meta["models"].items():
        print(
            f"{model}: pool {info['pool']} images (windows above it drawn with replacement: "
            f"{[size for size in meta['sizes'] if size > info['pool']]}), validation {info['validation']}, "
            f"training {info['training']}, validation accuracy {min(info['accuracy']):.3f}-{max(info['accuracy']):.3f}"
        )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(row) for row in frame.to_dict(orient="records")]


def print_goals(detection: pd.DataFrame, alarms: pd.DataFrame, results: pd.DataFrame, pools: dict[str, int]) -> None:
    """The issue's goals, checked on this run's table."""
    print("\nGoals:")
    worst: dict[int, float] = {}
    independent: dict[int, float] = {}
    for row in _rows(alarms):
        size, rate = int(row["size"]), float(row["ours"])
        worst[size] = max(worst.get(size, 0.0), rate)
        if size <= pools.get(str(row["model"]), size):  # no repeated image in the window
            independent[size] = max(independent.get(size, 0.0), rate)
    for name, rates in (("all windows", worst), ("windows without repeated images", independent)):
        verdict = "met" if all(rate <= SIGNIFICANCE for rate in rates.values()) else "NOT met"
        listed = ", ".join(f"{size}: {100 * rate:.0f} %" for size, rate in sorted(rates.items()))
        print(f"  false alarms <= {SIGNIFICANCE:.0%} per size, worst model, {name}: {listed} -> {verdict}")
    family = detection.groupby(["family", "size"], sort=False)[["ours", "bbsd"]].mean().reset_index()
    behind = [row for row in _rows(family) if int(row["size"]) >= 100 and row["ours"] < row["bbsd"]]
    listed = "; ".join(f"{r['family']} {r['size']}: {100 * r['ours']:.0f} vs {100 * r['bbsd']:.0f} %" for r in behind)
    print(f"  ours >= BBSD per shift family at every size >= 100: {'met' if not behind else 'NOT met: ' + listed}")
    large = [row for row in _rows(detection) if int(row["size"]) >= 100]
    cells = [row for row in large if row["ours"] < row["bbsd"]]
    print(f"  cells (model x shift x size >= 100) where ours < BBSD: {len(cells)} of {len(large)}")
    for row in cells:
        rates = f"ours {100 * row['ours']:.0f} %, BBSD {100 * row['bbsd']:.0f} %"
        print(f"    {row['model']} {row['shift']} {row['size']}: {rates}")
    print(
        f"  aggregated over the table: ours {100 * detection['ours'].mean():.1f} % "
        f"vs BBSD {100 * detection['bbsd'].mean():.1f} %"
    )
    knockout = _rows(results[results["family"] == "knockout"])
    flagged = [row for row in knockout if row["bbsd"]]
    missed = sorted(int(row["size"]) for row in flagged if not row["ours"])
    print(
        f"  knock-out windows BBSD flags: {len(flagged)}; flagged by ours too: {len(flagged) - len(missed)}; "
        f"sizes of the ones ours missed: {missed}"
    )


def heat_map(results: pd.DataFrame, path: Path, title: str) -> None:
    """Shifts x sizes, one panel per model and detector (ours, BBSD, pixel KS); the top row is the
    false-alarm rate on unshifted windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = results.copy()
    frame["shift"] = frame.apply(lambda row: "none (false alarms)" if row["family"] == "none" else _label(row), axis=1)
    models = list(dict.fromkeys(frame["model"]))
    shifts = list(dict.fromkeys(frame["shift"]))
    sizes = sorted(frame["size"].unique())
    figure, axes = plt.subplots(
        len(models), len(DETECTORS), figsize=(3.2 * len(DETECTORS) + 1.6, 0.32 * len(shifts) * len(models) + 1.8),
        squeeze=False, constrained_layout=True,
    )  # fmt: skip
    names = {"ours": "drift job (ours)", "bbsd": "BBSD (paper)", "pixels": "KS per pixel"}
    image = None
    for row, model in enumerate(models):
        rates = frame[frame["model"] == model].groupby(["shift", "size"])[list(DETECTORS)].mean()
        for column, detector in enumerate(DETECTORS):
            grid = np.array(
                [[rates[detector].get((shift, size), np.nan) for size in sizes] for shift in shifts], dtype=float
            )
            axis = axes[row][column]
            image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for (y, x), value in np.ndenumerate(grid):
                if not math.isnan(value):
                    axis.text(x, y, f"{100 * value:.0f}", ha="center", va="center", fontsize=6,
                              color="white" if value < 0.6 else "black")  # fmt: skip
            axis.set_xticks(range(len(sizes)), [f"{size:,}" for size in sizes], fontsize=7)
            axis.set_yticks(range(len(shifts)), shifts if column == 0 else [""] * len(shifts), fontsize=7)
            axis.set_title(f"{model}: {names[detector]}", fontsize=9)
            axis.set_xlabel("window size (images)", fontsize=7)
    if image is not None:
        figure.colorbar(image, ax=axes, shrink=0.6, label="detection rate")
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


FAMILY_NAMES = {"gaussian_noise": "Gaussian noise", "image": "image transforms", "knockout": "knock-out"}


def markdown_table(results: pd.DataFrame) -> str:
    """The README's table: false alarms per model, detection per shift family and over all shifts,
    'ours/BBSD/pixel KS' in percent per window size."""
    sizes = sorted(int(size) for size in results["size"].unique())

    def row(label: str, frame: pd.DataFrame) -> str:
        rates = frame.groupby("size")[list(DETECTORS)].mean()
        cells = ["/".join(f"{100 * rates.loc[size, name]:.0f}" for name in DETECTORS) for size in sizes]
        return f"| {label} | " + " | ".join(cells) + " |"

    detection = detection_table(results)
    models = list(dict.fromkeys(results["model"]))
    lines = ["| | " + " | ".join(f"{size:,}" for size in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    null = results[results["family"] == "none"]
    lines += [row(f"false alarms, {model}", null[null["model"] == model]) for model in models]
    for family, name in FAMILY_NAMES.items():
        part = detection[detection["family"] == family]
        if len(part):
            shifts = part["shift"].nunique()
            lines.append(row(f"detected, {name} ({shifts} shifts x {len(models)} models)", part))
    lines.append(row(f"detected, all {detection['shift'].nunique()} shifts x {len(models)} models", detection))
    return "\n".join(lines)


def _model_meta(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    first = outputs[0]
    return {
        "pool": first["pool"],
        "validation": first["validation"],
        "training": first["training"],
        "accuracy": [output["accuracy"] for output in outputs],
        "seconds": [output["seconds"] for output in outputs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the subset described above (a few minutes)")
    parser.add_argument("--runs", type=int, default=None, help="random runs (default 5, quick 2)")
    parser.add_argument("--null-windows", type=int, default=None, help="unshifted windows per run and size (6/5)")
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="override the window sizes")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--family", nargs="+", default=None, choices=sorted({shift.family for shift in PAPER_SHIFTS}),
        help="only these shift families (the unshifted windows are always drawn)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one run of one model each)")
    parser.add_argument("--report", type=Path, default=None, help="re-print the tables of a saved JSON and exit")
    parser.add_argument("--markdown", action="store_true", help="with --report: also print the README's table")
    parser.add_argument("--output", type=Path, default=None, help="results prefix (default benchmarks/results/...)")
    arguments = parser.parse_args()
    if arguments.report:
        saved = json.loads(arguments.report.read_text())
        print_report(pd.DataFrame(saved["windows"]), saved)
        print(f"\nwall time {saved['wall_seconds']:.0f} s")
        if arguments.markdown:
            print("\n" + markdown_table(pd.DataFrame(saved["windows"])))
        return
    plan = Plan(
        models=tuple(arguments.models),
        sizes=tuple(arguments.sizes or (QUICK_SIZES if arguments.quick else FULL_SIZES)),
        shifts=tuple(
            shift
            for shift in (QUICK_SHIFTS if arguments.quick else PAPER_SHIFTS)
            if arguments.family is None or shift.family in arguments.family
        ),
        runs=arguments.runs or (2 if arguments.quick else 5),
        null_windows=arguments.null_windows or (5 if arguments.quick else 6),
    )
    prefix = arguments.output or RESULTS / ("drift_power_quick" if arguments.quick else "drift_power")
    print(
        f"{'quick' if arguments.quick else 'full'} run: models {', '.join(plan.models)}; sizes {list(plan.sizes)}; "
        f"{len(plan.shifts)} shifts; {plan.runs} runs; {plan.null_windows} null windows per run and size",
        flush=True,
    )
    started = time.perf_counter()
    tasks = [(model, run) for model in plan.models for run in range(plan.runs)]
    if arguments.jobs > 1:
        with ProcessPoolExecutor(max_workers=arguments.jobs) as pool:
            outputs = list(pool.map(run_task, *zip(*tasks, strict=True), [plan] * len(tasks)))
    else:
        outputs = [run_task(model, run, plan) for model, run in tasks]
    seconds = time.perf_counter() - started
    results = pd.DataFrame([record for output in outputs for record in output["records"]])
    meta: dict[str, Any] = {"sizes": list(plan.sizes), "runs": plan.runs, "null_windows": plan.null_windows}
    meta["models"] = {
        model: _model_meta([o for o, (m, _) in zip(outputs, tasks, strict=True) if m == model]) for model in plan.models
    }
    print_report(results, meta)
    print(f"\nwall time {seconds:.0f} s ({arguments.jobs} worker process(es))")
    mode = "quick" if arguments.quick else "full"
    heat_map(results, prefix.with_suffix(".png"), f"Detection rate, {mode} protocol ({plan.runs} runs), alpha 0.05")
    prefix.with_suffix(".json").write_text(
        json.dumps(
            {
                **meta,
                "mode": mode,
                "wall_seconds": seconds,
                "detection": detection_table(results).to_dict(orient="records"),
                "false_alarms": false_alarm_table(results).to_dict(orient="records"),
                "windows": results.to_dict(orient="records"),
            },
            indent=1,
            default=str,
        )
    )
    print(f"wrote {prefix.with_suffix('.png')} and {prefix.with_suffix('.json')}")


if __name__ == "__main__":
    main()

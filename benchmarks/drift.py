"""Speed and memory of the drift job's computation on a large window, against a numpy/scipy baseline.

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--reference-rows 100000]
    .venv/bin/python benchmarks/drift.py --power      # the sample-size table of monitoring/drift.py

A prediction log of `--rows` rows (the serving layout, 23 feature columns + class + confidence +
version, timestamp, request id; 10 parquet files) and a reference of `--reference-rows` rows are
written to a temporary folder. Each measurement runs in a fresh process (so peak memory is its own):

* job: what `monitoring.job` does between "read the log" and "have the verdict" — `load_window`
  (Arrow, only the needed columns), `sample_window`, `build_reference`, `compute_drift` (Evidently);
* baseline: the same per-column tests on ALL rows, vectorised: read the same columns with pyarrow,
  normalised Wasserstein distance (scipy) for the 15 statistics, the confidence and each of the 8
  embedding components, Jensen-Shannon distance of the class counts (numpy bincount + scipy);
* the same baseline on 20,000-row samples of each side (what the job's tests see), to show where
  the job's time goes: Evidently's fixed per-column cost (plotly figures for the HTML report).

Printed: time of each and their ratio (goal: job <= 5 x baseline), peak RSS growth of each process
over its RSS before reading data vs the size of the data it loaded (goal <= 3 x), and the job's time
at several window sizes (sub-linear past the sample size: only the read grows with the rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))

MODEL = "digits"
WINDOW_DAY = "2026-11-19"
SIZES = (10_000, 50_000, 200_000, 1_000_000)


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _size_day(rows: int) -> str:
    return f"2026-10-{SIZES.index(rows) + 1:02d}" if rows in SIZES else WINDOW_DAY


# ------------------------------------------------------------------------------------------ data


def prepare(folder: Path, rows: int, reference_rows: int, sizes: list[int]) -> None:
    from benchmarks.drift_data import synthetic_rows, write_log
    from workloads import features
    from workloads.reference import write_feature_table

    store = folder / "predictions"
    # A modest real shift (0.15 sd on every feature): both sides must find drift, and agree.
    window = synthetic_rows(rows, seed=1, shift=0.15)
    write_log(window, store, MODEL, WINDOW_DAY, files=10)
    for size in sizes:
        if size != rows:
            write_log(window.iloc[:size], store, MODEL, _size_day(size), files=max(1, size // 100_000))
    del window
    reference = synthetic_rows(reference_rows, seed=2)
    training = reference[list(features.FEATURE_COLUMNS)].copy()
    training["label"] = reference["prediction"].to_numpy()
    write_feature_table(training, folder / "features.parquet", {"split": "train"})
    validation = reference.iloc[: max(reference_rows // 5, 1)][
        [*features.FEATURE_COLUMNS, "prediction", "confidence"]
    ].copy()
    validation["label"] = validation["prediction"]
    write_feature_table(validation, folder / "validation_predictions.parquet", {"split": "validation"})


# ----------------------------------------------------------------------------------- measurements


def measure_job(folder: Path, day: str) -> dict[str, float]:
    import evidently  # noqa: F401  (imports are not what we measure)
    import sklearn.linear_model  # noqa: F401

    from monitoring.drift import DriftThresholds, build_reference, class_names_for, compute_drift
    from monitoring.settings import DriftSettings
    from monitoring.store import Store
    from monitoring.window import load_window, sample_window
    from workloads.reference import read_feature_table

    settings = DriftSettings()
    names = class_names_for(MODEL)
    # One small warm-up run: Evidently and plotly import lazily on first use (a cold CronJob pays it once).
    warm_training, _ = read_feature_table(folder / "features.parquet")
    warm_reference, _ = build_reference(warm_training.iloc[:2000], None, names, 2000, 0)
    warm_current = warm_reference.iloc[:1000].copy()
    compute_drift(warm_current, warm_reference, DriftThresholds())
    del warm_training, warm_reference, warm_current

    before = _rss_bytes()
    started = time.perf_counter()
    window = load_window(Store(str(folder / "predictions")), MODEL, day)
    training, _ = read_feature_table(folder / "features.parquet")
    validation, _ = read_feature_table(folder / "validation_predictions.parquet")
    loaded_at = time.perf_counter()
    loaded = window.nbytes + int(training.memory_usage(deep=True).sum() + validation.memory_usage(deep=True).sum())
    current = sample_window(window, window.majority_version, settings.sample_size, settings.seed, names)
    reference, _ = build_reference(training, validation, names, settings.sample_size, settings.seed)
    computation = compute_drift(current, reference, DriftThresholds())
    finished = time.perf_counter()
    return {
        **_figures(started, loaded_at, finished, window.rows, loaded, before),
        "dataset_drift": computation.dataset_drift,
        "drifted": len(computation.drifted_features),
        "features": len(computation.features),
    }


def _figures(
    started: float, loaded_at: float, finished: float, rows: int, loaded: int, before: int
) -> dict[str, float]:
    """What the job and the baseline report alike: seconds in all and reading, rows, bytes loaded,
    and how far the peak RSS grew above `before`."""
    return {
        "seconds": finished - started,
        "read_seconds": loaded_at - started,
        "rows": rows,
        "loaded_bytes": loaded,
        "peak_growth_bytes": _peak_rss_bytes() - before,
    }


def measure_baseline(folder: Path, day: str, sample: int | None = None) -> dict[str, float]:
    """`sample`: draw that many rows (seeded, as the job does) from each side before testing."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    from workloads import features

    numeric = [*features.FEATURE_COLUMNS, "confidence"]
    before = _rss_bytes()
    started = time.perf_counter()
    files = sorted((folder / "predictions" / MODEL / f"date={day}").glob("*.parquet"))
    window = pa.concat_tables([pq.read_table(path, columns=[*numeric, "prediction"]) for path in files])
    training = pq.read_table(folder / "features.parquet", columns=[*features.FEATURE_COLUMNS, "label"])
    validation = pq.read_table(folder / "validation_predictions.parquet", columns=["prediction", "confidence"])
    loaded_at = time.perf_counter()
    loaded = window.nbytes + training.nbytes + validation.nbytes
    if sample is not None:
        generator = np.random.default_rng(0)

        def _take(table: pa.Table) -> pa.Table:
            if table.num_rows <= sample:
                return table
            return table.take(pa.array(np.sort(generator.choice(table.num_rows, size=sample, replace=False))))

        window, training, validation = _take(window), _take(training), _take(validation)
    scores = {}
    for name in numeric:
        current = window[name].to_numpy()
        reference = (validation if name == "confidence" else training)[name].to_numpy()
        scores[name] = wasserstein_distance(reference, current) / max(float(np.std(reference)), 1e-3)
    current_counts = np.bincount(window["prediction"].to_numpy(), minlength=10)
    reference_counts = np.bincount(validation["prediction"].to_numpy(), minlength=10)
    scores["prediction"] = float(jensenshannon(reference_counts, current_counts, base=2))
    finished = time.perf_counter()
    drifted = int(sum(score >= 0.1 for score in scores.values()))
    return {
        **_figures(started, loaded_at, finished, window.num_rows, loaded, before),
        "drifted": drifted,
        "features": len(scores),
    }


def _child(kind: str, folder: Path, day: str) -> dict[str, float]:
    process = subprocess.run(
        [sys.executable, "-W", "ignore", __file__, "--measure", kind, "--folder", str(folder), "--day", day],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
    )
    if process.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- sample size power


def power_table() -> None:
    """Null distribution and power of the normalised Wasserstein distance (threshold 0.1)."""
    import numpy as np
    from scipy.stats import wasserstein_distance

    generator = np.random.default_rng(0)
    print("rows per side | null mean | null 99th pct | detect 0.12 sd shift")
    for rows in (1_000, 2_000, 5_000, 10_000, 20_000, 50_000):
        null, hits = [], []
        for _ in range(200):
            reference, current = generator.standard_normal(rows), generator.standard_normal(rows)
            null.append(wasserstein_distance(reference, current) / reference.std())
            shifted = generator.standard_normal(rows) + 0.12
            hits.append(wasserstein_distance(reference, shifted) / reference.std() >= 0.1)
        print(f"{rows:>13,} | {np.mean(null):9.4f} | {np.percentile(null, 99):13.4f} | {np.mean(hits):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--power", action="store_true", help="print the sample-size table and exit")
    parser.add_argument("--measure", choices=("job", "baseline", "baseline-sampled"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--day", default=WINDOW_DAY, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.power:
        power_table()
        return
    if arguments.measure:
        if arguments.measure == "job":
            result = measure_job(arguments.folder, arguments.day)
        else:
            sample = 20_000 if arguments.measure == "baseline-sampled" else None
            result = measure_baseline(arguments.folder, arguments.day, sample)
        print(json.dumps(result, default=float))
        return

    sizes = sorted({size for size in SIZES if size < arguments.rows} | {arguments.rows})
    with tempfile.TemporaryDirectory(prefix="mlops-drift-benchmark-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        prepare(folder, arguments.rows, arguments.reference_rows, sizes)
        print(
            f"data: window {arguments.rows:,} rows x 23 feature columns (+ class, confidence, version, timestamp, "
            f"request id), reference {arguments.reference_rows:,} rows; "
            f"written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        job = _child("job", folder, WINDOW_DAY)
        baseline = _child("baseline", folder, WINDOW_DAY)
        sampled = _child("baseline-sampled", folder, WINDOW_DAY)
        mib = 1 << 20
        for name, result in (("job", job), ("baseline", baseline), ("baseline, 20,000-row samples", sampled)):
            print(
                f"{name:<29} {result['seconds']:7.2f} s (read {result['read_seconds']:.2f} s) | "
                f"loaded {result['loaded_bytes'] / mib:7.1f} MiB, "
                f"peak RSS growth {result['peak_growth_bytes'] / mib:7.1f} MiB "
                f"= {result['peak_growth_bytes'] / result['loaded_bytes']:.2f} x | "
                f"drifted {result['drifted']}/{result['features']}",
                flush=True,
            )
        print(f"time ratio job / baseline: {job['seconds'] / baseline['seconds']:.2f} (goal <= 5)")
        print(
            f"time ratio job / baseline on the same 20,000-row samples: {job['seconds'] / sampled['seconds']:.1f} "
            "(Evidently's fixed cost: per-column plotly figures for the HTML report)"
        )
        print(f"job peak memory / loaded data: {job['peak_growth_bytes'] / job['loaded_bytes']:.2f} (goal <= 3)")
        print("job time by window size (sample size 20,000):")
        previous = None
        for size in sizes:
            result = job if size == arguments.rows else _child("job", folder, _size_day(size))
            growth = ""
            if previous is not None:
                growth = (
                    f"  (x{size / previous[0]:.0f} rows -> x{result['seconds'] / previous[1]:.2f} time, "
                    f"read x{result['read_seconds'] / max(previous[2], 1e-9):.2f})"
                )
            print(
                f"  {size:>9,} rows: {result['seconds']:6.2f} s, read {result['read_seconds']:.2f} s{growth}",
                flush=True,
            )
            previous = (size, result["seconds"], result["read_seconds"])


if __name__ == "__main__":
    main()

"""How much does orchestration cost? A local pipeline run vs the same work as one plain script.

    .venv/bin/python benchmarks/pipeline.py [--model digits] [--repeats 2] [--epochs N]

Both sides run the same step functions (`pipelines.steps`) on the same dataset snapshot against the
same tracking server, each in fresh interpreters:

* pipeline: `kfp.local` with `SubprocessRunner(use_venv=False)` — one subprocess per step, inputs
  and outputs passed as artifacts on disk, the quality gate evaluated by the runner;
* plain script: one `python` process that calls fetch → preprocess → train → evaluate → register.

Every process, on both sides, ends the same way: `pipelines.steps.prepare_process_exit()` after its
work (the components call it; so do both sides' top-level scripts here).

Each step records when its own work started and ended (MLOPS_STEP_TIMINGS), so the pipeline's wall
time splits into the steps' work (including the imports each step needs) and the overhead between
them (interpreter start, kfp's executor, artifact bookkeeping). The headline is
(pipeline wall - plain wall) / plain wall; the goal for digits at default epochs is ≤ 20 %.
Last, the floor: fresh interpreters time what a one-process-per-step pipeline must load again that
the script loads once (torch for evaluate, the MLflow client for register, an interpreter with
kfp's executor per step), so the report shows how much of the overhead no change inside the steps
can remove.
Also prints both sides' CPU time, which other processes on a shared machine disturb far less than
wall time. Uses MLFLOW_TRACKING_URI if set, else starts a throw-away local tracking server.
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

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from pipelines.steps import TIMINGS_ENVIRONMENT_VARIABLE  # noqa: E402
from workloads import catalogue  # noqa: E402
from workloads.datasets.versions import snapshot  # noqa: E402
from workloads.settings import TrackingClientVariables  # noqa: E402
from workloads.training import THREADS_ENVIRONMENT_VARIABLE  # noqa: E402  (torch: the timed runs are children)

PLAIN_SCRIPT = """
import dataclasses, sys, time, json
from pathlib import Path
started = time.time()
from pipelines import steps
from workloads import catalogue
from workloads.tracking.instrument import DatasetRef
model, store, scratch, epochs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
entry = catalogue.get(model)
p = entry.training
fetched = steps.fetch_step(entry.dataset, "latest", store, scratch / "dataset")
steps.preprocess_step(model, scratch / "dataset", p.validation_fraction, p.seed,
                      scratch / "train.npz", scratch / "validation.npz", scratch / "reference.parquet",
                      scratch / "production.npz")
trained = steps.train_step(model, scratch / "train.npz", dataclasses.replace(p, epochs=epochs),
                           DatasetRef(entry.dataset, fetched.version, fetched.digest, fetched.uri),
                           "plain-script", scratch / "weights.pt")
evaluated = steps.evaluate_step(model, scratch / "weights.pt", scratch / "validation.npz",
                                entry.quality_threshold, scratch / "report.json", scratch / "predictions.parquet",
                                scratch / "production.npz")
gated = steps.gate_step(model, scratch / "report.json", scratch / "production.npz", entry.quality_threshold,
                        entry.regression_margin, False, entry.promotion_margin, scratch / "gate.json")
if gated.passed:
    steps.register_step(model, trained.run_id, trained.model_uri,
                        {"accuracy": evaluated.accuracy, "macro_f1": evaluated.macro_f1}, "plain-script",
                        gated.promote, gated.report["reason"], scratch / "reference.parquet",
                        scratch / "predictions.parquet", scratch / "report.json")
else:
    steps.reject_step(model, trained.run_id, gated.message, scratch / "report.json")
print(json.dumps({"training_seconds": trained.seconds, "quality": evaluated.quality}), flush=True)
steps.prepare_process_exit()  # as every pipeline step's process does before it ends
"""


def _read_timings(path: Path) -> list[dict[str, float | str]]:
    if not path.exists():
        return []
    return sorted((json.loads(line) for line in path.read_text().splitlines() if line), key=lambda r: r["start"])


def _children_cpu_seconds() -> float:
    """User + system CPU time of every finished child process so far (steps and their children too)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_plain(model: str, store: str, epochs: int, environment: dict[str, str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as scratch:
        timings = Path(scratch) / "timings.jsonl"
        cpu_before = _children_cpu_seconds()
        started = time.time()
        completed = subprocess.run(
            [sys.executable, "-c", PLAIN_SCRIPT, model, store, scratch, str(epochs)],
            env={**environment, TIMINGS_ENVIRONMENT_VARIABLE: str(timings)},
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.time() - started
        cpu = _children_cpu_seconds() - cpu_before
        if completed.returncode != 0:
            raise SystemExit(f"plain script failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        return {"wall": wall, "cpu": cpu, "steps": _read_timings(timings), **result}


def run_pipeline(model: str, store: str, epochs: int, environment: dict[str, str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch:
        timings = Path(scratch) / "timings.jsonl"
        script = (
            "import sys; from pathlib import Path; from pipelines.local import run_local; "
            "r = run_local(sys.argv[1], pipeline_root=Path(sys.argv[2]), dataset_store=sys.argv[3], "
            "epochs=int(sys.argv[4])); print('SUMMARY', r.summary, flush=True); "
            "from pipelines.steps import prepare_process_exit; prepare_process_exit()"
        )
        cpu_before = _children_cpu_seconds()
        started = time.time()
        completed = subprocess.run(
            [sys.executable, "-c", script, model, str(Path(scratch) / "root"), store, str(epochs)],
            env={**environment, TIMINGS_ENVIRONMENT_VARIABLE: str(timings)},
            capture_output=True,
            text=True,
            check=False,
        )
        finished = time.time()
        cpu = _children_cpu_seconds() - cpu_before
        if completed.returncode != 0:
            raise SystemExit(f"pipeline run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        steps = _read_timings(timings)
        # Overhead of a step = the gap between the previous step's work ending and its own starting.
        previous_end = started
        for record in steps:
            record["overhead"] = float(record["start"]) - previous_end
            previous_end = float(record["end"])
        return {"wall": finished - started, "cpu": cpu, "steps": steps, "tail": finished - previous_end}


# What a pipeline whose steps each run in a process of their own must load again, whatever else it
# does, because the plain script has it loaded already: evaluate runs the network (torch), register
# talks to the registry (the MLflow client), and every step starts an interpreter with kfp's
# executor (in its runtime mode, as the compiled component commands start it).
REPEATED_BY_STEP_PROCESSES = {
    "torch (evaluate)": ("import torch", {}),
    "MLflow client (register)": ("from mlflow.tracking import MlflowClient", {}),
    "interpreter + kfp executor (per step)": ("import kfp.dsl.executor_main", {"_KFP_RUNTIME": "true"}),
}


def fresh_import_seconds(statement: str, environment: dict[str, str], repeats: int = 3) -> float:
    """Wall time of a fresh interpreter that runs `statement` and exits (fastest of `repeats`)."""
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], env=environment, check=True)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def repeated_import_floor(environment: dict[str, str], steps: int) -> tuple[float, list[str]]:
    """Seconds a one-process-per-step pipeline spends loading what one script loads once, and how."""
    lines, total = [], 0.0
    bare_interpreter = fresh_import_seconds("pass", environment)
    for label, (statement, extra) in REPEATED_BY_STEP_PROCESSES.items():
        seconds = fresh_import_seconds(statement, {**environment, **extra})
        count = steps if label.endswith("(per step)") else 1
        if count == 1:
            seconds -= bare_interpreter  # the interpreter start is counted once per step below
        total += seconds * count
        lines.append(f"{label}: {seconds:.2f} s" + (f" x {count} steps" if count > 1 else ""))
    return total, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="digits")
    parser.add_argument("--epochs", type=int, default=None, help="default: the catalogue's")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating (fastest reported)")
    arguments = parser.parse_args()
    entry = catalogue.get(arguments.model)
    epochs = arguments.epochs or entry.training.epochs
    load_at_start = os.getloadavg()[0]

    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY_ROOT), environment.get("PYTHONPATH")) if p)
    environment.setdefault(THREADS_ENVIRONMENT_VARIABLE, "1")
    server = None
    if not environment.get(TrackingClientVariables.URI):
        from workloads.tracking.local import start_local_tracking

        server = start_local_tracking(Path(tempfile.mkdtemp(prefix="bench-tracking-")))
        environment.update(server.client_environment())
    try:
        store = tempfile.mkdtemp(prefix="bench-store-")
        snapshot(entry.dataset, store)
        run_plain(arguments.model, store, epochs, environment)  # warm the page cache and the server
        plains, pipelines_ = [], []
        for _ in range(arguments.repeats):
            plains.append(run_plain(arguments.model, store, epochs, environment))
            pipelines_.append(run_pipeline(arguments.model, store, epochs, environment))
        floor, floor_lines = repeated_import_floor(environment, steps=len(pipelines_[0]["steps"]))
    finally:
        if server is not None:
            server.stop()

    # The fastest run of each side: on a shared machine other processes only ever add time, so the
    # minimum is the best estimate of each side's own cost (all runs are printed too).
    chosen = min(pipelines_, key=lambda p: float(p["wall"]))
    chosen_plain = min(plains, key=lambda p: float(p["wall"]))
    pipeline_wall, plain_wall = float(chosen["wall"]), float(chosen_plain["wall"])
    plain_steps = {str(r["step"]): float(r["end"]) - float(r["start"]) for r in chosen_plain["steps"]}
    print(
        f"model {arguments.model}, {epochs} epochs, torch threads {environment[THREADS_ENVIRONMENT_VARIABLE]}, "
        f"fastest of {arguments.repeats} run(s) per side; load average {load_at_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'step':<18}{'pipeline work s':>16}{'overhead s':>12}{'plain-script work s':>21}")
    work_total = overhead_total = 0.0
    for record in chosen["steps"]:
        work = float(record["end"]) - float(record["start"])
        work_total += work
        overhead_total += float(record["overhead"])
        name = str(record["step"])
        print(f"{name:<18}{work:>16.2f}{float(record['overhead']):>12.2f}{plain_steps.get(name, float('nan')):>21.2f}")
    overhead_total += float(chosen["tail"])
    print(f"{'(after last step)':<18}{'':>16}{float(chosen['tail']):>12.2f}")
    print(
        f"pipeline wall {pipeline_wall:.2f} s = steps' work {work_total:.2f} s + orchestration {overhead_total:.2f} s"
    )
    print(f"plain script wall {plain_wall:.2f} s (training loop alone {chosen_plain['training_seconds']:.2f} s)")
    print(
        "all runs: pipeline "
        + ", ".join(f"{float(p['wall']):.1f}" for p in pipelines_)
        + " s; plain "
        + ", ".join(f"{float(p['wall']):.1f}" for p in plains)
        + " s"
    )
    # CPU time barely depends on what else the machine runs, so it shows the same comparison with
    # far less noise than wall time on a shared machine (the tracking server's CPU is in neither).
    pipeline_cpu = min(float(p["cpu"]) for p in pipelines_)
    plain_cpu = min(float(p["cpu"]) for p in plains)
    print(
        f"CPU time (user + system, all processes of a side, least per side): pipeline {pipeline_cpu:.2f} s, "
        f"plain {plain_cpu:.2f} s: +{pipeline_cpu - plain_cpu:.2f} s = {(pipeline_cpu - plain_cpu) / plain_cpu:.0%}"
    )
    ratio = (pipeline_wall - plain_wall) / plain_wall
    print(f"overhead vs plain script: {pipeline_wall - plain_wall:.2f} s = {ratio:.0%} (goal <= 20 %)")
    # The floor: no change inside the steps removes these, only fewer processes or a longer training.
    print(
        f"floor for one process per step, loading again what the script loads once: {floor:.2f} s = "
        f"{floor / plain_wall:.0%} of the plain script ({'; '.join(floor_lines)})"
    )


if __name__ == "__main__":
    main()

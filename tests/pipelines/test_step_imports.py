"""Each step's process imports only what its work needs.

Every pipeline step runs in a fresh interpreter, so whatever a step imports it pays for again
(torch, MLflow and pandas cost seconds each here; benchmarks/pipeline.py). These tests run a step
the way its component does, in a new process, and list the heavy packages it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.contract import REPOSITORY_ROOT
from workloads import catalogue

HEAVY = ("numpy", "pandas", "pyarrow", "torch", "mlflow", "sklearn", "boto3")

PREAMBLE = """
import json, sys
from pathlib import Path
from pipelines import steps
work = Path(sys.argv[1])
"""

REPORT = """
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))
print("LOADED " + json.dumps(loaded))
"""


def _heavy_modules_loaded(body: str, work: Path) -> list[str]:
    """Run `body` in a fresh interpreter (repository on PYTHONPATH) and list the HEAVY packages it loaded."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY_ROOT), environment.get("PYTHONPATH")) if p)
    environment.pop("MLOPS_STEP_TIMINGS", None)
    completed = subprocess.run(
        [sys.executable, "-c", PREAMBLE + body + REPORT, str(work), json.dumps(HEAVY)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED "))


@pytest.fixture(scope="module")
def prepared(snapshot_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fetched and preprocessed digits dataset and an (untrained) weights file, made in this process."""
    import torch

    from pipelines import steps

    work = tmp_path_factory.mktemp("step-imports")
    entry = catalogue.get("digits")
    steps.fetch_step(entry.dataset, "latest", str(snapshot_store), work / "dataset")
    steps.preprocess_step(
        "digits", work / "dataset", 0.2, 0, work / "train.npz", work / "validation.npz", work / "reference.parquet"
    )
    torch.save(entry.build_model().state_dict(), work / "weights.pt")
    return work


def test_fetch_loads_none_of_the_heavy_packages(snapshot_store: Path, tmp_path: Path) -> None:
    # Copying and hashing files needs neither numpy nor torch, MLflow or pandas.
    body = f"steps.fetch_step('digits', 'latest', {str(snapshot_store)!r}, work / 'dataset')\n"
    assert _heavy_modules_loaded(body, tmp_path) == []


def test_preprocess_loads_no_torch_and_no_mlflow(prepared: Path) -> None:
    body = (
        "steps.preprocess_step('digits', work / 'dataset', 0.2, 0, work / 'again-train.npz', "
        "work / 'again-validation.npz', work / 'again-reference.parquet')\n"
    )
    loaded = _heavy_modules_loaded(body, prepared)
    assert "torch" not in loaded and "mlflow" not in loaded, loaded
    assert {"numpy", "pandas", "pyarrow"} <= set(loaded)  # what its work does need: the check sees imports


def test_evaluate_loads_no_mlflow(prepared: Path) -> None:
    # The register or reject step records the report; evaluate must not pay for MLflow's import.
    body = (
        "steps.evaluate_step('digits', work / 'weights.pt', work / 'validation.npz', 0.95, "
        "work / 'report.json', work / 'predictions.parquet')\n"
    )
    loaded = _heavy_modules_loaded(body, prepared)
    assert "mlflow" not in loaded, loaded
    assert "torch" in loaded


def test_prepare_process_exit_freezes_what_is_alive(tmp_path: Path) -> None:
    body = (
        "import gc\n"
        "before = gc.get_freeze_count()\n"
        "steps.prepare_process_exit()\n"
        "assert before == 0 < gc.get_freeze_count(), (before, gc.get_freeze_count())\n"
    )
    assert _heavy_modules_loaded(body, tmp_path) == []

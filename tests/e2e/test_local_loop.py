"""The whole loop on one machine, through the console script, with the smallest settings.

`mlops local up --model digits --epochs 3 --keep`: a model is trained by its pipeline, gated,
registered and promoted; its BentoML service serves it and logs a normal and a drifted day of real
HTTP traffic; the drift job is quiet on the first day, alerts the webhook on the second and, with no
labels yet, asks for them; the day is queued, labelled through Label Studio's export format and
measured; the retrain trains v2 on base + those images, v2 is promoted and serves a second drifted
day better. The platform is then still running (`--keep`); a second `up` stops it and runs the loop
again on the same state (the first snapshot is reused, the registry grows); `mlops local down` then
has nothing left to stop.

About 10-14 minutes on two cores: two tracking-server starts, four pipeline runs, two service starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cli import local_state
from cli.local_closure import DRIFTED_DAY_IMAGES
from cli.local_traffic import normal_day_images
from observability.local_servers import PROMETHEUS, PUSHGATEWAY, find_binary
from workloads import catalogue

LOOP_TIMEOUT_SECONDS = 1200
DAY_IMAGES = len(normal_day_images(catalogue.get("digits")))  # the validation split of the 1,797 digits
DRIFTED_IMAGES = DRIFTED_DAY_IMAGES


def _mlops(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli.main", *arguments]
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "MLOPS_"))
    }  # the loop must bring everything it needs
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=LOOP_TIMEOUT_SECONDS
    )


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _summary(state: Path, day_folder: Path) -> dict:
    return json.loads((day_folder / "summary.json").read_text(encoding="utf-8"))


def _day_folders(state: Path) -> list[Path]:
    return sorted((state / "local" / "reports" / "digits").glob("date=*"))


def _check_days(state: Path, retrained_on: str) -> None:
    normal, drifted, second = (_summary(state, folder) for folder in _day_folders(state))
    assert normal["status"] == "no_drift", normal
    assert normal["alert"] == {"sent": False, "reason": "no dataset drift"}
    assert normal["rows_in_window"] == DAY_IMAGES  # every replayed image was logged
    assert drifted["status"] == "drift", drifted
    assert drifted["rows_in_window"] == DRIFTED_IMAGES
    assert drifted["alert"]["sent"] is True and drifted["alert"]["channels"] == ["webhook"]
    # No labels yet: the trigger asks for them instead of retraining on the data v1 learned.
    assert drifted["retrain"]["submitted"] is False and drifted["retrain"]["new_labels"] == 0
    assert drifted["retrain"]["reason"].startswith("needs labels: 0 new labelled images of 200")
    # Labelled through the queue and Label Studio's export: measured, degraded, retrained on a new version.
    quality = _quality(state, _day_folders(state)[1])
    assert quality["status"] == "degraded" and quality["retrain"]["submitted"] is True, quality["retrain"]
    assert quality["retrain"]["dataset_version"] == retrained_on
    assert re.search(r"registered digits v\d+ .*promoted to production", quality["retrain"]["outcome"])
    before = _row(quality, _day_folders(state)[1].name.removeprefix("date="))
    after = _row(_quality(state, _day_folders(state)[2]), _day_folders(state)[2].name.removeprefix("date="))
    assert after["model_version"] != before["model_version"]  # the second drifted day was served by the new one
    assert before["accuracy"] < 0.2 < 0.8 < after["accuracy"], (before, after)
    # The second drifted day is the shift the new version learned: it differs from the original
    # distribution, not from the labelled day's, so it is quiet (monitoring.reference_groups).
    assert second["status"] == "no_drift", second
    original, learned = second["reference_groups"][0], second["reference_groups"][1]
    assert original["name"] == "original" and original["dataset_drift"] is True, second["reference_groups"]
    assert learned["name"] == f"production {_day_folders(state)[1].name.removeprefix('date=')}", learned
    assert learned["reported"] and learned["dataset_drift"] is False, learned
    for folder in _day_folders(state):
        assert (folder / "report.html").stat().st_size > 10_000  # the Evidently report itself


def _quality(state: Path, day_folder: Path) -> dict:
    return json.loads((day_folder / "quality.json").read_text(encoding="utf-8"))


def _row(quality: dict, day: str) -> dict:
    """The day's row with the most labels (the demo's probes for the swap are a few requests more)."""
    return max((row for row in quality["rows"] if row["day"] == day), key=lambda row: row["labelled"])


@pytest.mark.e2e
def test_the_whole_loop_runs_twice_and_comes_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    common = ["--model", "digits", "--epochs", "3", "--state-directory", str(state)]
    ports = ["--tracking-port", "0", "--service-port", "0"]

    try:
        _run_twice_and_come_down(tmp_path, state, common, ports)
    finally:
        local_state.stop_kept(state)  # a failed assertion must not leave servers behind


def _run_twice_and_come_down(tmp_path: Path, state: Path, common: list[str], ports: list[str]) -> None:
    first = _mlops("local", "up", *common, *ports, "--keep", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    output = first.stdout
    for step in ("1/7 tracking server", "2/7 training", "3/7 serving", "4/7 traffic", "5/7 drift", "6/7 ground"):
        assert step in output
    assert "7/7 a second drifted day" in output
    assert "step train: SUCCESS" in output  # progress of the pipeline's steps
    assert "ALERT at the webhook: [drift] digits v1" in output
    assert "ALERT at the webhook: [labels] digits" in output and "ALERT at the webhook: [quality] digits v1" in output
    assert "Alerts received by the local webhook: 3" in output
    assert "The loop closed (digits): v1 → v2, trained on dataset v2" in output
    _check_days(state, "v2")

    # Kept running after the command returned: the registry and the service answer.
    kept = local_state.read_record(state)
    # Where Debian's Prometheus is installed (`make unit` requires it), the demo's monitoring is kept too.
    monitoring = []
    if find_binary(PROMETHEUS):
        monitoring = [*(["pushgateway"] if find_binary(PUSHGATEWAY) else []), "prometheus"]
    assert [server.name for server in kept] == ["tracking server", "digits service", *monitoring]
    tracking, service = kept[:2]
    assert _status(f"{service.url}/readyz") == 200
    password = (state / "tracking" / "admin-password").read_text(encoding="utf-8").strip()
    os.environ.update(
        MLFLOW_TRACKING_URI=tracking.url, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=password
    )
    try:
        client = MlflowClient()
        production = client.get_model_version_by_alias("digits", "production")
        versions = client.search_model_versions("name='digits'")
    finally:
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(name, None)
    assert production.version == "2"  # v1 trained and promoted; v2, retrained on the labelled day, promoted
    assert production.tags["quality_gate"] == "passed" and production.tags["dataset.version"] == "v2"
    assert float(production.tags["metric.accuracy"]) >= 0.95 and float(production.tags["metric.recent_accuracy"]) > 0.8
    assert sorted(int(version.version) for version in versions) == [1, 2]  # first run + the retrain
    assert "digits: v1, v2 @production @staging" in output
    logged = sorted((state / "local" / "predictions" / "digits").glob("date=*"))
    assert len(logged) == 3  # one partition per replayed day

    # Twice: the second `up` stops the kept platform first, reuses the snapshot, and the loop works again.
    second = _mlops("local", "up", *common, *ports, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "stopped the platform an earlier `--keep` left running: tracking server, digits service" in second.stdout
    assert "dataset digits v1 (snapshot reused" in second.stdout
    # v2 learned the first run's inverted days: the story restarts from v1, then from the new v3.
    assert "digits: production v2 → v1 — production had learned an earlier run's drifted days" in second.stdout
    assert "digits: production v1 → v3" in second.stdout
    assert not any(local_state.is_running(server) for server in kept)
    assert _status(f"{service.url}/livez") is None
    _check_days(state, "v3")  # the second run's labelled day, added to v1 again
    assert "Stopped everything it started" in second.stdout
    assert not local_state.record_path(state).exists()

    down = _mlops("local", "down", "--state-directory", str(state), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "nothing to stop" in down.stdout


def test_bad_options_get_one_line_and_exit_status(tmp_path: Path) -> None:
    unknown = _mlops("local", "up", "--model", "nope", "--state-directory", str(tmp_path), cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: unknown model 'nope': the catalogue has digits, surface-defects"
    epochs = _mlops("local", "up", "--epochs", "0", "--state-directory", str(tmp_path), cwd=tmp_path)
    assert epochs.returncode == 2
    assert epochs.stderr.strip() == "error: --epochs must be >= 1, got 0"
    for option, value, message in (
        ("--tracking-port", "-1", "error: --tracking-port must be 0 (any free port) or 1-65535, got -1"),
        ("--service-port", "65535", "error: --service-port must be 0 (any free port) or 1-65534, got 65535"),
    ):
        port = _mlops("local", "up", option, value, "--state-directory", str(tmp_path), cwd=tmp_path)
        assert port.returncode == 2
        assert port.stderr.strip() == message
    assert not (tmp_path / "local").exists()  # nothing was started or written

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")
    unwritable = _mlops("local", "up", "--state-directory", str(not_a_folder), "--tracking-port", "0", cwd=tmp_path)
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith("error: [Errno 20] Not a directory"), unwritable.stderr
    assert len(unwritable.stderr.strip().splitlines()) == 1

"""Relative stores are the caller's directory, for every command: `mlops serve` run from elsewhere than
the repository writes its prediction log and labels there (bentoml serve itself runs in the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cli.caller_paths import absolute, resolve_store_variables
from tests.workloads.serving.conftest import DigitsVersions
from workloads.local_process import free_loopback_port
from workloads.process_group import stop_process_group
from workloads.serving.local import REPOSITORY_ROOT, LocalModelService


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("preds", "/home/me/preds"),
        ("./a/../b", "/home/me/b"),
        ("/srv/preds", "/srv/preds"),
        ("file://preds", "file:///home/me/preds"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
    ],
)
def test_a_relative_path_is_the_callers(value: str, expected: str) -> None:
    assert absolute(value, Path("/home/me")) == expected


def test_the_cli_makes_every_store_variable_absolute_and_leaves_unset_ones_unset() -> None:
    environ = {"MLOPS_PREDICTIONS_STORE": "p", "MLOPS_REPORTS_STORE": "s3://r", "MLOPS_LABELS_STORE": " "}
    resolve_store_variables(environ, Path("/work/here"))
    assert environ == {
        "MLOPS_PREDICTIONS_STORE": "/work/here/p",
        "MLOPS_REPORTS_STORE": "s3://r",
        "MLOPS_LABELS_STORE": " ",
    }


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlops serve did not become ready:\n{log.read_text(errors='replace')[-3000:]}")


def test_mlops_serve_from_another_directory_writes_its_stores_there(
    digits_service: LocalModelService, digits_versions: DigitsVersions, tmp_path: Path
) -> None:
    del digits_service  # only for its promoted production version
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    port = free_loopback_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    environment.update(
        PYTHONPATH=str(REPOSITORY_ROOT),
        BENTOML_HOME=str(tmp_path / "bentoml"),
        MLOPS_LOG_FLUSH_SECONDS="1",
        MLOPS_TORCH_THREADS="1",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "digits", "--port", str(port), "--predictions-store", "preds"],
            cwd=caller,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        answer = requests.post(
            f"{url}/classify_array", json={"image": digits_versions.data.test_images[0].tolist()}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        feedback = requests.post(
            f"{url}/feedback",
            json={"request_id": answer.json()["request_id"], "labels": [{"index": 0, "label": "0"}]},
            timeout=30,
        )
        assert feedback.status_code == 200, feedback.text
    finally:
        stop_process_group(process, 60)  # SIGTERM flushes the prediction log
    # --predictions-store preds, and the labels store's default .mlops/labels: both under the caller's directory.
    assert list((caller / "preds" / "digits").glob("date=*/*.parquet")), log.read_text(errors="replace")[-3000:]
    assert list((caller / ".mlops" / "labels" / "digits").glob("date=*/*.parquet"))
    assert not (REPOSITORY_ROOT / "preds").exists()

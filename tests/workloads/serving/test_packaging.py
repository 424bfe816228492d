"""The Bento builds offline, the image recipe is the cluster's, and `mlops serve` refuses mistakes clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli.main import app
from workloads.serving.local import REPOSITORY_ROOT

SERVING = REPOSITORY_ROOT / "workloads" / "serving"


def test_bentoml_build_produces_a_bento_offline(tmp_path: Path) -> None:
    bentoml = Path(sys.executable).with_name("bentoml")
    environment = {
        **os.environ,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        # Offline: no index, no proxy. The build must not need the network (packages are not locked).
        "PIP_NO_INDEX": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    environment.pop("MLOPS_MODEL", None)  # the image is model-agnostic: MLOPS_MODEL comes at run time
    result = subprocess.run(
        [str(bentoml), "build", "-f", str(SERVING / "bentofile.yaml"), str(REPOSITORY_ROOT)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "image-classifier").glob("*/bento.yaml"))
    assert len(bentos) == 1
    bento = bentos[0].parent
    manifest = yaml.safe_load(bentos[0].read_text())
    assert manifest["service"] == "workloads.serving.service:ImageClassifier"
    # One service: the model runs in the HTTP process (no internal model-worker service to deploy).
    assert [service["name"] for service in manifest["services"]] == ["image-classifier"]
    for module in (
        "service.py",
        "inputs.py",
        "model_source.py",
        "prediction_log.py",
        "request_guard.py",
        "request_timeout.py",
    ):
        assert (bento / "src" / "workloads" / "serving" / module).exists()
    assert (bento / "src" / "workloads" / "features.py").exists()
    assert (bento / "src" / "workloads" / "settings.py").exists()  # the settings mechanism the service reads with
    assert (bento / "env" / "docker" / "Dockerfile").exists()


def test_dockerfile_runs_as_a_non_root_user_with_cpu_torch() -> None:
    dockerfile = (SERVING / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "USER 10001" in dockerfile
    # CPU torch by default, from the same index and at the same version as the training image; an empty
    # TORCH_INDEX_URL (infra/platform.py's model-serving-gpu) takes the CUDA build instead.
    training = (SERVING.parents[1] / "pipelines" / "Dockerfile").read_text()
    for argument in ("TORCH_VERSION", "TORCH_INDEX_URL"):
        (line,) = [line for line in dockerfile.splitlines() if line.startswith(f"ARG {argument}=")]
        assert line in training.splitlines()
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile and "/whl/cpu" in dockerfile
    assert 'pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in dockerfile
    assert "workloads.serving.service:ImageClassifier" in dockerfile
    # Every module the service imports is copied into the image.
    for module in (
        "service.py",
        "settings.py",
        "device.py",
        "device_metrics.py",
        "inputs.py",
        "model_source.py",
        "prediction_log.py",
        "request_guard.py",
        "request_timeout.py",
    ):
        assert f"workloads/serving/{module}" in dockerfile


def test_serve_refuses_an_unknown_model_with_one_line() -> None:
    result = CliRunner().invoke(app, ["serve", "no-such-model"], env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"})
    assert result.exit_code == 2
    assert "unknown model 'no-such-model': the catalogue has digits" in result.output
    assert "Traceback" not in result.output


def test_serve_needs_a_tracking_server() -> None:
    result = CliRunner().invoke(app, ["serve", "digits"], env={"MLFLOW_TRACKING_URI": ""})
    assert result.exit_code == 2
    assert "MLFLOW_TRACKING_URI is not set" in result.output


def test_serve_help_documents_every_variable() -> None:
    from workloads.serving.settings import VARIABLES

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in VARIABLES:
        assert name in result.output

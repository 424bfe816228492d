"""A real `bentoml serve` that cannot serve as configured stops at once with one line and status 2,
instead of BentoML restarting its worker with a traceback for ever."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workloads.serving.local import start_local_service

CASES = [
    ({"MLOPS_DEVICE": "tpu"}, "model service: MLOPS_DEVICE='tpu': expected cpu, cuda or cuda:N"),
    (
        {"MLOPS_DEVICE": "cpu", "MLOPS_MAX_BATCH_SIZE": "0"},
        "model service: MLOPS_MAX_BATCH_SIZE='0': expected an integer >= 1",
    ),
]
if not torch.cuda.is_available():
    CASES.append(({"MLOPS_DEVICE": "cuda"}, "model service: MLOPS_DEVICE=cuda: no GPU is visible to torch"))


@pytest.mark.parametrize(("environment", "line"), CASES)
def test_a_service_that_cannot_serve_stops_with_one_line(
    environment: dict[str, str], line: str, tmp_path: Path
) -> None:
    service = start_local_service(
        "digits",
        environment={
            **environment,
            "BENTOML_HOME": str(tmp_path / "bentoml"),
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
        },
        log_path=tmp_path / "service.log",
    )
    try:
        code = service.process.wait(timeout=120)
    finally:
        service.stop()
    log = service.log_text().strip()
    assert code == 2
    assert log.splitlines() == [log.splitlines()[0]] and log.startswith(line), log

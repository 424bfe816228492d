"""The local loop's small parts, without starting the platform: the kept-platform record, filing a
replayed day, the drifted images and the webhook receiver."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cli import local_state, local_traffic
from monitoring.webhook_receiver import WebhookReceiver

SLEEPER = "import time; time.sleep(120)  # mlops-test-sleeper"


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)


def test_down_stops_what_was_kept_and_forgets_it(tmp_path: Path) -> None:
    process = _sleeper()
    try:
        server = local_state.KeptServer("sleeper", "http://127.0.0.1:1", process.pid, "mlops-test-sleeper")
        local_state.write_record(tmp_path, [server])
        assert local_state.read_record(tmp_path) == [server]
        assert local_state.is_running(server)
        assert local_state.stop_kept(tmp_path, timeout=10) == [server]
        assert process.wait(timeout=10) == -15  # SIGTERM, the graceful path
        assert not local_state.record_path(tmp_path).exists()
        assert local_state.stop_kept(tmp_path) == []
    finally:
        process.kill()
        process.wait()


def test_a_reused_process_id_is_never_signalled(tmp_path: Path) -> None:
    process = _sleeper()
    try:
        stranger = local_state.KeptServer("tracking server", "http://127.0.0.1:1", process.pid, "mlflow")
        local_state.write_record(tmp_path, [stranger])
        assert not local_state.is_running(stranger)  # the pid runs, but not an mlflow server
        assert local_state.stop_kept(tmp_path, timeout=1) == []
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_a_damaged_record_is_one_clear_error(tmp_path: Path) -> None:
    local_state.record_path(tmp_path).parent.mkdir(parents=True)
    local_state.record_path(tmp_path).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not a platform record"):
        local_state.read_record(tmp_path)


def test_filing_a_day_moves_every_other_partition_except_the_kept_ones(tmp_path: Path) -> None:
    for day, name in (("2026-11-26", "a"), ("2026-11-27", "b"), ("2026-11-28", "c")):
        folder = tmp_path / "digits" / f"date={day}"
        folder.mkdir(parents=True)
        (folder / f"{name}.parquet").write_bytes(b"x")
    moved = local_traffic.file_under_day(tmp_path, "digits", "2026-11-27", keep=("2026-11-26",))
    assert moved == 1
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.parquet")) == [
        "digits/date=2026-11-26/a.parquet",
        "digits/date=2026-11-27/b.parquet",
        "digits/date=2026-11-27/c.parquet",
    ]
    assert not (tmp_path / "digits" / "date=2026-11-28").exists()


def test_drifted_images_are_brighter_noisier_and_still_images() -> None:
    images = np.full((4, 8, 8), 100, dtype=np.uint8)
    shifted = local_traffic.shift_images(images, brightness=70, noise=25.0, seed=1)
    assert shifted.dtype == np.uint8 and shifted.shape == images.shape
    assert 160 < shifted.mean() < 180 and shifted.std() > 15
    assert np.array_equal(shifted, local_traffic.shift_images(images, brightness=70, noise=25.0, seed=1))


def test_the_webhook_receiver_records_json_and_refuses_the_rest() -> None:
    received: list[dict] = []
    with WebhookReceiver(on_message=received.append) as receiver:
        request = urllib.request.Request(
            receiver.url, data=json.dumps({"text": "drift"}).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(receiver.url, data=b"[1, 2]"), timeout=5)
        assert refused.value.code == 400
        assert receiver.texts() == ["drift"] and received == [{"text": "drift"}]

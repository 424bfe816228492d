"""Promotion and rollback are alias moves the running service follows, without a failed request."""

from __future__ import annotations

import threading
import time

import requests

from tests.workloads.serving.conftest import MODEL, DigitsVersions
from workloads.serving.local import LocalModelService
from workloads.tracking.registry import promote, rollback

CLIENTS = 3


def test_alias_moves_are_followed_without_failed_requests(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    images = digits_versions.data.test_images[:4].tolist()
    observed: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.post(f"{digits_service.url}/classify_array", json={"image": images}, timeout=30)
                except requests.RequestException as error:
                    with lock:
                        failures.append(type(error).__name__)
                    continue
                with lock:
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                    else:
                        observed.append((time.monotonic(), response.json()["version"]))

    def wait_for_version(version: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                if observed and observed[-1][1] == version:
                    return observed[-1][0]
            time.sleep(0.1)
        raise AssertionError(f"the service did not switch to v{version} within {timeout:.0f} s")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for_version(digits_versions.first)
        promoted_at = time.monotonic()
        promote(MODEL, digits_versions.second)
        switched_at = wait_for_version(digits_versions.second)
        time.sleep(1.5)
        rollback(MODEL)  # production back to the first version
        rolled_back_at = wait_for_version(digits_versions.first)
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert failures == []
    versions = [version for _, version in observed]
    assert len(versions) > 20
    # Each move is a clean switch: once a version is answered after the move settles, the old one is
    # not seen again (requests in flight during the swap finish on the model they started with).
    settled = [version for moment, version in observed if switched_at + 1.0 < moment < rolled_back_at - 0.1]
    assert settled and set(settled) == {digits_versions.second}
    after = [version for moment, version in observed if moment > rolled_back_at + 1.0]
    assert after and set(after) == {digits_versions.first}
    assert switched_at - promoted_at < 10  # the service polls the alias every second
    assert f"alias production moved v{digits_versions.first} -> v{digits_versions.second}" in digits_service.log_text()

"""Replayed traffic for the local loop: a normal day and a drifted day of requests to a model service.

A normal day is the held-out validation split of the model's dataset (the same stratified split the
training pipeline makes, so the model never trained on these images and they come from the
reference's distribution). A drifted day is the same images after a camera change: brighter and
noisier (`shift_images`). Both are sent over HTTP to the running BentoML service as JSON arrays,
concurrently, so the service's adaptive batching and prediction log do the real work.

The two replays happen minutes apart, so both land in today's partition of the prediction log;
`file_under_day` moves the first replay's files to the day it stands for before the second starts.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from workloads import catalogue
from workloads.datasets.builders import build
from workloads.datasets.splits import stratified_split

REQUEST_IMAGES = 16
"""Images per request: several per request, as a camera batch would send them."""
CLIENTS = 4


class TrafficError(RuntimeError):
    """The service refused or failed a replayed request, or its log never showed the rows."""


def normal_day_images(entry: catalogue.CatalogueEntry) -> np.ndarray:
    """The validation split of the model's dataset (uint8, N x H x W): unseen by the model, in distribution."""
    data = build(entry.dataset, seed=entry.training.seed)
    _, validation = stratified_split(data.labels, entry.training.validation_fraction, entry.training.seed)
    return data.images[validation]


def shift_images(images: np.ndarray, brightness: int = 70, noise: float = 25.0, seed: int = 0) -> np.ndarray:
    """A camera change: every pixel brighter by `brightness` grey levels plus Gaussian noise, clipped to uint8."""
    generator = np.random.default_rng(seed)
    values = images.astype(np.float64) + brightness + generator.normal(0.0, noise, images.shape)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def replay(service_url: str, images: np.ndarray, timeout: float = 120.0) -> int:
    """POST `images` to `/classify_array` in requests of REQUEST_IMAGES from CLIENTS threads; returns the
    number of images classified. Any non-200 answer is a TrafficError carrying the service's message."""
    import requests

    batches = [images[start : start + REQUEST_IMAGES] for start in range(0, len(images), REQUEST_IMAGES)]

    def send(batch: np.ndarray) -> int:
        try:
            response = requests.post(f"{service_url}/classify_array", json={"image": batch.tolist()}, timeout=timeout)
        except requests.RequestException as error:
            raise TrafficError(f"{service_url} did not answer: {error}") from None
        if response.status_code != 200:
            raise TrafficError(f"{service_url} answered {response.status_code}: {response.text[:300]}")
        return len(response.json()["predictions"])

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return sum(pool.map(send, batches))


def logged_rows(store: Path, model: str) -> int:
    """Rows in the model's prediction log (every day), read from the parquet footers only."""
    import pyarrow.parquet as parquet

    return sum(parquet.ParquetFile(path).metadata.num_rows for path in (store / model).glob("date=*/*.parquet"))


def wait_until_logged(
    store: Path, model: str, expected: int, timeout: float = 60.0, sleep: Callable[[float], None] | None = None
) -> None:
    """Block until the service has written `expected` rows for `model` (it flushes every few seconds)."""
    import time

    pause = sleep or time.sleep
    deadline = time.monotonic() + timeout
    while (rows := logged_rows(store, model)) < expected:
        if time.monotonic() > deadline:
            raise TrafficError(f"{model}: the prediction log holds {rows} of {expected} rows after {timeout:.0f} s")
        pause(0.5)


def file_under_day(store: Path, model: str, day: str, keep: tuple[str, ...] = ()) -> int:
    """Move every logged file of `model` under `date=<day>`, except those of the days in `keep` (replayed
    earlier); returns how many files moved. A replay that crossed midnight thus stays one day."""
    target = store / model / f"date={day}"
    target.mkdir(parents=True, exist_ok=True)
    kept = {store / model / f"date={other}" for other in keep}
    moved = 0
    for path in sorted((store / model).glob("date=*/*.parquet")):
        if path.parent != target and path.parent not in kept:
            path.rename(target / path.name)
            moved += 1
    for folder in (store / model).glob("date=*"):
        if folder != target and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return moved

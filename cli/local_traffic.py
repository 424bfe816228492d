"""Replayed traffic for the local loop: a normal day and a drifted day of requests to a model service.

A normal day is the held-out validation split of the model's dataset (the same stratified split the
training pipeline makes, so the model never trained on these images and they come from the
reference's distribution). A drifted day is a camera change: brighter and noisier (`shift_images`)
— or, for a model whose loop closes (`retrain_on_drift`), a new scanner that images dark ink on
light paper (`invert_images`): a shift the model fails on (digits: about 1 % right) and can learn
from a few hundred labelled images. Those drifted days are drawn from disjoint slices of the
training split (`drifted_day_images`), so the second drifted day holds images no retrain saw
inverted, while the validation split stays untouched for the "original split" comparison. All are
sent over HTTP to the running BentoML service as JSON arrays, concurrently, so the service's
adaptive batching and prediction log do the real work; `replay` returns each request's id, which is
how the demo's annotator knows what each logged image really shows.

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


def drifted_day_images(entry: catalogue.CatalogueEntry, day: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and true labels of the `day`-th drifted day (0, 1, ...): `count` training images per day,
    disjoint across days, inverted (`invert_images`)."""
    data = build(entry.dataset, seed=entry.training.seed)
    train, _ = stratified_split(data.labels, entry.training.validation_fraction, entry.training.seed)
    rows = np.random.default_rng(entry.training.seed).permutation(train)[day * count : (day + 1) * count]
    return invert_images(data.images[rows]), data.labels[rows]


def invert_images(images: np.ndarray) -> np.ndarray:
    """A scanner that sees the page the other way round: dark ink on light paper (255 - pixel)."""
    return (255 - images.astype(np.int16)).astype(np.uint8)


def shift_images(images: np.ndarray, brightness: int = 70, noise: float = 25.0, seed: int = 0) -> np.ndarray:
    """A camera change: every pixel brighter by `brightness` grey levels plus Gaussian noise, clipped to uint8."""
    generator = np.random.default_rng(seed)
    values = images.astype(np.float64) + brightness + generator.normal(0.0, noise, images.shape)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def replay(service_url: str, images: np.ndarray, timeout: float = 120.0) -> int:
    """POST `images` to `/classify_array` in requests of REQUEST_IMAGES from CLIENTS threads; returns the
    number of images classified. Any non-200 answer is a TrafficError carrying the service's message."""
    return sum(count for _, _, count in replay_requests(service_url, images, timeout))


def replay_requests(service_url: str, images: np.ndarray, timeout: float = 120.0) -> list[tuple[str, int, int]]:
    """As `replay`; returns (request_id, position of its first image in `images`, images) per request."""
    import requests

    starts = range(0, len(images), REQUEST_IMAGES)

    def send(start: int) -> tuple[str, int, int]:
        batch = images[start : start + REQUEST_IMAGES]
        try:
            response = requests.post(f"{service_url}/classify_array", json={"image": batch.tolist()}, timeout=timeout)
        except requests.RequestException as error:
            raise TrafficError(f"{service_url} did not answer: {error}") from None
        if response.status_code != 200:
            raise TrafficError(f"{service_url} answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        return str(body["request_id"]), start, len(body["predictions"])

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(send, starts))


def served_version(service_url: str, image: np.ndarray, timeout: float = 30.0) -> str:
    """The model version that answers a request now (what a promotion swaps in)."""
    import requests

    response = requests.post(f"{service_url}/classify_array", json={"image": image.tolist()}, timeout=timeout)
    if response.status_code != 200:
        raise TrafficError(f"{service_url} answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["version"])


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

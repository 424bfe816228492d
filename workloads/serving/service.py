"""The BentoML service for a catalogue image model: `bentoml serve workloads.serving.service:ImageClassifier`.

Two BentoML services, one `bentoml serve` process tree:

* `ImageClassifier` (the HTTP entry, port 3000): decodes and validates requests
  (`inputs`), computes the shared preprocessing and drift features (`workloads.features`), asks
  the model worker for probabilities, logs every prediction (`prediction_log`) and answers with the
  class, the probabilities and the model name and version. `RequestGuard` refuses oversized,
  pickled, mistyped and empty bodies before anything is parsed.
* `ModelWorker` (internal, not on the public port): holds the model behind the alias
  (`model_source`), follows the alias, and runs the forward pass with adaptive batching
  (`batchable=True`): concurrent requests are merged into one batch within a latency budget.

Splitting the two keeps request handling (decoding, features, logging) off the thread that runs
the model, and keeps the batchable internal API off the public port. `/readyz` of the entry is 503
until the worker has loaded a version (BentoML probes dependencies); `/livez` stays 200;
`/metrics` is BentoML's Prometheus endpoint (request counts and latencies per route, adaptive batch
sizes). Configuration: environment variables only, see `settings.VARIABLES`.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException, ServiceUnavailable
from starlette.responses import JSONResponse

from workloads import features
from workloads.serving.inputs import InvalidRequestError, decode_array, decode_image_file, model_inputs
from workloads.serving.model_source import ModelNotReadyError, ModelSource
from workloads.serving.prediction_log import PredictionLog
from workloads.serving.request_guard import RequestGuard
from workloads.serving.settings import ServingSettings, SettingsError, load_settings

logger = logging.getLogger("mlops.serving")
logger.setLevel(logging.INFO)  # BentoML configures the handlers; our lines (readiness, swaps, flushes) are INFO

IMAGE_ROUTE = "/classify_image"
ARRAY_ROUTE = "/classify_array"
WORKER_ATTEMPTS = 3

# Read at import: BentoML fixes batching limits when the class is decorated. `bentoml build` imports
# this module without a model configured, so a missing MLOPS_MODEL is only an error when serving.
try:
    SETTINGS: ServingSettings | None = load_settings()
    _SETTINGS_ERROR: str | None = None
except SettingsError as error:
    SETTINGS, _SETTINGS_ERROR = None, str(error)
_BATCH_SIZE = SETTINGS.max_batch_size if SETTINGS else 64
_LATENCY_MS = SETTINGS.max_latency_ms if SETTINGS else 100
_PAYLOAD_BYTES = SETTINGS.max_payload_bytes if SETTINGS else 8 * 1024 * 1024


def require_settings() -> ServingSettings:
    if SETTINGS is None:
        raise SettingsError(f"serving is not configured: {_SETTINGS_ERROR}")
    return SETTINGS


@bentoml.service(name="model-worker", workers=1, threads=1, traffic={"timeout": 120})
class ModelWorker:
    """Holds the model behind the alias and runs batched forward passes."""

    def __init__(self) -> None:
        import torch

        settings = require_settings()
        torch.set_num_threads(settings.torch_threads)
        self.source = ModelSource(settings.model, settings.alias, settings.alias_poll_seconds)
        self.source.start()

    def __is_ready__(self) -> bool:
        return self.source.ready

    @bentoml.api(batchable=True, max_batch_size=_BATCH_SIZE, max_latency_ms=_LATENCY_MS)
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(N, classes + 1) for preprocessed inputs (N, 1, H, W): the probabilities, then the number of
        the model version that computed the row (MLflow versions are integers; one float64 array
        pickles cheaply between the processes, where a list of dicts went through JSON)."""
        try:
            loaded = self.source.current  # one version for the whole batch, even if a swap happens now
        except ModelNotReadyError as error:
            raise ServiceUnavailable(str(error)) from None
        probabilities = loaded.predict(inputs).astype(np.float64)
        version = np.full((probabilities.shape[0], 1), float(loaded.version))
        return np.concatenate([probabilities, version], axis=1)

    @bentoml.on_shutdown
    def stop_following(self) -> None:
        self.source.stop()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@bentoml.service(name="image-classifier", workers=1, traffic={"timeout": 120})
class ImageClassifier:
    """Classify grayscale images with the catalogue model behind the registry alias."""

    worker = bentoml.depends(ModelWorker)

    def __init__(self) -> None:
        self.settings = require_settings()
        self.entry = self.settings.entry
        self.log = PredictionLog(
            self.settings.predictions_store,
            self.settings.model,
            flush_rows=self.settings.log_flush_rows,
            flush_seconds=self.settings.log_flush_seconds,
        )

    @bentoml.api(route=IMAGE_ROUTE)
    async def classify_image(self, image: Path) -> dict[str, Any]:
        """Classify one PNG or JPEG file (multipart field `image`); converted to grayscale and resized."""
        try:
            data = await anyio.Path(image).read_bytes()
            images = decode_image_file(data, self.entry.image_shape, self.settings.max_image_pixels)
        except InvalidRequestError as error:
            return _error(error.status, str(error))  # type: ignore[return-value]
        return await self._classify(images)  # type: ignore[return-value]

    @bentoml.api(route=ARRAY_ROUTE)
    async def classify_array(self, image: list[Any], dtype: str = "uint8") -> dict[str, Any]:
        """Classify a JSON array: one image (H, W) or a batch (N, H, W) of `dtype` uint8 (0-255) or float32 ([0, 1])."""
        try:
            images = decode_array(image, dtype, self.entry.image_shape, self.settings.max_images_per_request)
        except InvalidRequestError as error:
            return _error(error.status, str(error))  # type: ignore[return-value]
        return await self._classify(images)  # type: ignore[return-value]

    async def _classify(self, images: np.ndarray) -> dict[str, Any] | JSONResponse:
        try:
            inputs, drift = await anyio.to_thread.run_sync(_prepare, images)
        except InvalidRequestError as error:
            return _error(error.status, str(error))
        try:
            rows = await self._predict(inputs)
        except BentoMLException as error:
            if error.error_code == HTTPStatus.SERVICE_UNAVAILABLE:
                return _error(503, f"model {self.entry.name} is not ready or overloaded, retry shortly")
            logger.exception("model worker failed")
            return _error(500, "the model failed on this request; see the server log")
        request_id = uuid.uuid4().hex
        probabilities = rows[:, :-1]
        versions = [str(int(version)) for version in rows[:, -1]]
        predicted = probabilities.argmax(axis=1)
        confidences = probabilities.max(axis=1)
        self.log.append(drift, predicted.tolist(), self.entry.class_names, confidences.tolist(), versions, request_id)
        names = self.entry.class_names
        return {
            "model": self.entry.name,
            "version": versions[-1],
            "request_id": request_id,
            "predictions": [
                {
                    "class": names[index],
                    "confidence": float(confidences[row]),
                    "probabilities": {name: float(probabilities[row, column]) for column, name in enumerate(names)},
                }
                for row, index in enumerate(predicted.tolist())
            ],
        }

    async def _predict(self, inputs: np.ndarray) -> np.ndarray:
        """Call the worker; retry when a pooled keep-alive connection was closed under us.

        aiohttp reuses idle connections to the worker, and one can be closed by the worker's server
        at the moment it is reused (`ServerDisconnectedError`, `Cannot write to closing transport`).
        The forward pass is a pure function of its input, so sending it again is safe.
        """
        for attempt in range(WORKER_ATTEMPTS):
            try:
                return await self.worker.to_async.predict(inputs)
            except aiohttp.ClientConnectionError:
                if attempt == WORKER_ATTEMPTS - 1:
                    raise
                logger.info("model worker connection dropped, retrying (attempt %d)", attempt + 2)
        raise AssertionError("unreachable")

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        self.log.close()


def _prepare(images: np.ndarray) -> tuple[np.ndarray, Any]:
    """Model inputs and drift features of one request, both from the shared features module."""
    inputs = model_inputs(images)
    return inputs, features.drift_features(images)


ImageClassifier.add_asgi_middleware(
    RequestGuard,
    routes={IMAGE_ROUTE: ("multipart/form-data",), ARRAY_ROUTE: ("application/json",)},
    max_payload_bytes=_PAYLOAD_BYTES,
    file_fields={IMAGE_ROUTE: "image"},
)

"""The BentoML service for a catalogue image model: `bentoml serve workloads.serving.service:ImageClassifier`.

One BentoML service, one worker process: the HTTP routes and the model live in the same process.

* HTTP (port 3000): `RequestGuard` refuses oversized, pickled, mistyped and empty bodies before
  anything is parsed; the handlers decode and validate (`inputs`) and compute the shared
  preprocessing (`workloads.features.preprocess`) in a worker thread, hand the model inputs to the
  adaptive-batching dispatcher, log every prediction with its images (`prediction_log`, which
  computes the shared drift features when it writes, many requests at a time) and answer with the
  class, the probabilities and the model name and version.
* Model: `ModelSource` holds the version behind the alias and follows it (hot swap, no failed
  request). BentoML's adaptive-batching dispatcher (`CorkDispatcher`, the one `batchable=True`
  endpoints get) merges the inputs of concurrent requests into one forward pass within a latency
  budget, in this process: no inter-process hop, no serialisation, and no batchable endpoint on the
  public port (see `_batching_dispatcher` for why the dispatcher is used directly).

* Ground truth: `POST /feedback` takes labels for the images of an answered request (its
  `request_id`, each image's position in it) and stores them in the labels store
  (`workloads.labels`); it needs no model, so it answers while the service is not ready.

`/readyz` is 503 until a version is loaded (`__is_ready__`); `/livez` stays 200; `/metrics` is
BentoML's Prometheus endpoint (request counts and latencies per route) plus
`mlops_serving_batch_images`, the sizes of the batches the dispatcher formed. Configuration:
environment variables only, see `settings.ServingSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable
from starlette.responses import JSONResponse

from workloads.catalogue_entry import CatalogueEntry
from workloads.labels.feedback import feedback_records
from workloads.labels.record import InvalidLabelError
from workloads.labels.store import LabelStore
from workloads.request_id import new_request_id
from workloads.serving import request_timeout
from workloads.serving.inputs import InvalidRequestError, decode_array, decode_image_file, model_inputs
from workloads.serving.model_source import ModelNotReadyError, ModelSource
from workloads.serving.prediction_log import PredictionLog
from workloads.serving.request_guard import RequestGuard
from workloads.serving.settings import ServingSettings, SettingsError, load_settings

if TYPE_CHECKING:  # BentoML's middleware Protocol exists only for type checkers
    from bentoml._internal.external_typing.starlette import AsgiMiddleware

logger = logging.getLogger("mlops.serving")
logger.setLevel(logging.INFO)  # BentoML configures the handlers; our lines (readiness, swaps, flushes) are INFO

IMAGE_ROUTE = "/classify_image"
ARRAY_ROUTE = "/classify_array"
FEEDBACK_ROUTE = "/feedback"
BATCH_METRIC = "mlops_serving_batch_images"

# Before BentoML builds the app: its per-request timeout would otherwise keep every answered request's
# context in memory for the whole timeout (see request_timeout).
request_timeout.install()

# Read at import: the payload limit is fixed when the middleware is added below. `bentoml build`
# imports this module without a model configured, so a missing MLOPS_MODEL is only an error when serving.
try:
    SETTINGS: ServingSettings | None = load_settings()
    _SETTINGS_ERROR: str | None = None
except SettingsError as error:
    SETTINGS, _SETTINGS_ERROR = None, str(error)
_PAYLOAD_BYTES = SETTINGS.max_payload_bytes if SETTINGS else 8 * 1024 * 1024


def require_settings() -> ServingSettings:
    if SETTINGS is None:
        raise SettingsError(f"serving is not configured: {_SETTINGS_ERROR}")
    return SETTINGS


class OverloadedError(RuntimeError):
    """The dispatcher dropped the request: it could not be served within MLOPS_MAX_LATENCY_MS."""


def _overloaded() -> Any:
    raise OverloadedError("the request could not be batched within the latency budget")


def _batching_dispatcher(
    settings: ServingSettings, forward: Callable[[Sequence[np.ndarray]], Coroutine[Any, Any, list[np.ndarray]]]
) -> tuple[Callable[[np.ndarray], Coroutine[Any, Any, np.ndarray]], Callable[[], None]]:
    """BentoML's adaptive batching around `forward`: (an async function to await with one request's
    (n, 1, H, W) inputs, the dispatcher's shutdown).

    This is the dispatcher BentoML builds for an `@bentoml.api(batchable=True)` endpoint (same class,
    same arguments, same CORK algorithm that learns the batch cost and the wait). BentoML 1.4 only
    reaches it through HTTP: a batchable endpoint is batched when it is *requested* — from another
    service (the inter-process hop with pickling this layout removes), or from this service through
    its self-proxy (an in-process HTTP request through the whole middleware stack with the array
    encoded as JSON, and the batchable route exposed on the public port). Making the public routes
    batchable is not an option either: a batchable endpoint takes one argument and processes a merged
    batch, so one bad image would fail every request batched with it. Hence the class is used
    directly. It is internal API: the images pin `bentoml==1.4.40` (Dockerfile, bentofile.yaml), the
    project allows only 1.4.x, and every serving test goes through it.
    """
    from bentoml._internal.marshal.dispatcher import CorkDispatcher, NonBlockSema

    dispatcher: CorkDispatcher[np.ndarray, np.ndarray] = CorkDispatcher(
        max_latency_in_ms=settings.max_latency_ms,
        max_batch_size=settings.max_batch_size,
        fallback=_overloaded,
        get_batch_size=len,  # images in one request; a request larger than a batch is split along axis 0
        batch_dim=(0, 0),
        # At most this many batches are in the model at once (BentoML's default is one).
        shared_sema=NonBlockSema(settings.concurrent_batches),
    )
    return dispatcher(forward), dispatcher.shutdown  # type: ignore[return-value]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@bentoml.service(name="image-classifier", workers=1, traffic={"timeout": 120})
class ImageClassifier:
    """Classify grayscale images with the catalogue model behind the registry alias."""

    def __init__(self) -> None:
        import torch

        self.settings = require_settings()
        self.entry: CatalogueEntry = self.settings.entry
        torch.set_num_threads(self.settings.torch_threads)
        self.source = ModelSource(self.settings.model, self.settings.alias, self.settings.alias_poll_seconds)
        self.source.start()
        self.log = PredictionLog(
            self.settings.predictions_store,
            self.settings.model,
            flush_rows=self.settings.log_flush_rows,
            flush_seconds=self.settings.log_flush_seconds,
            image_max_pixels=self.settings.log_image_max_pixels,
        )
        self.labels = LabelStore(self.settings.labels_store)
        # Forward passes get their own threads: request decoding (anyio's default pool) never makes a
        # formed batch wait for a thread.
        self._forward_threads = anyio.CapacityLimiter(self.settings.concurrent_batches)
        self._batch_sizes = _batch_histogram(self.settings)
        self._predict, self._stop_batching = _batching_dispatcher(self.settings, self._forward_batches)

    def __is_ready__(self) -> bool:
        return self.source.ready

    @bentoml.api(route=IMAGE_ROUTE)
    async def classify_image(self, image: Path) -> dict[str, Any]:
        """Classify one PNG or JPEG file (multipart field `image`); converted to grayscale and resized."""
        try:
            images, inputs = await anyio.to_thread.run_sync(self._prepare_file, image)
        except InvalidRequestError as error:
            return _error(error.status, str(error))  # type: ignore[return-value]
        return await self._classify(images, inputs)  # type: ignore[return-value]

    @bentoml.api(route=ARRAY_ROUTE)
    async def classify_array(self, image: list[Any], dtype: str = "uint8") -> dict[str, Any]:
        """Classify a JSON array: one image (H, W) or a batch (N, H, W) of `dtype` uint8 (0-255) or float32 ([0, 1])."""
        try:
            images, inputs = await anyio.to_thread.run_sync(self._prepare_array, image, dtype)
        except InvalidRequestError as error:
            return _error(error.status, str(error))  # type: ignore[return-value]
        return await self._classify(images, inputs)  # type: ignore[return-value]

    @bentoml.api(route=FEEDBACK_ROUTE)
    async def feedback(self, body: Any, /) -> dict[str, Any]:
        """Store ground truth: `{"request_id": "...", "labels": [{"index": 0, "label": "3"}, ...]}` (see
        `workloads.labels.feedback`). The body arrives whole (positional-only: BentoML's root input),
        already checked to be one JSON object by `RequestGuard`; nothing is stored unless all of it is valid."""
        try:
            records = feedback_records(
                body,
                self.entry.name,
                self.entry.class_names,
                self.settings.max_images_per_request,
                datetime.now(tz=UTC),
            )
        except InvalidLabelError as error:
            return _error(error.status, str(error))  # type: ignore[return-value]
        try:
            # One file per feedback request, written before answering: an acknowledged label is stored.
            await anyio.to_thread.run_sync(self.labels.write, records)
        except Exception:
            logger.exception("labels store: write failed")
            return _error(503, "the labels could not be stored (nothing was); retry shortly")  # type: ignore[return-value]
        return {"model": self.entry.name, "request_id": records[0].request_id, "stored": len(records)}

    def _prepare_file(self, image: Path) -> tuple[np.ndarray, np.ndarray]:
        """Read, decode, preprocess: one worker thread per request, off the event loop."""
        images = decode_image_file(image.read_bytes(), self.entry.image_shape, self.settings.max_image_pixels)
        return images, model_inputs(images)

    def _prepare_array(self, image: list[Any], dtype: str) -> tuple[np.ndarray, np.ndarray]:
        images = decode_array(image, dtype, self.entry.image_shape, self.settings.max_images_per_request)
        return images, model_inputs(images)

    async def _classify(self, images: np.ndarray, inputs: np.ndarray) -> dict[str, Any] | JSONResponse:
        """Batched forward pass of the shared preprocessing (`inputs`), then log the images and answer."""
        if not self.source.ready:  # answer at once: a request must not wait in a batch for a model that is not there
            return _error(503, f"model {self.entry.name} is not ready yet, retry shortly")
        try:
            rows = await self._predict(inputs)
        except (ModelNotReadyError, OverloadedError, ServiceUnavailable):
            return _error(503, f"model {self.entry.name} is not ready or overloaded, retry shortly")
        except Exception:
            logger.exception("forward pass failed")
            return _error(500, "the model failed on this request; see the server log")
        request_id = new_request_id()
        probabilities = rows[:, :-1]
        versions = [str(int(version)) for version in rows[:, -1]]
        predicted = probabilities.argmax(axis=1)
        confidences = probabilities.max(axis=1)
        # The log computes the drift features of `images` when it writes them, many requests at a time;
        # it records the same probabilities this response returns (the softmax vector BBSD tests).
        self.log.append(images, probabilities, self.entry.class_names, versions, request_id)
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

    async def _forward_batches(self, requests: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The dispatcher's callback: one forward pass for the inputs of several requests, split back."""
        batch = requests[0] if len(requests) == 1 else np.concatenate(requests)
        rows = await anyio.to_thread.run_sync(self._forward, batch, limiter=self._forward_threads)
        return np.split(rows, np.cumsum([len(inputs) for inputs in requests])[:-1])

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """(N, classes + 1): the probabilities, then the version number that computed each row.

        A version per row because a request larger than a batch is split by the dispatcher and its
        parts can straddle a swap; the dispatcher merges the parts back as one array (MLflow versions
        are integers).
        """
        loaded = self.source.current  # one version for the whole batch, even if a swap happens now
        probabilities = loaded.predict(batch).astype(np.float64)
        self._batch_sizes.observe(len(batch))
        version = np.full((probabilities.shape[0], 1), float(loaded.version))
        return np.concatenate([probabilities, version], axis=1)

    @bentoml.on_shutdown
    def shut_down(self) -> None:
        """SIGTERM: in-flight requests have been answered; write the prediction log and stop following."""
        self.log.close()
        self._stop_batching()
        self.source.stop()


def _batch_histogram(settings: ServingSettings) -> Any:
    """Sizes of the batches the dispatcher formed, on /metrics.

    prometheus_client is imported here, not at module import: BentoML sets PROMETHEUS_MULTIPROC_DIR
    in the worker after importing the service module, and a client imported earlier would keep its
    samples out of /metrics.
    """
    import prometheus_client

    buckets = sorted({2**power for power in range(settings.max_batch_size.bit_length())} | {settings.max_batch_size})
    return prometheus_client.Histogram(
        BATCH_METRIC,
        "Images per forward pass formed by adaptive batching",
        buckets=[float(bucket) for bucket in buckets],
        registry=None,
    )


ImageClassifier.add_asgi_middleware(
    # BentoML 1.4 types `middleware_cls` as a Protocol whose `__call__(app, **options)` describes the
    # class's constructor, not its instances; a Starlette-style middleware class is what it takes.
    cast("type[AsgiMiddleware]", RequestGuard),
    routes={
        IMAGE_ROUTE: ("multipart/form-data",),
        ARRAY_ROUTE: ("application/json",),
        FEEDBACK_ROUTE: ("application/json",),
    },
    max_payload_bytes=_PAYLOAD_BYTES,
    file_fields={IMAGE_ROUTE: "image"},
    json_object_routes=(FEEDBACK_ROUTE,),
)

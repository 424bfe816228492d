"""Configuration of the serving service, read once from environment variables.

Workload code never knows it was deployed by Pulumi: the Deployment (infra/model_service.py), the
local runner (`mlops serve`) and the tests all set the same variables. Every variable, its default
and its meaning is listed in `VARIABLES`; `mlops serve --help` and the README print that table.

A mistake (unknown model, a non-integer limit) raises `SettingsError` with one message naming the
variable and what was expected, before anything is loaded.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workloads.catalogue_entry import ENTRY_VARIABLE, CatalogueEntry, CatalogueError, UnknownModelError, entry_for

DEFAULT_PREDICTIONS_STORE = str(Path(".mlops") / "predictions")
DEFAULT_ALIAS = "production"

VARIABLES: Mapping[str, tuple[str, str]] = {
    "MLFLOW_TRACKING_URI": ("http://127.0.0.1:5000", "tracking server holding the registry"),
    "MLFLOW_TRACKING_USERNAME": ("(none)", "tracking server user (basic auth)"),
    "MLFLOW_TRACKING_PASSWORD": ("(none)", "tracking server password"),
    "MLOPS_MODEL": ("(required)", "catalogue name of the model = registered-model name"),
    ENTRY_VARIABLE: (
        "(the catalogue's entry)",
        "JSON of the model's catalogue entry; the Deployment sets it (images carry no catalogue)",
    ),
    "MLOPS_MODEL_ALIAS": (DEFAULT_ALIAS, "registry alias the service loads and follows"),
    "MLOPS_PREDICTIONS_STORE": (
        DEFAULT_PREDICTIONS_STORE,
        "prediction log: a local folder or s3://bucket/prefix (AWS_ENDPOINT_URL_S3 is honoured)",
    ),
    "MLOPS_ALIAS_POLL_SECONDS": ("30", "how often the alias is checked; a new version is swapped in"),
    "MLOPS_MAX_BATCH_SIZE": ("per model (see below)", "adaptive batching: most images in one forward pass"),
    "MLOPS_MAX_LATENCY_MS": ("per model (see below)", "adaptive batching: latency budget of a queued request"),
    "MLOPS_MAX_PAYLOAD_BYTES": ("8388608", "largest request body accepted (413 above)"),
    "MLOPS_MAX_IMAGES_PER_REQUEST": ("64", "largest JSON batch of images in one request"),
    "MLOPS_MAX_IMAGE_PIXELS": ("16777216", "largest decoded image (width x height) accepted from a file"),
    "MLOPS_LOG_FLUSH_ROWS": ("1000", "prediction log: write a parquet file when this many rows wait"),
    "MLOPS_LOG_FLUSH_SECONDS": ("10", "prediction log: write waiting rows at least this often"),
    "MLOPS_TORCH_THREADS": ("1", "torch intra-op threads of each forward pass"),
    "MLOPS_CONCURRENT_BATCHES": (
        "1",
        "batched forward passes that may run at once (each with MLOPS_TORCH_THREADS threads)",
    ),
    "MLOPS_SERVING_EXTRA_ENTRY": (
        "(none)",
        "`module:attribute` of a CatalogueEntry outside the catalogue (benchmarks, experiments)",
    ),
}

# Batching defaults scale with the input size: a batch of ~256 K pixels keeps a forward pass in the
# tens of milliseconds on a CPU for the catalogue's models; a 224x224 network gets batches of 5
# (benchmarks/serving.py: on two CPU cores a ResNet-18 forward gained little per image beyond batch 4
# — large batches of large images only pay off on a GPU, where MLOPS_MAX_BATCH_SIZE raises it).
# MLOPS_CONCURRENT_BATCHES x MLOPS_TORCH_THREADS should not exceed the cores the service may use.
# The latency budget is not a target but the point where BentoML's dispatcher starts shedding
# requests (503): it must cover a full batch plus a queue behind it on a busy CPU, including the
# second or two in which a new version is loaded beside the old one (measured: a 100 ms budget shed
# requests during swaps on two shared cores).
_PIXELS_PER_BATCH = 1 << 18
_MAX_BATCH_CEILING = 256
_MIN_BATCH = 4


class SettingsError(ValueError):
    """A serving variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class ServingSettings:
    """Everything the service reads from the environment."""

    entry: CatalogueEntry
    """The catalogue entry of the served model (name, image shape, class names)."""
    alias: str
    predictions_store: str
    alias_poll_seconds: float
    max_batch_size: int
    max_latency_ms: int
    max_payload_bytes: int
    max_images_per_request: int
    max_image_pixels: int
    log_flush_rows: int
    log_flush_seconds: float
    torch_threads: int
    concurrent_batches: int
    """How many batches the adaptive-batching dispatcher may hand to the model at once."""

    @property
    def model(self) -> str:
        return self.entry.name


def default_batch_limits(entry: CatalogueEntry) -> tuple[int, int]:
    """(max batch size, max latency in ms) that fit the model's input size."""
    height, width = entry.image_shape
    batch = max(_MIN_BATCH, min(_MAX_BATCH_CEILING, _PIXELS_PER_BATCH // (height * width)))
    latency = 1000 if height * width <= 64 * 64 else 5000
    return batch, latency


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds > 0, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{name} must be a number of seconds > 0, got {value}")
    return value


def resolve_entry(name: str, extra_entry: str = "", environ: Mapping[str, str] | None = None) -> CatalogueEntry:
    """The extra entry named by MLOPS_SERVING_EXTRA_ENTRY, else the entry the Deployment hands the pod
    (MLOPS_CATALOGUE_ENTRY: the image has no catalogue), else the catalogue's (a checkout)."""
    if extra_entry:
        module_name, _, attribute = extra_entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise SettingsError(f"MLOPS_SERVING_EXTRA_ENTRY={extra_entry!r} cannot be imported: {error}") from None
        if not isinstance(entry, CatalogueEntry):
            raise SettingsError(f"MLOPS_SERVING_EXTRA_ENTRY={extra_entry!r} is not a CatalogueEntry")
        if entry.name == name:
            return entry
    try:
        return entry_for(name, environ)
    except UnknownModelError as error:
        raise SettingsError(f"MLOPS_MODEL: {error}") from None
    except CatalogueError as error:  # a malformed MLOPS_CATALOGUE_ENTRY: the message names it
        raise SettingsError(str(error)) from None


def load_settings(environ: Mapping[str, str] | None = None) -> ServingSettings:
    """Parse the serving variables (defaults in `VARIABLES`)."""
    environment = os.environ if environ is None else environ
    name = environment.get("MLOPS_MODEL", "").strip()
    if not name:
        raise SettingsError("MLOPS_MODEL is not set: name the catalogue model to serve")
    entry = resolve_entry(name, environment.get("MLOPS_SERVING_EXTRA_ENTRY", "").strip(), environment)
    default_batch, default_latency = default_batch_limits(entry)
    alias = environment.get("MLOPS_MODEL_ALIAS", "").strip() or DEFAULT_ALIAS
    return ServingSettings(
        entry=entry,
        alias=alias,
        predictions_store=environment.get("MLOPS_PREDICTIONS_STORE", "").strip() or DEFAULT_PREDICTIONS_STORE,
        alias_poll_seconds=_seconds(environment, "MLOPS_ALIAS_POLL_SECONDS", 30.0),
        max_batch_size=_integer(environment, "MLOPS_MAX_BATCH_SIZE", default_batch),
        max_latency_ms=_integer(environment, "MLOPS_MAX_LATENCY_MS", default_latency),
        max_payload_bytes=_integer(environment, "MLOPS_MAX_PAYLOAD_BYTES", 8 * 1024 * 1024, minimum=1024),
        max_images_per_request=_integer(environment, "MLOPS_MAX_IMAGES_PER_REQUEST", 64),
        max_image_pixels=_integer(environment, "MLOPS_MAX_IMAGE_PIXELS", 4096 * 4096, minimum=4),
        log_flush_rows=_integer(environment, "MLOPS_LOG_FLUSH_ROWS", 1000),
        log_flush_seconds=_seconds(environment, "MLOPS_LOG_FLUSH_SECONDS", 10.0),
        torch_threads=_integer(environment, "MLOPS_TORCH_THREADS", 1),
        concurrent_batches=_integer(environment, "MLOPS_CONCURRENT_BATCHES", 1),
    )


def describe_variables() -> str:
    """The variables table as plain text (for --help and the README)."""
    width = max(len(name) for name in VARIABLES)
    return "\n".join(f"{name:<{width}}  default {default}: {meaning}" for name, (default, meaning) in VARIABLES.items())

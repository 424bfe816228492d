"""Configuration of the serving service, read once from environment variables.

Workload code never knows it was deployed by Pulumi: the Deployment (infra/model_service.py), the
local runner (`mlops serve`) and the tests all set the same variables, named in `ServingVariables`.
`ServingSettings` declares each one (default, range, meaning); `mlops serve --help` and the README's
table are generated from it (`describe_variables`, `ServingSettings.variables_table`).

A mistake (unknown model, a non-integer limit) raises `SettingsError` with one message naming the
variable and what was expected, before anything is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from pydantic import Field, PrivateAttr, model_validator

from workloads.catalogue_entry import ENTRY_VARIABLE, CatalogueEntry, CatalogueError, UnknownModelError, entry_for
from workloads.serving.logged_images import DEFAULT_MAX_PIXELS as DEFAULT_LOG_IMAGE_MAX_PIXELS
from workloads.settings import Stripped, TrackingClientSettings, variable_extra

DEFAULT_PREDICTIONS_STORE = str(Path(".mlops") / "predictions")
DEFAULT_LABELS_STORE = str(Path(".mlops") / "labels")
DEFAULT_ALIAS = "production"


class ServingVariables:
    """The service's environment variables (the MLflow client's are `TrackingClientVariables`)."""

    MODEL = "MLOPS_MODEL"
    CATALOGUE_ENTRY = ENTRY_VARIABLE
    MODEL_ALIAS = "MLOPS_MODEL_ALIAS"
    PREDICTIONS_STORE = "MLOPS_PREDICTIONS_STORE"
    LABELS_STORE = "MLOPS_LABELS_STORE"
    ALIAS_POLL_SECONDS = "MLOPS_ALIAS_POLL_SECONDS"
    MAX_BATCH_SIZE = "MLOPS_MAX_BATCH_SIZE"
    MAX_LATENCY_MS = "MLOPS_MAX_LATENCY_MS"
    MAX_PAYLOAD_BYTES = "MLOPS_MAX_PAYLOAD_BYTES"
    MAX_IMAGES_PER_REQUEST = "MLOPS_MAX_IMAGES_PER_REQUEST"
    MAX_IMAGE_PIXELS = "MLOPS_MAX_IMAGE_PIXELS"
    LOG_FLUSH_ROWS = "MLOPS_LOG_FLUSH_ROWS"
    LOG_FLUSH_SECONDS = "MLOPS_LOG_FLUSH_SECONDS"
    LOG_IMAGE_MAX_PIXELS = "MLOPS_LOG_IMAGE_MAX_PIXELS"
    TORCH_THREADS = "MLOPS_TORCH_THREADS"
    CONCURRENT_BATCHES = "MLOPS_CONCURRENT_BATCHES"
    EXTRA_ENTRY = "MLOPS_SERVING_EXTRA_ENTRY"


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


def default_batch_limits(entry: CatalogueEntry) -> tuple[int, int]:
    """(max batch size, max latency in ms) that fit the model's input size."""
    height, width = entry.image_shape
    batch = max(_MIN_BATCH, min(_MAX_BATCH_CEILING, _PIXELS_PER_BATCH // (height * width)))
    latency = 1000 if height * width <= 64 * 64 else 5000
    return batch, latency


def resolve_entry(name: str, extra_entry: str = "", environ: Mapping[str, str] | None = None) -> CatalogueEntry:
    """The extra entry named by MLOPS_SERVING_EXTRA_ENTRY, else the entry the Deployment hands the pod
    (MLOPS_CATALOGUE_ENTRY: the image has no catalogue), else the catalogue's (a checkout)."""
    if extra_entry:
        module_name, _, attribute = extra_entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise SettingsError(f"{ServingVariables.EXTRA_ENTRY}={extra_entry!r} cannot be imported: {error}") from None
        if not isinstance(entry, CatalogueEntry):
            raise SettingsError(f"{ServingVariables.EXTRA_ENTRY}={extra_entry!r} is not a CatalogueEntry")
        if entry.name == name:
            return entry
    try:
        return entry_for(name, environ)
    except UnknownModelError as error:
        raise SettingsError(f"{ServingVariables.MODEL}: {error}") from None
    except CatalogueError as error:  # a malformed MLOPS_CATALOGUE_ENTRY: the message names it
        raise SettingsError(str(error)) from None


class ServingSettings(TrackingClientSettings):
    """Everything the service reads from the environment: one field per variable."""

    error_class = SettingsError

    model_name: Stripped = Field(
        validation_alias=ServingVariables.MODEL,
        description="catalogue name of the model = registered-model name",
        examples=["digits"],
    )
    catalogue_entry: Stripped = Field(
        default="",
        validation_alias=ServingVariables.CATALOGUE_ENTRY,
        description="JSON of the model's catalogue entry; the Deployment sets it (images carry no catalogue)",
        json_schema_extra=variable_extra(default_text="the catalogue's entry"),
    )
    alias: Stripped = Field(
        default=DEFAULT_ALIAS,
        validation_alias=ServingVariables.MODEL_ALIAS,
        description="registry alias loaded and followed",
    )
    predictions_store: Stripped = Field(
        default=DEFAULT_PREDICTIONS_STORE,
        validation_alias=ServingVariables.PREDICTIONS_STORE,
        description="prediction log: a local folder or s3://bucket/prefix (AWS_ENDPOINT_URL_S3 is honoured)",
    )
    labels_store: Stripped = Field(
        default=DEFAULT_LABELS_STORE,
        validation_alias=ServingVariables.LABELS_STORE,
        description="ground truth sent to /feedback: a local folder or s3://bucket/prefix (workloads.labels)",
    )
    alias_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=ServingVariables.ALIAS_POLL_SECONDS,
        description="how often the alias is checked (5 s while nothing is loaded); a new version is swapped in",
    )
    requested_max_batch_size: int | None = Field(
        default=None,
        ge=1,
        validation_alias=ServingVariables.MAX_BATCH_SIZE,
        description="adaptive batching: most images in one forward pass",
        json_schema_extra=variable_extra(default_text="per model: 2^18 / pixels, 4-256 (digits 256, 224x224 5)"),
    )
    requested_max_latency_ms: int | None = Field(
        default=None,
        ge=1,
        validation_alias=ServingVariables.MAX_LATENCY_MS,
        description="adaptive batching: where BentoML's dispatcher starts shedding queued requests (503)",
        json_schema_extra=variable_extra(default_text="per model: 1000 (up to 64x64 pixels), 5000 (larger)"),
    )
    max_payload_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        validation_alias=ServingVariables.MAX_PAYLOAD_BYTES,
        description="largest request body accepted (413 above)",
    )
    max_images_per_request: int = Field(
        default=64,
        ge=1,
        validation_alias=ServingVariables.MAX_IMAGES_PER_REQUEST,
        description="largest JSON batch of images in one request",
    )
    max_image_pixels: int = Field(
        default=4096 * 4096,
        ge=4,
        validation_alias=ServingVariables.MAX_IMAGE_PIXELS,
        description="largest decoded image (width x height) accepted from a file",
    )
    log_flush_rows: int = Field(
        default=1000,
        ge=1,
        validation_alias=ServingVariables.LOG_FLUSH_ROWS,
        description="prediction log: write a parquet file when this many rows wait",
    )
    log_flush_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias=ServingVariables.LOG_FLUSH_SECONDS,
        description="prediction log: write waiting rows at least this often",
    )
    log_image_max_pixels: int = Field(
        default=DEFAULT_LOG_IMAGE_MAX_PIXELS,
        ge=0,
        validation_alias=ServingVariables.LOG_IMAGE_MAX_PIXELS,
        description="prediction log: keep each image the model saw (PNG, for labelling) when it has at most "
        "this many pixels; 0 keeps none",
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        validation_alias=ServingVariables.TORCH_THREADS,
        description="torch intra-op threads of each forward pass",
    )
    concurrent_batches: int = Field(
        default=1,
        ge=1,
        validation_alias=ServingVariables.CONCURRENT_BATCHES,
        description="batched forward passes that may run at once, each with MLOPS_TORCH_THREADS threads "
        "(their product should not exceed the cores the service may use)",
    )
    extra_entry: Stripped = Field(
        default="",
        validation_alias=ServingVariables.EXTRA_ENTRY,
        description="`module:attribute` of a CatalogueEntry outside the catalogue (benchmarks, experiments)",
    )

    _entry: CatalogueEntry = PrivateAttr()

    @model_validator(mode="after")
    def _resolve_entry(self) -> Self:
        # entry_for reads only MLOPS_CATALOGUE_ENTRY of an environment: the one variable it is handed here.
        self._entry = resolve_entry(self.model_name, self.extra_entry, {ENTRY_VARIABLE: self.catalogue_entry})
        return self

    @property
    def entry(self) -> CatalogueEntry:
        """The catalogue entry of the served model (name, image shape, class names)."""
        return self._entry

    @property
    def model(self) -> str:
        return self.entry.name

    @property
    def max_batch_size(self) -> int:
        """MLOPS_MAX_BATCH_SIZE, else what fits the model's input size."""
        return self.requested_max_batch_size or default_batch_limits(self.entry)[0]

    @property
    def max_latency_ms(self) -> int:
        """MLOPS_MAX_LATENCY_MS, else what fits the model's input size."""
        return self.requested_max_latency_ms or default_batch_limits(self.entry)[1]


VARIABLES: Mapping[str, tuple[str, str]] = ServingSettings.variables()
"""Every variable → (its default as text, its meaning), generated from `ServingSettings`."""


def load_settings(environ: Mapping[str, str] | None = None) -> ServingSettings:
    """Parse the serving variables of `environ` (default: this process's environment)."""
    return ServingSettings.from_environment(environ)


def describe_variables() -> str:
    """The variables, one line each (for --help)."""
    return ServingSettings.variables_help()

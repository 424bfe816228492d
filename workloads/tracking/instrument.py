"""Instrument a training script with a few lines: one run per training, with its lineage.

Usage (the tracking server comes from MLFLOW_TRACKING_URI / MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD, exactly as for plain MLflow):

    from workloads.tracking.instrument import DatasetRef, tracked_run

    dataset = DatasetRef(name="digits", version="v3", digest=manifest_sha256, source="s3://data/digits/v3")
    with tracked_run(experiment="digits", params={"lr": 1e-3, "epochs": 5}, dataset=dataset) as run:
        for step, (images, labels) in enumerate(loader):
            loss = train_step(model, images, labels)
            run.log_metric("loss", loss.item(), step)      # queued, never blocks the training loop
        run.log_metric("accuracy", evaluate(model), step)
        info = run.log_model(model, input_example=images[:8])   # batch of >= 2 rows
    # leaving the block flushes every queued metric; failures raise TrackingFlushError there

What it records, so a registered version can always be traced back:
  * the dataset as an MLflow dataset input (name, digest, source; version and full digest as input
    tags) and as run tags `dataset.name`, `dataset.version`, `dataset.digest`;
  * the git commit as tag `mlflow.source.git.commit` (MLOPS_GIT_COMMIT if set, since images carry no
    `.git`; otherwise `git rev-parse HEAD`; `unknown` outside a repository);
  * parameters, free-form tags, metrics and the PyTorch model with its inferred signature.

Metrics are logged asynchronously: `log_metric` appends to an in-memory buffer (microseconds), and
when 500 values wait or a second has passed since the last hand-off (checked on each call; `flush()`
and leaving the block hand off the rest) the buffer goes to MLflow's asynchronous `log_batch`
(`synchronous=False`), whose background thread sends it as one request. Handing each value to
MLflow's `log_metric(synchronous=False)` instead cost ~0.5 ms per call in the training thread here
and one HTTP request per value, which a training loop logging every step notices
(benchmarks/tracking.py). MLflow's async queue would only
log failures; the helper keeps the pending operations and raises on flush, so an unreachable server
or database is never silent. MLflow's HTTP client retries transient failures with exponential
backoff (MLFLOW_HTTP_REQUEST_MAX_RETRIES, default 7, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, default 2,
MLFLOW_HTTP_REQUEST_TIMEOUT, default 120 s), so short outages are bridged transparently.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities import Metric
from mlflow.utils.async_logging.run_operations import RunOperations

if TYPE_CHECKING:
    import torch
    from mlflow.data.dataset import Dataset as MlflowDataset
    from mlflow.models.model import ModelInfo

GIT_COMMIT_TAG = "mlflow.source.git.commit"
UNKNOWN_COMMIT = "unknown"
# MLflow stores dataset digests in a 36-character column; the full digest goes into tags.
MLFLOW_DATASET_DIGEST_LENGTH = 36
# Buffered metrics are handed to MLflow's async queue when this many are waiting (MLflow accepts at
# most 1000 per log_batch request) or when the oldest hand-off is this old.
HANDOFF_METRICS = 500
HANDOFF_SECONDS = 1.0
# Pending operations are checked (and finished ones dropped) every this many hand-offs, so a long
# training run does not accumulate futures without bound and a failure surfaces early.
PRUNE_EVERY = 50


class TrackingFlushError(RuntimeError):
    """Some queued run data could not be written to the tracking server."""


class InvalidInputExampleError(ValueError):
    """The input example cannot describe the model's input (e.g. batch size 1)."""


@dataclass(frozen=True)
class DatasetRef:
    """Identity of the versioned dataset a run trained on."""

    name: str
    """Catalogue name of the dataset, e.g. `digits`."""
    version: str
    """Dataset version, e.g. `v3` (the S3 prefix it lives under)."""
    digest: str
    """Content digest, e.g. the sha256 of the dataset manifest."""
    source: str
    """Where it was read from, e.g. `s3://datasets/digits/v3`."""


def current_git_commit(environ: Mapping[str, str] | None = None) -> str:
    """The commit the training code came from, or `unknown` when it cannot be determined."""
    environment = os.environ if environ is None else environ
    if environment.get("MLOPS_GIT_COMMIT"):
        return environment["MLOPS_GIT_COMMIT"]
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN_COMMIT
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else UNKNOWN_COMMIT


def _mlflow_dataset(dataset: DatasetRef) -> MlflowDataset:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    return MetaDataset(
        source=resolve_dataset_source(dataset.source),
        name=dataset.name,
        digest=dataset.digest[:MLFLOW_DATASET_DIGEST_LENGTH],
    )


class TrackedRun:
    """The handle `tracked_run` yields: log metrics, params, tags and the model of one run."""

    def __init__(self, run: mlflow.ActiveRun) -> None:
        self._run = run
        self._client = mlflow.MlflowClient()
        self._buffer: list[Metric] = []
        self._buffer_lock = threading.Lock()
        self._last_handoff = time.monotonic()
        self._pending: list[RunOperations] = []
        self._failures: list[BaseException] = []
        self._handoffs = 0

    @property
    def run_id(self) -> str:
        """MLflow run id (what the registry records as the version's source run)."""
        return self._run.info.run_id

    @property
    def experiment_id(self) -> str:
        """MLflow experiment id of the run."""
        return self._run.info.experiment_id

    def _hand_off(self) -> None:
        """Give the buffered metrics to MLflow's async queue as one batch."""
        with self._buffer_lock:
            batch, self._buffer = self._buffer, []
            self._last_handoff = time.monotonic()
        if not batch:
            return
        operations = self._client.log_batch(self.run_id, metrics=batch, synchronous=False)
        if operations is not None:
            self._pending.append(operations)
        self._handoffs += 1
        if self._handoffs % PRUNE_EVERY == 0:
            self._prune_finished()

    def _prune_finished(self) -> None:
        still_pending: list[RunOperations] = []
        for operations in self._pending:
            futures = operations._operation_futures
            if not all(future.done() for future in futures):
                still_pending.append(operations)
                continue
            self._failures.extend(error for future in futures if (error := future.exception()) is not None)
        self._pending = still_pending

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Buffer one metric value; returns immediately (it is sent within about a second)."""
        metric = Metric(name, float(value), int(time.time() * 1000), step or 0)
        with self._buffer_lock:
            self._buffer.append(metric)
            due = len(self._buffer) >= HANDOFF_METRICS or time.monotonic() - self._last_handoff >= HANDOFF_SECONDS
        if due:
            self._hand_off()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metric values of the same step."""
        for name, value in metrics.items():
            self.log_metric(name, value, step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters (written synchronously: they are few and set once)."""
        mlflow.log_params(dict(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Record free-form tags on the run."""
        mlflow.set_tags(dict(tags))

    def flush(self) -> None:
        """Wait until every buffered value is written; raise TrackingFlushError on any failure."""
        self._hand_off()
        pending, self._pending = self._pending, []
        for operations in pending:
            for future in operations._operation_futures:
                error = future.exception()
                if error is not None:
                    self._failures.append(error)
        if self._failures:
            failures, self._failures = self._failures, []
            raise TrackingFlushError(
                f"{len(failures)} metric batch(es) of run {self.run_id} were not written to the "
                f"tracking server ({mlflow.get_tracking_uri()}); first error: {failures[0]}"
            )

    def log_model(
        self,
        model: torch.nn.Module,
        input_example: torch.Tensor,
        name: str = "model",
    ) -> ModelInfo:
        """Log a PyTorch model with a signature inferred from `input_example` (batch size >= 2).

        torch.export, which MLflow uses for the safe `pt2` format, specialises dimensions of size 1:
        an example with one row would freeze the served model to batches of exactly one.
        """
        import torch
        from mlflow.models import infer_signature
        from mlflow.pytorch import get_default_pip_requirements
        from mlflow.pytorch import log_model as log_pytorch_model

        if input_example.ndim == 0 or input_example.shape[0] < 2:
            raise InvalidInputExampleError(
                f"input_example must be a batch of at least 2 rows, got shape {tuple(input_example.shape)}: "
                "torch.export specialises size-1 dimensions, which would fix the model's batch size at 1"
            )
        # The export captures the module's mode: export in eval mode (dropout off, batch-norm frozen),
        # whatever mode the caller left it in, and give it back as it was.
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                output = model(input_example)
            example = input_example.detach().cpu().numpy()
            signature = infer_signature(example, output.detach().cpu().numpy())
            # Metrics logged so far belong to the model's lineage: make sure they reached the server.
            self.flush()
            # Explicit requirements: MLflow would otherwise infer them by loading the model again in a
            # subprocess to capture its imports (13 s of an 18 s log_model on two cores). For an
            # nn.Module the flavour's defaults (torch and cloudpickle at the installed versions) are
            # what that finds; the serving image brings its own environment either way.
            return log_pytorch_model(
                model,
                name=name,
                signature=signature,
                input_example=example,
                pip_requirements=get_default_pip_requirements(),
            )
        finally:
            model.train(was_training)


@contextmanager
def tracked_run(
    experiment: str,
    params: Mapping[str, Any] | None = None,
    dataset: DatasetRef | None = None,
    tags: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> Iterator[TrackedRun]:
    """Start an MLflow run in `experiment` with lineage recorded; flush and end it on exit.

    A run whose block raises is ended with status FAILED. So is a run whose queued metrics could not
    be written: TrackingFlushError is raised, so a training script cannot report success with lost
    metrics.
    """
    mlflow.set_experiment(experiment)
    lineage_tags: dict[str, str] = {GIT_COMMIT_TAG: current_git_commit()}
    if dataset is not None:
        lineage_tags.update(
            {
                "dataset.name": dataset.name,
                "dataset.version": dataset.version,
                "dataset.digest": dataset.digest,
            }
        )
    all_tags = {**{key: str(value) for key, value in (tags or {}).items()}, **lineage_tags}
    with mlflow.start_run(run_name=run_name, tags=all_tags) as active_run:
        run = TrackedRun(active_run)
        if params:
            run.log_params(params)
        if dataset is not None:
            mlflow.log_input(
                _mlflow_dataset(dataset),
                context="training",
                tags={"version": dataset.version, "digest": dataset.digest},
            )
        try:
            yield run
        except BaseException as error:
            # Metrics logged before the failure are often what explains it: send them anyway. The
            # exception then propagates through `start_run`, which ends the run as FAILED.
            try:
                run.flush()
            except TrackingFlushError as flush_error:
                error.add_note(str(flush_error))
            raise
        run.flush()

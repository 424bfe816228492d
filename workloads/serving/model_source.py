"""The served model: resolve the registry alias, load that version, follow the alias, swap atomically.

`ModelSource` owns one `LoadedModel` (version + torch module) at a time. A background thread asks
the registry every `poll_seconds` which version the alias names; when it changes (a promotion, or
a rollback — both are alias moves), the new version is loaded *beside* the old one, placed on the
serving device and warmed up (`device.Placement`), and then swapped in with one reference assignment
(so the first version makes the source ready only after its warm-up forward). A batch already
running keeps the model object it started with, so no request fails or mixes versions during a
swap; the old model is freed when its last batch ends.

Failures never crash the process (a crash loop would only hammer the registry): when the alias
names no version, or the registry is unreachable, the source stays not-ready (or keeps serving the
version it has) and logs one line per state change, then keeps trying.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workloads.serving.device import Placement

logger = logging.getLogger("mlops.serving")
NOT_READY_RETRY_SECONDS = 5.0


class ModelNotReadyError(RuntimeError):
    """No version is loaded yet (the alias names none, or loading has not finished)."""


@dataclass(frozen=True)
class LoadedModel:
    """One model version, on its device, warmed up and ready for forward passes."""

    name: str
    version: str
    module: Any
    """The torch module MLflow returned (an nn.Module or torch.export's GraphModule), on its device."""
    placement: Placement = field(default_factory=Placement)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes) for preprocessed inputs (N, 1, H, W)."""
        return self.placement.forward(self.module, inputs)


def _resolve_version(client: Any, model: str, alias: str) -> str | None:
    """The version `alias` names, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_module(model: str, version: str) -> Any:
    """`models:/MODEL/VERSION` with MLflow's PyTorch flavour, on the CPU (`Placement.prepare` moves it)."""
    from mlflow.pytorch import load_model

    return load_model(f"models:/{model}/{version}", map_location="cpu")


def load_version(
    model: str,
    version: str,
    placement: Placement | None = None,
    loader: Callable[[str, str], Any] = load_module,
) -> LoadedModel:
    """Load a version, place it on its device and warm it up: returned only once it can serve."""
    chosen = placement or Placement()
    return LoadedModel(name=model, version=version, module=chosen.prepare(loader(model, version)), placement=chosen)


class ModelSource:
    """The model behind `models:/NAME@ALIAS`, kept current by a polling thread."""

    def __init__(
        self,
        model: str,
        alias: str,
        poll_seconds: float,
        client: Any = None,
        placement: Placement | None = None,
        loader: Callable[[str, str], Any] = load_module,
    ) -> None:
        self.model = model
        self.placement = placement or Placement()
        self._loader = loader
        self.alias = alias
        self.poll_seconds = poll_seconds
        self._client = client
        self._current: LoadedModel | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None
        self._check_lock = threading.Lock()

    @property
    def current(self) -> LoadedModel:
        loaded = self._current  # one read: the caller keeps this version for its whole batch
        if loaded is None:
            raise ModelNotReadyError(
                f"model {self.model!r} is not loaded yet: no version behind alias {self.alias!r} so far"
            )
        return loaded

    @property
    def ready(self) -> bool:
        return self._current is not None

    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient()
        return self._client

    def _report(self, problem: str | None) -> None:
        """Log a problem once when it appears and once when it clears, not on every poll."""
        if problem == self._last_problem:
            return
        if problem is None:
            logger.info("model %s@%s: registry problem cleared", self.model, self.alias)
        else:
            logger.warning("%s; retrying every %.0f s", problem, self.poll_seconds)
        self._last_problem = problem

    def check_once(self) -> bool:
        """Resolve the alias and load its version if it changed; True when a new version was swapped in."""
        with self._check_lock:
            try:
                version = _resolve_version(self.client(), self.model, self.alias)
            except Exception as error:
                self._report(f"model {self.model}@{self.alias}: registry unreachable ({type(error).__name__})")
                return False
            if version is None:
                self._report(
                    f"NOT READY: registered model {self.model!r} has no version behind alias {self.alias!r} "
                    f"(promote one with `mlops promote {self.model} VERSION`)"
                )
                return False
            current = self._current
            if current is not None and current.version == version:
                self._report(None)
                return False
            try:
                loaded = load_version(self.model, version, self.placement, self._loader)
            except Exception as error:
                self._report(f"model {self.model} v{version}: loading failed ({type(error).__name__}: {error})")
                return False
            self._current = loaded  # the atomic swap: one reference assignment
            self._last_problem = None
            if current is None:
                logger.info("model %s v%s (alias %s) loaded: ready", self.model, version, self.alias)
            else:
                logger.info(
                    "model %s: alias %s moved v%s -> v%s, swapped in", self.model, self.alias, current.version, version
                )
            return True

    def _follow(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            # Until a first version is loaded, retry sooner: readiness should not wait a full period.
            self._stop.wait(self.poll_seconds if self.ready else min(self.poll_seconds, NOT_READY_RETRY_SECONDS))

    def start(self) -> None:
        """Start following the alias (the first check runs at once, in the background)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name=f"alias-{self.model}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

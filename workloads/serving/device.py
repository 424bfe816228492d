"""Where the served model runs: device choice, placement, host→device copies and the warm-up forward.

`select_device` turns MLOPS_DEVICE (empty: a visible GPU, else the CPU; or `cpu`, `cuda`, `cuda:N`)
into a `torch.device`, refusing with one line a GPU that is not there (a CPU build of torch, no
device plugin, an index past the last GPU) — before anything is loaded, so a misplaced pod fails its
start instead of quietly inferring on the CPU it pays a GPU for.

`Placement.prepare` moves a freshly loaded module there (optionally half precision and channels-last
memory format, both off by default: see `ServingSettings`), then runs the warm-up forwards, so the
first requests do not pay for CUDA context creation, cuBLAS/cuDNN handles and lazy kernel loading.
`ModelSource` swaps a version in only after `prepare` returns, so `/readyz` turns 200 only then.

`Placement.forward` is what each batch goes through, in the dispatcher's worker thread (never on the
event loop): on a GPU the batch is copied into page-locked (pinned) host memory and sent with
`non_blocking=True`, so the copy is a DMA queued on the stream behind the forward; the only wait is
for the probabilities to come back, in that same worker thread. torch serves `pin_memory()` from its
caching host allocator (a freed pinned block is reused, not re-registered with the driver), so a
pinned buffer per batch costs a memcpy, not an allocation.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.serving.settings import DEVICE_PATTERN, ServingSettings

logger = logging.getLogger("mlops.serving")
WARMUP_BATCH_SIZES = (1,)
"""Besides the largest batch: a lone request is the common case at low load."""


class DeviceError(ValueError):
    """MLOPS_DEVICE names a device this process cannot use; the message says why."""


def select_device(requested: str, cuda_available: bool, cuda_devices: int) -> str:
    """The device to serve on, as text (`cpu`, `cuda:0`, ...): `requested`, or a GPU when one is visible.

    The availability facts are arguments, so the choice is tested without a GPU (`visible_device`
    reads them from torch).
    """
    if not re.match(DEVICE_PATTERN, requested):
        raise DeviceError(f"MLOPS_DEVICE={requested!r}: expected cpu, cuda or cuda:N (empty: a GPU when visible)")
    if requested == "cpu" or (not requested and not cuda_available):
        return "cpu"
    if not cuda_available or cuda_devices < 1:
        raise DeviceError(
            f"MLOPS_DEVICE={requested}: no GPU is visible to torch (a CPU build of torch, no NVIDIA driver, "
            "or no nvidia.com/gpu allocated to this container); set MLOPS_DEVICE=cpu to serve on the CPU"
        )
    index = int(requested.partition(":")[2] or 0)
    if index >= cuda_devices:
        raise DeviceError(
            f"MLOPS_DEVICE={requested}: only {cuda_devices} GPU(s) visible (cuda:0 .. cuda:{cuda_devices - 1})"
        )
    return f"cuda:{index}"


def visible_device(requested: str) -> str:
    """`select_device` with this process's torch."""
    import torch

    available = torch.cuda.is_available()
    return select_device(requested, available, torch.cuda.device_count() if available else 0)


class OutputWidthError(ValueError):
    """A version's output does not have one column per class of its catalogue entry."""


@dataclass(frozen=True)
class Placement:
    """How every loaded version runs: device, precision, memory format, and the warm-up it gets."""

    device: str = "cpu"
    half_precision: bool = False
    """float16 weights and inputs (GPU only: on a CPU float16 convolutions are slower, not faster)."""
    channels_last: bool = False
    """NHWC memory format, which tensor cores prefer; a no-op for the results."""
    warmup_batch: int = 1
    """The largest batch the dispatcher forms: warmed up once, with the single-image batch."""
    image_shape: tuple[int, int] = (8, 8)
    classes: int | None = None
    """The catalogue entry's class count: a version whose output has another width is refused at the
    warm-up (its answers would be read as the wrong classes, or fail on every request). None: not checked."""

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def prepare(self, module: Any) -> Any:
        """Move `module` to the device (eval mode, chosen precision and format) and warm it up."""
        import torch

        with contextlib.suppress(NotImplementedError, AttributeError):
            # torch.export programs have eval mode baked in and refuse eval(); pickled modules need it.
            module.eval()
        # MLflow's pt2 format loads as torch.export's unlifted GraphModule: `.to` moves its parameters
        # and buffers. The catalogue's models and the benchmark networks export no device into their
        # graph and no plain tensor constant (checked with torch 2.13); a model whose forward created
        # tensors on a device would need torch.export.passes.move_to_device_pass on the program instead.
        module = module.to(torch.device(self.device))
        if self.on_gpu and self.half_precision:
            module = module.half()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.warm_up(module)
        return module

    def warm_up(self, module: Any) -> float:
        """Forward passes of zeros at the batch sizes the service will see first; returns the seconds.
        OutputWidthError when the version answers another number of classes than the entry has."""
        started = time.perf_counter()
        height, width = self.image_shape
        for size in sorted({*WARMUP_BATCH_SIZES, self.warmup_batch}):
            probabilities = self.forward(module, np.zeros((size, 1, height, width), dtype=np.float32))
            if self.classes is not None and probabilities.shape[1:] != (self.classes,):
                raise OutputWidthError(
                    f"its output per image has shape {tuple(probabilities.shape[1:])}, the model has "
                    f"{self.classes} classes: trained for another catalogue entry or another class list?"
                )
        seconds = time.perf_counter() - started
        logger.info(
            "warm-up forward on %s (batches %s, %s): %.2f s", self.device, self.warmup_batch, self.image_shape, seconds
        )
        return seconds

    def forward(self, module: Any, inputs: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes), float32 on the host, for preprocessed inputs (N, 1, H, W)."""
        import torch

        host = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        with torch.inference_mode():
            if self.on_gpu:
                batch = host.pin_memory().to(self.device, non_blocking=True)
                if self.half_precision:
                    batch = batch.half()
            else:
                batch = host
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            probabilities = torch.softmax(module(batch).float(), dim=1)
            # On a GPU `.cpu()` waits for the stream: in this worker thread, not on the event loop.
            return probabilities.cpu().numpy()


def serving_placement(settings: ServingSettings) -> Placement:
    """The placement the serving variables describe: MLOPS_DEVICE (else a visible GPU), the precision
    and format switches, and a warm-up at the dispatcher's largest batch. DeviceError when the GPU asked
    for is not there."""
    return Placement(
        device=visible_device(settings.device),
        half_precision=settings.half_precision,
        channels_last=settings.channels_last,
        warmup_batch=settings.max_batch_size,
        image_shape=settings.entry.image_shape,
        classes=len(settings.entry.class_names),
    )

"""Where the served model runs: device choice, the forward pass a batch goes through, and readiness
only after the warm-up (a real registry, the real loader, a real ModelSource)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmarks.registered_models import register_module
from tests.workloads.serving.conftest import MODEL, DigitsVersions
from workloads import catalogue, features
from workloads.serving.device import DeviceError, Placement, select_device, visible_device
from workloads.serving.model_source import ModelSource, load_module, load_version


@pytest.mark.parametrize(
    ("requested", "available", "count", "chosen"),
    [
        ("", False, 0, "cpu"),
        ("", True, 2, "cuda:0"),
        ("cpu", True, 1, "cpu"),
        ("cuda", True, 1, "cuda:0"),
        ("cuda:1", True, 2, "cuda:1"),
    ],
)
def test_the_device_is_the_requested_one_or_a_visible_gpu(
    requested: str, available: bool, count: int, chosen: str
) -> None:
    assert select_device(requested, available, count) == chosen


@pytest.mark.parametrize(
    ("requested", "available", "count", "message"),
    [
        ("cuda", False, 0, r"MLOPS_DEVICE=cuda: no GPU is visible to torch .* set MLOPS_DEVICE=cpu"),
        ("cuda:2", True, 2, r"MLOPS_DEVICE=cuda:2: only 2 GPU\(s\) visible \(cuda:0 \.\. cuda:1\)"),
        ("tpu", True, 1, r"MLOPS_DEVICE='tpu': expected cpu, cuda or cuda:N"),
    ],
)
def test_a_device_that_is_not_there_is_one_clear_error(
    requested: str, available: bool, count: int, message: str
) -> None:
    with pytest.raises(DeviceError, match=message):
        select_device(requested, available, count)


def test_this_machine_answers_like_torch() -> None:
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert visible_device("") == expected


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3)
    ).eval()


def test_the_forward_pass_is_the_softmax_of_the_module_on_the_cpu() -> None:
    network = _network()
    inputs = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    with torch.inference_mode():
        expected = torch.softmax(network(torch.from_numpy(inputs)), dim=1).numpy()
    placement = Placement(device="cpu", warmup_batch=4, image_shape=(8, 8))
    prepared = placement.prepare(network)
    assert np.array_equal(placement.forward(prepared, inputs), expected)  # bit for bit: the same operations
    # Channels-last is a memory format, not another computation: the same answer within float rounding.
    nhwc = Placement(device="cpu", channels_last=True, warmup_batch=4, image_shape=(8, 8))
    assert np.allclose(nhwc.forward(nhwc.prepare(_network()), inputs), expected, atol=1e-6)


@dataclass(frozen=True)
class CountingPlacement(Placement):
    """The real placement, recording the batch sizes it warms up with and able to hold the warm-up."""

    seen: list[int] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)

    def warm_up(self, module: Any) -> float:
        self.started.set()
        assert self.release.wait(60), "the test never released the warm-up"
        return super().warm_up(module)

    def forward(self, module: Any, inputs: np.ndarray) -> np.ndarray:
        self.seen.append(len(inputs))
        return super().forward(module, inputs)


def test_a_version_serves_only_after_its_warm_up(
    registry_environment: dict[str, str], digits_versions: DigitsVersions
) -> None:
    """ModelSource turns ready (what /readyz answers) only once the warm-up forwards have run."""
    # Its own alias (the platform's `set_alias` takes only its two): the service's is untouched.
    MlflowClient().set_registered_model_alias("digits", "warm-up-test", digits_versions.first)
    placement = CountingPlacement(device="cpu", warmup_batch=256, image_shape=(8, 8))
    source = ModelSource("digits", "warm-up-test", poll_seconds=60, placement=placement)
    checking = threading.Thread(target=source.check_once)
    checking.start()
    try:
        assert placement.started.wait(120), "the version was never loaded"
        assert not source.ready  # loaded, not yet warmed up: not ready
        placement.release.set()
        checking.join(120)
        assert source.ready and source.current.version == digits_versions.first
        assert placement.seen == [1, 256]  # a lone request and the dispatcher's largest batch
        # The warmed-up version classifies like the module MLflow returns.
        images = digits_versions.data.test_images[:16]
        inputs = features.preprocess(images)
        plain = load_version("digits", digits_versions.first, Placement(), load_module)
        assert np.allclose(source.current.predict(inputs), plain.predict(inputs), atol=1e-6)
    finally:
        placement.release.set()
        checking.join(120)
        source.stop()
        MlflowClient().delete_registered_model_alias("digits", "warm-up-test")


def refused_by_warm_up(
    healthy: str, wrong: str, placement: Placement, caplog: pytest.LogCaptureFixture, alias: str = "warm-up-refusal"
) -> str:
    """Serve `healthy` behind its own alias, move the alias to `wrong`: assert `wrong` is never swapped
    in and `healthy` serves on; returns what the service logged."""
    client = MlflowClient()
    client.set_registered_model_alias(MODEL, alias, healthy)
    source = ModelSource(MODEL, alias, poll_seconds=60, placement=placement)
    try:
        assert source.check_once() and source.current.version == healthy
        client.set_registered_model_alias(MODEL, alias, wrong)
        with caplog.at_level(logging.WARNING, logger="mlops.serving"):
            assert not source.check_once()
        assert source.current.version == healthy
        return caplog.text
    finally:
        client.delete_registered_model_alias(MODEL, alias)


def test_a_version_that_cannot_run_on_the_model_input_is_refused_by_the_warm_up(
    registry_environment: dict[str, str], digits_versions: DigitsVersions, caplog: pytest.LogCaptureFixture
) -> None:
    """A version of another catalogue model (surface-defects, 32x32 inputs) registered under digits
    loads, but its warm-up forward on 8x8 zeros fails: it is never swapped in, the healthy one serves on."""
    other = catalogue.get("surface-defects")
    wrong_input = register_module(MODEL, other.build_model(), torch.rand(4, 1, *other.image_shape), {"accuracy": 0.1})
    placement = Placement(warmup_batch=4, image_shape=(8, 8))
    logged = refused_by_warm_up(digits_versions.first, wrong_input, placement, caplog)
    assert f"model {MODEL} v{wrong_input}: loading failed (" in logged


def test_a_version_with_another_number_of_classes_is_refused_by_the_warm_up(
    registry_environment: dict[str, str], digits_versions: DigitsVersions, caplog: pytest.LogCaptureFixture
) -> None:
    """A version that takes digits' 8x8 input but answers 3 classes (trained for another class list)
    runs its warm-up forward without an error; the width check refuses it, the healthy one serves on."""
    three_classes = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    wrong_width = register_module(MODEL, three_classes, torch.rand(4, 1, 8, 8), {"accuracy": 0.1})
    placement = Placement(warmup_batch=4, image_shape=(8, 8), classes=len(catalogue.get(MODEL).class_names))
    logged = refused_by_warm_up(digits_versions.first, wrong_width, placement, caplog)
    assert (
        f"model {MODEL} v{wrong_width}: loading failed (OutputWidthError: its output per image has shape (3,)" in logged
    )
    # Without the entry's class count the same version would have been swapped in.
    assert load_version(MODEL, wrong_width, Placement(warmup_batch=4, image_shape=(8, 8))).version == wrong_width

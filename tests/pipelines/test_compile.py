"""Every catalogue pipeline compiles; GPU requests follow the catalogue; the committed YAML is fresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from pipelines import contract
from pipelines.training_pipeline import compile_pipeline, compiled_text
from workloads import catalogue

MODELS = catalogue.names()
STEPS = ("fetch-dataset", "preprocess", "train", "evaluate", "gate", "register", "reject")
TRACKING_STEPS = ("train", "register", "reject")


@pytest.fixture(scope="module")
def compiled() -> dict[str, str]:
    return {model: compiled_text(model) for model in MODELS}


def _documents(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec, platform = yaml.safe_load_all(text)
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.mark.parametrize("model", MODELS)
def test_pipeline_compiles_with_every_step_and_the_catalogue_defaults(model: str, compiled: dict[str, str]) -> None:
    spec, _ = _documents(compiled[model])
    entry = catalogue.get(model)
    assert spec["pipelineInfo"]["name"] == f"training-{model}"
    assert set(spec["deploymentSpec"]["executors"]) == {f"exec-{step}" for step in STEPS}
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["epochs"]["defaultValue"] == entry.training.epochs
    assert parameters["quality_threshold"]["defaultValue"] == pytest.approx(entry.quality_threshold)
    assert parameters["promotion_margin"]["defaultValue"] == pytest.approx(entry.promotion_margin)
    assert parameters["auto_promote"]["defaultValue"] is False
    assert parameters["regression_margin"]["defaultValue"] == pytest.approx(entry.regression_margin)
    # The gate is a real condition in the spec, not a decision hidden inside a step.
    assert "quality_threshold" in compiled[model] and "triggerPolicy" in compiled[model]
    for executor in spec["deploymentSpec"]["executors"].values():
        assert executor["container"]["image"] == contract.TRAINING_IMAGE_PLACEHOLDER
        # install_kfp_package=False: a step starts without reaching a package index.
        assert "pip install" not in " ".join(executor["container"]["command"])


def test_gpu_model_requests_a_gpu_and_tolerates_the_taint(compiled: dict[str, str]) -> None:
    spec, kubernetes = _documents(compiled["surface-defects"])
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert train["resources"]["accelerator"]["resourceCount"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in kubernetes["exec-train"][
        "tolerations"
    ]
    assert kubernetes["exec-train"]["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
    # Only training needs the GPU: the other steps stay on the system pool.
    for step in STEPS:
        if step != "train":
            assert "accelerator" not in spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"].get(
                "resources", {}
            )
            assert "tolerations" not in kubernetes.get(f"exec-{step}", {})


def test_cpu_model_requests_no_gpu(compiled: dict[str, str]) -> None:
    spec, kubernetes = _documents(compiled["digits"])
    for step in STEPS:
        assert "accelerator" not in spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"].get(
            "resources", {}
        )
        assert "tolerations" not in kubernetes.get(f"exec-{step}", {})
        assert "nodeSelector" not in kubernetes.get(f"exec-{step}", {})
    assert "nvidia.com/gpu" not in compiled["digits"]


@pytest.mark.parametrize("model", MODELS)
def test_tracking_credentials_come_from_a_secret_never_from_parameters(model: str, compiled: dict[str, str]) -> None:
    spec, kubernetes = _documents(compiled[model])
    for step in TRACKING_STEPS:
        (secret,) = kubernetes[f"exec-{step}"]["secretAsEnv"]
        assert secret["secretName"] == contract.TRACKING_SECRET_NAME
        assert {item["envVar"] for item in secret["keyToEnv"]} == set(contract.TRACKING_SECRET_KEYS.values())
    for step in ("fetch-dataset", "preprocess", "evaluate"):
        assert "secretAsEnv" not in kubernetes.get(f"exec-{step}", {})
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert not any("password" in name or "tracking" in name for name in parameters)


@pytest.mark.parametrize("model", MODELS)
def test_committed_yaml_is_what_the_code_compiles_to(model: str, compiled: dict[str, str]) -> None:
    committed = contract.compiled_pipeline_path(model)
    assert committed.is_file(), f"{committed} is missing: run `mlops pipeline compile`"
    assert committed.read_text(encoding="utf-8") == compiled[model], (
        f"{committed} is stale: run `mlops pipeline compile` and commit the result"
    )


def test_rendering_the_image_replaces_every_placeholder(compiled: dict[str, str]) -> None:
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev/training@sha256:" + "a" * 64
    rendered = contract.render_with_image(compiled["digits"], image)
    assert contract.TRAINING_IMAGE_PLACEHOLDER not in rendered
    assert rendered.count(image) == len(STEPS)
    with pytest.raises(ValueError, match="placeholder"):
        contract.render_with_image(rendered, image)
    assert contract.content_hash(rendered) != contract.content_hash(compiled["digits"])


def test_compile_cli_writes_one_file_per_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pipeline", "compile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(tmp_path / f"{model}.yaml") for model in MODELS]
    assert (tmp_path / "digits.yaml").read_text() == compile_pipeline("digits", tmp_path / "again").read_text()
    unknown = CliRunner().invoke(app, ["pipeline", "compile", "--model", "cats", "--out", str(tmp_path)])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: unknown model 'cats': the catalogue has digits, surface-defects"

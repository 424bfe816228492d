"""Each enabled catalogue model becomes one Model: training schedule, service, drift job and quality job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import PROJECT
from infra.container_image import source_commit
from infra.offline_plan import SECRET
from infra.platform import TRAINING_IMAGE
from tests.infra.conftest import Plan, config_error, named, of_type, role_policy
from workloads import catalogue

MODEL_TYPE = "mlops:platform:Model"


def _models(plan: Plan) -> set[str]:
    return {r["name"].removeprefix("mlops-model-") for r in of_type(plan, MODEL_TYPE)}


def test_dev_and_staging_run_the_catalogue_and_prod_a_subset(plans: dict[str, Plan]) -> None:
    assert _models(plans["dev"]) == {"digits", "surface-defects"}
    assert _models(plans["staging"]) == {"digits", "surface-defects"}
    assert _models(plans["prod"]) == {"digits"}


def test_service_role_may_only_write_its_own_predictions_and_labels_prefixes(plan: Plan) -> None:
    for model in _models(plan):
        policy = role_policy(plan, f"mlops-model-{model}-serving-role")
        objects = {s["Sid"]: s for s in policy["Statement"] if s["Sid"].endswith("ObjectsUnderPrefix")}
        assert set(objects) == {"PredictionsObjectsUnderPrefix", "LabelsObjectsUnderPrefix"}
        for sid, bucket in (("Predictions", "mlops-predictions-"), ("Labels", "mlops-labels-")):
            assert objects[f"{sid}ObjectsUnderPrefix"]["Action"] == ["s3:PutObject"]
            resource = objects[f"{sid}ObjectsUnderPrefix"]["Resource"]
            assert bucket in resource and resource.endswith(f"/{model}/*")


def test_service_writes_its_labels_where_its_role_may(plan: Plan) -> None:
    for model in _models(plan):
        (deployment,) = [
            r
            for r in of_type(plan, "kubernetes:apps/v1:Deployment")
            if r["name"] == f"mlops-model-{model}-serving-deployment"
        ]
        (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
        environment = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert environment["MLOPS_LABELS_STORE"].startswith("s3://mlops-labels-")


def test_drift_role_reads_predictions_and_writes_reports_of_its_model(plan: Plan) -> None:
    for model in _models(plan):
        policy = role_policy(plan, f"mlops-model-{model}-drift-role")
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        assert by_sid["PredictionsObjectsUnderPrefix"]["Action"] == ["s3:GetObject"]
        assert by_sid["ReportsObjectsUnderPrefix"]["Resource"].endswith(f"/{model}/*")


def test_gpu_serving_only_where_the_stack_asks(plans: dict[str, Plan]) -> None:
    def pod(plan: Plan, model: str) -> dict[str, Any]:
        deployment = named(plan, "kubernetes:apps/v1:Deployment", f"mlops-model-{model}-serving-deployment")["inputs"]
        return deployment["spec"]["template"]["spec"]

    staging = pod(plans["staging"], "surface-defects")
    assert staging["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert staging["nodeSelector"] == {"mlops.platform/pool": "gpu-t4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in staging["tolerations"]
    dev = pod(plans["dev"], "surface-defects")
    assert "nvidia.com/gpu" not in dev["containers"][0]["resources"]["limits"]
    assert "tolerations" not in dev


def test_models_served_on_a_gpu_pool_run_the_cuda_serving_image(plans: dict[str, Plan]) -> None:
    """The CPU wheel of torch would see no GPU: a pod given one runs `model-serving-gpu`, built only there."""
    for plan in plans.values():
        images = {r["name"]: r["inputs"] for r in of_type(plan, "docker-build:index:Image")}
        served_on_gpu = set()
        for model in _models(plan):
            deployment = named(plan, "kubernetes:apps/v1:Deployment", f"mlops-model-{model}-serving-deployment")
            (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
            on_gpu = "nvidia.com/gpu" in container["resources"]["limits"]
            served_on_gpu |= {model} if on_gpu else set()
            repository = "/model-serving-gpu@sha256:" if on_gpu else "/model-serving@sha256:"
            assert repository in container["image"], (model, container["image"])
        assert ("mlops-model-serving-gpu-image" in images) == bool(served_on_gpu)
        if served_on_gpu:
            gpu_image, cpu_image = images["mlops-model-serving-gpu-image"], images["mlops-model-serving-image"]
            assert gpu_image["buildArgs"] == {"TORCH_INDEX_URL": ""}  # pip's configured index: the CUDA build
            assert gpu_image["dockerfile"] == cpu_image["dockerfile"] and "buildArgs" not in cpu_image
    assert "mlops-model-serving-gpu-image" in {r["name"] for r in of_type(plans["staging"], "docker-build:index:Image")}


def _training_image_ref(plan: Plan, model: str) -> str:
    """The image reference in the model's uploaded pipeline (every step runs in the same image)."""
    text = named(plan, "kubernetes:core/v1:ConfigMap", f"mlops-model-{model}-training-pipeline")["inputs"]["data"]
    (image,) = {line.split("image:", 1)[1].strip() for line in text["pipeline.yaml"].splitlines() if "image:" in line}
    return image


def test_training_schedule_ships_the_pipeline_with_the_training_image(plan: Plan) -> None:
    for model in _models(plan):
        config_map = named(plan, "kubernetes:core/v1:ConfigMap", f"mlops-model-{model}-training-pipeline")["inputs"]
        text = config_map["data"]["pipeline.yaml"]
        repository = "training-gpu" if catalogue.get(model).gpu else "training"
        assert "substitute-me" not in text and f"/{repository}@sha256:" in text
        job = named(plan, "kubernetes:batch/v1:Job", f"mlops-model-{model}-training-sync")["inputs"]
        arguments = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert arguments[arguments.index("--model") + 1] == model
        assert '"dataset_store": "s3://mlops-datasets-' in arguments[arguments.index("--parameters") + 1]


def test_models_training_on_gpu_get_torchs_cuda_build(plan: Plan) -> None:
    """The CPU wheel would see no GPU on the GPU pool: GPU models' steps run in the CUDA variant."""
    images = {r["name"]: r["inputs"] for r in of_type(plan, "docker-build:index:Image")}
    gpu_models = {model for model in _models(plan) if catalogue.get(model).gpu}
    assert ("mlops-training-gpu-image" in images) == bool(gpu_models)  # built only when a model needs it
    commit = source_commit(TRAINING_IMAGE)
    if gpu_models:
        assert images["mlops-training-gpu-image"]["buildArgs"] == {"TORCH_INDEX_URL": "", "GIT_COMMIT": commit}
        assert images["mlops-training-gpu-image"]["dockerfile"] == images["mlops-training-image"]["dockerfile"]
    # The Dockerfile's default TORCH_INDEX_URL: torch's CPU build.
    assert images["mlops-training-image"]["buildArgs"] == {"GIT_COMMIT": commit}
    for model in _models(plan):
        expected = "/training-gpu@sha256:" if model in gpu_models else "/training@sha256:"
        assert expected in _training_image_ref(plan, model)


def test_a_first_pulumi_up_does_not_wait_for_models_that_are_not_trained_yet(plan: Plan) -> None:
    """Serving pods are ready only once a production version exists, which no new platform has."""
    for model in _models(plan):
        deployment = named(plan, "kubernetes:apps/v1:Deployment", f"mlops-model-{model}-serving-deployment")
        service = named(plan, "kubernetes:core/v1:Service", f"mlops-model-{model}-serving-service")
        for resource in (deployment, service):
            assert resource["inputs"]["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
        rollout = deployment["inputs"]["spec"]["strategy"]["rollingUpdate"]
        assert rollout["maxUnavailable"] == 0  # so a rollout that never turns ready replaces nothing
    # Everything that can be ready after `pulumi up` is still awaited.
    for deployment in of_type(plan, "kubernetes:apps/v1:Deployment"):
        if "-serving-" not in deployment["name"]:
            assert "pulumi.com/skipAwait" not in deployment["inputs"]["metadata"].get("annotations", {})


def test_training_schedule_waits_for_the_pipelines_install(plan: Plan) -> None:
    """On a first `pulumi up` the KFP API exists only once the install is up; the sync Job calls it."""
    for model in _models(plan):
        job = named(plan, "kubernetes:batch/v1:Job", f"mlops-model-{model}-training-sync")
        assert {"mlops-pipelines-install", "mlops-pipelines-database"} <= set(job["dependencies"])


def test_drift_retrain_runs_get_the_scheduled_runs_parameters_and_image(plan: Plan) -> None:
    for model in _models(plan):
        job = named(plan, "kubernetes:batch/v1:Job", f"mlops-model-{model}-training-sync")["inputs"]
        arguments = job["spec"]["template"]["spec"]["containers"][0]["args"]
        scheduled = json.loads(arguments[arguments.index("--parameters") + 1])
        cron_job = named(plan, "kubernetes:batch/v1:CronJob", f"mlops-model-{model}-drift-cronjob")["inputs"]
        env = {
            e["name"]: e.get("value")
            for e in cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        if not catalogue.get(model).retrain_on_drift:
            assert env["MLOPS_DRIFT_RETRAIN"] == "off"
            continue
        assert env["MLOPS_DRIFT_RETRAIN"] == "kfp"
        assert json.loads(env["MLOPS_DRIFT_RETRAIN_ARGUMENTS"]) == scheduled
        assert scheduled["dataset_store"].startswith("s3://mlops-datasets-")
        assert env["MLOPS_TRAINING_IMAGE"] == _training_image_ref(plan, model)


def test_auto_promotion_is_scheduled_in_dev_only(plans: dict[str, Plan]) -> None:
    for stack, expected in (("dev", "true"), ("staging", "false"), ("prod", "false")):
        job = named(plans[stack], "kubernetes:batch/v1:Job", "mlops-model-digits-training-sync")["inputs"]
        arguments = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f'"auto_promote": {expected}' in arguments[arguments.index("--parameters") + 1]


def test_drift_cronjob_is_guarded(plan: Plan) -> None:
    for model in _models(plan):
        cron_job = named(plan, "kubernetes:batch/v1:CronJob", f"mlops-model-{model}-drift-cronjob")["inputs"]
        spec = cron_job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] > 0
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0 and job["ttlSecondsAfterFinished"] > 0
        env = {e["name"]: e for e in job["template"]["spec"]["containers"][0]["env"]}
        assert env["MLOPS_DRIFT_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]["name"] == "drift-alerts"
        assert "value" not in env["MLFLOW_TRACKING_PASSWORD"]


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"digit": {}}, "unknown model(s) digit; the catalogue has digits, surface-defects"),
        ({"digits": {"gpuPool": "gpu-h100"}}, "no GPU pool 'gpu-h100' (pools: gpu-t4)"),
        ({"digits": {"minReplicas": 3, "maxReplicas": 2}}, "minReplicas (3) must be <= maxReplicas (2)"),
        ({"digits": {"trainingSchedule": "daily"}}, "not a five-field cron expression"),
        ({"digits": {"maxBatchSize": 0}}, "maxBatchSize"),
        ({"digits": {"concurrentBatches": 65}}, "concurrentBatches"),
    ],
)
def test_bad_model_settings_are_config_errors(models: dict[str, Any], expected: str) -> None:
    assert expected in config_error("dev", {f"{PROJECT}:models": models})


def test_stack_outputs_give_a_host_run_its_store_and_images(plan: Plan) -> None:
    """`mlops pipeline run M --host URL --store $(pulumi stack output datasetsStore) --image ...`."""
    outputs = plan["outputs"]
    job = named(plan, "kubernetes:batch/v1:Job", "mlops-model-digits-training-sync")["inputs"]
    arguments = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert outputs["datasetsStore"] == json.loads(arguments[arguments.index("--parameters") + 1])["dataset_store"]
    assert outputs["trainingImage"] == _training_image_ref(plan, "digits")
    gpu_models = [model for model in _models(plan) if catalogue.get(model).gpu]
    assert ("gpuTrainingImage" in outputs) == bool(gpu_models)
    for model in gpu_models:
        assert outputs["gpuTrainingImage"] == _training_image_ref(plan, model)
    assert outputs["kubeconfig"] == SECRET  # a credential: masked in plans, encrypted in state


def test_each_enabled_model_has_one_quality_cronjob_an_hour_after_its_drift_job_in_the_drift_image(
    plan: Plan,
) -> None:
    cron_jobs = {r["name"]: r["inputs"] for r in of_type(plan, "kubernetes:batch/v1:CronJob")}
    quality = {name for name in cron_jobs if name.endswith("-quality-cronjob")}
    assert quality == {f"mlops-model-{model}-quality-cronjob" for model in _models(plan)}
    for model in _models(plan):
        drift = cron_jobs[f"mlops-model-{model}-drift-cronjob"]
        job = cron_jobs[f"mlops-model-{model}-quality-cronjob"]
        minute, hour, *days = drift["spec"]["schedule"].split()
        assert job["spec"]["schedule"].split() == [minute, str((int(hour) + 1) % 24), *days]
        (drift_container,) = drift["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == drift_container["image"]
        assert (container["command"], container["args"]) == (["python", "-m", "monitoring.quality_job"], [model])
        environment = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert environment["MLOPS_LABELS_STORE"].startswith("s3://mlops-labels-")


def test_quality_role_reads_predictions_and_labels_and_writes_reports_of_its_model(plan: Plan) -> None:
    for model in _models(plan):
        policy = role_policy(plan, f"mlops-model-{model}-quality-role")
        objects = {s["Sid"]: s for s in policy["Statement"] if s["Sid"].endswith("ObjectsUnderPrefix")}
        expected = {"Predictions": ["s3:GetObject"], "Labels": ["s3:GetObject"]}
        expected["Reports"] = ["s3:GetObject", "s3:PutObject"]
        own = dict(expected)
        if catalogue.get(model).retrain_on_drift:  # a measured drop may retrain: read labels, add a version
            expected |= {"RetrainLabels": ["s3:GetObject"], "RetrainDataset": ["s3:GetObject", "s3:PutObject"]}
        assert {sid: s["Action"] for sid, s in objects.items()} == {
            f"{k}ObjectsUnderPrefix": v for k, v in expected.items()
        }
        for sid in own:
            resource = objects[f"{sid}ObjectsUnderPrefix"]["Resource"]
            assert f"mlops-{sid.lower()}-" in resource and resource.endswith(f"/{model}/*")

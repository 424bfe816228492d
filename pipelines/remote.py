"""Submit a training pipeline to a Kubeflow Pipelines endpoint (a cluster's KFP API).

The pipeline is compiled from the code, the training image reference is put in place of the
placeholder, and the run is created from that package with `kfp.Client`. Only pipeline parameters
travel with the run; tracking credentials are in the cluster's Secret (see `pipelines.contract`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.contract import pipeline_name, render_with_image
from workloads.datasets.stores import STORE_ENVIRONMENT_VARIABLE

IMAGE_ENVIRONMENT_VARIABLE = "MLOPS_TRAINING_IMAGE"


class SubmissionError(RuntimeError):
    """The run cannot be submitted as asked (no image, unknown parameter, ...)."""


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    host: str
    experiment: str


def cluster_dataset_store(store: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The datasets store a cluster run reads: `store`, else MLOPS_DATASET_STORE; it must be on S3.

    A step pod has no store of its own (its default would be a folder inside the pod), so a run is
    never submitted without one: the stack's is `s3://<datasets bucket>/datasets`.
    """
    environment = os.environ if environ is None else environ
    chosen = store or environment.get(STORE_ENVIRONMENT_VARIABLE, "")
    if not chosen:
        raise SubmissionError(
            "no dataset store for a cluster run: pass --store s3://BUCKET/datasets or set "
            f"{STORE_ENVIRONMENT_VARIABLE} (the stack's: `pulumi stack output datasetsStore`)"
        )
    if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)", chosen):  # an S3 bucket name, then a prefix
        raise SubmissionError(f"a cluster run reads its dataset from S3, not {chosen!r}: use s3://BUCKET/datasets")
    return chosen


def submit(
    model: str,
    host: str,
    *,
    image: str | None = None,
    arguments: dict[str, Any] | None = None,
    experiment: str | None = None,
    namespace: str | None = None,
    client_factory: Callable[..., Any] | None = None,
) -> SubmittedRun:
    """Create a run of `model`'s training pipeline on the KFP API at `host`.

    `image` (default: MLOPS_TRAINING_IMAGE) is the training image reference, by digest in the cluster.
    `client_factory` defaults to `kfp.Client` (tests pass a fake).
    """
    from pipelines.training_pipeline import compiled_text, pipeline_for

    image = image or os.environ.get(IMAGE_ENVIRONMENT_VARIABLE)
    if not image:
        raise SubmissionError(
            f"no training image: pass --image or set {IMAGE_ENVIRONMENT_VARIABLE} (the stack's: "
            "`pulumi stack output trainingImage`)"
        )
    arguments = dict(arguments or {})
    known = set(pipeline_for(model).component_spec.inputs or {})
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise SubmissionError(f"unknown pipeline parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    arguments["dataset_store"] = cluster_dataset_store(arguments.get("dataset_store"))
    if client_factory is None:
        import kfp

        client_factory = kfp.Client
    client = client_factory(host=host, namespace=namespace) if namespace else client_factory(host=host)
    experiment_name = experiment or pipeline_name(model)
    text = render_with_image(compiled_text(model), image)
    with tempfile.TemporaryDirectory(prefix="mlops-submit-") as scratch:
        package = Path(scratch) / f"{model}.yaml"
        package.write_text(text, encoding="utf-8")
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments,
            run_name=f"{pipeline_name(model)}-manual",
            experiment_name=experiment_name,
            namespace=namespace,
        )
    run_id = getattr(result, "run_id", None) or str(result)
    return SubmittedRun(run_id=run_id, host=host, experiment=experiment_name)

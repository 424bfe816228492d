"""Retrain trigger: submit a model's training pipeline when its data drifted.

The submitter is pluggable (`RetrainSubmitter`: a callable taking the model name and the pipeline
arguments, returning a run description), so the same job code runs the pipeline with `kfp.local` on
one machine (`LocalPipelineSubmitter`, what `make demo` uses) and creates a run on Kubeflow Pipelines
in the cluster (`KubeflowSubmitter`). The cooldown (at most one submission per model per cooldown)
is enforced by the job, not by the submitters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitoring.settings import DriftVariables


class RetrainSubmitter(Protocol):
    def __call__(self, model: str, arguments: Mapping[str, Any]) -> str:
        """Submit one training run of `model`; returns a one-line description (run id, outcome)."""
        ...


@dataclass
class LocalPipelineSubmitter:
    """Runs the training pipeline here with `kfp.local` (blocks until the run ends)."""

    pipeline_root: Path | None = None
    submissions: int = 0

    def __call__(self, model: str, arguments: Mapping[str, Any]) -> str:
        from pipelines.local import run_local

        self.submissions += 1
        result = run_local(model, pipeline_root=self.pipeline_root, **dict(arguments))
        return f"local pipeline run: {result.summary}"


@dataclass
class KubeflowSubmitter:
    """Creates a run of the model's compiled pipeline on the KFP API at `host`."""

    host: str
    image: str | None = None
    submissions: int = 0

    def __call__(self, model: str, arguments: Mapping[str, Any]) -> str:
        from pipelines.remote import submit

        self.submissions += 1
        submitted = submit(model, self.host, image=self.image, arguments=dict(arguments))
        return f"KFP run {submitted.run_id} on {submitted.host} (experiment {submitted.experiment})"


def submitter_for(mode: str, kfp_host: str | None) -> RetrainSubmitter | None:
    if mode == "local":
        return LocalPipelineSubmitter()
    if mode == "kfp":
        if not kfp_host:
            raise ValueError(f"{DriftVariables.RETRAIN}=kfp needs {DriftVariables.KFP_HOST}")
        return KubeflowSubmitter(host=kfp_host)
    return None

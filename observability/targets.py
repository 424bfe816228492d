"""Which series belong to one model: the label matchers every rule of its group uses.

The names follow the infrastructure: the model service is the Deployment and Service
`serve-<model>` (infra/model_service.py), the drift job the CronJob `drift-<model>`
(infra/drift_monitor.py) and the quality job the CronJob `quality-<model>` (infra/quality_monitor.py);
tests/observability/test_targets.py checks each in the offline plan.
The service's own series are selected by `job`: a prometheus-operator ServiceMonitor without
`jobLabel` names the job after the Kubernetes Service (every BentoML service is called
`image-classifier`, so BentoML's `service_name` label cannot tell the models apart).
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_ROUTES = ("/classify_image", "/classify_array")
"""The service's model endpoints (workloads/serving/service.py). BentoML counts every path but
/metrics, so probes of /readyz (503 while no version is loaded) and /livez must be left out."""


@dataclass(frozen=True)
class ModelTargets:
    model: str
    namespace: str | None = None
    """Restrict every selector to this namespace; None matches the model's objects in any."""

    @property
    def deployment(self) -> str:
        return f"serve-{self.model}"

    @property
    def cronjob(self) -> str:
        """The drift job's CronJob."""
        return f"drift-{self.model}"

    @property
    def quality_cronjob(self) -> str:
        return f"quality-{self.model}"

    def requests(self, *extra: str) -> str:
        """Matchers of the model's requests (routes only), plus `extra` ones such as `le="1.0"`."""
        routes = "|".join(MODEL_ROUTES)
        return self._matchers(f'job="{self.deployment}"', f'endpoint=~"{routes}"', *extra)

    def service(self) -> str:
        """Matchers of every series the model's service exports (whatever the route)."""
        return self._matchers(f'job="{self.deployment}"')

    def replica_pods(self) -> str:
        """The service's pods (`<deployment>-<replica set hash>-<suffix>`), as a per-pod exporter
        such as DCGM's labels its series (`pod`, and `namespace`)."""
        return self._matchers(f'pod=~"{self.deployment}-[a-z0-9]+-[a-z0-9]+"')

    def deployment_objects(self) -> str:
        return self._matchers(f'deployment="{self.deployment}"')

    def cronjob_objects(self, cronjob: str | None = None) -> str:
        """kube-state-metrics' series of `cronjob` (default: the drift job's)."""
        return self._matchers(f'cronjob="{cronjob or self.cronjob}"')

    def job_results(self, job: str) -> str:
        """Matchers of what the daily `job` pushed for the model. Never the namespace: pushed series
        carry the Pushgateway's (its target's), not the model's; the model's name is unique per stack."""
        return "{" + f'job="{job}",model="{self.model}"' + "}"

    def _matchers(self, *matchers: str) -> str:
        scoped = (*matchers, f'namespace="{self.namespace}"') if self.namespace else matchers
        return "{" + ",".join(scoped) + "}"

"""One infra component declared alone, under the offline plan's mocks, from small hand-made Args.

The whole-stack tests (tests/infra/conftest.py) render every stack: minutes of the suite, and a
failure there names a plan, not a component. These helpers build one `ComponentResource` in a
fresh mocked runtime (milliseconds) and record what it registers exactly as the plan would
(`infra.offline_plan`'s recording monitor: type, name, parent URN, inputs with the providers'
camelCase names, secrets masked), plus the outputs each component registers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import PROJECT
from infra.offline_mocks import OfflineMocks
from infra.offline_plan import _plain, _RecordingMonitor
from infra.secure_bucket import SecureBucket, SecureBucketArgs
from infra.shared_services import SharedServices, TrackingClient, WorkloadImages
from infra.workload_role import ClusterIdentity

T = TypeVar("T")
CRON_JOB = "kubernetes:batch/v1:CronJob"
REGION = "eu-west-1"
OIDC_ISSUER_HOST = "oidc.eks.eu-west-1.amazonaws.com/id/TESTCLUSTER"


class _Monitor(_RecordingMonitor):
    """The offline plan's monitor, also keeping each resource's lifecycle options and what each
    component registers as its outputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # the runtime registers from several threads at once

    def RegisterResource(self, request: Any) -> Any:
        with self._lock:
            before = len(self.recorded)
            response = super().RegisterResource(request)
        if len(self.recorded) > before:
            self.recorded[before]["options"] = {
                "retainOnDelete": bool(request.retainOnDelete),
                "ignoreChanges": list(request.ignoreChanges),
                # The types of what it waits for (`dependencies` has only names, and children share them).
                "dependencyTypes": sorted({urn.rsplit("::", 2)[-2].split("$")[-1] for urn in request.dependencies}),
            }
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.outputs[request.urn] = _plain(rpc.deserialize_properties(request.outputs, keep_unknowns=True))
        return super().RegisterResourceOutputs(request)


@dataclass(frozen=True)
class Declared(Generic[T]):
    """A component and everything its constructor registered."""

    component: T
    resources: list[dict[str, Any]]
    """As the offline plan records them (type, name, parent, inputs, dependencies), plus `options`."""
    outputs: dict[str, dict[str, Any]]
    """URN -> the outputs `register_outputs` recorded for it."""

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [resource for resource in self.resources if resource["type"] == resource_type]

    def one(self, resource_type: str) -> dict[str, Any]:
        """The inputs of the only resource of `resource_type` (fails when there are none or several)."""
        (resource,) = self.of_type(resource_type)
        return resource["inputs"]

    def cron_job_pod(self) -> dict[str, Any]:
        """The pod spec of the one CronJob declared."""
        return self.one(CRON_JOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]

    def outputs_of(self, component_type: str) -> dict[str, Any]:
        """What the only component of `component_type` registered as its outputs."""
        (outputs,) = [value for urn, value in self.outputs.items() if urn.rsplit("::", 2)[-2].endswith(component_type)]
        return outputs

    def registered_by(self, component_name: str) -> dict[str, Any]:
        """What the only component called `component_name` registered as its outputs."""
        (outputs,) = [value for urn, value in self.outputs.items() if urn.rsplit("::", 1)[-1] == component_name]
        return outputs


def declare(build: Callable[[], T], stack: str = "test") -> Declared[T]:
    """Run `build` as a Pulumi program under the offline mocks; return what it built and registered."""
    monitor = _Monitor(OfflineMocks(REGION))
    pulumi_settings.ROOT.set(None)  # a fresh root stack: nothing from an earlier program is parent
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    built: list[T] = []
    _sync_await(run_pulumi_func(lambda: built.append(build())))
    return Declared(component=built[0], resources=monitor.recorded, outputs=monitor.outputs)


def resolved(output: pulumi.Input[Any]) -> Any:
    """The value of an Output of a component declared by `declare` (its program has finished)."""
    return _sync_await(pulumi.Output.from_input(output).future())


def kms_key_arn(purpose: str) -> str:
    """A key of its own per bucket, so a test can tell which key a policy grants."""
    return f"arn:aws:kms:{REGION}:123456789012:key/{purpose}"


def bucket(purpose: str, force_destroy: bool = False, expire_after_days: int | None = None) -> SecureBucket:
    """A SecureBucket encrypted with `kms_key_arn(purpose)`; call inside `declare`."""
    return SecureBucket(
        f"mlops-{purpose}",
        SecureBucketArgs(
            purpose=purpose,
            kms_key_arn=kms_key_arn(purpose),
            noncurrent_version_retention_days=30,
            force_destroy=force_destroy,
            current_version_expiration_days=expire_after_days,
        ),
    )


class _Unused:
    """Stands for a part of SharedServices the component under test must not touch."""

    def __init__(self, what: str, **attributes: Any) -> None:
        self._what = what
        self.__dict__.update(attributes)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the component read {self._what}.{name}, which this test gives it no value for")


def _datasets(real: bool) -> _Unused:
    if not real:
        return _Unused("datasets")
    datasets_bucket = bucket("datasets")
    return _Unused("datasets", bucket=datasets_bucket, prefix="datasets", store=datasets_bucket.s3_uri("datasets"))


def shared_services(pipelines_namespace: str | None = None, datasets: bool = False) -> SharedServices:
    """What the platform hands each model's components, built small: real SecureBuckets for the
    predictions, labels and reports, and stand-ins for Kubeflow Pipelines and the dataset seed that fail the
    test if read (apart from the pipelines' namespace when one is given, and a real datasets bucket
    under the `datasets` prefix when `datasets`: what a job that may retrain adds versions to).
    Call inside `declare`."""
    pipelines = _Unused("pipelines", namespace=pipelines_namespace) if pipelines_namespace else _Unused("pipelines")
    return SharedServices(
        identity=ClusterIdentity(
            oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{OIDC_ISSUER_HOST}",
            oidc_issuer_host=OIDC_ISSUER_HOST,
        ),
        region=REGION,
        namespace="models",
        tracking=TrackingClient(
            url="http://mlflow.mlflow.svc.cluster.local", namespace="mlflow", credentials_secret="tracking-client"
        ),
        pipelines=cast(Any, pipelines),
        datasets=cast(Any, _datasets(datasets)),
        predictions=bucket("predictions", expire_after_days=90),
        labels=bucket("labels"),
        reports=bucket("reports"),
        images=WorkloadImages(
            serving="123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving@sha256:" + "a" * 64,
            drift="123456789012.dkr.ecr.eu-west-1.amazonaws.com/drift@sha256:" + "b" * 64,
            training="123456789012.dkr.ecr.eu-west-1.amazonaws.com/training@sha256:" + "c" * 64,
            gpu_serving="123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving-gpu@sha256:" + "d" * 64,
        ),
        monitoring=cast(Any, _Unused("monitoring")),
    )


def assert_hardened_pod(spec: dict[str, Any], irsa_service_account: str | None) -> None:
    """The pod promises of infra/hardened_workload.py, on a recorded pod spec: Pod Security
    `restricted` contexts, a writable emptyDir only at /tmp, requests and limits on the container,
    and the service-account token mounted exactly where an IRSA role is used."""
    assert spec["securityContext"] == {
        "fsGroup": 10001,
        "runAsGroup": 10001,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["volumeMounts"] == [{"mountPath": "/tmp", "name": "tmp"}]
    (volume,) = spec["volumes"]
    assert volume["name"] == "tmp" and set(volume) == {"name", "emptyDir"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert spec.get("serviceAccountName") == irsa_service_account
    assert spec["automountServiceAccountToken"] is (irsa_service_account is not None)
    for variable in container.get("env", []):
        assert "value" in variable or "valueFrom" in variable
        assert "PASSWORD" not in variable["name"] or "valueFrom" in variable, f"{variable['name']} is a literal"

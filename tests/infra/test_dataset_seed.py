"""`pulumi up` seeds the datasets store, and the first training runs wait for it."""

from __future__ import annotations

import json

from tests.infra.conftest import Plan, named, of_type, policy_document
from workloads import catalogue


def _enabled_models(plan: Plan) -> set[str]:
    return {r["name"].removeprefix("mlops-model-") for r in of_type(plan, "mlops:platform:Model")}


def test_the_seed_job_writes_the_datasets_the_schedules_read(plan: Plan) -> None:
    models = _enabled_models(plan)
    job = named(plan, "kubernetes:batch/v1:Job", "mlops-dataset-seed-job")["inputs"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "pipelines.dataset_seed"]
    arguments = container["args"]
    store = arguments[arguments.index("--store") + 1]
    assert arguments[: arguments.index("--store")] == sorted({catalogue.get(model).dataset for model in models})
    assert "/training@sha256:" in container["image"]
    for model in models:
        sync = named(plan, "kubernetes:batch/v1:Job", f"mlops-model-{model}-training-sync")
        sync_arguments = sync["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert json.loads(sync_arguments[sync_arguments.index("--parameters") + 1])["dataset_store"] == store
        assert "mlops-dataset-seed-job" in sync["dependencies"]  # the first run finds its data


def test_the_seed_job_may_only_read_and_add_its_datasets(plan: Plan) -> None:
    datasets = sorted({catalogue.get(model).dataset for model in _enabled_models(plan)})
    role_policy = named(plan, "aws:iam/rolePolicy:RolePolicy", "mlops-dataset-seed-role")
    policy = policy_document(role_policy["inputs"]["policy"])
    objects = [s for s in policy["Statement"] if s["Sid"].endswith("ObjectsUnderPrefix")]
    assert len(objects) == len(datasets)
    for statement, dataset in zip(objects, datasets, strict=True):
        assert statement["Action"] == ["s3:GetObject", "s3:PutObject"]  # never delete: versions are immutable
        assert "mlops-datasets-" in statement["Resource"] and statement["Resource"].endswith(f"/datasets/{dataset}/*")
    trust = policy_document(named(plan, "aws:iam/role:Role", "mlops-dataset-seed-role")["inputs"]["assumeRolePolicy"])
    assert any("system:serviceaccount:kubeflow:dataset-seed" in json.dumps(s) for s in trust["Statement"])


def test_the_seed_job_reaches_only_dns_and_https(plan: Plan) -> None:
    policy = named(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "mlops-dataset-seed-network-policy")
    spec = policy["inputs"]["spec"]
    assert spec["ingress"] == [] and spec["policyTypes"] == ["Ingress", "Egress"]
    ports = sorted(port["port"] for rule in spec["egress"] for port in rule["ports"])
    assert ports == [53, 53, 443]

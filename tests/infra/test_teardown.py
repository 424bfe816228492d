"""`pulumi destroy` completes in dev and keeps the data where the databases are protected.

What each stack keeps follows `PlatformConfig.data_survives_destroy` (databaseDeletionProtection):
dev keeps nothing, staging and prod keep a final snapshot of each database and every bucket's objects.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import offline_plan
from infra.config import parse_config
from infra.offline_plan import load_stack_config, render_stack, to_json
from infra.platform import BUCKET_PURPOSES
from tests.infra.conftest import Plan, inputs_of, of_type
from tests.offline_plans import STACKS

KEEPS_DATA = {"dev": False, "staging": True, "prod": True}
RANDOM_ID = "random:index/randomId:RandomId"


def _keeps_data(stack: str) -> bool:
    values = load_stack_config(stack).values
    return parse_config(stack, values["aws:region"], values, enforce_support=False).data_survives_destroy


def _by_name(plan: Plan, resource_type: str) -> dict[str, dict[str, Any]]:
    return {resource["name"]: resource for resource in of_type(plan, resource_type)}


def test_what_each_stack_keeps_is_decided_once() -> None:
    assert {stack: _keeps_data(stack) for stack in STACKS} == KEEPS_DATA


@pytest.mark.parametrize("stack", STACKS)
def test_buckets_are_emptied_by_destroy_only_where_no_data_is_kept(stack: str, plans: dict[str, Plan]) -> None:
    buckets = inputs_of(plans[stack], "aws:s3/bucket:Bucket")
    assert len(buckets) == len(BUCKET_PURPOSES)
    for bucket in buckets:
        # forceDestroy also removes every noncurrent version and delete marker of the versioned bucket.
        assert bucket["forceDestroy"] is (not KEEPS_DATA[stack])
    versioning = inputs_of(plans[stack], "aws:s3/bucketVersioning:BucketVersioning")
    assert {v["versioningConfiguration"]["status"] for v in versioning} == {"Enabled"}


@pytest.mark.parametrize("stack", STACKS)
def test_databases_take_a_final_snapshot_only_where_data_is_kept(stack: str, plans: dict[str, Plan]) -> None:
    instances = _by_name(plans[stack], "aws:rds/instance:Instance")
    assert set(instances) == {"mlops-tracking-db", "mlops-pipelines-db"}
    for name, instance in instances.items():
        inputs = instance["inputs"]
        assert inputs["deletionProtection"] is KEEPS_DATA[stack]
        assert inputs["skipFinalSnapshot"] is (not KEEPS_DATA[stack])
        assert inputs["deleteAutomatedBackups"] is (not KEEPS_DATA[stack])
        if KEEPS_DATA[stack]:
            assert inputs["finalSnapshotIdentifier"].startswith(f"{name.removesuffix('-db')}-final-")
        else:
            assert "finalSnapshotIdentifier" not in inputs
    if not KEEPS_DATA[stack]:
        assert of_type(plans[stack], RANDOM_ID) == []


@pytest.mark.parametrize("stack", [stack for stack in STACKS if KEEPS_DATA[stack]])
def test_final_snapshot_names_are_unique_per_deployment_and_stable_across_ups(
    stack: str, plans: dict[str, Plan]
) -> None:
    """A fixed name collides on the second destroy; a timestamp would show a diff on every `up`. The
    suffix is a RandomId: chosen once and kept in the stack's state, so a later `up` sends the same
    name, and a new deployment (after a destroy) draws a new one."""
    suffixes = _by_name(plans[stack], RANDOM_ID)
    instances = _by_name(plans[stack], "aws:rds/instance:Instance")
    for name, instance in instances.items():
        suffix_name = f"{name.removesuffix('-db')}-final-snapshot-suffix"
        assert suffix_name in instance["dependencies"], "the identifier is built from the instance's own suffix"
        suffix = suffixes[suffix_name]["inputs"]
        assert suffix["byteLength"] == 4
        # Only inputs that replace the instance renew the suffix: a replacement gets its own name.
        assert set(suffix["keepers"]) == {"engine", "databaseName", "masterUsername", "kmsKeyArn"}
        assert instance["inputs"]["engine"] == suffix["keepers"]["engine"]
    assert len(suffixes) == len(instances) == 2
    # Nothing time-dependent goes into the plan: a second render (a second `up`) is byte-identical.
    assert to_json(render_stack(stack)) == to_json(plans[stack])


def test_dev_container_repositories_are_deleted_with_their_images(plans: dict[str, Plan]) -> None:
    """A repository that still holds images fails `pulumi destroy` unless forceDelete is set
    (infra/container_image.py, decided per stack by infra/platform.py)."""
    repositories = inputs_of(plans["dev"], "aws:ecr/repository:Repository")
    assert repositories and all(repository["forceDelete"] is True for repository in repositories)


class _RetainRecorder(offline_plan._RecordingMonitor):
    """The offline plan's monitor, also noting each registration's retainOnDelete option."""

    retained: dict[tuple[str, str], bool] = {}

    def RegisterResource(self, request: Any) -> Any:
        _RetainRecorder.retained[(request.type, request.name)] = bool(request.retainOnDelete)
        return super().RegisterResource(request)


@pytest.mark.parametrize("stack", STACKS)
def test_a_kept_bucket_keeps_its_guards(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where data survives, `destroy` leaves each bucket with its public-access block, TLS-only policy,
    encryption, versioning and lifecycle in the account (retain_on_delete): deleted first, they would
    leave the kept data unguarded. In dev everything is deleted."""
    _RetainRecorder.retained = {}
    monkeypatch.setattr(offline_plan, "_RecordingMonitor", _RetainRecorder)
    plan = render_stack(stack)
    bucket_parts = [
        resource
        for resource in plan["resources"]
        if resource["type"].startswith("aws:s3/") and any(p in resource["name"] for p in ("artifacts", "datasets"))
    ]
    assert {resource["type"] for resource in bucket_parts} >= {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
    }
    for resource in bucket_parts:
        assert _RetainRecorder.retained[(resource["type"], resource["name"])] is KEEPS_DATA[stack], resource["name"]
    instances = [name for (kind, name) in _RetainRecorder.retained if kind == "aws:rds/instance:Instance"]
    assert instances and not any(_RetainRecorder.retained[("aws:rds/instance:Instance", n)] for n in instances)


@pytest.mark.parametrize("stack", STACKS)
def test_kept_data_keeps_the_keys_that_decrypt_it(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept snapshots and bucket objects are encrypted with the stack's KMS keys: where data survives
    `destroy`, so do the keys (a scheduled key deletion would make the data unreadable)."""
    _RetainRecorder.retained = {}
    monkeypatch.setattr(offline_plan, "_RecordingMonitor", _RetainRecorder)
    render_stack(stack)
    keys = {name: kept for (kind, name), kept in _RetainRecorder.retained.items() if kind == "aws:kms/key:Key"}
    assert len(keys) == 4
    assert set(keys.values()) == {KEEPS_DATA[stack]}

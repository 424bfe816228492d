"""`mlops plan diff`: a real change it must report, a no-op it must not, and the user errors.

The end-to-end tests run on a throw-away git repository made from the tracked files of HEAD
(`git archive`), so they render real plans at a real base ref without touching this checkout.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.plan_commands import app
from cli.plan_diff import ABSENT, diff_plans, format_diff
from infra.offline_plan import PROJECT_ROOT, SECRET

runner = CliRunner()
GIT_IDENTITY = ["-c", "user.name=mlops tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false"]


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("project")
    archive = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", "HEAD"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "--all"], check=True)
    subprocess.run(["git", "-C", str(root), *GIT_IDENTITY, "commit", "--quiet", "-m", "base"], check=True)
    yield root


def run_diff(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["diff", *args])
    return result.exit_code, result.output


def test_a_config_change_is_reported_per_property(project_copy: Path) -> None:
    stack_file = project_copy / "stacks" / "Pulumi.dev.yaml"
    original = stack_file.read_text()
    assert "mlops-platform:databaseBackupRetentionDays: 7\n" in original
    stack_file.write_text(original.replace("databaseBackupRetentionDays: 7\n", "databaseBackupRetentionDays: 9\n"))
    try:
        exit_code, output = run_diff("dev", "--base", "HEAD", "--exit-code", "--repo", str(project_copy))
    finally:
        stack_file.write_text(original)
    assert exit_code == 1, output
    assert "0 to add, 0 to remove, 2 to change" in output
    assert "~ aws:rds/instance:Instance mlops-tracking-db" in output
    assert "~ aws:rds/instance:Instance mlops-pipelines-db" in output
    assert output.count("    backupRetentionPeriod: 7 -> 9") == 2


def test_a_change_that_leaves_the_plan_alone_is_a_no_op(project_copy: Path) -> None:
    stack_file = project_copy / "stacks" / "Pulumi.dev.yaml"
    original = stack_file.read_text()
    stack_file.write_text(original + "# reviewed: nothing here changes a resource\n")
    try:
        exit_code, output = run_diff("dev", "--base", "HEAD", "--exit-code", "--repo", str(project_copy))
    finally:
        stack_file.write_text(original)
    assert exit_code == 0, output
    assert output.startswith("stack dev: HEAD (")
    assert output.rstrip().endswith("-> working tree: no changes")


def test_unknown_ref_and_unknown_stack_exit_2_with_one_message(project_copy: Path) -> None:
    exit_code, output = run_diff("dev", "--base", "no-such-branch", "--repo", str(project_copy))
    assert exit_code == 2
    assert "unknown git ref 'no-such-branch'" in output
    exit_code, output = run_diff("qa", "--base", "HEAD", "--repo", str(project_copy))
    assert exit_code == 2
    assert "unknown stack 'qa'" in output and "dev, prod, staging" in output


# ---------------------------------------------------------------------------------------------
# the comparison itself, on small synthetic plans

PARENT = "urn:pulumi:dev::mlops-platform::mlops:platform:Platform$mlops:iam:WorkloadRole::training"


def _policy(*actions: str) -> str:
    statement = {"Sid": "Read", "Effect": "Allow", "Action": list(actions), "Resource": "arn:aws:s3:::data/*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _plan(*resources: dict) -> dict:
    return {"stack": "dev", "resources": list(resources)}


def _role_policy(policy: str, secret: str = SECRET) -> dict:
    inputs = {"policy": policy, "role": "training-role", "token": secret}
    return {"type": "aws:iam/rolePolicy:RolePolicy", "name": "training", "parent": PARENT, "inputs": inputs}


def test_json_policy_changes_show_the_field_that_changed() -> None:
    base = _plan(_role_policy(_policy("s3:GetObject")))
    head = _plan(_role_policy(_policy("s3:GetObject", "s3:PutObject")))
    diff = diff_plans(base, head)
    [(key, [change])] = diff.changed.items()
    assert key[1] == "training"
    assert (change.path, change.old, change.new) == ("policy.Statement[0].Action[1]", ABSENT, "s3:PutObject")
    assert '    policy.Statement[0].Action[1]: (absent) -> "s3:PutObject"' in format_diff(diff)


def test_secrets_stay_masked_and_added_removed_are_keyed_by_parent() -> None:
    moved = {**_role_policy(_policy("s3:GetObject")), "parent": PARENT.replace("training", "serving")}
    diff = diff_plans(_plan(_role_policy(_policy("s3:GetObject"))), _plan(moved))
    assert len(diff.added) == 1 and len(diff.removed) == 1 and diff.changed == {}
    text = format_diff(diff)
    assert "+ aws:iam/rolePolicy:RolePolicy training  (in mlops:iam:WorkloadRole serving)" in text
    assert "- aws:iam/rolePolicy:RolePolicy training  (in mlops:iam:WorkloadRole training)" in text
    assert "1 to add, 1 to remove, 0 to change" in text
    assert not diff_plans(_plan(_role_policy("{}")), _plan(_role_policy("{}"))).has_changes

"""The GitHub workflows: valid against GitHub's workflow schema (check-jsonschema's bundled copy, offline)
and wired the way the platform team reviews and ships changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline_plan import PROJECT_ROOT, available_stacks

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def check_workflows(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as True
    return document


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).split("@")[0] == action]


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in workflows} >= {"preview.yml", "deploy.yml"}
    result = check_workflows(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = load("preview.yml")
    broken["jobs"]["preview"]["runs-on"] = None
    broken["jobs"]["preview"]["stepz"] = broken["jobs"]["preview"].pop("steps")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    result = check_workflows(path)
    assert result.returncode == 1
    assert "broken.yml" in result.stdout + result.stderr


def test_preview_runs_on_every_stack_with_pulumi_preview_diff_and_the_offline_diff() -> None:
    workflow = load("preview.yml")
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["id-token"] == "write"
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in workflow["concurrency"]["group"]
    job = workflow["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == available_stacks()
    assert job["env"]["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    [pulumi] = steps_using(job, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["diff"] is True and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policies" and (PROJECT_ROOT / "policies" / "PulumiPolicy.yaml").is_file()
    [aws] = steps_using(job, "aws-actions/configure-aws-credentials")
    assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]
    commands = "\n".join(str(step.get("run", "")) for step in job["steps"])
    assert "make install" in commands
    assert 'mlops plan diff "${{ matrix.stack }}" --base "origin/${{ github.base_ref }}"' in commands
    [checkout] = steps_using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the base branch must be there to render it


def test_deploy_updates_dev_then_staging_then_prod_behind_environments() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"]["id-token"] == "write"
    jobs = workflow["jobs"]
    assert [jobs[name]["with"]["stack"] for name in ("dev", "staging", "prod")] == ["dev", "staging", "prod"]
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"
    called = load(Path(jobs["prod"]["uses"]).name)
    [up] = called["jobs"].values()
    assert up["environment"] == "${{ inputs.stack }}"
    [pulumi] = [step for step in steps_using(up, "pulumi/actions") if "command" in step.get("with", {})]
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"] == "${{ inputs.stack }}"
    assert "make install" in "\n".join(str(step.get("run", "")) for step in up["steps"])
    [checkout] = steps_using(up, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # training images stamp the commit of their sources


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "pulumi-up.yml"])
def test_workflows_use_no_static_aws_keys(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "aws-secret-access-key" not in text


def _pulumi_steps() -> dict[str, list[dict[str, Any]]]:
    """The pulumi/actions steps that run a command, by workflow file."""
    preview = load("preview.yml")["jobs"]["preview"]
    [up] = load("pulumi-up.yml")["jobs"].values()
    return {
        name: [step for step in steps_using(job, "pulumi/actions") if "command" in step.get("with", {})]
        for name, job in (("preview.yml", preview), ("pulumi-up.yml", up))
    }


def test_every_pulumi_command_creates_a_stack_that_does_not_exist_yet() -> None:
    """The first deploy (and the first preview) of a stack finds none in the backend: `upsert` creates
    it, with the config already in stacks/, instead of failing with "no stack named"."""
    steps = _pulumi_steps()
    assert [step["with"]["command"] for step in steps["preview.yml"]] == ["preview"]
    assert [step["with"]["command"] for step in steps["pulumi-up.yml"]] == ["up"]
    for workflow_steps in steps.values():
        for step in workflow_steps:
            assert step["with"]["upsert"] is True, step
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in load(path.name)["jobs"].values():
            for step in steps_using(job, "pulumi/actions") if "steps" in job else []:
                if step.get("with", {}).get("command") in ("up", "preview"):
                    assert step["with"].get("upsert") is True, f"{path.name}: {step.get('name')}"


def test_pulumi_up_runs_the_preflight_first_on_the_stacks_runner() -> None:
    workflow = load("pulumi-up.yml")
    [up] = workflow["jobs"].values()
    assert up["runs-on"] == "${{ inputs.runner }}"
    assert workflow["on"]["workflow_call"]["inputs"]["runner"]["default"] == "ubuntu-24.04"
    names = [step.get("name", "") for step in up["steps"]]
    preflight = names.index("mlops preflight")
    assert up["steps"][preflight]["run"] == 'mlops preflight "${{ inputs.stack }}"'
    # After what it checks is installed and credentialed, before `pulumi up` itself.
    installs_pulumi = [i for i, step in enumerate(up["steps"]) if step in steps_using(up, "pulumi/actions")]
    assert names.index("AWS credentials (OIDC role assumption)") < preflight
    assert names.index("Docker Buildx (the workload images are built and pushed by docker-build)") < preflight
    assert installs_pulumi[0] < preflight < names.index("pulumi up") == installs_pulumi[-1]
    assert "command" not in up["steps"][installs_pulumi[0]].get("with", {}), "install only"


def test_each_stack_deploys_from_the_runner_its_repository_variable_names() -> None:
    jobs = load("deploy.yml")["jobs"]
    for name in ("dev", "staging", "prod"):
        assert jobs[name]["with"]["runner"] == f"${{{{ vars.DEPLOY_RUNNER_{name.upper()} || 'ubuntu-24.04' }}}}"
    # Pull requests (forks included) never run on a deploy runner: previews stay GitHub-hosted.
    assert load("preview.yml")["jobs"]["preview"]["runs-on"] == "ubuntu-24.04"

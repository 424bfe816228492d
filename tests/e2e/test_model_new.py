"""`mlops model new`: one command adds a complete model, and nothing else needs editing.

Runs on a copy of the repository (the command edits the catalogue, a stack file and writes a compiled
pipeline): the scaffolded entry imports, its compiled pipeline is exactly what `mlops pipeline compile`
produces, and the stack's offline plan gains a `Model` with its service, drift job and schedule.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repository_copy(tmp_path: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path / "repository"
    for name in filter(None, listed):
        source = REPOSITORY_ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def _run(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, *arguments], cwd=root, env=environment, capture_output=True, text=True, timeout=600
    )


def _digests(root: Path) -> dict[str, str]:
    paths = [root / "workloads" / "catalogue.py", *sorted((root / "stacks").glob("*.yaml"))]
    paths += sorted((root / "pipelines" / "compiled").glob("*.yaml"))
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def test_a_new_model_is_one_command_and_appears_in_the_plan(repository_copy: Path) -> None:
    root = repository_copy
    added = _run(root, "-m", "cli.main", "model", "new", "defects-night", "--from", "surface-defects")
    assert added.returncode == 0, added.stderr

    entry = _run(
        root,
        "-c",
        "import json; from workloads import catalogue; e = catalogue.get('defects-night'); "
        "print(json.dumps([list(catalogue.names()), e.dataset, e.gpu, e.model_factory, e.quality_threshold]))",
    )
    assert entry.returncode == 0, entry.stderr
    assert json.loads(entry.stdout) == [
        ["digits", "surface-defects", "defects-night"],
        "surface-defects",
        True,
        "workloads.models.surface_defects:SurfaceDefectClassifier",
        0.9,
    ]
    compiled = root / "pipelines" / "compiled" / "defects-night.yaml"
    scaffolded = compiled.read_text(encoding="utf-8")
    fresh = _run(root, "-m", "cli.main", "pipeline", "compile", "--model", "defects-night")
    assert fresh.returncode == 0, fresh.stderr
    assert compiled.read_text(encoding="utf-8") == scaffolded  # what the freshness test will compare

    plan = _run(root, "-m", "cli.main", "plan", "dev")
    assert plan.returncode == 0, plan.stderr
    resources = json.loads(plan.stdout)["resources"]
    model_children = {
        (resource["type"], resource["name"]) for resource in resources if "defects-night" in resource["name"]
    }
    assert ("mlops:platform:Model", "mlops-model-defects-night") in model_children
    types = {kind for kind, _ in model_children}
    for kind in ("mlops:serving:ModelService", "mlops:monitoring:DriftMonitor", "mlops:pipelines:TrainingSchedule"):
        assert kind in types
    assert "kubernetes:apps/v1:Deployment" in types
    staging = _run(root, "-m", "cli.main", "plan", "staging")
    assert staging.returncode == 0, staging.stderr
    assert not [r for r in json.loads(staging.stdout)["resources"] if "defects-night" in r["name"]]  # dev only


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["digits", "--from", "surface-defects"], "error: model 'digits' is already in the catalogue"),
        (["Digits_2", "--from", "digits"], "error: model name 'Digits_2' must be a DNS label"),
        (["digits-2", "--from", "nope"], "error: unknown model 'nope': the catalogue has digits, surface-defects"),
        (["digits-2", "--from", "digits", "--stack", "qa"], "error: no such stack file:"),
    ],
)
def test_a_bad_name_or_template_changes_nothing(repository_copy: Path, arguments: list[str], message: str) -> None:
    before = _digests(repository_copy)
    result = _run(repository_copy, "-m", "cli.main", "model", "new", *arguments)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _digests(repository_copy) == before


GIT_IDENTITY = ["-c", "user.name=mlops tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false"]


def _commit_all(root: Path, message: str) -> None:
    for arguments in (["add", "--all"], [*GIT_IDENTITY, "commit", "--quiet", "--no-verify", "-m", message]):
        subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True)


def _plan(root: Path, stack: str) -> dict[tuple[str, str], dict]:
    plan = _run(root, "-m", "cli.main", "plan", stack)
    assert plan.returncode == 0, plan.stderr
    return {(resource["type"], resource["name"]): resource for resource in json.loads(plan.stdout)["resources"]}


def test_a_new_model_rebuilds_no_image_and_changes_no_other_model(repository_copy: Path) -> None:
    """What the next `pulumi up` does after `mlops model new`: create the new model's resources, and
    nothing else. No image is rebuilt (their contexts hold no catalogue: each pod is handed its entry)
    and no other model's Deployment, CronJob or pipeline changes. In a git checkout, committed before
    and after as a merge would be: the training images stamp the last commit of their sources."""
    root = repository_copy
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    _commit_all(root, "the platform")
    before = _plan(root, "dev")

    added = _run(root, "-m", "cli.main", "model", "new", "handwriting", "--from", "digits")
    assert added.returncode == 0, added.stderr
    _commit_all(root, "mlops model new handwriting --from digits")
    after = _plan(root, "dev")

    images = [key for key in before if key[0] == "docker-build:index:Image"]
    assert len(images) >= 4 and [key for key in after if key[0] == "docker-build:index:Image"] == images
    for key in images:
        assert after[key]["inputs"] == before[key]["inputs"], f"{key[1]} would be rebuilt"
    for model in ("digits", "surface-defects"):
        assert [key for key in before if model in key[1]], f"no resource of {model}: the check below is vacuous"
    changed = sorted(key[1] for key, resource in before.items() if after.get(key) != resource)
    # The overview dashboard lists every model by design: it is the one shared object that gains a panel.
    assert changed == ["mlops-monitoring-overview-dashboard"], f"adding a model changed or removed: {changed}"

    new = {key for key in after if key not in before}
    assert all("handwriting" in name for _, name in new), sorted(new)
    assert {kind for kind, _ in new} >= {
        "mlops:platform:Model",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:batch/v1:Job",
        "aws:iam/role:Role",
    }

"""`mlops kfp describe`: the overlay is built from local upstream checkouts without touching the repository."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from cli.kfp_commands import render_overlay
from infra.kubeflow_install import OVERLAY, REPOSITORY_ROOT

# A stand-in for `kubectl kustomize`: it checks that every resource of the overlay and of the upstream
# kustomizations it reaches is a local path that exists, then prints one object naming what it read.
FAKE_KUSTOMIZE = """#!/usr/bin/env python3
import pathlib, sys, yaml
def walk(folder, seen):
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    for resource in kustomization.get("resources", []):
        if "://" in resource:
            sys.exit(f"remote reference left in {folder}: {resource}")
        target = (folder / resource).resolve()
        if not target.exists():
            sys.exit(f"{folder}: {resource} does not exist")
        seen.append(str(target))
        if target.is_dir():
            walk(target, seen)
seen = []
walk(pathlib.Path(sys.argv[1]), seen)
print(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "read", "namespace": "kubeflow"},
                      "data": {"paths": "\\n".join(seen)}}))
"""


def _upstream(tmp_path: Path) -> tuple[Path, Path]:
    """Checkouts shaped like kubeflow/pipelines and argo-workflows, with the folders the overlay uses."""
    kfp, argo = tmp_path / "pipelines", tmp_path / "argo-workflows"
    overlay = yaml.safe_load((REPOSITORY_ROOT / OVERLAY / "kustomization.yaml").read_text())
    for url in overlay["resources"]:
        folder = kfp / "manifests" / "kustomize" / url.split("/manifests/kustomize/", 1)[1].split("?", 1)[0]
        folder.mkdir(parents=True)
        argo_folder = argo / "manifests" / folder.name
        argo_folder.mkdir(parents=True)
        (argo_folder / "kustomization.yaml").write_text("resources: []\n")
        remote = f"https://github.com/argoproj/argo-workflows/manifests/{folder.name}?ref=v4.0.5&timeout=60s"
        (folder / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [remote]}))
    return kfp, argo


def _fake_kustomize(tmp_path: Path) -> str:
    script = tmp_path / "kustomize"
    script.write_text(FAKE_KUSTOMIZE)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_local_sources_replace_every_remote_reference(tmp_path: Path) -> None:
    kfp, argo = _upstream(tmp_path)
    before = (REPOSITORY_ROOT / OVERLAY / "kustomization.yaml").read_bytes()
    objects, versions = render_overlay(kfp, argo, _fake_kustomize(tmp_path))
    assert versions == {"kubeflow/pipelines": "2.17.0", "argoproj/argo-workflows": "v4.0.5"}
    read = objects[0]["data"]["paths"].split("\n")  # type: ignore[index]
    # Four KFP bases (read from a temporary copy, never edited in the checkout), each reaching its Argo
    # folder in the Argo checkout.
    assert len(read) == 8
    assert len([path for path in read if path.startswith(str(argo.resolve()))]) == 4
    assert not [path for path in read if path.startswith(str(kfp.resolve()))]
    assert all("github.com" in file.read_text() for file in kfp.rglob("kustomization.yaml"))
    assert (REPOSITORY_ROOT / OVERLAY / "kustomization.yaml").read_bytes() == before


def test_a_failing_build_is_one_error(tmp_path: Path) -> None:
    kfp, _ = _upstream(tmp_path)
    with pytest.raises(RuntimeError, match="failed"):
        render_overlay(kfp, None, _fake_kustomize(tmp_path))  # the Argo references stay remote

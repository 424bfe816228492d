"""`mlops kfp describe`: render the Kubeflow Pipelines overlay and record what it creates.

The offline plan reads `infra/manifests/kubeflow-pipelines/rendered.json` (see infra/kubeflow_install.py)
instead of running kustomize, which needs the pinned upstream bases from the network. Run this after
changing the overlay or bumping the KFP version:

    mlops kfp describe                       # kustomize fetches the pinned bases itself
    mlops kfp describe --kfp-source ~/src/pipelines --argo-source ~/src/argo-workflows

With `--kfp-source`/`--argo-source` (checkouts at the pinned tags) the build runs offline: the remote
references are rewritten to those checkouts in a temporary copy, never in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer
import yaml

from cli.errors import RUN_FAILED_EXIT_CODE, fail
from infra.kubeflow_install import DESCRIPTION_FILE, OVERLAY, REPOSITORY_ROOT, describe

app = typer.Typer(help="Kubeflow Pipelines install: what the overlay creates.", no_args_is_help=True)

_KFP_REMOTE = re.compile(
    r"https://github\.com/kubeflow/pipelines/manifests/kustomize/(?P<path>[^?\s]*)\?ref=(?P<ref>[\w.-]+)"
)
_ARGO_REMOTE = re.compile(
    r"https://github\.com/argoproj/argo-workflows/manifests/(?P<path>[^?\s]*)\?ref=(?P<ref>[\w.-]+)\S*"
)


def _relative_to(target: Path, kustomization: Path) -> str:
    return os.path.relpath(target, kustomization.parent)


def _rewrite(pattern: re.Pattern[str], root: Path, files: list[Path]) -> set[str]:
    """Point every remote reference matched by `pattern` in `files` at `root`; return the refs seen."""
    refs: set[str] = set()
    for path in files:
        text = path.read_text()

        def local(match: re.Match[str], path: Path = path) -> str:
            refs.add(match["ref"])
            return _relative_to(root / match["path"], path)

        path.write_text(pattern.sub(local, text))
    return refs


def _refs(pattern: re.Pattern[str], files: list[Path]) -> set[str]:
    return {match["ref"] for path in files for match in pattern.finditer(path.read_text())}


def _build(overlay: Path, kustomize: str) -> list[dict[str, object]]:
    command = [*kustomize.split(), str(overlay)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {completed.stderr.strip()[-2000:]}")
    return [document for document in yaml.safe_load_all(completed.stdout) if document]


def render_overlay(
    kfp_source: Path | None, argo_source: Path | None, kustomize: str
) -> tuple[list[dict[str, object]], dict[str, str]]:
    """Build the overlay (from local checkouts when given) -> (objects, upstream versions)."""
    overlay = REPOSITORY_ROOT / OVERLAY
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        copy = work / "overlay"
        shutil.copytree(overlay, copy)
        kustomization = [copy / "kustomization.yaml"]
        versions = {"kubeflow/pipelines": ",".join(sorted(_refs(_KFP_REMOTE, kustomization)))}
        if kfp_source is not None:
            manifests = work / "kfp"
            shutil.copytree(kfp_source / "manifests" / "kustomize", manifests)
            _rewrite(_KFP_REMOTE, manifests, kustomization)
            upstream_files = list(manifests.rglob("kustomization.yaml"))
            versions["argoproj/argo-workflows"] = ",".join(sorted(_refs(_ARGO_REMOTE, upstream_files)))
            if argo_source is not None:
                _rewrite(_ARGO_REMOTE, argo_source / "manifests", upstream_files)
        return _build(copy, kustomize), versions


@app.command("describe")
def describe_command(
    kfp_source: Annotated[
        Path | None, typer.Option(help="A kubeflow/pipelines checkout at the pinned tag (offline build).")
    ] = None,
    argo_source: Annotated[
        Path | None, typer.Option(help="An argoproj/argo-workflows checkout at the tag KFP pins.")
    ] = None,
    kustomize: Annotated[str, typer.Option(help="The kustomize build command.")] = "kubectl kustomize",
) -> None:
    """Render the KFP overlay and write what it creates to rendered.json beside it."""
    for source in (kfp_source, argo_source):
        if source is not None and not source.is_dir():
            fail(f"{source} is not a directory")
    try:
        objects, versions = render_overlay(kfp_source, argo_source, kustomize)
    except (RuntimeError, OSError) as error:
        fail(str(error), code=RUN_FAILED_EXIT_CODE)
    document = describe(objects, REPOSITORY_ROOT / OVERLAY, versions)
    target = REPOSITORY_ROOT / OVERLAY / DESCRIPTION_FILE
    target.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    typer.echo(f"{target.relative_to(REPOSITORY_ROOT)}: {len(document['objects'])} objects ({versions})")

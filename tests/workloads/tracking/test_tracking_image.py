"""The tracking-server image copies every module of this repository that its processes import.

The Dockerfile copies single files (the image needs none of the other workloads), so a new module
the entrypoint imports would otherwise only fail when the image starts in the cluster.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from workloads.tracking.app import APP_FACTORY
from workloads.tracking.server import MLFLOW_ENTRYPOINT

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "workloads" / "tracking" / "Dockerfile"
# Started by name, not imported: `python -m <server>` execs the MLflow entrypoint, whose uvicorn
# workers import the app factory.
ENTRY_MODULES = ("workloads.tracking.server", MLFLOW_ENTRYPOINT, APP_FACTORY.split(":")[0])


def _module_file(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _repository_imports(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    return {module for module in imported if module.split(".")[0] == "workloads"}


def _needed_files() -> set[str]:
    """Every repository file the entry modules reach, with the packages above them."""
    pending: list[str] = list(ENTRY_MODULES)
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
        pending.extend(_repository_imports(_module_file(module)))
    return {str(_module_file(module).relative_to(ROOT)) for module in seen}


def _copied_files() -> set[str]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    copied: set[str] = set()
    for line in text.splitlines():
        if match := re.match(r"\s*COPY\s+(.+)", line):
            *sources, _destination = match.group(1).split()
            copied.update(sources)
    return copied


def test_the_image_holds_every_module_the_server_imports() -> None:
    missing = _needed_files() - _copied_files()
    assert not missing, f"add to workloads/tracking/Dockerfile's COPY: {sorted(missing)}"

"""The layout rule ARCHITECTURE.md states, checked on the source: imports point one way.

    cli  ->  infra  ->  monitoring | observability  ->  pipelines  ->  workloads

A folder imports only folders to its right (`infra/model.py` reads the compiled pipelines,
`monitoring/retrain.py` starts a pipeline run); nothing imports `cli`, and `workloads`, which runs
in every image, imports none of the others. `policies` (the pack runs on its own) imports none of
them either. No source folder imports `tests` or `benchmarks`.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
LAYERS = (("cli",), ("infra",), ("monitoring", "observability"), ("pipelines",), ("workloads",))
STANDALONE = ("policies",)
PROJECT = {folder for layer in LAYERS for folder in layer} | set(STANDALONE) | {"tests", "benchmarks"}


def _allowed(folder: str) -> set[str]:
    if folder in STANDALONE:
        return {folder}
    (index,) = [position for position, layer in enumerate(LAYERS) if folder in layer]
    return {folder} | {right for layer in LAYERS[index + 1 :] for right in layer}


def _project_imports(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    return imported & PROJECT


def test_imports_point_one_way() -> None:
    wrong = [
        f"{path.relative_to(REPOSITORY)} imports {name}"
        for layer in (*LAYERS, STANDALONE)
        for folder in layer
        for path in sorted((REPOSITORY / folder).rglob("*.py"))
        for name in sorted(_project_imports(path) - _allowed(folder))
    ]
    assert wrong == []


def test_the_rule_sees_an_import_against_it(tmp_path: Path) -> None:
    module = tmp_path / "job.py"
    module.write_text("def run():\n    from cli.main import app\n    import workloads.features\n", encoding="utf-8")

    assert _project_imports(module) == {"cli", "workloads"}
    assert "cli" not in _allowed("monitoring") and "workloads" in _allowed("monitoring")
    assert "infra" not in _allowed("monitoring") and "monitoring" in _allowed("infra")
    assert _allowed("workloads") == {"workloads"} and _allowed("policies") == {"policies"}

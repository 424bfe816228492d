"""`mlops model new NAME --from TEMPLATE`: add a model to the platform as one reviewable change.

A model is one catalogue entry. Scaffolding copies the template's entry under the new name into
`workloads/catalogue.py` (same dataset, model class, hyper-parameters, gate and schedules: a starting
point that already trains, serves and is watched), writes the generated files that follow from it
(its compiled pipeline, `pipelines/compiled/NAME.yaml`) and enables it in the chosen stacks with the
template's settings there (or the defaults). Nothing else needs editing: `Platform` creates a `Model`
per enabled entry, and `mlops local up --model NAME` runs its whole loop.

The catalogue is edited as text, at the end of the `_ENTRIES` tuple, so the diff is exactly the new
entry; the result is imported in a fresh interpreter before anything else is written, and the file is
restored if that fails. Stack files are edited as text too (comments and key order survive).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from workloads import catalogue

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
CATALOGUE_FILE = Path("workloads") / "catalogue.py"
MODELS_KEY = "mlops-platform:models"
DEFAULT_STACK_SETTINGS = {"minReplicas": 1, "maxReplicas": 2}


class ScaffoldError(ValueError):
    """The model cannot be added as asked; nothing was changed."""


@dataclass(frozen=True)
class Scaffolded:
    name: str
    changed: list[Path]


def _entry_call(source: str, template: str) -> tuple[ast.Call, ast.Tuple]:
    """The `CatalogueEntry(...)` call of `template` inside the `_ENTRIES = (...)` literal."""
    module = ast.parse(source)
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "_ENTRIES" for target in node.targets
        ):
            if not isinstance(node.value, ast.Tuple):
                break
            for element in node.value.elts:
                if isinstance(element, ast.Call) and any(
                    keyword.arg == "name"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value == template
                    for keyword in element.keywords
                ):
                    return element, node.value
            raise ScaffoldError(f"{template!r} is not written as an entry of _ENTRIES in {CATALOGUE_FILE}")
    raise ScaffoldError(f"{CATALOGUE_FILE} has no `_ENTRIES = (...)` tuple to add to")


def _keyword_value(call: ast.Call, name: str) -> ast.expr | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _offset(source: str, line: int, column: int) -> int:
    """Character offset of an ast (1-based line, 0-based UTF-8 byte column) position."""
    lines = source.splitlines(keepends=True)
    prefix = "".join(lines[: line - 1])
    return len(prefix) + len(lines[line - 1].encode()[:column].decode())


def _replace_value(source: str, value: ast.expr, replacement: str) -> str:
    start = _offset(source, value.lineno, value.col_offset)
    end = _offset(source, value.end_lineno or value.lineno, value.end_col_offset or value.col_offset)
    return source[:start] + replacement + source[end:]


def catalogue_with_entry(source: str, name: str, template: str) -> str:
    """`source` (the catalogue module) with a copy of `template`'s entry named `name` appended to _ENTRIES."""
    call, entries = _entry_call(source, template)
    text = ast.get_source_segment(source, call, padded=False)
    assert text is not None
    copy_source = "(\n" + text + "\n)"  # re-parse the copy alone to edit its keyword values by position
    copy_call = ast.parse(copy_source).body[0].value  # type: ignore[attr-defined]
    description = json.dumps(
        f"Scaffolded from {template} (`mlops model new`): its dataset and model until changed here."
    )
    name_value = _keyword_value(copy_call, "name")
    assert name_value is not None  # the call was found by its name
    description_value = _keyword_value(copy_call, "description")
    edits = [
        (
            name_value,
            json.dumps(name) if description_value else f"{json.dumps(name)},\n        description={description}",
        )
    ]
    if description_value is not None:
        edits.append((description_value, description))
    for value, replacement in sorted(edits, key=lambda edit: (edit[0].lineno, edit[0].col_offset), reverse=True):
        copy_source = _replace_value(copy_source, value, replacement)
    new_entry = copy_source[2:-2]
    last = entries.elts[-1]
    insert_at = _offset(source, last.end_lineno or last.lineno, last.end_col_offset or last.col_offset)
    return source[:insert_at] + ",\n    " + new_entry + source[insert_at:]


def stack_with_model(text: str, name: str, template: str, environment: str) -> str:
    """A stack file's text with `name` enabled under `mlops-platform:models`, copying `template`'s settings
    in that stack (or the defaults; automatic promotion only in dev)."""
    config = (yaml.safe_load(text) or {}).get("config", {})
    models = config.get(MODELS_KEY)
    if not isinstance(models, dict):
        raise ScaffoldError(f"the stack file has no `{MODELS_KEY}` map to enable {name} in")
    settings = dict(models.get(template) or {**DEFAULT_STACK_SETTINGS, "autoPromote": environment == "dev"})
    block = yaml.safe_dump({name: settings}, sort_keys=False, default_flow_style=False)
    indented = "".join(f"    {line}\n" for line in block.splitlines())
    lines = text.splitlines(keepends=True)
    start = next(index for index, line in enumerate(lines) if line.rstrip() == f"  {MODELS_KEY}:")
    end = start + 1
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join([*lines[:end], indented, *lines[end:]])


def _python(code_or_module: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, *code_or_module], cwd=root, env=environment, capture_output=True, text=True, check=False
    )


def scaffold(name: str, template: str, stacks: list[str], root: Path = REPOSITORY_ROOT) -> Scaffolded:
    """Add `name` to the catalogue as a copy of `template`, compile its pipeline, enable it in `stacks`."""
    if name in catalogue.CATALOGUE:
        raise ScaffoldError(f"model {name!r} is already in the catalogue ({root / CATALOGUE_FILE})")
    try:
        source_entry = catalogue.get(template)
    except catalogue.UnknownModelError as error:
        raise ScaffoldError(str(error)) from None
    try:
        dataclasses.replace(source_entry, name=name)  # the entry's own checks: a DNS label, <= 40 characters
    except catalogue.CatalogueError as error:
        raise ScaffoldError(str(error)) from None
    stack_files = [root / "stacks" / f"Pulumi.{stack}.yaml" for stack in stacks]
    missing = [str(path) for path in stack_files if not path.exists()]
    if missing:
        raise ScaffoldError(f"no such stack file: {', '.join(missing)}")

    catalogue_path = root / CATALOGUE_FILE
    original = catalogue_path.read_text(encoding="utf-8")
    stack_texts = {
        path: stack_with_model(path.read_text(encoding="utf-8"), name, template, stack)
        for path, stack in zip(stack_files, stacks, strict=True)
    }
    catalogue_path.write_text(catalogue_with_entry(original, name, template), encoding="utf-8")
    check = _python(["-c", f"from workloads import catalogue; catalogue.get({name!r})"], root)
    if check.returncode != 0:
        catalogue_path.write_text(original, encoding="utf-8")
        raise ScaffoldError(f"the new entry does not import, catalogue restored:\n{check.stderr.strip()[-2000:]}")
    compiled = _python(["-m", "cli.main", "pipeline", "compile", "--model", name], root)
    if compiled.returncode != 0:
        catalogue_path.write_text(original, encoding="utf-8")
        raise ScaffoldError(
            f"compiling {name}'s pipeline failed, catalogue restored:\n{compiled.stderr.strip()[-2000:]}"
        )
    for path, text in stack_texts.items():
        path.write_text(text, encoding="utf-8")
    changed = [catalogue_path, Path(compiled.stdout.strip().splitlines()[-1]), *stack_texts]
    return Scaffolded(name=name, changed=changed)

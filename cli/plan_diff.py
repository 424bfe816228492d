"""`mlops plan diff`: what a change does to a stack's offline plan, without cloud credentials.

The plan is rendered twice, in separate Python processes of the same interpreter: once from the
tracked files of a git ref (checked out in a temporary clone that shares this repository's
objects, so the repository itself is never touched) and once from the working tree. Each side
imports its own `infra` package, so the base side runs exactly the code of the base ref. The two
renders run in parallel.

Resources are matched on (type, name, parent). A changed resource lists its changed properties as
dotted paths, old -> new. Inputs that hold a JSON document as a string (IAM and bucket policies)
are parsed first, so a policy change shows the statement field that changed rather than two long
strings. Secrets are masked ("[secret]") by the renderer and stay masked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.offline_plan import PROJECT_ROOT, available_stacks

ResourceKey = tuple[str, str, str | None]
ABSENT = "(absent)"

# Runs inside the checkout being rendered (its directory first on sys.path): only the plan contract
# of infra/offline_plan.py, which every ref since the foundation has.
_RENDER_PROGRAM = (
    "import sys\n"
    "from infra.offline_plan import render_stack, to_json\n"
    "sys.stdout.write(to_json(render_stack(sys.argv[1])))\n"
)


class PlanDiffError(Exception):
    """A mistake the user can fix (unknown ref or stack, a render that fails); one clear message."""


@dataclass(frozen=True)
class PropertyChange:
    path: str
    old: Any
    new: Any


@dataclass
class PlanDiff:
    stack: str
    base_label: str
    added: list[ResourceKey] = field(default_factory=list)
    removed: list[ResourceKey] = field(default_factory=list)
    changed: dict[ResourceKey, list[PropertyChange]] = field(default_factory=dict)
    """Resources in both plans whose inputs differ, in plan order, with what differs."""

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)


# ------------------------------------------------------------------------------------------------
# comparing two plans


def _key(resource: Mapping[str, Any]) -> ResourceKey:
    return (resource["type"], resource["name"], resource.get("parent"))


def _parsed_json(value: Any) -> Any:
    """A JSON object/array held in a string (policy documents), parsed; anything else unchanged."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, dict | list):
            return parsed
    return value


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf value) pairs; empty containers are leaves so that `{}` -> `{...}` shows."""
    value = _parsed_json(value)
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def property_changes(old_inputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> list[PropertyChange]:
    old, new = dict(flatten(dict(old_inputs))), dict(flatten(dict(new_inputs)))
    return [
        PropertyChange(path, old.get(path, ABSENT), new.get(path, ABSENT))
        for path in sorted(old.keys() | new.keys())
        if old.get(path, ABSENT) != new.get(path, ABSENT)
    ]


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any], base_label: str = "base") -> PlanDiff:
    base_resources = {_key(resource): resource for resource in base["resources"]}
    head_resources = {_key(resource): resource for resource in head["resources"]}
    diff = PlanDiff(stack=str(head.get("stack") or base.get("stack")), base_label=base_label)
    diff.added = sorted(head_resources.keys() - base_resources.keys(), key=_sortable)
    diff.removed = sorted(base_resources.keys() - head_resources.keys(), key=_sortable)
    for key in sorted(base_resources.keys() & head_resources.keys(), key=_sortable):
        if changes := property_changes(base_resources[key]["inputs"], head_resources[key]["inputs"]):
            diff.changed[key] = changes
    return diff


def _sortable(key: ResourceKey) -> tuple[str, str, str]:
    return (key[0], key[1], key[2] or "")


# ------------------------------------------------------------------------------------------------
# printing


def _label(key: ResourceKey) -> str:
    resource_type, name, parent = key
    if not parent:
        return f"{resource_type} {name}"
    # urn:pulumi:dev::project::mlops:platform:Platform$mlops:storage:SecureBucket::mlops-artifacts
    parent_type, parent_name = parent.split("::")[-2:]
    return f"{resource_type} {name}  (in {parent_type.rsplit('$', 1)[-1]} {parent_name})"


def _value(value: Any) -> str:
    return value if value == ABSENT else json.dumps(value, sort_keys=True)


def format_diff(diff: PlanDiff) -> str:
    counts = f"{len(diff.added)} to add, {len(diff.removed)} to remove, {len(diff.changed)} to change"
    lines = [
        f"stack {diff.stack}: {diff.base_label} -> working tree: " + (counts if diff.has_changes else "no changes")
    ]
    lines += [f"+ {_label(key)}" for key in diff.added]
    lines += [f"- {_label(key)}" for key in diff.removed]
    for key, changes in diff.changed.items():
        lines.append(f"~ {_label(key)}")
        lines += [f"    {item.path}: {_value(item.old)} -> {_value(item.new)}" for item in changes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# rendering a checkout


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PlanDiffError(f"git {' '.join(args)} failed in {root}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def resolve_ref(root: Path, ref: str) -> str:
    """The commit a ref names; PlanDiffError for anything git does not know."""
    _git(root, "rev-parse", "--show-toplevel")  # a clear error outside a git checkout
    completed = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise PlanDiffError(f"unknown git ref {ref!r} (try a branch, a tag or a commit, e.g. origin/main or HEAD~1)")
    return completed.stdout.strip()


def export_ref(root: Path, commit: str, destination: Path) -> Path:
    """Check `commit` out under `destination`; return the project root inside it.

    A clone sharing this repository's objects (`git clone --shared`, read-only towards it), not an
    archive: the program asks git which commit last changed an image's sources (the `GIT_COMMIT`
    it stamps), and must get the same answer for the base as a checkout of it would.
    """
    prefix = _git(root, "rev-parse", "--show-prefix")  # the project may live in a subfolder of the repo
    toplevel = _git(root, "rev-parse", "--show-toplevel")
    checkout = destination / "checkout"
    for step, arguments in (
        ("clone", ["clone", "--quiet", "--shared", "--no-checkout", toplevel, str(checkout)]),
        ("checkout", ["-C", str(checkout), "-c", "advice.detachedHead=false", "checkout", "--quiet", commit]),
    ):
        completed = subprocess.run(["git", *arguments], capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise PlanDiffError(f"git {step} of {commit} failed: {completed.stderr.strip()}")
    return checkout / prefix


def render_checkout(project_root: Path, stack: str) -> dict[str, Any]:
    """Render `stack` with the code and stack files of `project_root`, in a fresh interpreter."""
    if not (project_root / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        return {"stack": stack, "resources": []}  # the stack does not exist there yet: everything is added
    environment = {**os.environ, "PYTHONPATH": str(project_root), "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", _RENDER_PROGRAM, stack],
        cwd=project_root,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        last_lines = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise PlanDiffError(f"rendering stack {stack!r} from {project_root} failed:\n{last_lines}")
    return json.loads(completed.stdout)


def diff_against_ref(stack: str, base_ref: str, project_root: Path = PROJECT_ROOT) -> PlanDiff:
    """Diff the working tree's plan of `stack` against the plan at `base_ref`."""
    stacks = available_stacks(project_root / "stacks")
    if stack not in stacks:
        raise PlanDiffError(f"unknown stack {stack!r}: no stacks/Pulumi.{stack}.yaml (stacks: {', '.join(stacks)})")
    commit = resolve_ref(project_root, base_ref)
    cache_key = (_git(project_root, "rev-parse", "--show-toplevel"), commit, stack)
    with ThreadPoolExecutor(max_workers=2) as pool:
        head_render = pool.submit(render_checkout, project_root, stack)
        if cache_key not in _BASE_PLANS:
            with tempfile.TemporaryDirectory(prefix="mlops-plan-diff-") as temporary:
                _BASE_PLANS[cache_key] = render_checkout(export_ref(project_root, commit, Path(temporary)), stack)
        head = head_render.result()
    return diff_plans(_BASE_PLANS[cache_key], head, base_label=f"{base_ref} ({commit[:12]})")


# A commit's files never change, so neither does its plan: (repository, commit, stack) -> plan.
_BASE_PLANS: dict[tuple[str, str, str], dict[str, Any]] = {}

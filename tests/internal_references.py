"""Find every reference the code makes to a third-party library's internals (workloads/library_internals.py).

A reference is what an import names (`from bentoml._internal.server.http import traffic`), a dotted
name read or assigned through an imported name (`pulumi_settings.SETTINGS.rpc_manager.clear`,
`mlflow.server._find_app = ...`), or a private attribute of an object whose type the code does not
name (`operations._operation_futures`, `self._set_timer_out` in a subclass of a library class, a
`getattr(x, "_name")`). Private names the repository defines itself are not references. Which
references are internal is decided by the registry's three rules (`is_internal`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workloads.library_internals import EXPORTING_PACKAGES, INTERNAL_NAMESPACES

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = frozenset(
    tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]["isort"][
        "known-first-party"
    ]
)
"""The repository's own top-level packages, as it declares them to ruff."""
UNKNOWN_OWNER = "?"
"""The owner of `x._name` where `x` is not an imported name: only the attribute is known."""
_ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


@dataclass(frozen=True)
class Reference:
    file: str
    """Repository-relative path."""
    line: int
    name: str
    """Dotted, from the library's top-level module; `?._name` when the owner is unknown."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.name}"


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _third_party(name: str) -> bool:
    root = name.partition(".")[0]
    return root not in FIRST_PARTY and root not in sys.stdlib_module_names and root != UNKNOWN_OWNER


def _is_submodule(package: str, name: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except (ImportError, ValueError):
        return False


def is_internal(name: str) -> bool:
    """The registry's rules: a private part, an internal namespace, or a name only a submodule of an
    exporting package has."""
    parts = name.split(".")
    if any(_private(part) for part in parts[1:] if part):
        return True
    if any(name == namespace or name.startswith(namespace + ".") for namespace in INTERNAL_NAMESPACES):
        return True
    for package in EXPORTING_PACKAGES:
        if not name.startswith(package + "."):
            continue
        rest = name[len(package) + 1 :].split(".")
        if len(rest) >= 2 and _is_submodule(package, rest[0]):
            return not hasattr(importlib.import_module(package), rest[1])
    return False


def defined_private_names(sources: list[str]) -> set[str]:
    """Private names the repository defines: functions, classes, variables, parameters, and the
    attributes it assigns on `self` or `cls` (assigning a library's attribute defines nothing)."""
    names: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
    return {name for name in names if _private(name)}


class _FileScan:
    def __init__(self, source: str, relative: str, own_privates: set[str]) -> None:
        self.relative = relative
        self.own_privates = own_privates
        self.tree = ast.parse(source)
        self.aliases: dict[str, str] = {}
        """Name bound by an import → the dotted name it stands for."""
        self.parents: dict[ast.AST, ast.AST] = {
            child: parent for parent in ast.walk(self.tree) for child in ast.iter_child_nodes(parent)
        }

    def references(self) -> Iterator[Reference]:
        # Imports first: an attribute chain is resolved through the names they bind, wherever they are.
        for node in ast.walk(self.tree):
            yield from self._imports(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute):
                yield from self._attribute(node)
            elif isinstance(node, ast.Call):
                yield from self._attribute_function(node)

    def _reference(self, node: ast.AST, name: str) -> Reference:
        return Reference(self.relative, getattr(node, "lineno", 0), name)

    def _imports(self, node: ast.AST) -> Iterator[Reference]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as x` binds `x` to `a.b`.
                bound = alias.asname or alias.name.partition(".")[0]
                self.aliases[bound] = alias.name if alias.asname else bound
                if _third_party(alias.name):
                    yield self._reference(node, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                self.aliases[alias.asname or alias.name] = full
                if _third_party(full):
                    yield self._reference(node, full)

    def _chain(self, node: ast.expr) -> str | None:
        """`a.b.c` rooted at an imported name, as the dotted name it stands for; None otherwise."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def _attribute(self, node: ast.Attribute) -> Iterator[Reference]:
        parent = self.parents.get(node)
        outermost = not (isinstance(parent, ast.Attribute) and parent.value is node)
        chain = self._chain(node)
        if chain is not None:
            if outermost and _third_party(chain):
                yield self._reference(node, chain)
            return
        if _private(node.attr) and node.attr not in self.own_privates:
            yield self._reference(node, f"{UNKNOWN_OWNER}.{node.attr}")

    def _attribute_function(self, node: ast.Call) -> Iterator[Reference]:
        """`getattr(owner, "_name", ...)` reads `owner._name` as surely as the attribute syntax does."""
        if not (isinstance(node.func, ast.Name) and node.func.id in _ATTRIBUTE_FUNCTIONS and len(node.args) >= 2):
            return
        owner, name = node.args[0], node.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value)):
            return
        chain = self._chain(owner) if isinstance(owner, ast.Attribute | ast.Name) else None
        if chain is not None and _third_party(chain):
            yield self._reference(node, f"{chain}.{name.value}")
        elif chain is None and name.value not in self.own_privates:
            yield self._reference(node, f"{UNKNOWN_OWNER}.{name.value}")


def _internal(references: Iterator[Reference]) -> list[Reference]:
    return [ref for ref in references if ref.name.startswith(UNKNOWN_OWNER + ".") or is_internal(ref.name)]


def internal_references(root: Path, folders: tuple[str, ...]) -> list[Reference]:
    """Every internal reference in the Python files under `folders` of `root` (and its top-level ones)."""
    files = sorted(path for folder in folders for path in (root / folder).rglob("*.py"))
    files += sorted(root.glob("*.py"))
    sources = {path: path.read_text(encoding="utf-8") for path in files}
    own_privates = defined_private_names(list(sources.values()))
    found: list[Reference] = []
    for path, source in sources.items():
        found += _internal(_FileScan(source, path.relative_to(root).as_posix(), own_privates).references())
    return found


def scan_source(source: str, relative: str = "snippet.py") -> list[Reference]:
    """The internal references of one piece of code, which defines no private names of its own."""
    return _internal(_FileScan(source, relative, set()).references())

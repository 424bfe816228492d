"""The library internals we depend on (workloads/library_internals.py) still have the shape we use.

For each entry, against the installed library: the name resolves, its signature takes the
parameters we pass, it has the members we use, a name we replace is still looked up by name where
we replace it, and the installed version is inside the entry's pin, which is pyproject.toml's.
Then the code is scanned (tests/internal_references.py): the list must name exactly the internals
the code uses, in exactly the files that use them. The last tests break each check on purpose and
see it fail, so none of them can pass vacuously. (`packaging` comes with pytest.)
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import inspect
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.internal_references import FIRST_PARTY, ROOT, UNKNOWN_OWNER, Reference, internal_references, scan_source
from workloads.library_internals import INTERNALS, LibraryInternal

SCANNED = tuple(sorted(FIRST_PARTY - {"tests"}))
"""Everything but the tests: what runs in the images, the Pulumi program, the CLI, the benchmarks."""
REGISTRY = "workloads/library_internals.py"
_TRAFFIC = "bentoml._internal.server.http.traffic"


def _by_path(path: str) -> LibraryInternal:
    return next(entry for entry in INTERNALS if entry.path == path)


# ------------------------------------------------------------------------------------------ the checks


def resolve(entry: LibraryInternal) -> Any:
    """The object the entry names; a part only an instance has is read from one built with `build_with`."""
    target: Any = importlib.import_module(entry.module)
    walked = entry.module
    for part in entry.attribute.split("."):
        if not hasattr(target, part) and inspect.isclass(target) and entry.build_with is not None:
            target = target(**entry.build_with)
        if not hasattr(target, part):
            raise AttributeError(f"{walked} has no attribute {part!r}")
        target, walked = getattr(target, part), f"{walked}.{part}"
    return target


def _call_time_names(module: types.ModuleType) -> set[str]:
    """Names the module's functions look up when they run (globals read, names imported inside them)."""
    source = inspect.getsource(module)
    names: set[str] = set()
    pending = [compile(source, module.__file__ or module.__name__, "exec")]
    while pending:
        code = pending.pop()
        if code.co_flags & inspect.CO_OPTIMIZED:  # a function's body; not module or class bodies at import
            names |= set(code.co_names)
        pending += [constant for constant in code.co_consts if isinstance(constant, types.CodeType)]
    return names


def _lookup_problem(entry: LibraryInternal) -> str | None:
    if entry.looked_up_by is None:
        return None
    name = entry.attribute.rsplit(".", 1)[-1]
    module = importlib.import_module(entry.looked_up_by)
    if name not in _call_time_names(module):
        return f"{entry.looked_up_by} no longer looks up {name} when it runs: replacing it would change nothing"
    if entry.looked_up_by != entry.module and name in vars(module):
        return f"{entry.looked_up_by} binds its own {name} at import: it would not see the replacement"
    return None


def _defined_for_type_checkers(entry: LibraryInternal) -> bool:
    """The module's source defines the name, wherever (a `TYPE_CHECKING` block included)."""
    tree = ast.parse(inspect.getsource(importlib.import_module(entry.module)))
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef | ast.FunctionDef)}
    defined |= {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    return entry.attribute in defined


def _signature_problem(entry: LibraryInternal, target: Any) -> str | None:
    if not entry.parameters:
        return None
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as error:
        return f"{entry.path} has no signature to check: {error}"
    missing = [name for name in entry.parameters if name not in signature.parameters]
    return f"{entry.path}{signature} no longer takes {', '.join(missing)}" if missing else None


def _member_problems(entry: LibraryInternal, target: Any) -> list[str]:
    problems = []
    missing = [name for name in entry.members if not hasattr(target, name)]
    if missing:
        problems.append(f"{entry.path} no longer has {', '.join(missing)}")
    if entry.instance_members:
        instance = target(**(entry.build_with or {}))
        absent = [name for name in entry.instance_members if not hasattr(instance, name)]
        if absent:
            problems.append(f"an instance of {entry.path} no longer has {', '.join(absent)}")
    return problems


def shape_problems(entry: LibraryInternal) -> list[str]:
    """What about the installed library no longer matches the entry (empty when everything does)."""
    if entry.typing_only:
        return [] if _defined_for_type_checkers(entry) else [f"{entry.module} no longer defines {entry.attribute}"]
    try:
        target = resolve(entry)
    except (ImportError, AttributeError) as error:
        return [f"cannot resolve {entry.path}: {error}"]
    found = [_signature_problem(entry, target), *_member_problems(entry, target), _lookup_problem(entry)]
    return [problem for problem in found if problem]


def pyproject_pins(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, SpecifierSet]:
    """Distribution → the range pyproject.toml gives it, over the dependencies and every extra."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = [
        *project.get("dependencies", []),
        *(line for group in project["optional-dependencies"].values() for line in group),
    ]
    return {canonicalize_name(requirement.name): requirement.specifier for requirement in map(Requirement, lines)}


def version_problems(entry: LibraryInternal, installed: str, pins: dict[str, SpecifierSet]) -> list[str]:
    problems = []
    pinned = pins.get(canonicalize_name(entry.library))
    if pinned is None:
        problems.append(f"pyproject.toml does not pin {entry.library}")
    elif SpecifierSet(entry.pin) != pinned:
        problems.append(f"the entry says {entry.library}{entry.pin}, pyproject.toml says {entry.library}{pinned}")
    if not SpecifierSet(entry.pin).contains(Version(installed), prereleases=True):
        problems.append(f"{entry.library} {installed} is installed, outside the pin {entry.pin}")
    return problems


def _installed(entry: LibraryInternal) -> str:
    try:
        return importlib.metadata.version(entry.library)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"{entry.library} is not installed, so {entry.path} cannot be checked: install every extra (`make install`)"
        )


def _explain(entry: LibraryInternal, installed: str, problems: list[str], what: str) -> str:
    return (
        f"\n{entry.library} {installed}, {what} {entry.path}:\n  "
        + "\n  ".join(problems)
        + f"\nUsed in {', '.join(entry.used_in)}, because {entry.why}."
        f"\nFix the code there for this {entry.library}, then the entry in {REGISTRY}."
    )


def registry_problems(references: list[Reference], entries: tuple[LibraryInternal, ...]) -> list[str]:
    """Internals the code uses but the list lacks, and entries whose `used_in` is not where they are used."""
    used_in: dict[str, set[str]] = {entry.path: set() for entry in entries}
    unlisted = []
    for reference in references:
        covering = list(_covering(reference, entries))
        if not covering:
            unlisted.append(str(reference))
        for entry, exact in covering:
            if exact:
                used_in[entry.path].add(reference.file)
    problems = [f"{name}: an internal the list does not name (add it to {REGISTRY})" for name in unlisted]
    for entry in entries:
        if used_in[entry.path] != set(entry.used_in):
            problems.append(
                f"{entry.path} is used in {sorted(used_in[entry.path]) or 'no file'}, "
                f"its entry says {sorted(entry.used_in)}"
            )
    return problems


def _covering(reference: Reference, entries: tuple[LibraryInternal, ...]) -> Iterator[tuple[LibraryInternal, bool]]:
    """The entries a reference falls under; `exact` when it uses the entry's name itself (not only
    imports the module the name is in)."""
    for entry in entries:
        if reference.name.startswith(UNKNOWN_OWNER + "."):
            if entry.attribute.rsplit(".", 1)[-1] == reference.name.split(".", 1)[1]:
                yield entry, True
        elif reference.name == entry.path or reference.name.startswith(entry.path + "."):
            yield entry, True
        elif entry.path.startswith(reference.name + "."):
            yield entry, False


# ------------------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("entry", INTERNALS, ids=lambda entry: entry.path)
def test_each_internal_still_has_the_shape_we_use(entry: LibraryInternal) -> None:
    installed = _installed(entry)
    problems = shape_problems(entry)
    assert not problems, _explain(entry, installed, problems, "no longer the shape we use of")


@pytest.mark.parametrize("entry", INTERNALS, ids=lambda entry: entry.path)
def test_each_pin_is_pyprojects_and_holds_the_installed_version(entry: LibraryInternal) -> None:
    installed = _installed(entry)
    problems = version_problems(entry, installed, pyproject_pins())
    assert not problems, _explain(entry, installed, problems, "not the version we pin for")


def test_the_list_names_exactly_the_internals_the_code_uses() -> None:
    references = internal_references(ROOT, SCANNED)
    assert references, "the scan found no internal at all: it is broken"
    problems = registry_problems(references, INTERNALS)
    assert not problems, "\n" + "\n".join(problems)


def test_each_entry_is_listed_once() -> None:
    paths = [entry.path for entry in INTERNALS]
    assert len(paths) == len(set(paths)), sorted(path for path in paths if paths.count(path) > 1)


# ----------------------------------------------------------------------- each check fails when it should


def test_a_name_the_library_lost_fails() -> None:
    lost = dataclasses.replace(
        _by_path(f"{_TRAFFIC}.TimeoutMiddleware._set_timer_out"), attribute="TimeoutMiddleware._gone"
    )
    assert shape_problems(lost) == [
        f"cannot resolve {_TRAFFIC}.TimeoutMiddleware._gone: {_TRAFFIC}.TimeoutMiddleware has no attribute '_gone'"
    ]


def test_a_parameter_the_library_dropped_fails() -> None:
    entry = _by_path("bentoml._internal.marshal.dispatcher.CorkDispatcher")
    changed = dataclasses.replace(entry, parameters=(*entry.parameters, "max_wait_in_ms"))
    (problem,) = shape_problems(changed)
    assert "no longer takes max_wait_in_ms" in problem


def test_a_member_or_an_instance_member_the_library_dropped_fails() -> None:
    entry = _by_path(f"{_TRAFFIC}.TimeoutMiddleware")
    changed = dataclasses.replace(entry, members=("dispatch",), instance_members=("app", "deadline"))
    assert shape_problems(changed) == [
        f"{entry.path} no longer has dispatch",
        f"an instance of {entry.path} no longer has deadline",
    ]
    instance_only = _by_path("mlflow.utils.async_logging.run_operations.RunOperations._operation_futures")
    assert (
        "has no attribute '_futures'"
        in shape_problems(dataclasses.replace(instance_only, attribute="RunOperations._futures"))[0]
    )


def test_a_type_the_library_no_longer_defines_fails() -> None:
    entry = _by_path("bentoml._internal.external_typing.starlette.AsgiMiddleware")
    gone = dataclasses.replace(entry, attribute="AsgiMiddlewareFactory")
    assert shape_problems(gone) == [f"{entry.module} no longer defines AsgiMiddlewareFactory"]


def test_a_replacement_nobody_looks_up_fails() -> None:
    entry = _by_path("evidently.legacy.metrics.data_drift.embeddings_drift.TSNE")
    elsewhere = dataclasses.replace(entry, looked_up_by="evidently.legacy.core")
    assert shape_problems(elsewhere) == [
        "evidently.legacy.core no longer looks up TSNE when it runs: replacing it would change nothing"
    ]
    # A module that imported the name at its top would keep the original whatever we replace.
    bound = dataclasses.replace(entry, module="sklearn.manifold", looked_up_by=entry.module)
    assert shape_problems(bound) == [f"{entry.module} binds its own TSNE at import: it would not see the replacement"]


def test_a_version_outside_the_pin_or_a_pin_that_is_not_pyprojects_fails() -> None:
    entry = _by_path("mlflow.server._find_app")
    pins = pyproject_pins()
    assert version_problems(entry, "4.0.0", pins) == ["mlflow 4.0.0 is installed, outside the pin >=3.10,<4"]
    assert version_problems(dataclasses.replace(entry, pin=">=3.10,<5"), "3.17.2", pins) == [
        "the entry says mlflow>=3.10,<5, pyproject.toml says mlflow<4,>=3.10"
    ]
    assert version_problems(dataclasses.replace(entry, library="mlflow-skinny"), "3.17.2", pins) == [
        "pyproject.toml does not pin mlflow-skinny"
    ]


def test_the_scan_finds_each_kind_of_internal() -> None:
    code = """
import mlflow.server
from bentoml._internal.marshal.dispatcher import CorkDispatcher
from evidently.legacy.core import ColumnType
from kfp.dsl.pipeline_channel import PipelineParameterChannel
from kfp import dsl
import pulumi

mlflow.server._find_app = lambda name: name
getattr(mlflow.server, "_find_app")
pulumi.runtime.set_mocks(None)
pulumi.runtime.config.CONFIG.get()
dsl.OneOf()
operations._operation_futures
"""
    # Not found: `import mlflow.server`, `import pulumi`, `from kfp import dsl`, `set_mocks`, `dsl.OneOf`.
    assert sorted(reference.name for reference in scan_source(code)) == [
        "?._operation_futures",  # a private attribute of an object whose type is not named
        "bentoml._internal.marshal.dispatcher.CorkDispatcher",  # rule 1: a private part
        "evidently.legacy.core.ColumnType",  # rule 2: an internal namespace
        "kfp.dsl.pipeline_channel.PipelineParameterChannel",  # rule 3: a submodule's name kfp.dsl does not export
        "mlflow.server._find_app",  # assigned
        "mlflow.server._find_app",  # read through getattr
        "pulumi.runtime.config.CONFIG.get",  # rule 3: pulumi.runtime exports no CONFIG
    ]


def test_an_unlisted_internal_or_a_stale_entry_fails_the_registry_check() -> None:
    references = internal_references(ROOT, SCANNED)
    listed = tuple(entry for entry in INTERNALS if entry.path != "mlflow.server._find_app")
    problems = registry_problems(references, listed)
    assert problems and all("mlflow.server._find_app: an internal the list does not name" in p for p in problems)
    moved = tuple(
        dataclasses.replace(entry, used_in=("workloads/tracking/app.py",))
        if entry.path == "mlflow.server._find_app"
        else entry
        for entry in INTERNALS
    )
    assert registry_problems(references, moved) == [
        "mlflow.server._find_app is used in ['workloads/tracking/mlflow_entrypoint.py'], "
        "its entry says ['workloads/tracking/app.py']"
    ]

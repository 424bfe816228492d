"""Which tests make up the fast tier (`make unit-fast`, `pytest --fast-tier`), decided by what each
test uses, never by how long it took.

A test is in the tier (tests/conftest.py marks it `fast` at collection) unless
* it lives in tests/e2e or tests/ci, which test across folders;
* it is marked `services`, `e2e` or `slow`;
* it, a fixture it uses (directly or through other fixtures), or a helper of the tests package they
  call, names something in `LEAVES_THE_TIER`: a process (subprocess, the tracking server, moto,
  PostgreSQL, `bentoml serve`, kfp.local runs) or a whole-stack plan.
So a new unit test is fast by default. In a --fast-tier run, anything that still starts a process
or runs the Pulumi program (reached some other way: a library, a getfixturevalue) skips the test
that asked for it, with what it tried as the reason: it cannot make the tier slow unnoticed.
"""

from __future__ import annotations

import inspect
import runpy
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
CROSS_FOLDER = (TESTS / "e2e", TESTS / "ci")
OUTSIDE_MARKS = ("services", "e2e", "slow")
LEAVES_THE_TIER = {
    "subprocess": "starts a process",
    "workloads.tracking.local.start_local_tracking": "starts a tracking server",
    "workloads.serving.local.start_local_service": "starts `bentoml serve`",
    "workloads.local_process.spawn": "starts a server process",
    "pipelines.local.run_local": "runs a pipeline with kfp.local (a process per step)",
    "tests.services.MotoS3Server": "starts moto_server",
    "tests.services.PrivatePostgres": "starts PostgreSQL",
    "tests.offline_plans.offline_plan": "renders whole-stack plans",
    "infra.offline_plan.render_stack": "renders a whole-stack plan",
    "infra.offline_plan.render": "renders a whole-stack plan",
}


def _qualified_name(value: Any) -> str:
    if inspect.ismodule(value):
        return value.__name__
    return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"


def _names(code: CodeType) -> Iterator[str]:
    """Global and attribute names a function's code uses, nested functions and comprehensions included."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _names(constant)


def heavy_use(function: Callable[..., Any], seen: set[Callable[..., Any]] | None = None) -> str | None:
    """What in `LEAVES_THE_TIER` `function` uses, following the helpers of the tests package it calls."""
    seen = set() if seen is None else seen
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or function in seen:
        return None
    seen.add(function)
    namespace = getattr(function, "__globals__", {})
    names = set(_names(code))
    for name in names & namespace.keys():
        value = namespace[name]
        reason = LEAVES_THE_TIER.get(_qualified_name(value))
        if reason is None and inspect.ismodule(value):  # `module.attribute`, e.g. `offline_plan.render`
            reason = next(
                (LEAVES_THE_TIER[f"{value.__name__}.{attribute}"] for attribute in sorted(names)
                 if f"{value.__name__}.{attribute}" in LEAVES_THE_TIER),
                None,
            )  # fmt: skip
        if reason is None and inspect.isfunction(value) and value.__module__.startswith("tests."):
            reason = heavy_use(value, seen)
        if reason is not None:
            return reason
    return None


def _fixture_functions(item: pytest.Item) -> Iterator[Callable[..., Any]]:
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        for definition in definitions:
            yield definition.func


def in_fast_tier(item: pytest.Item) -> bool:
    path = Path(str(item.path))
    if any(path.is_relative_to(folder) for folder in CROSS_FOLDER):
        return False
    if any(item.get_closest_marker(name) for name in OUTSIDE_MARKS):
        return False
    functions = [getattr(item, "function", None), *_fixture_functions(item)]
    return not any(function is not None and heavy_use(function) for function in functions)


def _leaves_the_tier(what: str) -> None:
    pytest.skip(f"not a fast test: it {what}; `make unit` runs it (or mark it `slow`)")


def refuse_processes_and_plans() -> None:
    """From here on (every test and fixture of a --fast-tier run), starting a process or running
    the Pulumi program skips the test that asked for it, with what it tried as the reason."""
    original_popen = subprocess.Popen.__init__
    original_run_path = runpy.run_path

    def popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        command = args if isinstance(args, str | bytes) else " ".join(str(part) for part in args)
        _leaves_the_tier(f"starts a process ({str(command)[:80]})")
        original_popen(self, args, *rest, **options)

    def run_path(path: str, *rest: Any, **options: Any) -> dict[str, Any]:
        if Path(path).name == "__main__.py":
            _leaves_the_tier("renders a whole-stack plan (runs the Pulumi program)")
        return original_run_path(path, *rest, **options)

    subprocess.Popen.__init__ = popen  # type: ignore[method-assign]
    runpy.run_path = run_path

"""Each stack's offline plan, rendered once per test session and shared by the suites that read it."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from infra.offline_plan import available_stacks, render_stack

STACKS = available_stacks()


@cache
def _rendered(stack: str) -> dict[str, Any]:
    return render_stack(stack)


def offline_plan(stack: str) -> dict[str, Any]:
    """A private copy, so a test that edits its plan cannot leak into another test."""
    return copy.deepcopy(_rendered(stack))

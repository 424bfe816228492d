"""How the offline plan scales with the number of catalogue models (5, 20, 100).

Clones the `digits` catalogue entry under new names, enables them all in the dev stack, and times
`render_stack` in this process, fastest of `--repeat` runs per size. Prints the resource counts, the
times and the ratio time(100)/time(5): linear growth gives about 100/5 = 20 at most (the fixed cost
of the base makes it smaller); a quadratic step would push it far above.

    .venv/bin/python benchmarks/plan_scaling.py [--sizes 5 20 100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from types import MappingProxyType
from typing import Any

import infra.platform
from infra.config import PROJECT
from infra.offline_plan import render_stack
from pipelines.contract import compiled_pipeline_path
from workloads import catalogue

TEMPLATE = catalogue.get("digits")


def with_models(count: int) -> dict[str, Any]:
    """Install a catalogue of `count` digits clones and return the stack override enabling them all."""
    template = TEMPLATE
    entries = [dataclasses.replace(template, name=f"digits-{index:03d}") for index in range(count)]
    catalogue.CATALOGUE = MappingProxyType({entry.name: entry for entry in entries})
    return {f"{PROJECT}:models": {entry.name: {} for entry in entries}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--repeat", type=int, default=2)
    arguments = parser.parse_args()

    # Every clone trains like digits: reuse its compiled pipeline instead of compiling N copies.
    digits_pipeline = compiled_pipeline_path("digits")
    infra.platform.compiled_pipeline_path = lambda model, directory=None: digits_pipeline  # type: ignore[assignment]

    timings: dict[int, float] = {}
    for size in arguments.sizes:
        overrides = with_models(size)
        best = float("inf")
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            plan = render_stack("dev", overrides=overrides)
            best = min(best, time.perf_counter() - started)
        timings[size] = best
        print(f"{size:4d} models: {len(plan['resources']):5d} resources in {best:6.2f} s")
    smallest, largest = min(timings), max(timings)
    ratio = timings[largest] / timings[smallest]
    print(f"time({largest}) / time({smallest}) = {ratio:.1f}  (linear in models: <= {largest / smallest:.0f})")


if __name__ == "__main__":
    main()

"""Synthetic series in promtool's expanding notation (`a+bxn`: n+1 values from a, step b)."""

from __future__ import annotations

from collections.abc import Sequence


def counter(phases: Sequence[tuple[int, float]]) -> str:
    """A counter from 0 that grows by `per_step` for `steps` steps in each (steps, per_step) phase."""
    segments = []
    value = 0.0
    for index, (steps, per_step) in enumerate(phases):
        if index == 0:
            segments.append(f"0+{_number(per_step)}x{steps}")
        else:  # the previous segment already wrote the phase boundary's value
            segments.append(f"{_number(value + per_step)}+{_number(per_step)}x{steps - 1}")
        value += steps * per_step
    return " ".join(segments)


def gauge(phases: Sequence[tuple[int, float]]) -> str:
    """A gauge holding each (steps, value) phase's value for `steps` samples (the first phase one more)."""
    segments = []
    for index, (steps, value) in enumerate(phases):
        segments.append(f"{_number(value)}x{steps if index == 0 else steps - 1}")
    return " ".join(segments)


def _number(value: float) -> str:
    return f"{value:.12g}"

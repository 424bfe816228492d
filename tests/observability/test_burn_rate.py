"""The burn-rate windows are the SRE workbook's (its table of recommended parameters, 30-day SLO).

Written out literally here: the promtool cases derive their series from these same windows, so
only this test notices a factor or a window changed by mistake.
"""

from __future__ import annotations

import pytest

from observability.burn_rate import BURN_RATE_WINDOWS, SLI_WINDOWS
from observability.durations import hours, seconds


def test_the_windows_factors_and_severities_are_the_workbooks() -> None:
    table = [(window.long, window.short, window.factor, window.severity) for window in BURN_RATE_WINDOWS]
    assert table == [
        ("1h", "5m", 14.4, "page"),
        ("6h", "30m", 6.0, "page"),
        ("1d", "2h", 3.0, "ticket"),
        ("3d", "6h", 1.0, "ticket"),
    ]
    assert [round(window.budget_spent, 6) for window in BURN_RATE_WINDOWS] == [0.02, 0.05, 0.1, 0.1]
    assert SLI_WINDOWS == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def test_each_short_window_is_a_twelfth_of_its_long_one() -> None:
    for window in BURN_RATE_WINDOWS:
        assert seconds(window.long) == 12 * seconds(window.short)


def test_durations() -> None:
    assert [seconds(text) for text in ("30s", "5m", "6h", "3d")] == [30, 300, 21600, 259200]
    assert [hours(count) for count in (6, 24, 26, 48)] == ["6h", "1d", "26h", "2d"]
    for bad in ("1h30m", "0m", "5", "m", "-1h"):
        with pytest.raises(ValueError, match="single-unit"):
            seconds(bad)

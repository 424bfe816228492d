"""Multi-window, multi-burn-rate alerting (Google's SRE workbook, "Alerting on SLOs", table 5-8).

A burn rate is how fast errors spend the error budget: 1 spends exactly the budget over the SLO
period. Each alert pairs a long window, which makes it significant (enough budget spent to act on),
with a short one, a twelfth of it, which makes it reset soon after the errors stop; it fires only
while both burn faster than its factor. The factors are the workbook's for a 30-day period: 2 % of
the budget spent in 1 h or 5 % in 6 h pages; 10 % in 1 day or in 3 days opens a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

from observability.durations import seconds

SLO_PERIOD_DAYS = 30
"""The period the budget is counted over; the factors below assume it."""


@dataclass(frozen=True)
class BurnRateWindow:
    long: str
    """Prometheus duration of the long window."""
    short: str
    """Prometheus duration of the short window (long / 12)."""
    factor: float
    """The alert fires while both windows burn faster than this many times the budget rate."""
    severity: str
    """`page` (someone acts now) or `ticket` (someone acts within days)."""

    @property
    def budget_spent(self) -> float:
        """Share of the period's budget spent by the time the long window alone would fire."""
        return self.factor * seconds(self.long) / (SLO_PERIOD_DAYS * 86400)

    def threshold(self, budget: float) -> float:
        """The error ratio above which both windows must be: `factor` times the budget (1 - objective)."""
        return self.factor * budget


BURN_RATE_WINDOWS = (
    BurnRateWindow(long="1h", short="5m", factor=14.4, severity="page"),
    BurnRateWindow(long="6h", short="30m", factor=6.0, severity="page"),
    BurnRateWindow(long="1d", short="2h", factor=3.0, severity="ticket"),
    BurnRateWindow(long="3d", short="6h", factor=1.0, severity="ticket"),
)

SLI_WINDOWS = tuple(
    sorted({duration for window in BURN_RATE_WINDOWS for duration in (window.long, window.short)}, key=seconds)
)
"""Every window an SLI is recorded at: 5m, 30m, 1h, 2h, 6h, 1d, 3d."""

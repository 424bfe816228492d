"""How the monitoring jobs fail, in one place: each job's own error, and an alert no channel took.

A job's error raised while its settings and arguments are checked exits 2; raised while it works, 1
(`monitoring.entrypoint`). The message says why and what to do.
"""

from __future__ import annotations


class DriftJobError(RuntimeError):
    """The drift job cannot do its work."""


class QualityJobError(RuntimeError):
    """The quality job cannot do its work."""


class LabellingQueueError(RuntimeError):
    """The labelling queue cannot be built."""


class AlertError(RuntimeError):
    """Every configured channel failed."""

"""The drift job's failure: it could not do its work (exit 1), and the message says why and what to do."""

from __future__ import annotations


class DriftJobError(RuntimeError):
    """The job cannot do its work; the message says why and what to do."""

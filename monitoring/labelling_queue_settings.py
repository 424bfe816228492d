"""Configuration of the labelling queue (`monitoring.labelling_queue`), read once from the environment.

The stores are the quality job's (`QualitySettings`: the prediction log, the reports store where the
drift summaries are and where the queue keeps its record of what it queued, the labels store whose
labelled images it skips); the rest is the queue's own, `MLOPS_LABELLING_*`. Command-line options
(`--budget`, `--out`, the stores) override these.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from monitoring.quality_settings import QualitySettings
from workloads.settings import Stripped


class LabellingQueueVariables:
    BUDGET = "MLOPS_LABELLING_BUDGET"
    LOOKBACK_DAYS = "MLOPS_LABELLING_LOOKBACK_DAYS"
    QUEUE_STORE = "MLOPS_LABELLING_QUEUE_STORE"


DEFAULT_QUEUE_STORE = ".mlops/labelling-queue"


class LabellingQueueSettings(QualitySettings):
    """Everything the queue reads from the environment: one field per variable."""

    budget: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        validation_alias=LabellingQueueVariables.BUDGET,
        description="images queued per model and day at most (default: the catalogue entry's labelling_budget)",
    )
    queue_lookback_days: int = Field(
        default=7,
        ge=1,
        le=366,
        validation_alias=LabellingQueueVariables.LOOKBACK_DAYS,
        description="prediction days the queue chooses from, ending with its day: a drifted day stays first "
        "in line this long",
    )
    queue_store: Stripped = Field(
        default=DEFAULT_QUEUE_STORE,
        validation_alias=LabellingQueueVariables.QUEUE_STORE,
        description="where a day's queue goes without --out: <store>/<model>/date=<day>/ (a folder or "
        "s3://bucket[/prefix])",
    )


VARIABLES: Mapping[str, tuple[str, str]] = LabellingQueueSettings.variables()

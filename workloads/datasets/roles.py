"""What each row of a dataset version is for: the original data, or labelled production images.

A version built from a base and labelled production images (`workloads.labelled_datasets`) holds
`roles.npy` (int8, one per row) beside its images:

    ORIGINAL             a row of the dataset as first built: the pipeline's stratified split makes the
                         *original* train / validation split from these rows alone, so every version
                         of a dataset is judged on the same validation images
    PRODUCTION_TRAIN     a labelled production image the model trains on
    PRODUCTION_HOLDOUT   a labelled production image kept out of training: the *recent* slice the
                         candidate and production are both measured on

A version without the file (every first snapshot) is all ORIGINAL. Such a version also holds
`production.json` (`workloads.labelled_datasets`), one row per production row in the order they
stand in the dataset, with the prediction day each image was served on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ROLES_FILE = "roles.npy"
PROVENANCE_FILE = "production.json"
ORIGINAL, PRODUCTION_TRAIN, PRODUCTION_HOLDOUT = 0, 1, 2
ROLE_NAMES = {ORIGINAL: "original", PRODUCTION_TRAIN: "production-train", PRODUCTION_HOLDOUT: "production-holdout"}


def load_roles(folder: Path, rows: int) -> np.ndarray:
    """The roles of a fetched version's `rows` rows (all ORIGINAL without `roles.npy`)."""
    import numpy as np

    path = folder / ROLES_FILE
    if not path.is_file():
        return np.full(rows, ORIGINAL, dtype=np.int8)
    roles = np.load(path, allow_pickle=False)
    if roles.shape != (rows,) or not np.isin(roles, list(ROLE_NAMES)).all():
        raise ValueError(f"{path}: expected {rows} roles in {sorted(ROLE_NAMES)}, got shape {roles.shape}")
    return roles.astype(np.int8)


def prediction_days(folder: Path, roles: np.ndarray) -> list[str]:
    """The prediction day (YYYY-MM-DD) of each production row (roles != ORIGINAL), in dataset order."""
    import json

    import numpy as np

    production = int(np.count_nonzero(roles != ORIGINAL))
    if not production:
        return []
    rows = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))["rows"]
    if len(rows) != production:
        raise ValueError(f"{folder}: {PROVENANCE_FILE} lists {len(rows)} rows, {ROLES_FILE} {production} production")
    return [str(row["prediction_day"]) for row in rows]

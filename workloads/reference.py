"""Reference feature tables: what a model version learned from, as the drift job compares it.

The training pipeline writes, per registered version, into the version's MLflow run:

    reference/features.parquet                the training split: `features.drift_features` columns + `label`
    reference/validation_predictions.parquet  the held-out split: features + `label`, `prediction`, `confidence`,
                                              and the softmax vector `softmax_0..n-1` (`features.softmax_columns`)

and tags the version with `reference.features` / `reference.validation_predictions` (the artifact
paths in the run) and `features.version`. The drift job reads them back with
`download_reference(model, version)`. Each parquet file carries its provenance (features version,
dataset, dataset version) in the schema metadata under the key `mlops`.

The training table's `reference_group` column says which distribution each row was learned from:
`original` (the dataset as first built) or `production <day>` (labelled production images of that
prediction day, `workloads.labelled_datasets`). A version retrained on a shifted day has learned
that shift; the drift job compares a window with each distribution separately
(`monitoring.reference_groups`), because against the pooled table a day of either one is a mixture's
minority and would alarm forever. Tables written before the column existed are one `original` group.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from workloads import features

REFERENCE_ARTIFACT_DIRECTORY = "reference"
TRAINING_FEATURES_FILE = "features.parquet"
VALIDATION_PREDICTIONS_FILE = "validation_predictions.parquet"
TRAINING_FEATURES_TAG = "reference.features"
VALIDATION_PREDICTIONS_TAG = "reference.validation_predictions"
FEATURES_VERSION_TAG = "features.version"
METADATA_KEY = b"mlops"
REFERENCE_GROUP_COLUMN = "reference_group"
ORIGINAL_GROUP = "original"
PRODUCTION_GROUP_PREFIX = "production "


def production_group(prediction_day: str) -> str:
    """The reference group of labelled production images served on `prediction_day` (YYYY-MM-DD)."""
    return f"{PRODUCTION_GROUP_PREFIX}{prediction_day}"


class MissingReferenceError(LookupError):
    """The model version has no reference table attached."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "missing reference table"


def write_feature_table(frame: pd.DataFrame, path: Path, metadata: dict[str, Any]) -> Path:
    """Write `frame` as parquet with `metadata` (plus the features version) in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    provenance = {"features_version": features.FEATURES_VERSION, **metadata}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: json.dumps(provenance)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_feature_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table and its provenance metadata (empty dict if absent)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    return table.to_pandas(), (json.loads(raw) if raw else {})


def attach_reference(
    client: Any,
    model: str,
    version: str,
    run_id: str,
    training_features: Path,
    validation_predictions: Path | None = None,
) -> dict[str, str]:
    """Log the tables into the version's run and tag the version with where they are."""
    tags = {FEATURES_VERSION_TAG: features.FEATURES_VERSION}
    with tempfile.TemporaryDirectory(prefix="mlops-reference-") as scratch:
        folder = Path(scratch)
        named = [(training_features, TRAINING_FEATURES_FILE, TRAINING_FEATURES_TAG)]
        if validation_predictions is not None:
            named.append((validation_predictions, VALIDATION_PREDICTIONS_FILE, VALIDATION_PREDICTIONS_TAG))
        for source, file_name, tag in named:
            (folder / file_name).write_bytes(source.read_bytes())
            client.log_artifact(run_id, str(folder / file_name), REFERENCE_ARTIFACT_DIRECTORY)
            tags[tag] = f"{REFERENCE_ARTIFACT_DIRECTORY}/{file_name}"
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)
    return tags


def download_reference(
    model: str, version: str, which: str = TRAINING_FEATURES_TAG, client: Any = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a version's reference table (training features by default) from the tracking server."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    model_version = client.get_model_version(model, str(version))
    artifact = model_version.tags.get(which)
    if not artifact or not model_version.run_id:
        raise MissingReferenceError(
            f"{model} v{version} has no reference table (tag {which} missing): not registered by the training pipeline?"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-reference-") as scratch:
        local = client.download_artifacts(model_version.run_id, artifact, scratch)
        return read_feature_table(Path(local))

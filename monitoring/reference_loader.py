"""The reference a window is compared with: the tables the training pipeline attached to the version.

The training features (required) and the validation predictions (optional: without them the class
mix and confidence are compared with what the training table allows) are downloaded from the
registry. A version without a reference, or one written by another features version, is an error
the job reports in one message: comparing anything else would not say whether *this* model drifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitoring.errors import DriftJobError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Reference:
    training: pd.DataFrame
    """The training split's feature table (what `monitoring.drift.build_reference` samples)."""
    validation: pd.DataFrame | None
    """The validation split's predictions, when the version has them."""
    provenance: dict[str, Any]
    """The table's metadata: the dataset and version it came from, the features version."""

    @property
    def dataset(self) -> str:
        """`digits v3`: the dataset version the reference was computed from."""
        return f"{self.provenance.get('dataset', '?')} {self.provenance.get('dataset_version', '?')}"


def load_reference(model: str, version: str, client: Any) -> Reference:
    """The reference of `model` `version`, from the registry `client` talks to; DriftJobError otherwise."""
    from mlflow.exceptions import MlflowException

    from workloads import features
    from workloads.reference import (
        TRAINING_FEATURES_TAG,
        VALIDATION_PREDICTIONS_TAG,
        MissingReferenceError,
        download_reference,
    )

    try:
        training, provenance = download_reference(model, version, TRAINING_FEATURES_TAG, client=client)
    except MissingReferenceError as error:
        raise DriftJobError(
            f"no reference for {model} v{version}, the version that served the window: {error}. "
            "Register versions with the training pipeline (it attaches the reference table)."
        ) from None
    except MlflowException as error:
        raise DriftJobError(
            f"no reference for {model} v{version}, the version that served the window: the registry "
            f"says {error.message}"
        ) from None
    written_with = str(provenance.get("features_version", features.FEATURES_VERSION))
    if written_with != features.FEATURES_VERSION:
        raise DriftJobError(
            f"the reference of {model} v{version} was written with features version {written_with}, this job "
            f"computes version {features.FEATURES_VERSION}: retrain the model to get a comparable reference"
        )
    try:
        validation, _ = download_reference(model, version, VALIDATION_PREDICTIONS_TAG, client=client)
    except MissingReferenceError:
        validation = None
    return Reference(training=training, validation=validation, provenance=provenance)

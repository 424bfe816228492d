"""The failures of dataset operations, one class per thing the user can act on."""

from __future__ import annotations


class DatasetError(Exception):
    """A dataset operation failed for a reason the user can act on; the message says which."""


class UnknownDatasetError(DatasetError, LookupError):
    """No dataset builder has this name."""


class UnknownDatasetVersionError(DatasetError, LookupError):
    """The store holds no such version of the dataset."""


class DatasetVersionExistsError(DatasetError):
    """Versions are immutable: this one exists already."""


class DatasetIntegrityError(DatasetError):
    """A fetched file does not match the sha256 its manifest records."""


class InvalidStoreError(DatasetError):
    """The store URI cannot be used."""

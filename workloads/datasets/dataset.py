"""A dataset in memory, and the data files of a version folder it is written to and read from.

    images.npy      uint8, (N, H, W)         the raw images (preprocessing happens in the pipeline)
    labels.npy      int64, (N,)
    dataset.json    name, class names, shape, how it was built

(`manifest.json`, which makes a folder a version, is `workloads.datasets.manifest`.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workloads.datasets.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

DATA_FILES = ("images.npy", "labels.npy", "dataset.json")


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one dataset, in memory."""

    name: str
    images: np.ndarray
    """uint8, (N, H, W)."""
    labels: np.ndarray
    """int64, (N,), indices into class_names."""
    class_names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    """How it was built (source, generator, seed, ...)."""

    def __post_init__(self) -> None:
        import numpy as np

        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise DatasetError(
                f"{self.name}: images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(f"{self.name}: {self.labels.shape[0]} labels for {self.images.shape[0]} images")


def write_dataset_files(dataset: Dataset, folder: Path) -> dict[str, Path]:
    """Write the data files of `dataset` into `folder`; returns name → path."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", dataset.images, allow_pickle=False)
    np.save(folder / "labels.npy", dataset.labels, allow_pickle=False)
    description = {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "count": int(dataset.images.shape[0]),
        "image_shape": list(dataset.images.shape[1:]),
        "metadata": dataset.metadata,
    }
    (folder / "dataset.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {name: folder / name for name in DATA_FILES}


def load(folder: Path) -> Dataset:
    """Read a fetched (verified) version folder back into memory."""
    import numpy as np

    description = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    return Dataset(
        name=description["name"],
        images=np.load(folder / "images.npy", allow_pickle=False),
        labels=np.load(folder / "labels.npy", allow_pickle=False),
        class_names=tuple(description["class_names"]),
        metadata=description.get("metadata", {}),
    )

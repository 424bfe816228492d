"""`manifest.json`: what makes a folder a version, and how its files are verified.

It records the sha256 and size of each data file and `sha256`, a digest of the whole version over
that file list. It is written last: a version whose manifest exists is complete.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def whole_digest(files: dict[str, dict[str, Any]]) -> str:
    """sha256 over the sorted (name, sha256, size) list: changes when any file changes."""
    canonical = json.dumps(
        [[name, files[name]["sha256"], files[name]["bytes"]] for name in sorted(files)], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_manifest(dataset: str, version: str, files: dict[str, Path]) -> dict[str, Any]:
    entries = {name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for name, path in files.items()}
    return {
        "dataset": dataset,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
        "sha256": whole_digest(entries),
    }

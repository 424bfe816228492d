"""Versioned dataset snapshots: immutable, sha256-verified, in a local folder or an S3 prefix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.services import MotoS3Server
from workloads.datasets import versions
from workloads.datasets.builders import build, build_surface_defects
from workloads.datasets.dataset import load
from workloads.datasets.errors import (
    DatasetIntegrityError,
    DatasetVersionExistsError,
    InvalidStoreError,
    UnknownDatasetError,
    UnknownDatasetVersionError,
)
from workloads.datasets.manifest import whole_digest
from workloads.datasets.stores import DatasetStore, LocalStore, open_store
from workloads.datasets.versions import DatasetVersion, EnsuredVersion, ensure_version, fetch, list_versions, snapshot


def test_snapshot_writes_files_and_a_manifest_of_their_sha256(tmp_path: Path) -> None:
    published = snapshot("digits", tmp_path)
    folder = tmp_path / "digits" / "v1"
    assert published.version == "v1"
    assert published.uri == str(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"images.npy", "labels.npy", "dataset.json"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert entry["bytes"] == (folder / name).stat().st_size
    assert manifest["sha256"] == published.digest == whole_digest(manifest["files"])
    loaded = load(folder)
    assert loaded.images.dtype == np.uint8 and loaded.images.shape == (1797, 8, 8)
    assert np.array_equal(loaded.labels, build("digits").labels)


def test_versions_are_numbered_and_never_overwritten(tmp_path: Path) -> None:
    assert snapshot("surface-defects", tmp_path).version == "v1"
    second = snapshot("surface-defects", tmp_path, seed=1)
    assert second.version == "v2"
    before = (tmp_path / "surface-defects" / "v1" / "images.npy").read_bytes()
    with pytest.raises(DatasetVersionExistsError, match=r"already exists.*immutable"):
        snapshot("surface-defects", tmp_path, version="v1", seed=7)
    assert (tmp_path / "surface-defects" / "v1" / "images.npy").read_bytes() == before
    # The published files are read-only, and a concurrent writer cannot rename onto a version.
    assert (tmp_path / "surface-defects" / "v1" / "images.npy").stat().st_mode & 0o222 == 0
    store = LocalStore(tmp_path)
    with pytest.raises(DatasetVersionExistsError):
        store.publish("surface-defects", "v2", tmp_path / "surface-defects" / "v1", ["images.npy"])
    assert list_versions("surface-defects", tmp_path) == ["v1", "v2"]


def test_generated_dataset_is_seeded() -> None:
    first, again, other = (build_surface_defects(seed=s, per_class=20) for s in (3, 3, 4))
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images, other.images)
    assert np.bincount(first.labels).tolist() == [20, 20, 20]


def test_fetch_verifies_and_resolves_latest(tmp_path: Path) -> None:
    snapshot("digits", tmp_path / "store")
    snapshot("digits", tmp_path / "store", version="v2")
    folder = fetch("digits", "latest", tmp_path / "store", tmp_path / "fetched")
    assert json.loads((folder / "manifest.json").read_text())["version"] == "v2"
    assert load(folder).images.shape == (1797, 8, 8)


def test_a_corrupt_file_fails_fetch_naming_the_file(tmp_path: Path) -> None:
    snapshot("digits", tmp_path / "store")
    images = tmp_path / "store" / "digits" / "v1" / "images.npy"
    images.chmod(0o644)
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError, match=r"file images\.npy is corrupt: sha256"):
        fetch("digits", "v1", tmp_path / "store", tmp_path / "fetched")
    assert not (tmp_path / "fetched" / "images.npy").exists()


def test_an_edited_manifest_is_detected(tmp_path: Path) -> None:
    snapshot("digits", tmp_path / "store")
    manifest_path = tmp_path / "store" / "digits" / "v1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["labels.npy"]["sha256"] = "0" * 64
    manifest_path.chmod(0o644)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match=r"manifest\.json was altered"):
        fetch("digits", "v1", tmp_path / "store", tmp_path / "fetched")


def test_unknown_dataset_and_version_are_clear_errors(tmp_path: Path) -> None:
    snapshot("digits", tmp_path)
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'cats': known datasets are digits"):
        fetch("cats", "v1", tmp_path)
    with pytest.raises(UnknownDatasetVersionError, match=r"no version 'v9' .*\(versions: v1\)"):
        fetch("digits", "v9", tmp_path)
    with pytest.raises(UnknownDatasetVersionError, match="mlops data snapshot surface-defects"):
        fetch("surface-defects", "latest", tmp_path)
    with pytest.raises(InvalidStoreError):
        open_store("gs://bucket/data")


def test_cli_snapshot_prints_the_version_and_refuses_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["data", "snapshot", "digits", "--store", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "v1"
    second = runner.invoke(app, ["data", "snapshot", "digits", "--store", str(tmp_path)])
    assert second.stdout.strip() == "v2"
    again = runner.invoke(app, ["data", "snapshot", "digits", "--store", str(tmp_path), "--version", "v1"])
    assert again.exit_code == 2
    assert (
        again.stderr.strip()
        == f"error: dataset 'digits' version 'v1' already exists in {tmp_path}: versions are immutable"
    )
    unknown = runner.invoke(app, ["data", "snapshot", "cats", "--store", str(tmp_path)])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: unknown dataset 'cats': known datasets are digits, surface-defects"
    missing = runner.invoke(app, ["data", "verify", "digits", "v7", "--store", str(tmp_path)])
    assert missing.exit_code == 2 and "no version 'v7'" in missing.stderr
    verified = runner.invoke(app, ["data", "verify", "digits", "--store", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.strip() == "digits v2: 3 files, every sha256 matches"


# ------------------------------------------------------------------------------------------ S3 store


def test_s3_store_snapshots_fetches_and_stays_immutable(aws_environment: MotoS3Server, tmp_path: Path) -> None:
    bucket = aws_environment.fresh_bucket("datasets")
    prefix = f"s3://{bucket}/team-{tmp_path.name}"
    published = snapshot("surface-defects", prefix)
    assert published.version == "v1"
    assert published.uri == f"{prefix}/surface-defects/v1"
    client = aws_environment.client()
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"team-{tmp_path.name}/surface-defects/v1/manifest.json" in keys
    assert snapshot("surface-defects", prefix).version == "v2"
    with pytest.raises(DatasetVersionExistsError, match="immutable"):
        snapshot("surface-defects", prefix, version="v1")
    assert list_versions("surface-defects", prefix) == ["v1", "v2"]

    folder = fetch("surface-defects", "v1", prefix, tmp_path / "fetched")
    assert load(folder).images.shape == (1500, 32, 32)

    key = f"team-{tmp_path.name}/surface-defects/v1/labels.npy"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[-1] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with pytest.raises(DatasetIntegrityError, match=r"labels\.npy is corrupt"):
        fetch("surface-defects", "v1", prefix, tmp_path / "again")


def test_ensure_version_snapshots_only_a_dataset_the_store_lacks(tmp_path: Path) -> None:
    first = ensure_version("digits", tmp_path)
    assert first.version == "v1" and first.published is not None
    again = ensure_version("digits", tmp_path)
    assert again == EnsuredVersion(version="v1", published=None)
    assert list_versions("digits", tmp_path) == ["v1"]
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'cats'"):
        ensure_version("cats", tmp_path)


def test_ensure_version_takes_the_winners_version_when_it_loses_the_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish = snapshot

    def loses_the_race(dataset: str, store: DatasetStore, seed: int = 0) -> DatasetVersion:
        publish(dataset, store, seed=seed)  # another seeder publishes v1 between our listing and our write
        raise DatasetVersionExistsError("version 'v1' already exists")

    monkeypatch.setattr(versions, "snapshot", loses_the_race)
    assert ensure_version("digits", tmp_path) == EnsuredVersion(version="v1", published=None)


def test_seed_job_gives_an_empty_s3_store_a_first_version_once(
    aws_environment: MotoS3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.dataset_seed import main

    store = f"s3://{aws_environment.fresh_bucket('datasets')}/seed-{tmp_path.name}"
    assert main(["digits", "surface-defects", "--store", store]) == 0
    output = capsys.readouterr().out
    assert "digits: v1 snapshotted, sha256 " in output and "surface-defects: v1 snapshotted" in output
    assert main(["digits", "surface-defects", "--store", store]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "digits: v1 is there already: unchanged",
        "surface-defects: v1 is there already: unchanged",
    ]
    assert list_versions("digits", store) == ["v1"]


def test_seed_job_refuses_bad_input_and_reports_a_store_failure_in_one_line(
    aws_environment: MotoS3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.dataset_seed import main

    assert main(["cats", "--store", "s3://datasets/x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown dataset(s) cats: known datasets are digits, surface-defects"
    )
    assert main(["digits", "--store", "s3://no-such-bucket/datasets"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: digits: ") and "NoSuchBucket" in error and "\n" not in error

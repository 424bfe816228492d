"""Datasets: how each one is built, and immutable, verifiable snapshots of them in a store.

One concept per module; import names from the module that defines them (this package re-exports
nothing, so each name has one import path):

    errors      DatasetError and the failures it names (unknown dataset or version, immutability, integrity)
    dataset     the in-memory `Dataset` and its data files (`images.npy`, `labels.npy`, `dataset.json`)
    builders    how each dataset is built (`BUILDERS`: digits, surface-defects)
    splits      the stratified train/validation split the pipeline and the benchmarks share
    manifest    `manifest.json`: the sha256 of each data file and of the whole version
    stores      where versions live: a local folder or an S3 prefix (`open_store`)
    versions    publishing (`snapshot`, `ensure_version`) and verified fetching (`fetch`) of versions

numpy and boto3 are imported by the functions that use them: the pipeline's fetch step only copies
and hashes files, and its process starts faster without them.
"""

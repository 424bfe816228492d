"""Give a new platform's datasets store a first version of every dataset its models train on.

Run by the `DatasetSeed` Job that `pulumi up` creates (infra/dataset_seed.py) before the training
schedules start their first runs, and usable by hand:

    python -m pipelines.dataset_seed digits surface-defects --store s3://BUCKET/datasets

A dataset that has a version already is left alone (versions are immutable; the newest is what
`latest` trains on). One that has none gets v1, built by the catalogue's dataset code. Running it
again changes nothing. Exit status: 0 done, 1 the store failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR_EXIT_CODE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="dataset names, e.g. digits surface-defects")
    parser.add_argument("--store", required=True, help="datasets store: s3://BUCKET/PREFIX or a folder")
    arguments = parser.parse_args(argv)

    from botocore.exceptions import BotoCoreError, ClientError

    from workloads.datasets.builders import BUILDERS
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.versions import ensure_version

    # The store's own errors and the S3 client's (no access, no network): one line each, exit 1.
    store_failures = (DatasetError, OSError, BotoCoreError, ClientError)

    unknown = sorted(set(arguments.datasets) - set(BUILDERS))
    if unknown:
        print(
            f"error: unknown dataset(s) {', '.join(unknown)}: known datasets are {', '.join(BUILDERS)}",
            file=sys.stderr,
        )
        return USAGE_ERROR_EXIT_CODE
    for name in dict.fromkeys(arguments.datasets):
        try:
            ensured = ensure_version(name, arguments.store)
        except store_failures as error:
            print(f"error: {name}: {error}", file=sys.stderr)
            return 1
        if ensured.published is None:
            print(f"{name}: {ensured.version} is there already: unchanged")
        else:
            print(f"{name}: {ensured.version} snapshotted, sha256 {ensured.published.digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

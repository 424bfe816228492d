"""Which label stands for an image: the last one received.

The store is append-only: a repeated or corrected label is a new row, never an edit. Readers
resolve here, in one place, keeping per (model, request_id, image_index) the row with the latest
`received_at`; rows received in the same microsecond resolve by store order (file name, which
starts with the write time, then row order), so the answer is the same on every read.

Why append-only and resolve-on-read rather than rewriting a stored label: an S3 object cannot be
edited, only replaced whole, so a rewrite is read-modify-write of a file that other replicas and a
concurrent `mlops labels import` may be replacing at the same moment — one of them would lose its
labels. Appends never conflict, a crash mid-way leaves either the whole new file or none, and every
label ever sent stays there for audit (who said what, when). The price is reading superseded rows,
which at human labelling rates is small.

Resolution covers the rows read: a label replaced after the end of a read's date range is seen
with its earlier value. "Received" is the receiving server's clock; two corrections of one image
sent to two replicas within their clock skew may resolve either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from workloads.keyed_rows import key_codes, key_order, repeated
from workloads.labels.record import KEY_COLUMNS


def resolve_table(rows: pa.Table, by_key: bool = True) -> pa.Table:
    """One row per image, the one received last; `rows` in store order, resolved sorted by key unless
    `by_key` is False (Arrow: the quality job joins the result, in any order)."""
    received = rows["received_at"].combine_chunks().cast(pa.int64()).to_numpy()
    ordered = rows.take(pa.array(np.argsort(received, kind="stable")))  # stable: equal times keep store order
    codes = key_codes(ordered, KEY_COLUMNS, ordered=by_key)
    kept = np.flatnonzero(~repeated(codes, keep="last"))
    if by_key:
        kept = kept[key_order(codes.iloc[kept])]
    return ordered.take(pa.array(kept))


def resolve_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """`resolve_table` for a frame (`LabelStore.load`): one row per image, the one received last."""
    if rows.empty:
        return rows.reset_index(drop=True)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    return resolve_table(table).to_pandas().reindex(columns=list(rows.columns))

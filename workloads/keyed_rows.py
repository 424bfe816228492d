"""Rows that repeat a key, found with integer codes instead of hashing the key columns again.

The labels store resolves "the last label per image" and the quality job keeps one vote per image;
both ask which rows of an Arrow table repeat an earlier (or later) row's key. pyarrow's group_by
with "first"/"last" answers it, but only single-threaded and slowly on string keys (0.45 s for
100,000 labels, a third of the quality job's join: benchmarks/quality_join.py); ranking each key
column once (Arrow's dense rank: integer codes in sorted order) and asking pandas about the codes
takes a fraction of that, and the same codes sort the rows by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_compute = cast(Any, pc)  # pyarrow.compute's kernels are generated at import; its stubs do not list them


def key_codes(table: pa.Table, columns: Sequence[str], ordered: bool = False) -> pd.DataFrame:
    """One integer column per key column, equal values sharing a code. `ordered`: each value's dense
    rank, so sorting the codes sorts the rows by key (strings by code point, as Python and Arrow
    compare them) — a sort per column; otherwise codes in order of appearance (a hash, cheaper)."""
    codes = {}
    for name in columns:
        column = table[name].combine_chunks()
        if ordered:
            codes[name] = _compute.rank(column, sort_keys="ascending", tiebreaker="dense").to_numpy()
        else:
            codes[name], _ = pd.factorize(column.to_numpy(zero_copy_only=False))
    return pd.DataFrame(codes)


def repeated(codes: pd.DataFrame, keep: str) -> np.ndarray:
    """Boolean mask of the rows whose key another row holds; `keep` "first" or "last" is the one not marked."""
    if codes.empty:
        return np.zeros(len(codes), dtype=bool)
    return codes.duplicated(keep=keep).to_numpy()  # pyright: ignore[reportArgumentType]


def key_order(codes: pd.DataFrame) -> np.ndarray:
    """Row positions that sort the rows by their key codes (first column first)."""
    return np.lexsort([codes[name].to_numpy() for name in reversed(list(codes.columns))])

"""The context-modelled range coder of format 2 (svdimage.codec._context)."""

import numpy as np
import pytest


def test_context_coder_round_trips_any_integers():
    from svdimage.codec._context import (
        ALPHABET,
        MAX_MAGNITUDE,
        ContextReader,
        ContextWriter,
        codes_of_counts,
        symbols_of,
    )

    rng = np.random.default_rng(0)
    batches = [
        rng.laplace(0, 3, 1000).round().astype(np.int64),
        np.array([0, 1, -1, 7, -8, 9, 1000, -(2**20), MAX_MAGNITUDE, -MAX_MAGNITUDE]),
        np.zeros(500, dtype=np.int64),
    ]
    writer = ContextWriter()
    tables = []
    for values in batches:
        counts = np.bincount(symbols_of(values)[0], minlength=ALPHABET)[None]
        codes = codes_of_counts(counts)[0]
        writer.table(codes)
        writer.values(values, codes)
        tables.append(codes)
    reader = ContextReader(writer.getvalue())
    for values, codes in zip(batches, tables):
        np.testing.assert_array_equal(reader.table(), codes)
        np.testing.assert_array_equal(reader.values(values.size, codes), values)
    with pytest.raises(ValueError, match="cannot be coded"):
        writer.values(np.array([MAX_MAGNITUDE + 1]), tables[0])

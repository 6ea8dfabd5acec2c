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


@pytest.mark.parametrize("fine", [False, True])
def test_cheapest_tables_leave_out_rare_symbols_when_that_saves_bits(fine):
    """A context whose values are small but for one huge outlier: the cheapest table stops
    below the outlier's escape class, and the real coder's output (table and values) is
    smaller than with the full table, and reads back to the same values. A context
    without such outliers keeps the full table."""
    from svdimage.codec._context import (
        ALPHABET,
        FINE_WEIGHTS,
        TABLE_WEIGHTS,
        ContextReader,
        ContextWriter,
        cheapest_codes,
        codes_of_counts,
        symbols_of,
    )

    weights = FINE_WEIGHTS if fine else TABLE_WEIGHTS
    rng = np.random.default_rng(1)
    small = rng.laplace(0, 1.5, 2000).round().astype(np.int64)
    values = np.concatenate([small, [2**20]])
    counts = np.bincount(symbols_of(values)[0], minlength=ALPHABET)[None]
    cheap = cheapest_codes(counts, weights=weights)[0]
    full = codes_of_counts(counts, weights=weights)[0]
    top = int(symbols_of(np.array([2**20]))[0][0])
    assert full[top] > 0 and not cheap[top:].any()

    def coded(codes):
        writer = ContextWriter()
        writer.table(codes, weights=weights)
        writer.values(values, codes, weights=weights)
        return writer.getvalue()

    assert len(coded(cheap)) < len(coded(full))
    reader = ContextReader(coded(cheap))
    np.testing.assert_array_equal(reader.table(weights=weights), cheap)
    np.testing.assert_array_equal(reader.values(values.size, cheap, weights=weights), values)
    plain = np.bincount(symbols_of(small)[0], minlength=ALPHABET)[None]
    np.testing.assert_array_equal(
        cheapest_codes(plain, weights=weights), codes_of_counts(plain, weights=weights)
    )

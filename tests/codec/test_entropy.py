"""Format 1's varints and LZMA (svdimage.codec._entropy)."""

import numpy as np


def test_varints_coded_by_chunks_equal_one_pass_and_round_trip(monkeypatch, rng):
    from svdimage.codec import _entropy

    values = np.concatenate(
        [rng.integers(-300, 300, 1000), [0, -1, 2**40, -(2**62), 2**63 - 1, -(2**63)]]
    )
    one_pass = _entropy.to_varints(values)  # all in one chunk
    monkeypatch.setattr(_entropy, "VARINT_CHUNK", 7)
    assert _entropy.to_varints(values) == one_pass
    np.testing.assert_array_equal(_entropy.from_varints(one_pass), values)

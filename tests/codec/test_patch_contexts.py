"""svdimage.codec._patch_contexts: the contexts of format 2's integers and what they cost."""

import numpy as np
import pytest

from svdimage.codec._patch_contexts import (
    ACTIVITY,
    GROUP_OF,
    N_MEAN_CONTEXTS,
    _coefficient_contexts,
    _mean_residuals,
    mean_bits,
    optimize_coefficients,
)
from svdimage.codec._prediction import second_half


# -- rate-distortion optimized quantization (issue 28) --------------------------------------
def _scaled_coefficients(image, step, patch=8):
    """The coefficients in steps of one plane (least squares on the exact basis, the leading
    12 components), their dead-zone rounding, and the grid."""
    from svdimage.codec._patches import DEAD_ZONE, _PlaneAnalysis

    analysis = _PlaneAnalysis(image, patch)
    scaled = (analysis.residual @ analysis.basis[:, :12].astype(np.float32)).T / step
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + DEAD_ZONE)).astype(np.int32)
    return np.ascontiguousarray(scaled, dtype=np.float32), q, analysis.rows, analysis.cols


def test_optimized_rounding_chooses_zero_floor_or_ceiling(camera):
    scaled, q, rows, cols = _scaled_coefficients(camera, 0.03)
    out, _ = optimize_coefficients(scaled, q, rows, cols, slope=0.12)
    x = np.abs(scaled)
    magnitude = np.abs(out)
    assert ((magnitude == 0) | (magnitude == np.floor(x)) | (magnitude == np.floor(x) + 1)).all()
    assert (magnitude[x < 0.5] == 0).all()
    assert (np.sign(out)[out != 0] == np.sign(scaled)[out != 0]).all()
    # Bits cost something: the optimized integers are smaller than plain rounding's, never
    # larger than rounding up, and differ from the dead zone's in a few percent of places.
    assert np.abs(out).sum() < np.abs(np.rint(scaled)).sum()
    changed = np.mean(out != q)
    assert 0.001 < changed < 0.2
    # With free bits the choice is plain rounding; with dear bits, nothing is sent.
    free, _ = optimize_coefficients(scaled, q, rows, cols, slope=0.0)
    np.testing.assert_array_equal(free, np.rint(scaled).astype(np.int32) * (x >= 0.5))
    dear, _ = optimize_coefficients(scaled, q, rows, cols, slope=1e6)
    assert not dear.any()


def test_optimized_rounding_lowers_the_rate_distortion_cost(camera):
    """At one step, the file of the optimized integers costs less in squared error plus
    0.12 q^2 per bit than the file of the dead-zone integers, as the real coder writes them
    (it may hold more nonzero values: rounding up is a candidate), and the contexts it
    hands the writer are those the reader derives (the same bytes)."""
    from svdimage.codec._patch_payload import serialize

    step = 0.04
    scaled, q, rows, cols = _scaled_coefficients(camera, step)
    out, contexts = optimize_coefficients(scaled, q, rows, cols, slope=0.12)
    means = np.zeros((rows, cols), dtype=np.int64)

    def payload(values, known=None):
        plane = {
            "kept": np.arange(12),
            "exponents": np.full(12, 12),
            "basis": np.eye(64, 12, dtype=np.int64),
            "means": means,
            "q": values,
            "rows": rows,
            "cols": cols,
            "contexts": known,
        }
        return serialize([plane], 8)

    assert payload(out, contexts) == payload(out)
    sizes = [len(payload(values)) for values in (q, out)]
    costs = [
        float(np.sum((scaled - values) ** 2)) + 0.12 * 8 * size
        for values, size in zip((q, out), sizes)
    ]
    assert costs[1] < costs[0]


def test_mean_bits_is_what_the_coder_writes_for_the_means(camera):
    """Rate control's estimate of the patch means (their information in their contexts,
    signs and low bits) is within a few percent of what the range coder writes for them,
    less their tables."""
    from svdimage.codec._context import ContextWriter
    from svdimage.codec._patch_payload import _tables, _write_batches

    patches = camera.reshape(128, 4, 128, 4).mean(axis=(1, 3))
    for step in (0.08, 0.02, 0.005):
        means = np.rint(patches * 4 / step).astype(np.int64)
        pieces = list(zip(*_mean_residuals(means)))
        tables_only, coded = ContextWriter(), ContextWriter()
        _tables(tables_only, pieces, N_MEAN_CONTEXTS)
        codes = _tables(coded, pieces, N_MEAN_CONTEXTS)
        for values, contexts in pieces:
            _write_batches(coded, values, contexts, codes)
        written = 8 * (len(coded.getvalue()) - len(tables_only.getvalue()))
        assert abs(written / mean_bits(means) - 1) < 0.05


def test_rounding_in_place_and_halves_given_apart_give_the_same_coefficients(camera):
    # The encoder rounds q in place (overwrite) and, for a second pass, hands only the
    # free half's scaled coefficients: both give what the plain call gives.
    from svdimage.codec._prediction import second_half

    scaled, q, rows, cols = _scaled_coefficients(camera, 0.03)
    assert not q[np.abs(scaled) < 0.5].any()  # what rounding in place asks of q
    plain, plain_contexts = optimize_coefficients(scaled, q, rows, cols, slope=0.12)
    mine = q.copy()
    out, contexts = optimize_coefficients(scaled, mine, rows, cols, slope=0.12, overwrite=True)
    assert out is mine
    np.testing.assert_array_equal(out, plain)
    assert all(np.array_equal(a, b) for a, b in zip(contexts, plain_contexts))
    second = second_half(rows, cols)
    given, given_contexts = optimize_coefficients(
        scaled, plain, rows, cols, slope=0.12, given=(True, False)
    )
    halves, halves_contexts = optimize_coefficients(
        (None, np.ascontiguousarray(scaled[:, second])),
        plain.copy(),
        rows,
        cols,
        slope=0.12,
        given=(True, False),
        overwrite=True,
    )
    np.testing.assert_array_equal(halves, given)
    assert all(np.array_equal(a, b) for a, b in zip(halves_contexts, given_contexts))


def _contexts_on_the_whole_grid(magnitude, j, rows, cols, second):
    """The coefficient contexts as the format describes them, for every patch of the
    grid, then those of one checkerboard half in raster order."""
    grids = magnitude.reshape(-1, rows, cols).astype(np.int64)

    def neighbours(grid):
        padded = np.pad(grid, 1)
        return padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]

    activity = np.zeros((rows, cols), dtype=np.int64)
    if j >= 1:
        activity += 4 * grids[j - 1]
    if j >= 2:
        activity += 2 * grids[j - 2]
    if second:
        activity += neighbours(grids[j])
    elif j >= 1:
        activity += neighbours(grids[j - 1])
    buckets = np.searchsorted(4 * ACTIVITY, activity, side="right")
    contexts = buckets + GROUP_OF[min(j, GROUP_OF.size - 1)] * (len(ACTIVITY) + 1)
    return contexts.ravel()[second_half(rows, cols) == second]


@pytest.mark.parametrize("rows", [1, 2, 5, 8])
@pytest.mark.parametrize("cols", [1, 3, 4, 7])
def test_coefficient_contexts_of_a_half_are_the_formula_on_the_whole_grid(rows, cols):
    """Each half's contexts, computed from slices of its rows, are the format's contexts
    of those patches, in raster order (odd and even sides, one row or one column)."""
    rng = np.random.default_rng(rows * 10 + cols)
    magnitude = np.minimum(rng.geometric(0.4, size=(5, rows * cols)) - 1, 28).astype(np.uint8)
    for j in range(5):
        for second in (False, True):
            got = _coefficient_contexts(magnitude, j, rows, cols, second)
            expected = _contexts_on_the_whole_grid(magnitude, j, rows, cols, second)
            np.testing.assert_array_equal(got, expected)

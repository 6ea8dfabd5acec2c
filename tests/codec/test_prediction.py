"""svdimage.codec._prediction: format 2.3's second checkerboard half, predicted."""

import json

import numpy as np
import pytest

from svdimage import FormatError
from svdimage.codec import decode, encode, inspect
from svdimage.codec._format import unpack
from svdimage.codec._prediction import (
    _BAND,
    add_predictions,
    patch_predictions,
    predictions,
    second_half,
)

from .svdz_files import rebuild, rebuild_text


def _ramp(rows, cols, side):
    y, x = np.mgrid[0 : rows * side, 0 : cols * side].astype(np.float32)
    return (0.3 + 0.004 * x - 0.006 * y).astype(np.float32)


@pytest.mark.parametrize(("rows", "cols"), [(5, 7), (1, 6), (6, 1), (4, 4), (2, 3)])
@pytest.mark.parametrize("side", [4, 8])
def test_a_linear_ramp_is_predicted_exactly_but_in_the_grid_corners(rows, cols, side):
    plane = _ramp(rows, cols, side)
    grid = plane.reshape(rows, side, cols, side)
    predicted = predictions(grid, np.arange(rows), np.arange(cols))  # (rows, cols, s, s)
    patches = grid.transpose(0, 2, 1, 3)
    truth = patches - patches.mean(axis=(2, 3), keepdims=True)
    corner = np.zeros((rows, cols), dtype=bool)
    corner[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    chosen = second_half(rows, cols).reshape(rows, cols) & ~corner
    np.testing.assert_allclose(predicted[chosen], truth[chosen], atol=1e-6)
    np.testing.assert_allclose(predicted.mean(axis=(2, 3)), 0, atol=1e-6)


def test_second_half_is_the_odd_checkerboard():
    board = second_half(3, 4).reshape(3, 4)
    i, j = np.indices((3, 4))
    np.testing.assert_array_equal(board, (i + j) % 2 == 1)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_adding_predictions_band_by_band_is_adding_them_at_once(weight):
    """Planes taller than a band are predicted a band of patch rows at a time, from the
    first half only (a band's additions never feed the next band's predictions)."""
    side, rows, cols = 4, 2 * _BAND + 5, 9
    plane = np.random.default_rng(1).random((rows * side, cols * side), dtype=np.float32)
    grid = plane.reshape(rows, side, cols, side)
    whole = predictions(grid, np.arange(rows), np.arange(cols), weight=weight)
    expected = plane.reshape(rows, side, cols, side).transpose(0, 2, 1, 3).copy()
    board = second_half(rows, cols).reshape(rows, cols)
    expected[board] += whole[board]
    added = plane.copy()
    add_predictions(added, side, weight=weight)
    got = added.reshape(rows, side, cols, side).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_array_equal(got[~board], expected[~board])  # the first half untouched
    rows_of = patch_predictions(plane, side, weight=weight).reshape(-1, side, side)
    np.testing.assert_allclose(rows_of, whole[board], atol=1e-6)


def test_the_weight_follows_what_the_prediction_explains():
    """The encoder's weight: full where the patches are their predictions, none where
    the patches are independent of them (grain), and in between by least squares or by
    the quantizer's cost."""
    from svdimage.codec._patches import _weight_of

    rng = np.random.default_rng(2)
    predicted = rng.normal(size=(4000, 16)).astype(np.float32)
    assert _weight_of(predicted, predicted) == 4
    assert _weight_of(rng.normal(size=(4000, 16)).astype(np.float32), predicted) == 0
    assert _weight_of(0.5 * predicted, predicted) == 2
    basis = np.eye(16)[:, :4]  # the kept components: the first four coordinates
    assert _weight_of(predicted, predicted, basis, 0.1) == 4
    grain = rng.normal(size=(4000, 16)).astype(np.float32)
    assert _weight_of(grain, predicted, basis, 0.1) == 0


def test_prediction_lowers_the_rate_distortion_cost_of_a_photo(camera):
    """Format 2.3 against 2.0 at one step and patch side, as the real coder writes them:
    squared error plus KEEP_FACTOR q^2 per bit (the codec's slope) is lower."""
    from svdimage.codec._patches import KEEP_FACTOR

    step = 0.03
    costs = []
    for version in (2, 3):
        data = encode(camera, step=step, tile=4, version=version)
        error = float(np.sum((decode(data).astype(np.float64) - camera) ** 2))
        costs.append(error + KEEP_FACTOR * step**2 * 8 * len(data))
    assert costs[1] < costs[0]


def test_predicted_files_carry_a_checked_weight_per_plane(small_color):
    data = encode(small_color[0], quality=60, tile=4)
    header, payload, version = unpack(data)
    assert version == (2, 3)
    assert all(plane["prediction"] in range(5) for plane in header["planes"])
    assert inspect(data).version == (2, 3)
    for bad in (5, -1, 1.5, None, "4"):
        planes = [dict(plane, prediction=bad) for plane in header["planes"]]
        with pytest.raises(FormatError, match="prediction"):
            decode(rebuild(dict(header, planes=planes), payload, version=(2, 3)))
    bare = [{k: v for k, v in p.items() if k != "prediction"} for p in header["planes"]]
    with pytest.raises(FormatError, match="keys"):  # 2.3 needs it
        decode(rebuild(dict(header, planes=bare), payload, version=(2, 3)))
    with pytest.raises(FormatError, match="keys"):  # and 2.2 has no such key
        decode(rebuild_text(json.dumps(header).encode(), payload, version=(2, 2)))
    # The weight is what the decoder applies: another weight decodes to another image.
    planes = [dict(plane, prediction=0) for plane in header["planes"]]
    other = decode(rebuild(dict(header, planes=planes), payload, version=(2, 3)))
    assert not np.array_equal(other, decode(data))


def _one_by_one(grid, r, c):
    """The module docstring's prediction of patch ``(r, c)``, in float32, on its own."""
    R, s, C, _ = grid.shape
    f = np.float32
    u = ((np.arange(s) + 1) / (s + 1)).astype(f)
    top = grid[r - 1, s - 1, c] if r > 0 else None
    bottom = grid[r + 1, 0, c] if r < R - 1 else None
    left = grid[r, :, c - 1, s - 1] if c > 0 else None
    right = grid[r, :, c + 1, 0] if c < C - 1 else None
    top, bottom = (bottom if top is None else top), (top if bottom is None else bottom)
    left, right = (right if left is None else left), (left if right is None else right)
    vertical = horizontal = None
    if top is not None:
        vertical = (f(1) - u)[:, None] * top[None, :] + u[:, None] * bottom[None, :]
    if left is not None:
        horizontal = left[:, None] * (f(1) - u)[None, :] + right[:, None] * u[None, :]
    both_rows, both_cols = 0 < r < R - 1, 0 < c < C - 1
    if vertical is None or horizontal is None:
        chosen = vertical if horizontal is None else horizontal
    elif both_rows and not both_cols:
        chosen = vertical
    elif both_cols and not both_rows:
        chosen = horizontal
    else:
        chosen = (vertical + horizontal) * f(0.5)
    chosen = np.zeros((s, s), f) if chosen is None else np.ascontiguousarray(chosen)
    return chosen - chosen.mean(dtype=f)


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 5), (5, 1), (2, 2), (6, 7), (3, 9)])
@pytest.mark.parametrize("side", [4, 8])
def test_predictions_are_the_formula_bit_for_bit(rows, cols, side):
    """The vectorized predictions (built in a plane's layout for speed) are the float32
    arithmetic of the module docstring, patch by patch, to the last bit: the decoded pixels
    of 2.3 files depend on it."""
    rng = np.random.default_rng(rows * 100 + cols)
    plane = (rng.random((rows * side, cols * side), dtype=np.float32) * 3 - 1).astype(np.float32)
    grid = plane.reshape(rows, side, cols, side)
    got = predictions(grid, np.arange(rows), np.arange(cols), weight=0.75)
    for r in range(rows):
        for c in range(cols):
            expected = _one_by_one(grid, r, c) * np.float32(0.75)
            np.testing.assert_array_equal(got[r, c].view(np.uint32), expected.view(np.uint32))

"""Format 2.3's prediction: each patch of the second checkerboard half from its neighbours.

Package-internal; :mod:`svdimage.codec._patches` (the encoder) calls
:func:`patch_predictions` and :mod:`svdimage.codec._patch_payload` (the decoder)
:func:`add_predictions`, both built on :func:`predictions`, so that both predict
from the same pixels the same way.

The patches of a plane's grid split into two checkerboard halves: patch
``(r, c)`` is in the *second* half when ``r + c`` is odd, and then its four
neighbours are all in the first. Once the first half is decoded, each
second-half patch of side ``s`` is predicted from the facing edges of its
neighbours: ``top`` (the bottom row of the patch above), ``bottom`` (the top
row of the patch below), ``left`` and ``right`` (the facing columns). A missing
neighbour (at the plane's edge) takes the opposite one's edge. With
``u_i = (i + 1) / (s + 1)``,

    V[i, j] = (1 - u_i) top[j] + u_i bottom[j]
    H[i, j] = (1 - u_j) left[i] + u_j right[i]

and the prediction is ``(V + H) / 2``; but ``V`` alone where the patch has both
vertical neighbours and lacks a horizontal one (or the grid has one column),
and ``H`` alone in the transposed case: straight lines between the neighbours,
so that a plane that is a linear ramp is predicted exactly, except in the
corners of the grid. Only
the prediction's variations count: its own mean is subtracted (the patch's mean
is coded on its own), and the result is added to the patch, whose coefficients
code what the prediction misses, times the plane's weight (its header key
``prediction``, in quarters). The decoder predicts from the first half as
it rebuilds it (the patches in place, before deblocking), in float32; the
encoder from its own rebuild of the quantized first half, so that it codes what
the decoder will miss (closed loop).

Measured while choosing it, in a simulation on the tuning photos' luma against
the same patches without prediction: +0.08 to +0.53 dB BD-PSNR at patch side 4
and -0.08 to +0.28 dB at side 8 (camera, astronaut, coffee); the real codec's
numbers are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PREDICTION_QUARTERS",
    "predictions",
    "add_predictions",
    "patch_predictions",
    "second_half",
]

#: A plane's prediction weight is ``prediction / PREDICTION_QUARTERS`` (header key, 0-4).
PREDICTION_QUARTERS = 4
#: Rows of patches predicted at a time by :func:`add_predictions` (bounds its temporaries).
_BAND = 64


def second_half(rows: int, cols: int) -> np.ndarray:
    """Whether each patch of a ``rows x cols`` grid (raster order) is in the second
    checkerboard half, the predicted one."""
    i, j = np.indices((rows, cols))
    return ((i + j) % 2 == 1).ravel()


def predictions(
    grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, weight: float = 1.0
) -> np.ndarray:
    """The mean-free predictions (float32, ``(len(rows), len(cols), s, s)``), times
    ``weight``, of the patches at ``rows`` x ``cols`` of ``grid`` (``(R, s, C, s)``: a
    plane's patches in place) from their four neighbours there (the decoder asks only for
    second-half patches, whose neighbours are all in the first half)."""
    R, s, C, _ = grid.shape
    u = ((np.arange(s) + 1) / (s + 1)).astype(np.float32)
    down, up = u, np.float32(1) - u  # weights along i (rows)
    right_w, left_w = u, np.float32(1) - u  # weights along j (columns)
    nr, nc = rows.size, cols.size
    # V and H are built in a plane's layout, (rows, i, cols, j), one i (or j) at a time:
    # NumPy then runs long loops, where the patch layout's (rows, cols, i, j) broadcasts
    # ran loops of s values (2.4x slower at s = 4). Each value is the same float32
    # arithmetic as the module docstring's, so the decoded pixels are the same.
    vertical = horizontal = None
    if R > 1:  # V: between the facing rows above and below, (rows, cols, s) each
        above = grid[:, s - 1][np.maximum(rows - 1, 0)].take(cols, axis=1)
        below = grid[:, 0][np.minimum(rows + 1, R - 1)].take(cols, axis=1)
        above = np.where((rows == 0)[:, None, None], below, above)
        below = np.where((rows == R - 1)[:, None, None], above, below)
        vertical = np.empty((nr, s, nc, s), dtype=np.float32)
        scratch = np.empty_like(above)
        for i in range(s):
            np.multiply(above, up[i], out=vertical[:, i])
            np.multiply(below, down[i], out=scratch)
            vertical[:, i] += scratch
    if C > 1:  # H: between the facing columns to the left and right, (rows, s, cols) each
        down_rows, within = rows[:, None, None], np.arange(s)[None, :, None]
        left = grid[down_rows, within, np.maximum(cols - 1, 0)[None, None, :], s - 1]
        right = grid[down_rows, within, np.minimum(cols + 1, C - 1)[None, None, :], 0]
        left = np.where((cols == 0)[None, None, :], right, left)
        right = np.where((cols == C - 1)[None, None, :], left, right)
        horizontal = np.empty((nr, s, nc, s), dtype=np.float32)
        scratch = np.empty_like(left)
        for j in range(s):
            np.multiply(left, left_w[j], out=horizontal[..., j])
            np.multiply(right, right_w[j], out=scratch)
            horizontal[..., j] += scratch
    if vertical is not None and horizontal is not None:
        # Both: their mean, or the one whose two neighbours are both there.
        out = vertical + horizontal
        out *= np.float32(0.5)
        inner_rows = (rows > 0) & (rows < R - 1)
        inner_cols = (cols > 0) & (cols < C - 1)
        lacking = np.flatnonzero(~inner_cols)  # no horizontal pair: V where a vertical one
        if lacking.size:
            pick = (np.flatnonzero(inner_rows)[:, None], slice(None), lacking[None, :])
            out[pick] = vertical[pick]
        lacking = np.flatnonzero(~inner_rows)  # no vertical pair: H where a horizontal one
        if lacking.size:
            pick = (lacking[:, None], slice(None), np.flatnonzero(inner_cols)[None, :])
            out[pick] = horizontal[pick]
    elif vertical is not None:
        out = vertical
    elif horizontal is not None:
        out = horizontal
    else:  # a single patch: nothing to predict from
        out = np.zeros((nr, s, nc, s), dtype=np.float32)
    # The patch layout, in which each patch's mean is the float32 sum the format names.
    patches = np.ascontiguousarray(out.transpose(0, 2, 1, 3))
    patches -= patches.mean(axis=(2, 3), keepdims=True, dtype=np.float32)
    if weight != 1.0:
        patches *= np.float32(weight)
    return patches


def _second_half_bands(R: int, C: int) -> list[tuple[slice, slice, np.ndarray, np.ndarray]]:
    """The second half's patches by bands of ``_BAND`` patch rows and row parity: ``(row
    slice, column slice, rows, cols)``, each a product of rows and columns (rows of one
    parity hold their second-half patches in every other column)."""
    parts = []
    for top in range(0, R, _BAND):
        bottom = min(R, top + _BAND)
        for parity in (0, 1):
            first_row = top + (parity - top) % 2
            row_slice, col_slice = slice(first_row, bottom, 2), slice(1 - parity, C, 2)
            rows = np.arange(R)[row_slice]
            cols = np.arange(C)[col_slice]
            if rows.size and cols.size:
                parts.append((row_slice, col_slice, rows, cols))
    return parts


def add_predictions(plane: np.ndarray, patch: int, *, weight: float = 1.0) -> None:
    """Add to each second-half patch of ``plane`` (float32, sides multiples of ``patch``,
    the first half already in place) its prediction, in place, a band of patch rows at
    a time."""
    R, C = plane.shape[0] // patch, plane.shape[1] // patch
    grid = plane.reshape(R, patch, C, patch)
    for row_slice, col_slice, rows, cols in _second_half_bands(R, C):
        predicted = predictions(grid, rows, cols, weight=weight)
        grid[row_slice, :, col_slice, :] += predicted.transpose(0, 2, 1, 3)


def patch_predictions(plane: np.ndarray, patch: int, *, weight: float = 1.0) -> np.ndarray:
    """The predictions of the second-half patches of ``plane`` (float32, sides multiples of
    ``patch``) from their neighbours there, as rows in raster order (``patch**2`` values
    each): what :func:`add_predictions` adds (the encoder's view)."""
    R, C = plane.shape[0] // patch, plane.shape[1] // patch
    grid = plane.reshape(R, patch, C, patch)
    # Row r of the grid holds its second-half patches in every other column, from column
    # 1 - r % 2: they start at index starts[r] of the second half in raster order.
    per_row = (C - (1 - np.arange(R) % 2) + 1) // 2
    starts = np.concatenate([[0], np.cumsum(per_row)[:-1]])
    out = np.empty((int(per_row.sum()), patch * patch), dtype=np.float32)
    for _, _, rows, cols in _second_half_bands(R, C):
        index = starts[rows][:, None] + np.arange(cols.size)
        out[index.ravel()] = predictions(grid, rows, cols, weight=weight).reshape(-1, patch**2)
    return out

"""Format 2's contexts: what each integer of a patch payload is coded with, and its cost.

Package-internal; :mod:`svdimage.codec._patch_payload` lays the payload out and
calls these, writer and reader alike, so that both derive every context the same
way; :mod:`svdimage.codec._patches` uses the rates (:func:`optimize_coefficients`,
:func:`mean_bits`).

* Coefficients: each value in a context from the magnitudes already decoded
  around it: the same patch's previous two components and the four neighbours'
  (the previous component for the first checkerboard half, the same component
  for the second), bucketed by ``ACTIVITY`` within the component's group
  (``GROUP_OF``): :func:`_coefficient_contexts`.
* Means: coarse to fine, each level predicted by the mean of its decoded
  neighbours on the coarser grid, in integers, with a context from the
  neighbours' difference (``GRADIENT``): :func:`_refine`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svdimage.codec._context import ALPHABET, EXACT, symbols_of
from svdimage.codec._prediction import second_half

__all__ = ["optimize_coefficients", "mean_bits"]

#: Context buckets of the coefficients' neighbourhood activity (thresholds, in steps).
ACTIVITY = np.array([0.25, 0.75, 1.5, 2.5, 4.0, 7.0, 12.0])
#: Component groups sharing a context: the group of component j is GROUP_OF[min(j, 63)].
GROUP_OF = np.array([0, 1, 2, 3, 3, 4, 4, 4] + [5] * 4 + [6] * 6 + [7] * 10 + [8] * 36)
N_COEF_CONTEXTS = (int(GROUP_OF.max()) + 1) * (len(ACTIVITY) + 1)
#: Mean contexts: one for the coarsest grid, five for each of the two refinement passes.
GRADIENT = np.array([2, 6, 16, 40])
N_MEAN_CONTEXTS = 1 + 2 * (len(GRADIENT) + 1)


def _half(grid: np.ndarray, second: bool) -> np.ndarray:
    """The values of ``grid`` (a plane's patches) at one checkerboard half's patches, in
    raster order: slices of its even and of its odd rows, interleaved (no gather)."""
    return _by_rows(grid[0::2, int(second) :: 2], grid[1::2, 1 - int(second) :: 2], grid.shape[0])


def _by_rows(even: np.ndarray, odd: np.ndarray, rows: int) -> np.ndarray:
    """A half's values in raster order from those of its even rows and its odd rows."""
    wide = even.shape[1]
    pairs = np.empty((even.shape[0], wide + odd.shape[1]), dtype=even.dtype)
    pairs[:, :wide] = even
    pairs[: odd.shape[0], wide:] = odd
    flat = pairs.ravel()
    return flat[: flat.size - odd.shape[1]] if rows % 2 else flat  # no last odd row


def _neighbour_sum(grid: np.ndarray, second: bool) -> np.ndarray:
    """The sum of the four neighbours' values (zero beyond the edges) of one
    checkerboard half's patches of ``grid``, in raster order (:func:`_half`)."""
    rows, cols = grid.shape
    padded = np.zeros((rows + 2, cols + 2), dtype=grid.dtype)
    padded[1:-1, 1:-1] = grid

    def around(row: int, col: int) -> np.ndarray:  # the patches (row::2, col::2)
        high, wide = len(range(row, rows, 2)), len(range(col, cols, 2))
        r, c = slice(row + 1, row + 1 + 2 * high, 2), slice(col + 1, col + 1 + 2 * wide, 2)
        out = padded[r.start - 1 : r.stop - 1 : 2, c].copy()
        out += padded[r.start + 1 : r.stop + 1 : 2, c]
        out += padded[r, c.start - 1 : c.stop - 1 : 2]
        out += padded[r, c.start + 1 : c.stop + 1 : 2]
        return out

    return _by_rows(around(0, int(second)), around(1, 1 - int(second)), rows)


#: ACTIVITY in quarter steps, as a table from 4 x activity (capped) to its bucket.
_BUCKET = np.searchsorted(4 * ACTIVITY, np.arange(4 * int(ACTIVITY[-1]) + 1), side="right")
_BUCKET = _BUCKET.astype(np.uint8)
#: Magnitudes the decoder keeps for the contexts are clipped here: any term of the
#: activity that holds one is already at the top of ``_BUCKET`` (and 4 x 28 fits a byte).
_MAGNITUDE_CAP = _BUCKET.size - 1


def _magnitudes(q: np.ndarray) -> np.ndarray:
    """``|q|`` clipped at ``_MAGNITUDE_CAP``, in bytes: what the contexts are made of."""
    return np.minimum(np.abs(q), _MAGNITUDE_CAP).astype(np.uint8)


def _coefficient_contexts(
    magnitude: np.ndarray, j: int, rows: int, cols: int, second: bool
) -> np.ndarray:
    """Contexts (uint8) of component ``j`` for the patches of one checkerboard half
    (``second``), in raster order; ``magnitude[i]`` holds |Q| of component ``i`` for
    the patches decoded so far (zero elsewhere), clipped at ``_MAGNITUDE_CAP``
    (:func:`_magnitudes`).

    The activity is ``|Q_{j-1}| + |Q_{j-2}| / 2`` of the patch plus the mean of its
    four neighbours' ``|Q_j|`` (second half) or ``|Q_{j-1}|`` (first half), computed
    in integers as four times that. Only the half's patches are computed, from slices
    of the grids (:func:`_half`).
    """
    grids = magnitude.reshape(-1, rows, cols)
    activity = np.zeros((rows * cols + (0 if second else 1)) // 2, dtype=np.int16)
    if j >= 1:  # magnitudes are at most _MAGNITUDE_CAP: no overflow
        activity += _half(grids[j - 1], second)
        activity *= 4
    if j >= 2:
        previous = _half(grids[j - 2], second)
        activity += previous
        activity += previous
    if second:
        activity += _neighbour_sum(grids[j], second)
    elif j >= 1:
        activity += _neighbour_sum(grids[j - 1], second)
    np.minimum(activity, _BUCKET.size - 1, out=activity)
    group = int(GROUP_OF[min(j, GROUP_OF.size - 1)])
    return _BUCKET[activity] + np.uint8(group * (len(ACTIVITY) + 1))


#: The rates of :func:`optimize_coefficients` are measured on bands of RATE_BANDS[0] patch
#: rows, one in every RATE_BANDS[1] rows, on grids of more than RATE_SAMPLED patches
#: (a 1-megapixel plane at patch side 4). At 2**16 instead of 2**18, patch side 8 of a
#: 12-megapixel photo is sampled too: a trial took 2.4 s instead of 3.2 s at 1 bpp, and its
#: file was 0.01 % smaller and 0.0007 dB worse.
RATE_BANDS = (16, 64)
RATE_SAMPLED = 1 << 16


def _contexts_of(q: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """The contexts of coefficients ``q`` (components x patches), as the reader derives
    them: each component's two checkerboard halves in decoding order."""
    magnitude = _magnitudes(q)
    return [
        _coefficient_contexts(magnitude, j, rows, cols, half)
        for j in range(q.shape[0])
        for half in (False, True)
    ]


def _coefficient_rates(q: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bits of each ``(context, symbol)`` of coefficients ``q`` (components x patches), as
    measured on them (on bands of patch rows, ``RATE_BANDS``, when there are more than
    ``RATE_SAMPLED`` patches): ``-log2`` of each symbol's share of its context, counts
    plus a half."""
    height, every = RATE_BANDS
    if rows * cols > RATE_SAMPLED and rows > every:
        chosen = np.flatnonzero(np.arange(rows) % every < height)
        q = q.reshape(q.shape[0], rows, cols)[:, chosen].reshape(q.shape[0], -1)
        rows = chosen.size
    halves = second_half(rows, cols)
    both = (np.flatnonzero(~halves), np.flatnonzero(halves))
    counts = np.zeros(N_COEF_CONTEXTS * ALPHABET, dtype=np.int64)
    for index, contexts in enumerate(_contexts_of(q, rows, cols)):
        values = q[index // 2, both[index % 2]]
        counts += np.bincount(
            contexts.astype(np.int64) * ALPHABET + symbols_of(values)[0],
            minlength=N_COEF_CONTEXTS * ALPHABET,
        )
    table = counts.reshape(N_COEF_CONTEXTS, ALPHABET) + 0.5
    return -np.log2(table / table.sum(axis=1, keepdims=True))


def optimize_coefficients(
    scaled: np.ndarray | tuple[np.ndarray | None, np.ndarray | None],
    q: np.ndarray,
    rows: int,
    cols: int,
    *,
    slope: float,
    given: tuple[bool, bool] = (False, False),
    given_contexts: bool = True,
    overwrite: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rate-distortion optimized rounding of ``scaled`` (coefficients over the step,
    components x patches; ``q`` a first rounding of them). Each coefficient whose
    magnitude ``x`` is at least a half becomes, in decoding order, whichever of 0,
    ``floor(x)`` and ``floor(x) + 1`` costs least in squared error (in steps squared)
    plus ``slope`` times its bits: its symbol's in its context (of the values already
    chosen, with the rates measured on ``q``), its sign and its low bits. Smaller ones
    become 0. The effect of a choice on later contexts is not weighed (greedy).

    ``given``: whether the first and the second checkerboard half keep ``q``'s values
    (format 2.3 rounds the first half beside the second as first rounded, then the
    second half, predicted from the first, beside the first); ``given_contexts=False``
    skips the given halves' contexts (their entries in the list returned are empty).
    ``overwrite``: round ``q`` itself, in place, and return it (no second array of the
    coefficients' size; the encoder holds 43 MiB of them for a 12-megapixel luma plane).
    ``q`` must then be 0 wherever ``|scaled|`` is below a half, as any rounding with a
    dead zone is (those entries are not visited).
    ``scaled`` may also be given per checkerboard half, ``(first, second)``, each
    components x that half's patches (in raster order), ``None`` for a given half.

    Returns the coefficients and, for :func:`serialize`, the contexts of each component's
    two checkerboard halves in decoding order (those of the coefficients returned)."""
    halves = second_half(rows, cols)
    both = [(np.flatnonzero(~halves), False), (np.flatnonzero(halves), True)]
    rates = _coefficient_rates(q, rows, cols).astype(np.float32).ravel()
    out = q if overwrite else np.zeros_like(q)
    magnitude = np.zeros(q.shape, dtype=np.uint8)
    slope32 = np.float32(slope)
    made: list[np.ndarray] = []
    for j in range(q.shape[0]):  # in decoding order: component by component, half by half
        for where, half in both:
            if given[half] and not given_contexts:
                made.append(np.zeros(0, dtype=np.uint8))
            else:
                made.append(_coefficient_contexts(magnitude, j, rows, cols, half))
            if given[half]:
                if not overwrite:
                    out[j, where] = q[j, where]
                magnitude[j, where] = _magnitudes(q[j, where])
                continue
            # This component's half (not all at once: 43 MiB).
            if isinstance(scaled, tuple):
                own = scaled[half]
                assert own is not None, "a half that is not given needs its coefficients"
                part = own[j]
            else:
                part = scaled[j, where]
            live = np.flatnonzero(np.abs(part) >= 0.5)
            if live.size == 0:
                continue
            signed = part[live]
            x = np.abs(signed)
            chosen = where[live]
            contexts = made[-1][live]
            base = contexts.astype(np.int32) * np.int32(ALPHABET)
            low = np.floor(x)
            costs = []
            for candidate in (low, low + 1):
                symbols = np.minimum(candidate, EXACT).astype(np.int32)
                bits = rates[base + symbols] + np.float32(1)  # the symbol and the sign
                escaped = np.flatnonzero(candidate >= EXACT)
                if escaped.size:  # an escape's symbol and its low bits
                    wide = symbols_of(candidate[escaped].astype(np.int64))[0]
                    bits[escaped] = rates[base[escaped] + wide] + 1 + (wide - EXACT)
                costs.append((x - candidate) ** 2 + slope32 * bits)
            best = np.where(costs[1] < costs[0], low + 1, low)
            zero = x * x + slope32 * rates[base] <= np.minimum(costs[0], costs[1])
            rounded = np.where(zero, 0, best).astype(np.int32)
            out[j, chosen] = np.where(signed < 0, -rounded, rounded)
            magnitude[j, chosen] = np.minimum(rounded, _MAGNITUDE_CAP)
    return out, made


def _mean_levels(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Grid shapes from the coarsest (at most 2 x 2) to ``shape``."""
    levels = [shape]
    while levels[-1][0] > 2 or levels[-1][1] > 2:
        r, c = levels[-1]
        levels.append(((r + 1) // 2, (c + 1) // 2))
    return levels[::-1]


def _refine(
    coarse: np.ndarray, shape: tuple[int, int], fill: Callable[..., np.ndarray]
) -> np.ndarray:
    """One coarse-to-fine step of the means: ``fill(predictions, contexts, where)``
    returns the values at ``where`` (a pair of slices) given integer predictions."""
    rows, cols = shape
    grid = np.zeros(shape, dtype=np.int64)
    grid[::2, ::2] = coarse
    left = coarse[:, : cols // 2]
    right = np.concatenate([coarse[:, 1:], coarse[:, -1:]], axis=1)[:, : cols // 2]
    context = 1 + np.searchsorted(GRADIENT, np.abs(left - right), side="right")
    grid[::2, 1::2] = fill((left + right) // 2, context, (slice(None, None, 2), slice(1, None, 2)))
    even = grid[::2]
    up = even[: rows // 2]
    down = np.concatenate([even[1:], even[-1:]], axis=0)[: rows // 2]
    context = 1 + len(GRADIENT) + 1 + np.searchsorted(GRADIENT, np.abs(up - down), side="right")
    grid[1::2] = fill((up + down) // 2, context, (slice(1, None, 2), slice(None)))
    return grid


def _mean_residuals(means: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The means' residuals and contexts, block by block, in decoding order."""
    values: list[np.ndarray] = []
    contexts: list[np.ndarray] = []
    levels = _mean_levels(means.shape)
    pyramid = [means]
    for _ in levels[1:]:
        pyramid.append(pyramid[-1][::2, ::2])
    pyramid = pyramid[::-1]
    values.append(pyramid[0].ravel())
    contexts.append(np.zeros(pyramid[0].size, dtype=np.int64))
    for level in range(1, len(levels)):

        def fill(
            pred: np.ndarray,
            context: np.ndarray,
            where: tuple[slice, slice],
            target: np.ndarray = pyramid[level],
        ) -> np.ndarray:
            actual = target[where]
            values.append((actual - pred).ravel())
            contexts.append(context.ravel())
            return actual

        _refine(pyramid[level - 1], levels[level], fill)
    return values, contexts


def mean_bits(means: np.ndarray) -> float:
    """About the bits the integer patch ``means`` (a grid) cost: each residual's
    information in its context (counts of this grid), plus its sign and low bits; no
    tables. For rate control's size estimates (:meth:`PatchTrials.estimate`)."""
    values, contexts = _mean_residuals(means.astype(np.int64, copy=False))
    residuals, context = np.concatenate(values), np.concatenate(contexts)
    symbols, bits, _ = symbols_of(residuals)
    counts = np.bincount(
        context * ALPHABET + symbols, minlength=N_MEAN_CONTEXTS * ALPHABET
    ).reshape(N_MEAN_CONTEXTS, ALPHABET)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    seen = counts > 0
    information = float(-(counts[seen] * np.log2(shares[seen])).sum())
    return information + float(np.count_nonzero(residuals)) + float(np.maximum(bits - 1, 0).sum())

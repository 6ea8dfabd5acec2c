"""Format 2's payload: how quantized planes are laid out, context-coded and read back.

Package-internal; :mod:`svdimage.codec._patches` decides what is sent (the
components, the basis and the coefficients at a step, rounded by
:func:`optimize_coefficients`, which weighs each integer's bits in the contexts
below) and calls :func:`serialize`; :func:`svdimage.codec.decode` calls
:func:`decode_payload`.

* Means are coded coarse to fine (each level predicted by the mean of its
  decoded neighbours on the coarser grid, in integers), with a context from the
  neighbours' difference (``GRADIENT``).
* Coefficients are coded column by column, each column in two checkerboard
  halves, each value in a context from the magnitudes already decoded around it:
  the same patch's previous two components and the four neighbours' (the
  previous component for the first half, the same component for the second),
  bucketed by ``ACTIVITY`` within the component's group (``GROUP_OF``). See
  :mod:`._context` for how an integer is coded in a context.
* The basis column ``j`` is coded as ``round(V_j 2^e_j)`` in the context of its
  exponent ``e_j`` (``E_MIN`` to ``E_MIN + E_SPAN - 1``).

The payload is a list of range-coded segments: the first holds, for every
plane, its kept-component mask, basis exponents, context tables, basis and
means; then components ``[0, 1), [1, 2), [2, 4), [4, 8), ...`` of all planes,
one segment each, so that a prefix of the file decodes to fewer components
(progressive decoding). Layout::

    uint32 S (number of segments); S x uint32 segment byte lengths; segments

The decoder rebuilds each plane as ``coefficients x step @ basis^T`` plus the
means, puts the patches back in place and deblocks the result
(:func:`svdimage.codec._planes.deblock`, threshold ``DEBLOCK`` steps). Every
count it uses comes from the validated header; every failure is a
:class:`~svdimage.codec.FormatError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from svdimage.codec._context import (
    ALPHABET,
    EXACT,
    ContextReader,
    ContextWriter,
    cheapest_codes,
    check_density,
    join_segments,
    read_segments,
    symbols_of,
)
from svdimage.codec._format import FormatError
from svdimage.codec._planes import deblock

__all__ = [
    "serialize",
    "decode_payload",
    "declared_integers",
    "grid_of",
    "layer_groups",
    "E_MIN",
    "E_SPAN",
    "MAX_SEGMENTS",
    "optimize_coefficients",
]

#: Deblocking threshold, in steps (:func:`svdimage.codec._planes.deblock`); 0 turns it off.
DEBLOCK = 0.8
#: Basis exponents run from E_MIN to E_MIN + E_SPAN - 1.
E_MIN, E_SPAN = 5, 13
#: Context buckets of the coefficients' neighbourhood activity (thresholds, in steps).
ACTIVITY = np.array([0.25, 0.75, 1.5, 2.5, 4.0, 7.0, 12.0])
#: Component groups sharing a context: the group of component j is GROUP_OF[min(j, 63)].
GROUP_OF = np.array([0, 1, 2, 3, 3, 4, 4, 4] + [5] * 4 + [6] * 6 + [7] * 10 + [8] * 36)
N_COEF_CONTEXTS = (int(GROUP_OF.max()) + 1) * (len(ACTIVITY) + 1)
#: Mean contexts: one for the coarsest grid, five for each of the two refinement passes.
GRADIENT = np.array([2, 6, 16, 40])
N_MEAN_CONTEXTS = 1 + 2 * (len(GRADIENT) + 1)
#: Segments of a payload: the head and at most 9 groups of components (``patch**2 <= 256``).
MAX_SEGMENTS = 16


def grid_of(shape: tuple[int, int] | list[int], patch: int) -> tuple[int, int]:
    h, w = shape
    return -(-h // patch), -(-w // patch)


def declared_integers(planes: list[tuple[int, int, int]], patch: int) -> tuple[int, list[int]]:
    """The integers the head segment and each component segment code, as the header
    declares them: ``planes`` holds each plane's ``(rows, cols, components)`` of patches.

    The head: each plane's component mask, exponents, basis and means (its context
    tables are a few thousand integers at most, not counted); a component segment: one
    coefficient per patch and component of its group.
    """
    width = patch * patch
    head = sum(width + k + width * k + rows * cols for rows, cols, k in planes)
    top = max((k for _, _, k in planes), default=0)
    groups = [
        sum(rows * cols * max(0, min(stop, k) - start) for rows, cols, k in planes)
        for start, stop in layer_groups(top)
    ]
    return head, groups


def layer_groups(k: int) -> list[tuple[int, int]]:
    """The component ranges of the payload's segments: [0,1), [1,2), [2,4), ..."""
    groups, start = [], 0
    while start < k:
        stop = min(k, max(1, 2 * start))
        groups.append((start, stop))
        start = stop
    return groups


def _neighbour_sum(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The sum of each patch's four neighbours' ``values`` (zero beyond the edges)."""
    grid = values.reshape(rows, cols)
    out = np.zeros_like(grid)
    out[1:] += grid[:-1]
    out[:-1] += grid[1:]
    out[:, 1:] += grid[:, :-1]
    out[:, :-1] += grid[:, 1:]
    return out.ravel()


def _checkerboard(rows: int, cols: int) -> np.ndarray:
    i, j = np.indices((rows, cols))
    return ((i + j) % 2 == 1).ravel()


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
    """Contexts (uint8) of component ``j`` for every patch; ``magnitude[i]`` holds
    |Q| of component ``i`` for the patches decoded so far (zero elsewhere), clipped at
    ``_MAGNITUDE_CAP`` (:func:`_magnitudes`).

    The activity is ``|Q_{j-1}| + |Q_{j-2}| / 2`` of the patch plus the mean of its
    four neighbours' ``|Q_j|`` (second half) or ``|Q_{j-1}|`` (first half), computed
    in integers as four times that.
    """
    n = rows * cols
    activity = np.zeros(n, dtype=np.int16)  # magnitudes are at most _MAGNITUDE_CAP
    if j >= 1:
        activity += magnitude[j - 1]
        activity *= 4
    if j >= 2:
        activity += magnitude[j - 2]
        activity += magnitude[j - 2]
    if second:
        activity += _neighbour_sum(magnitude[j], rows, cols)
    elif j >= 1:
        activity += _neighbour_sum(magnitude[j - 1], rows, cols)
    np.minimum(activity, _BUCKET.size - 1, out=activity)
    group = int(GROUP_OF[min(j, GROUP_OF.size - 1)])
    return _BUCKET[activity] + np.uint8(group * (len(ACTIVITY) + 1))


#: The rates of :func:`optimize_coefficients` are measured on bands of RATE_BANDS[0] patch
#: rows, one in every RATE_BANDS[1] rows, on grids of more than RATE_SAMPLED patches.
RATE_BANDS = (16, 64)
RATE_SAMPLED = 1 << 18


def _contexts_of(q: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """The contexts of coefficients ``q`` (components x patches), as the reader derives
    them: each component's two checkerboard halves in decoding order."""
    halves = _checkerboard(rows, cols)
    magnitude = _magnitudes(q)
    return [
        _coefficient_contexts(magnitude, j, rows, cols, half)[np.flatnonzero(halves == half)]
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
    halves = _checkerboard(rows, cols)
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
    scaled: np.ndarray, q: np.ndarray, rows: int, cols: int, *, slope: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rate-distortion optimized rounding of ``scaled`` (coefficients over the step,
    components x patches; ``q`` a first rounding of them). Each coefficient whose
    magnitude ``x`` is at least a half becomes, in decoding order, whichever of 0,
    ``floor(x)`` and ``floor(x) + 1`` costs least in squared error (in steps squared)
    plus ``slope`` times its bits: its symbol's in its context (of the values already
    chosen, with the rates measured on ``q``), its sign and its low bits. Smaller ones
    become 0. The effect of a choice on later contexts is not weighed (greedy).

    Returns the coefficients and, for :func:`serialize`, the contexts of each component's
    two checkerboard halves in decoding order (those of the coefficients returned)."""
    halves = _checkerboard(rows, cols)
    both = [(np.flatnonzero(~halves), False), (np.flatnonzero(halves), True)]
    rates = _coefficient_rates(q, rows, cols).astype(np.float32).ravel()
    out = np.zeros_like(q)
    magnitude = np.zeros(q.shape, dtype=np.uint8)
    slope32 = np.float32(slope)
    parts = [scaled[:, where] for where, _ in both]  # each half's, gathered once
    made: list[np.ndarray] = []
    for j in range(q.shape[0]):  # in decoding order: component by component, half by half
        for (where, half), part in zip(both, parts):
            made.append(_coefficient_contexts(magnitude, j, rows, cols, half)[where])
            live = np.flatnonzero(np.abs(part[j]) >= 0.5)
            if live.size == 0:
                continue
            signed = part[j, live]
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


def _groups(contexts: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, counts)``: a stable sort of small integer contexts, and how many
    values each context has (the batches, in ascending context order)."""
    return np.argsort(contexts, kind="stable"), np.bincount(contexts, minlength=count)


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


def _tables(
    writer: ContextWriter, pieces: Iterable[tuple[np.ndarray, np.ndarray]], count: int
) -> np.ndarray:
    """Measure and write the ``count`` context tables of the ``(values, contexts)``
    pieces; return them. Counted a piece at a time: no copy of all the values."""
    counts = np.zeros(count * ALPHABET, dtype=np.int64)
    for values, contexts in pieces:
        counts += np.bincount(
            contexts.astype(np.int64) * ALPHABET + symbols_of(values)[0],
            minlength=count * ALPHABET,
        )
    codes = cheapest_codes(counts.reshape(count, ALPHABET))
    for row in codes:
        writer.table(row)
    return codes


def _write_batches(
    writer: ContextWriter, values: np.ndarray, contexts: np.ndarray, tables: np.ndarray
) -> None:
    """``values`` in batches by ascending context, each batch in its original order."""
    order, counts = _groups(contexts, len(tables))
    ordered = values[order]
    start = 0
    for context in np.flatnonzero(counts):
        stop = start + int(counts[context])
        writer.values(ordered[start:stop], tables[context])
        start = stop


def serialize(coded: list[dict[str, Any]], patch: int) -> bytes:
    """The payload of quantized planes (as ``_patches._quantize`` returns them): the
    head segment, then one segment per group of components (:func:`layer_groups`)."""
    width = patch * patch
    head = ContextWriter()
    plans = []
    for plane in coded:
        kept, q = plane["kept"], plane["q"]
        rows, cols = plane["rows"], plane["cols"]
        mask = np.zeros(width, dtype=np.int64)
        mask[kept] = 1
        head.uniform(mask, 2)
        head.uniform(plane["exponents"] - E_MIN, E_SPAN)
        basis_values = plane["basis"].T.ravel()
        basis_contexts = np.repeat(plane["exponents"] - E_MIN, width)
        mean_values, mean_contexts = _mean_residuals(plane["means"])
        halves = _checkerboard(rows, cols)
        first, second = np.flatnonzero(~halves), np.flatnonzero(halves)
        known = plane.get("contexts")  # made by optimize_coefficients
        if known is None:
            known = _contexts_of(q, rows, cols)
        # Each half of each component: (component, patches, their contexts). The values,
        # q[j, where], are gathered when counted and when written, not held twice.
        blocks = [
            (j, where, known[2 * j + h])
            for j in range(kept.size)
            for h, where in enumerate((first, second))
        ]
        basis_tables = _tables(head, [(basis_values, basis_contexts)], E_SPAN)
        mean_tables = _tables(head, list(zip(mean_values, mean_contexts)), N_MEAN_CONTEXTS)
        coefficient_tables = _tables(
            head, ((q[j, where], contexts) for j, where, contexts in blocks), N_COEF_CONTEXTS
        )
        for column in range(kept.size):
            chosen = slice(column * width, (column + 1) * width)
            _write_batches(head, basis_values[chosen], basis_contexts[chosen], basis_tables)
        for values, contexts in zip(mean_values, mean_contexts):
            _write_batches(head, values, contexts, mean_tables)
        plans.append((blocks, coefficient_tables))
    segments = [head.getvalue()]
    top = max(plane["kept"].size for plane in coded)
    for start, stop in layer_groups(top):
        writer = ContextWriter()
        for (blocks, tables), plane in zip(plans, coded):
            for j in range(start, min(stop, plane["kept"].size)):
                for _, where, contexts in blocks[2 * j : 2 * j + 2]:
                    _write_batches(writer, plane["q"][j, where], contexts, tables)
        segments.append(writer.getvalue())
    head_count, group_counts = declared_integers(
        [(plane["rows"], plane["cols"], plane["kept"].size) for plane in coded], patch
    )
    return join_segments(segments, [head_count, *group_counts])


def decode_payload(
    header: dict[str, Any], payload: bytes, *, partial: bool = False, build: bool = True
) -> list[np.ndarray]:
    """The planes (float32, each of its header shape) of a validated version-2 file.

    Every count comes from the header, whose plane shapes were checked against
    the pixel cap before this runs. Each segment is first checked to be long
    enough for the integers the header puts in it (``_context.MAX_INTEGERS_PER_BYTE``),
    so the work is bounded by the bytes read. ``build=False`` reads and checks
    the whole payload without putting the planes together (``inspect``) and
    returns ``[]``.

    Memory, beyond the output planes: the coefficients (4 bytes per patch and
    component: at most the plane's own size, as ``components <= patch**2``),
    their magnitudes for the contexts (1 byte each, clipped at
    ``_MAGNITUDE_CAP``, which changes no context: a term that large already
    tops the activity scale), and blocks of at most ``_BLOCK_BYTES`` while the patches are put
    in place.
    """
    patch = header["patch"]
    width = patch * patch
    segments = read_segments(payload, partial=partial, most=MAX_SEGMENTS)
    shapes = [(*grid_of(plane["shape"], patch), plane["components"]) for plane in header["planes"]]
    head_count, group_counts = declared_integers(shapes, patch)
    check_density(segments, [head_count, *group_counts])
    head = ContextReader(segments[0])
    states = []
    for plane in header["planes"]:
        rows, cols = grid_of(plane["shape"], patch)
        mask = head.uniform(width, 2)
        kept = np.flatnonzero(mask)
        if kept.size != plane["components"]:
            raise FormatError(
                f"a plane keeps {kept.size} components but its header says {plane['components']}."
            )
        exponents = head.uniform(kept.size, E_SPAN) + E_MIN
        plane_tables = [
            [head.table() for _ in range(size)]
            for size in (E_SPAN, N_MEAN_CONTEXTS, N_COEF_CONTEXTS)
        ]
        basis = np.zeros((width, kept.size))
        for column in range(kept.size):
            integers = head.values(width, plane_tables[0][int(exponents[column]) - E_MIN])
            basis[:, column] = integers / 2.0 ** int(exponents[column])
        means = _decode_means((rows, cols), head, plane_tables[1])
        states.append((rows, cols, kept.size, basis, means, plane_tables[2]))
    top = max((k for _, _, k, _, _, _ in states), default=0)
    q, decoded = _decode_coefficients(segments[1:], states, top)
    if not partial and len(segments) != 1 + len(layer_groups(top)):
        raise FormatError("the payload's segments do not match its components.")
    planes: list[np.ndarray] = []
    if not build:
        return planes
    for index, ((rows, cols, k, basis, means, _), plane) in enumerate(
        zip(states, header["planes"])
    ):
        values, q[index] = q[index], q[index][:0]  # freed once the plane is built
        used = min(k, decoded)
        out = _put_patches(
            values[:used],
            basis[:, :used],
            means,
            plane["step"],
            rows,
            cols,
            patch,
            mean_step=plane["step"] / (patch * plane.get("mean_divisor", 1)),
        )
        del values
        h, w = plane["shape"]
        out = out[:h, :w]
        if DEBLOCK > 0:
            deblock(out, patch, DEBLOCK * plane["step"], in_place=True)
        planes.append(out)
    return planes


def _decode_coefficients(
    segments: list[bytes], states: list[tuple[Any, ...]], top: int
) -> tuple[list[np.ndarray], int]:
    """Each plane's coefficients Q (int32, component x patch) from the component
    segments, and how many components were decoded (fewer for a prefix); |Q| is kept
    beside them (clipped, in a byte) for the contexts, and freed on return."""
    q = [np.zeros((k, r * c), dtype=np.int32) for r, c, k, _, _, _ in states]
    magnitudes = [np.zeros((k, r * c), dtype=np.uint8) for r, c, k, _, _, _ in states]
    decoded = 0
    # Each plane's two checkerboard halves, as patch indices (the same for every component).
    halves = []
    for rows, cols, _, _, _, _ in states:
        board = _checkerboard(rows, cols)
        halves.append(((np.flatnonzero(~board), False), (np.flatnonzero(board), True)))
    for segment, (start, stop) in zip(segments, layer_groups(top)):
        reader = ContextReader(segment)
        for (rows, cols, k, _, _, tables), values, magnitude, plane_halves in zip(
            states, q, magnitudes, halves
        ):
            for j in range(start, min(stop, k)):
                for where, half in plane_halves:
                    contexts = _coefficient_contexts(magnitude, j, rows, cols, half)[where]
                    order, counts = _groups(contexts, len(tables))
                    filled = np.empty(where.size, dtype=np.int64)
                    position = 0
                    for context in np.flatnonzero(counts):
                        count = int(counts[context])
                        filled[position : position + count] = reader.values(count, tables[context])
                        position += count
                    placed = where[order]  # the batches' patches, in coded order
                    values[j, placed] = filled
                    magnitude[j, placed] = np.minimum(np.abs(filled), _MAGNITUDE_CAP)
        decoded = stop
    return q, decoded


#: Bytes of the float32 patches put in place at a time by :func:`_put_patches`.
_BLOCK_BYTES = 1 << 22


def _put_patches(
    values: np.ndarray,
    basis: np.ndarray,
    means: np.ndarray,
    step: float,
    rows: int,
    cols: int,
    patch: int,
    *,
    mean_step: float,
) -> np.ndarray:
    """The plane ``values x step @ basis^T`` plus ``means x mean_step``, patches in place,
    built a band of patch rows at a time (float32)."""
    width = patch * patch
    out = np.empty((rows * patch, cols * patch), dtype=np.float32)
    grid = out.reshape(rows, patch, cols, patch)
    vectors = basis.T.astype(np.float32)
    offsets = (means * mean_step).astype(np.float32)
    band = max(1, _BLOCK_BYTES // (4 * width * cols))
    for top in range(0, rows, band):
        bottom = min(rows, top + band)
        chosen = slice(top * cols, bottom * cols)
        patches = (values[:, chosen].T.astype(np.float32) * np.float32(step)) @ vectors
        patches += offsets[top:bottom].reshape(-1, 1)
        grid[top:bottom] = patches.reshape(bottom - top, cols, patch, patch).transpose(0, 2, 1, 3)
    return out


def _decode_means(
    shape: tuple[int, int], reader: ContextReader, tables: list[np.ndarray]
) -> np.ndarray:
    levels = _mean_levels(shape)
    first = levels[0]
    grid = reader.values(first[0] * first[1], tables[0]).reshape(first)
    for level in levels[1:]:

        def fill(pred: np.ndarray, context: np.ndarray, where: tuple[slice, slice]) -> np.ndarray:
            flat = context.ravel()
            out = np.zeros(flat.size, dtype=np.int64)
            for value in np.unique(flat):
                chosen = flat == value
                out[chosen] = reader.values(int(chosen.sum()), tables[int(value)])
            return pred + out.reshape(pred.shape)

        grid = _refine(grid, level, fill)
    return grid

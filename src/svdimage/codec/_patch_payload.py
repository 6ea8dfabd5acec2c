"""Format 2's payload: how quantized planes are laid out, context-coded and read back.

Package-internal; :mod:`svdimage.codec._patches` decides what is sent (the
components, the basis and the coefficients at a step, rounded by
:func:`~svdimage.codec._patch_contexts.optimize_coefficients`, which weighs each
integer's bits in its context) and calls :func:`serialize`;
:func:`svdimage.codec.decode` calls :func:`decode_payload`. Which context each
integer is coded in is :mod:`svdimage.codec._patch_contexts`'s part; how an
integer is coded in a context, :mod:`svdimage.codec._context`'s.

* Means are coded coarse to fine, level by level.
* Coefficients are coded column by column, each column in two checkerboard
  halves.
* The basis column ``j`` is coded as ``round(V_j 2^e_j)`` in the context of its
  exponent ``e_j`` (``E_MIN`` to ``E_MIN + E_SPAN - 1``).

The payload is a list of range-coded segments: the first holds, for every
plane, its kept-component mask, basis exponents, context tables, basis and
means; then components ``[0, 1), [1, 2), [2, 4), [4, 8), ...`` of all planes,
one segment each, so that a prefix of the file decodes to fewer components
(progressive decoding). Layout::

    uint32 S (number of segments); S x uint32 segment byte lengths; segments

The decoder rebuilds each plane as ``coefficients x step @ basis^T`` (an exact
integer product, :func:`put_patches`) plus the means, puts the patches back in
place and deblocks the result (:func:`svdimage.codec._planes.deblock`,
threshold ``DEBLOCK`` steps); a colour file's planes are built in parallel. Every
count it uses comes from the validated header; every failure is a
:class:`~svdimage.codec.FormatError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from svdimage._linalg import map_on_cores
from svdimage.codec._context import (
    ALPHABET,
    ContextReader,
    ContextWriter,
    cheapest_codes,
    check_density,
    join_segments,
    read_segments,
    symbols_of,
)
from svdimage.codec._format import FormatError
from svdimage.codec._patch_contexts import (
    _MAGNITUDE_CAP,
    N_COEF_CONTEXTS,
    N_MEAN_CONTEXTS,
    _coefficient_contexts,
    _contexts_of,
    _mean_levels,
    _mean_residuals,
    _refine,
)
from svdimage.codec._planes import deblock
from svdimage.codec._prediction import PREDICTION_QUARTERS, add_predictions, second_half

__all__ = [
    "serialize",
    "decode_payload",
    "declared_integers",
    "grid_of",
    "layer_groups",
    "E_MIN",
    "E_SPAN",
    "MAX_SEGMENTS",
    "put_patches",
]

#: Deblocking threshold, in steps (:func:`svdimage.codec._planes.deblock`); 0 turns it off.
DEBLOCK = 0.8
#: Basis exponents run from E_MIN to E_MIN + E_SPAN - 1.
E_MIN, E_SPAN = 5, 13
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


def _groups(contexts: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, counts)``: a stable sort of small integer contexts, and how many
    values each context has (the batches, in ascending context order)."""
    return np.argsort(contexts, kind="stable"), np.bincount(contexts, minlength=count)


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
        halves = second_half(rows, cols)
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
    header: dict[str, Any],
    payload: bytes,
    *,
    partial: bool = False,
    build: bool = True,
    predicted: bool = False,
) -> list[np.ndarray]:
    """The planes (float32, each of its header shape) of a validated version-2 file
    (``predicted``: version 2.3, whose second checkerboard half of patches adds its
    prediction from the first, :func:`~svdimage.codec._prediction.add_predictions`).

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
    if not build:
        return []

    def build_plane(index: int) -> np.ndarray:
        rows, cols, k, basis, means, _ = states[index]
        plane = header["planes"][index]
        values, q[index] = q[index], q[index][:0]  # freed once the plane is built
        used = min(k, decoded)
        out = put_patches(
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
        if predicted:
            add_predictions(out, patch, weight=plane["prediction"] / PREDICTION_QUARTERS)
        h, w = plane["shape"]
        out = out[:h, :w]
        if DEBLOCK > 0:
            deblock(out, patch, DEBLOCK * plane["step"], in_place=True)
        return out

    # The planes are independent from here on: built on every core (luma on one, the
    # two chroma planes, a quarter of its size each, on another).
    return map_on_cores(build_plane, range(len(states)))


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
        board = second_half(rows, cols)
        halves.append(((np.flatnonzero(~board), False), (np.flatnonzero(board), True)))
    for segment, (start, stop) in zip(segments, layer_groups(top)):
        reader = ContextReader(segment)
        for (rows, cols, k, _, _, tables), values, magnitude, plane_halves in zip(
            states, q, magnitudes, halves
        ):
            for j in range(start, min(stop, k)):
                for where, half in plane_halves:
                    contexts = _coefficient_contexts(magnitude, j, rows, cols, half)
                    order, counts = _groups(contexts, len(tables))
                    filled = np.empty(where.size, dtype=np.int64)
                    position = 0
                    for context in np.flatnonzero(counts):
                        count = int(counts[context])
                        filled[position : position + count] = reader.values(count, tables[context])
                        position += count
                    # Only the nonzero values are put in place (both arrays start at zero):
                    # most of a weak component's are zero.
                    nonzero = np.flatnonzero(filled)
                    placed = where[order[nonzero]]  # their patches
                    filled = filled[nonzero]
                    values[j, placed] = filled
                    magnitude[j, placed] = np.minimum(np.abs(filled), _MAGNITUDE_CAP)
        decoded = stop
    return q, decoded


#: Bytes of the float32 patches put in place at a time by :func:`put_patches`.
_BLOCK_BYTES = 1 << 22
#: The largest basis exponent: every basis value times ``2**E_TOP`` is an integer.
E_TOP = E_MIN + E_SPAN - 1


def put_patches(
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
    built a band of patch rows at a time (float32).

    Exactly specified, so that the patches do not depend on the BLAS library, its
    kernels or the thread count: each basis value is ``integer / 2**e`` with
    ``e <= E_TOP``, so ``values @ (basis 2**E_TOP)^T`` is a product of integers, exact
    in float64 in any order of summation (conforming files keep every sum far below
    ``2**53``); it is then multiplied by ``step / 2**E_TOP`` in float64, rounded to
    float32, and the mean (``float32(mean x mean_step)``) added in float32.
    """
    width = patch * patch
    out = np.empty((rows * patch, cols * patch), dtype=np.float32)
    grid = out.reshape(rows, patch, cols, patch)
    numerators = np.ascontiguousarray(basis.T * 2.0**E_TOP)  # integers, exactly
    scale = float(step) / 2.0**E_TOP
    offsets = (means * mean_step).astype(np.float32)
    band = max(1, _BLOCK_BYTES // (4 * width * cols))
    for top in range(0, rows, band):
        bottom = min(rows, top + band)
        chosen = slice(top * cols, bottom * cols)
        sums = values[:, chosen].T.astype(np.float64) @ numerators
        sums *= scale
        patches = sums.astype(np.float32)
        del sums
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

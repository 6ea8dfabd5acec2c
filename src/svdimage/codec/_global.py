"""Format 3.0: the global SVD of each plane, range-coded vector by vector.

Package-internal. :class:`svdimage.codec._tiles.Trials` quantizes a plane's
global SVD (:func:`quantize`) and :func:`serialize` writes it;
:func:`svdimage.codec.decode` calls :func:`decode_payload`. The design:

* A plane ``P`` of ``h x w`` pixels is stored as its mean and the truncated SVD
  of ``P`` less that mean, the singular values folded into the vectors:
  ``a_j = sqrt(s_j) u_j / q`` and ``b_j = sqrt(s_j) v_j / q``, rounded, so
  that ``P ~ mean + q^2 sum_j a_j b_j^T`` with one quantizer step ``q`` per
  plane (as format 1.1's global files).
* Each vector is coded as it is or as its first differences, whichever is
  smaller (the leading singular vectors of a photo are smooth, the trailing
  ones are not: on a 12 MP photo at 1.5 MB, two vectors in three are
  smoother as differences), in one of the file's context tables, whose index
  (its *class*) is sent with it. The writer starts from each vector's scale
  class (``floor(8 log2(1 + mean |r|))`` of the integers ``r`` it codes), then
  twice moves each vector to the table that codes it in the fewest bits and
  measures the tables again (:func:`_classes`). One set of tables serves every
  plane.
* Everything goes through the range coder of :mod:`._context`, in segments:
  the head (means and tables), then components ``[0, 1), [1, 2), [2, 4), ...,
  [16, 32)``, then every 32 components, so that any prefix of the file
  decodes to the components it holds completely (progressive decoding).

Against format 1.1 (the same integers as zigzag varints under LZMA2 preset
9e): 9 % smaller on a 12 MP photo at 1.5 MB (13 % for the median evaluation
photo and rank of ``benchmarks/bench_global.py``), and coded about 20 times faster,
which is what lets :class:`svdimage.codec.GlobalSizes` price real files in a
rank search. The layout is specified in ``docs/format.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from svdimage.codec._context import (
    ALPHABET,
    FINE_WEIGHTS,
    ContextReader,
    ContextWriter,
    cheapest_codes,
    check_density,
    codes_of_counts,
    join_segments,
    read_segments,
    symbols_of,
)
from svdimage.codec._format import MAX_SIDE, FormatError

__all__ = [
    "GlobalPlane",
    "quantize",
    "serialize",
    "decode_payload",
    "layer_groups",
    "declared_integers",
    "largest_segment_table",
    "MEAN_DIVISOR",
    "MAX_CLASSES",
]

#: The mean is quantized with step ``q / MEAN_DIVISOR``.
MEAN_DIVISOR = 8
#: Scale classes (context tables) a file may have.
MAX_CLASSES = 64
#: Scale classes per octave of the mean magnitude (plus one) of a vector's integers.
CLASSES_PER_OCTAVE = 8
#: Rounds in which the writer moves each vector to the table that codes it best.
REASSIGNMENTS = 2
#: Components per segment once the doubling ranges reach it.
SEGMENT_COMPONENTS = 32
#: The mean's integer lies in ``[-MEAN_OFFSET, MEAN_OFFSET)`` (two uniform 12-bit halves).
MEAN_OFFSET = 1 << 23
#: Components decoded into one matrix product (float32 blocks of the plane's vectors).
_PRODUCT_COMPONENTS = 64
#: Rows of a plane updated by one product: about this many bytes of them.
_PRODUCT_BYTES = 1 << 23


@dataclass
class GlobalPlane:
    """One plane's quantized global SVD: ``mean * q / MEAN_DIVISOR + q^2 a b^T``."""

    mean: int
    a: np.ndarray  # (h, k) int32
    b: np.ndarray  # (w, k) int32


def quantize(
    u: np.ndarray,
    s: np.ndarray,
    vt: np.ndarray,
    mean: float,
    *,
    step: float,
    keep: int,
) -> GlobalPlane:
    """The first ``keep`` components of a plane's SVD (``u`` (h, K) and ``vt`` (K, w) of
    the mean-free plane, float32; ``s`` its singular values) at quantizer ``step``."""
    root = (np.sqrt(np.asarray(s[:keep], dtype=np.float64)) / step).astype(np.float32)
    a = np.rint(u[:, :keep] * root).astype(np.int32)
    b = np.rint(vt[:keep].T * root).astype(np.int32)
    level = int(np.rint(mean / (step / MEAN_DIVISOR)))
    if not -MEAN_OFFSET <= level < MEAN_OFFSET:
        raise ValueError(f"a plane mean of {mean} cannot be coded at step {step}.")
    return GlobalPlane(mean=level, a=a, b=b)


def layer_groups(k: int) -> list[tuple[int, int]]:
    """The component ranges of the segments after the head: [0,1), [1,2), [2,4), ...,
    [16,32), then every ``SEGMENT_COMPONENTS`` components."""
    groups, start = [], 0
    while start < k:
        stop = min(
            k, max(1, 2 * start) if start < SEGMENT_COMPONENTS else start + SEGMENT_COMPONENTS
        )
        groups.append((start, stop))
        start = stop
    return groups


def largest_segment_table() -> int:
    """Bytes of the longest segment table a valid file can have (its count and lengths),
    for readers of a prefix that must hold it."""
    return 4 * (2 + len(layer_groups(MAX_SIDE)))


def declared_integers(planes: list[tuple[int, int, int]]) -> tuple[int, list[int]]:
    """The integers the head and each component segment hold, from the header's planes
    (``(h, w, components)`` each): the head two per plane (its tables are not counted);
    a component segment, per plane and component, the vectors' ``h + w`` integers and
    each vector's form and class."""
    top = max((k for _, _, k in planes), default=0)
    groups = [
        sum((h + w + 4) * max(0, min(stop, k) - start) for h, w, k in planes)
        for start, stop in layer_groups(top)
    ]
    return 2 * len(planes), groups


def _coded(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(forms, integers)`` of every column of an integer matrix, as rows: 0 and the
    column itself, or 1 and its first differences, whichever has the smaller sum of
    magnitudes."""
    wide = np.ascontiguousarray(matrix.T, dtype=np.int64)
    differences = np.diff(wide, axis=1, prepend=0)
    forms = np.abs(differences).sum(axis=1) < np.abs(wide).sum(axis=1)
    rows = np.where(forms[:, None], differences, wide)
    return forms.astype(np.int64), rows


def _scale_classes(rows: np.ndarray) -> np.ndarray:
    """Each row's scale class: ``CLASSES_PER_OCTAVE log2(1 + mean |integer|)``, capped."""
    if not rows.shape[1]:
        return np.zeros(rows.shape[0], dtype=np.int64)
    mean = np.abs(rows).sum(axis=1) / rows.shape[1]  # exact sums, as np.mean of each row
    classes = [int(CLASSES_PER_OCTAVE * np.log2(1.0 + float(m))) for m in mean]
    return np.minimum(np.array(classes, dtype=np.int64), MAX_CLASSES - 1)


def _histograms(rows: np.ndarray) -> np.ndarray:
    """Each row's count of each symbol, ``(rows, ALPHABET)``."""
    symbols = symbols_of(rows.ravel())[0].reshape(rows.shape)
    offsets = np.arange(rows.shape[0], dtype=np.int64)[:, None] * ALPHABET
    counts = np.bincount((symbols + offsets).ravel(), minlength=rows.shape[0] * ALPHABET)
    return counts.reshape(rows.shape[0], ALPHABET)


def _tables(histograms: np.ndarray, classes: np.ndarray, count: int) -> np.ndarray:
    counts = np.zeros((max(count, 1), ALPHABET), dtype=np.int64)
    np.add.at(counts, classes, histograms)
    return cheapest_codes(counts, weights=FINE_WEIGHTS)[:count]


def _classes(
    histograms: np.ndarray, scale_classes: np.ndarray, *, rounds: int = REASSIGNMENTS
) -> np.ndarray:
    """Each vector's class: first its scale class; then, ``rounds`` times, the class whose
    table (measured on the classes so far) codes its symbols in the fewest bits, the
    classes left empty dropped and the rest renumbered in order."""
    if not len(histograms):
        return np.zeros(0, dtype=np.int64)
    classes = scale_classes
    for _ in range(rounds):
        used, classes = np.unique(classes, return_inverse=True)
        counts = np.zeros((used.size, ALPHABET), dtype=np.int64)
        np.add.at(counts, classes, histograms)
        weights = FINE_WEIGHTS[codes_of_counts(counts, weights=FINE_WEIGHTS)].astype(np.float64)
        # A symbol a table leaves at weight 0 still codes (constriction keeps every symbol
        # possible), at about 24 bits.
        bits = -np.log2(np.maximum(weights / weights.sum(axis=1, keepdims=True), 2.0**-24))
        classes = np.argmin(histograms @ bits.T, axis=1)
    return np.unique(classes, return_inverse=True)[1].astype(np.int64)


def serialize(planes: list[GlobalPlane]) -> bytes:
    """The payload of quantized global planes: the head, then the component segments.

    Every vector's form, symbol counts and scale class are measured a plane's matrix
    at a time; then the vectors are written in payload order: by component, then plane,
    ``a`` before ``b``."""
    top = max((p.a.shape[1] for p in planes), default=0)
    groups = layer_groups(top)
    # (forms, integers as rows, histograms, scale classes) of each plane's a and b.
    measured = []
    for plane in planes:
        for matrix in (plane.a, plane.b):
            forms, rows = _coded(matrix)
            measured.append((forms, rows, _histograms(rows), _scale_classes(rows)))
    # (index into measured, component) of every vector, segment by segment, in payload order.
    segment_vectors = [
        [
            (2 * index + side, j)
            for j in range(start, stop)
            for index, plane in enumerate(planes)
            if j < plane.a.shape[1]
            for side in (0, 1)
        ]
        for start, stop in groups
    ]
    order = [vector for segment in segment_vectors for vector in segment]
    histograms = np.array([measured[m][2][j] for m, j in order], dtype=np.int64)
    histograms = histograms.reshape(-1, ALPHABET)
    scales = np.array([measured[m][3][j] for m, j in order], dtype=np.int64)
    found = _classes(histograms, scales)
    count = int(found.max()) + 1 if found.size else 0
    tables = _tables(histograms, found, count)
    head = ContextWriter()
    for plane in planes:
        head.uniform(list(divmod(plane.mean + MEAN_OFFSET, 1 << 12)), 1 << 12)
    head.uniform([count], MAX_CLASSES + 1)
    for row in tables:
        head.table(row, weights=FINE_WEIGHTS)
    segments = [head.getvalue()]
    classes = iter(found.tolist())
    for vectors in segment_vectors:
        writer = ContextWriter()
        for m, j in vectors:
            forms, rows = measured[m][0], measured[m][1]
            c = next(classes)
            writer.uniform([int(forms[j])], 2)
            if count > 1:  # one table needs no class
                writer.uniform([c], count)
            writer.values(rows[j], tables[c], weights=FINE_WEIGHTS)
        segments.append(writer.getvalue())
    head_count, group_counts = declared_integers(
        [(p.a.shape[0], p.b.shape[0], p.a.shape[1]) for p in planes]
    )
    return join_segments(segments, [head_count, *group_counts])


def decode_payload(
    header: dict[str, Any], payload: bytes, *, partial: bool = False, build: bool = True
) -> list[np.ndarray]:
    """The planes (float32, each of its header shape) of a validated version-3.0 file.

    Each segment is checked against the integers the header puts in it
    (``_context.MAX_INTEGERS_PER_BYTE``) before any is decoded, so the work is
    bounded by the bytes read. A prefix (``partial``) decodes to the
    components of its complete segments. ``build=False`` checks the whole
    payload without building the planes (``inspect``) and returns ``[]``.

    Memory, beyond the float32 planes: one vector's integers at a time and
    blocks of ``_PRODUCT_COMPONENTS`` float32 vectors per plane.
    """
    shapes = [(*plane["shape"], plane["components"]) for plane in header["planes"]]
    top = max((k for _, _, k in shapes), default=0)
    groups = layer_groups(top)
    segments = read_segments(payload, partial=partial, most=1 + len(groups))
    if not partial and len(segments) != 1 + len(groups):
        raise FormatError("the payload's segments do not match its components.")
    head_count, group_counts = declared_integers(shapes)
    check_density(segments, [head_count, *group_counts])
    head = ContextReader(segments[0])
    means = []
    for plane in header["planes"]:
        high, low = head.uniform(2, 1 << 12)
        means.append(
            (int(high) * (1 << 12) + int(low) - MEAN_OFFSET) * plane["step"] / MEAN_DIVISOR
        )
    count = int(head.uniform(1, MAX_CLASSES + 1)[0])
    tables = [head.table(weights=FINE_WEIGHTS) for _ in range(count)]
    planes = []
    if build:
        planes = [
            np.full(tuple(p["shape"]), m, dtype=np.float32) for p, m in zip(header["planes"], means)
        ]
    pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in shapes]
    for segment, (start, stop) in zip(segments[1:], groups):
        reader = ContextReader(segment)
        for j in range(start, stop):
            for index, (h, w, k) in enumerate(shapes):
                if j >= k:
                    continue
                a, b = (_read_vector(reader, n, tables) for n in (h, w))
                if build:
                    pending[index].append((a, b))
                    if len(pending[index]) == _PRODUCT_COMPONENTS:
                        _apply(planes[index], pending[index], header["planes"][index]["step"])
        for index in range(len(shapes)):
            if build:
                _apply(planes[index], pending[index], header["planes"][index]["step"])
    return planes


def _read_vector(reader: ContextReader, length: int, tables: list[np.ndarray]) -> np.ndarray:
    if not tables:
        raise FormatError("a component is coded but the file has no context table.")
    form = int(reader.uniform(1, 2)[0])
    table = tables[int(reader.uniform(1, len(tables))[0]) if len(tables) > 1 else 0]
    integers = reader.values(length, table, weights=FINE_WEIGHTS)
    return np.cumsum(integers) if form else integers


def _apply(plane: np.ndarray, pending: list[tuple[np.ndarray, np.ndarray]], step: float) -> None:
    """Add ``q^2 sum a b^T`` of the pending vectors to the plane (float32), and forget them."""
    if not pending:
        return
    a = np.stack([a for a, _ in pending], axis=1).astype(np.float32)
    a *= np.float32(step * step)
    b = np.stack([b for _, b in pending], axis=0).astype(np.float32)
    pending.clear()
    strip = max(1, _PRODUCT_BYTES // (4 * plane.shape[1]))
    for top in range(0, plane.shape[0], strip):
        plane[top : top + strip] += a[top : top + strip] @ b

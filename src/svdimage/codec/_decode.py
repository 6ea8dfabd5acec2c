"""The decoder, and ``inspect``: symbols back to planes, planes back to an image.

Package-internal; the public functions are re-exported by :mod:`svdimage.codec`.
:func:`read_components` parses and checks the whole payload against the
header without building any plane, so :func:`inspect` runs exactly the checks
:func:`decode` runs.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from svdimage._validation import DEFAULT_MAX_PIXELS
from svdimage.codec._context import PrefixTooShortError
from svdimage.codec._entropy import SymbolReader, capacity, count_symbols
from svdimage.codec._format import (
    FRAMING_BYTES,
    GLOBAL_VERSION,
    HEAD_BYTES,
    PREDICTED_VERSION,
    TILE_VERSIONS,
    FormatError,
    TruncatedFileError,
    check_length,
    opened,
    read_head,
    unpack,
)
from svdimage.codec._global import decode_payload as decode_global
from svdimage.codec._global import largest_segment_table
from svdimage.codec._patch_payload import decode_payload, grid_of
from svdimage.codec._planes import DEBLOCK_STRENGTH, deblock, double, from_planes, grid
from svdimage.codec._tiled import decode_tiled, tile_regions
from svdimage.io import to_uint8

__all__ = ["decode", "load", "read_file", "inspect", "FileInfo", "read_components"]

#: The first version whose tiled files are deblocked when decoded (1.0 files are not).
DEBLOCK_SINCE = (1, 1)


#: Symbols (and tiles) handled per step; with the rank-1 products below this keeps the
#: decoder's own working memory to a few tens of MiB whatever the file declares.
_BLOCK_SYMBOLS = 1 << 18
_BLOCK_PRODUCT_BYTES = 1 << 23
#: Components of a one-tile (global) plane applied together, as one matrix product.
_GLOBAL_BATCH = 32


def read_components(
    header: dict[str, Any],
    payload: bytes,
    *,
    partial: bool = False,
    canvas: _Canvas | None = None,
) -> list[np.ndarray]:
    """Parse and check the payload of a validated header, block by block.

    The symbols are read in bounded chunks and handed to ``canvas`` (the
    decoder's image) as they come; :func:`inspect` passes none and so runs
    the same checks without building anything.

    Returns
    -------
    ranks : list of ndarray of uint16
        Each plane's tile ranks.

    Raises
    ------
    FormatError
        When the symbols do not match what the header and the tile ranks
        describe (too few, too many, ranks out of range, bad LZMA data), or
        when they declare more values than the payload's size can hold
        (:func:`svdimage.codec._entropy.capacity`). With a canvas, the
        payload's integers are counted (:func:`~svdimage.codec._entropy.count_symbols`)
        and must match what is declared before the image is allocated.
    """
    planes = header["planes"]
    grids = [grid(p["shape"], header["tile"]) for p in planes]
    counts = [rows * cols for rows, cols, _, _ in grids]
    room = capacity(len(payload))
    if not partial and 2 * sum(counts) > room:
        raise FormatError(
            f"header declares {sum(counts):,} tiles, more than a {len(payload):,}-byte payload "
            "can describe."
        )
    reader = SymbolReader(payload, partial=partial)
    means: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    for n, plane in zip(counts, planes):
        dc = reader.read(n)
        rank = reader.read(n)
        if rank.size < n:
            raise FormatError("payload is too short for the tile means and ranks.")
        if rank.min(initial=0) < 0 or rank.max(initial=0) > plane["max_rank"]:
            raise FormatError(f"a tile rank is outside 0..{plane['max_rank']}.")
        if canvas is not None:
            means.append(np.cumsum(dc) * plane["dc_step"])
        ranks.append(rank.astype(np.uint16))
        del dc, rank
    declared = sum(int(r.sum(dtype=np.int64)) * (g[2] + g[3]) for r, g in zip(ranks, grids))
    if not partial and reader.consumed + declared > room:
        raise FormatError(
            f"tile ranks declare {reader.consumed + declared:,} values, more than a "
            f"{len(payload):,}-byte payload can hold (at most {room:,})."
        )
    if canvas is not None and not partial:
        # Before the image is allocated: the stream holds exactly what is declared.
        held = count_symbols(payload)
        if held != reader.consumed + declared:
            raise FormatError(
                f"payload holds {held:,} integers; its header and tile ranks describe "
                f"{reader.consumed + declared:,}."
            )
    if canvas is not None:
        canvas.start(means)
    del means
    top = max((p["max_rank"] for p in planes), default=0)
    for i in range(top):
        for index, (rank, (_, _, th, tw)) in enumerate(zip(ranks, grids)):
            block = max(1, min(_BLOCK_SYMBOLS // (th + tw), _BLOCK_PRODUCT_BYTES // (8 * th * tw)))
            for first in range(0, rank.size, block):
                chosen = first + np.flatnonzero(rank[first : first + block] > i)
                if chosen.size == 0:
                    continue
                values = reader.read(chosen.size * (th + tw))
                if values.size < chosen.size * (th + tw):
                    if not partial:
                        raise FormatError("payload is too short for the ranks its tiles claim.")
                    complete = values.size // (th + tw)
                    rank[chosen[complete:]] = i  # these tiles stop before component i
                    chosen = chosen[:complete]
                    values = values[: complete * (th + tw)]
                    if chosen.size == 0:
                        continue
                factors = values.reshape(chosen.size, th + tw)
                a, b = factors[:, :th], factors[:, th:]
                if i == 0:
                    a, b = np.cumsum(a, axis=1), np.cumsum(b, axis=1)
                if canvas is not None:
                    canvas.add(index, chosen, a, b)
    reader.finish()
    if canvas is not None:
        canvas.flush()
    return ranks


class _Canvas:
    """The decoded image, built in place in one float64 buffer.

    Each plane lives in the buffer (colour planes as channels; 4:2:0 chroma
    in the top-left corner of its channel) laid out as tiles, so that tile
    means and rank-1 terms are added where they belong and putting the tiles
    together costs nothing. Deblocking runs in place; colour conversion and
    clipping run in strips of rows into the float32 output. The buffer is
    allocated by :meth:`start`, after the header and the tile ranks passed
    every check. Peak memory: the output, the float64 buffer (twice the
    output) and a bounded working set (the block sizes above).

    Why float64 and not the float32 output itself: the format's arithmetic
    is float64 (the reference decoder, and the golden files), and deblocking
    decides at exact ties (a step between flat tiles equal to the threshold),
    where float32 rounding flips the decision and moves pixels by a
    quantizer step, not by an ulp.
    """

    def __init__(self, header: dict[str, Any], grids: list[tuple[int, int, int, int]]) -> None:
        self.header = header
        self.grids = grids
        self.pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in grids]

    def start(self, means: list[np.ndarray]) -> None:
        shape = self.header["shape"]
        padded = (max(g[0] * g[2] for g in self.grids), max(g[1] * g[3] for g in self.grids))
        self.buffer = np.empty(padded + tuple(shape[2:]), dtype=np.float64)
        self.planes = []
        for c, (rows, cols, th, tw) in enumerate(self.grids):
            channel = self.buffer if len(shape) == 2 else self.buffer[:, :, c]
            view = channel[: rows * th, : cols * tw].reshape(rows, th, cols, tw)
            view[:] = means[c].reshape(rows, 1, cols, 1)
            self.planes.append(view)

    def add(self, index: int, chosen: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        rows, cols, _, _ = self.grids[index]
        if rows * cols == 1:  # the global SVD: batch components into one product
            self.pending[index].append((a[0], b[0]))
            if len(self.pending[index]) >= _GLOBAL_BATCH:
                self._apply_global(index)
            return
        scale = self.header["planes"][index]["step"] ** 2
        r, c = np.divmod(chosen, cols)
        self.planes[index][r, :, c, :] += scale * a[:, :, None] * b[:, None, :]

    def _apply_global(self, index: int) -> None:
        pending, self.pending[index] = self.pending[index], []
        if not pending:
            return
        scale = self.header["planes"][index]["step"] ** 2
        A = scale * np.stack([a for a, _ in pending], axis=1)
        B = np.stack([b for _, b in pending], axis=0).astype(np.float64)
        plane = self.planes[index][0, :, 0, :]
        strip = max(1, _BLOCK_PRODUCT_BYTES // (8 * plane.shape[1]))
        for top in range(0, plane.shape[0], strip):
            plane[top : top + strip] += A[top : top + strip] @ B

    def flush(self) -> None:
        for index in range(len(self.grids)):
            self._apply_global(index)

    def finish(self, version: tuple[int, int]) -> np.ndarray:
        """Deblock, convert colour and clip, strip by strip, into a new float32 image."""
        header = self.header
        tile = header["tile"]
        shape = tuple(header["shape"])
        M, N = shape[:2]
        channels = [self.buffer] if len(shape) == 2 else [self.buffer[:, :, c] for c in range(3)]
        if tile is not None and DEBLOCK_STRENGTH > 0 and version >= DEBLOCK_SINCE:
            for channel, plane in zip(channels, header["planes"]):
                h, w = plane["shape"]
                deblock(channel[:h, :w], tile, DEBLOCK_STRENGTH * plane["step"], in_place=True)
        image = self.buffer[:M, :N]
        out = np.empty(shape, dtype=np.float32)
        strip = max(2, (_BLOCK_PRODUCT_BYTES // (8 * 3 * N)) // 2 * 2)
        for top in range(0, M, strip):
            rows = slice(top, min(top + strip, M))
            if len(shape) == 3 and header["color"] == "ycbcr":
                out[rows] = np.clip(self._rgb_rows(rows), 0.0, 1.0)
            else:
                out[rows] = np.clip(image[rows], 0.0, 1.0)
        return out

    def _rgb_rows(self, rows: slice) -> np.ndarray:
        """RGB of the output rows ``rows`` from the Y, Cb, Cr planes (float64)."""
        M, N = self.header["shape"][:2]
        y = self.buffer[rows, :N, 0].astype(np.float64)
        h, w = self.header["planes"][1]["shape"]
        if (h, w) == (M, N):
            cb = self.buffer[rows, :N, 1].astype(np.float64)
            cr = self.buffer[rows, :N, 2].astype(np.float64)
        else:  # 4:2:0: upsample the coarse rows this strip needs (3/4-1/4, edges repeated)
            fine = np.arange(rows.start, rows.stop)
            coarse = fine // 2
            neighbour = np.clip(np.where(fine % 2 == 0, coarse - 1, coarse + 1), 0, h - 1)
            cb, cr = (
                double(
                    0.75 * self.buffer[coarse, :w, c].astype(np.float64)
                    + 0.25 * self.buffer[neighbour, :w, c],
                    axis=1,
                )[:, :N]
                for c in (1, 2)
            )
        return from_planes([y, cb, cr], (y.shape[0], N, 3), "ycbcr")


def decode(
    data: bytes,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Decode ``.svdz`` bytes to a float32 image in [0, 1], or to 8-bit pixels.

    Parameters
    ----------
    data : bytes
    max_bytes : int, optional
        Use only the first ``max_bytes`` bytes of the file: a truncated
        payload decodes to the components it holds completely (progressive
        decoding; the payload checksum is then not checked).
    max_pixels : int or None, optional
        Refuse files that claim more pixels than this.
    dtype : {numpy.float32, numpy.uint8}, optional
        ``numpy.uint8`` gives :func:`svdimage.io.to_uint8` of the float32
        image (the same pixels), converted as it is built: for writing an
        8-bit file, a quarter of the memory and no second pass.

    Returns
    -------
    image : (M, N) or (M, N, 3) ndarray of float32 (or uint8)

    Raises
    ------
    FormatError
        For any malformed, truncated, tampered or unsupported file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}.")
    _check_max_bytes(max_bytes)
    eight_bits = _eight_bits(dtype)
    partial = max_bytes is not None
    whole = data
    if partial:
        data = bytes(data[:max_bytes])
    try:
        header, payload, version = unpack(bytes(data), max_pixels=max_pixels, partial=partial)
    except TruncatedFileError as error:
        raise _progressive_hint(error, read_head(data, max_pixels=max_pixels)[1]) from None
    if version in TILE_VERSIONS:
        if partial:
            raise FormatError(
                "a tiled (version 2.1 or 2.4) file decodes whole tiles; max_bytes does not "
                "apply to it."
            )
        image = decode_tiled(data, max_pixels=max_pixels)
        assert image is not None
        return to_uint8(image) if eight_bits else image
    if version[0] == 2 or version == GLOBAL_VERSION:
        try:
            if version == GLOBAL_VERSION:
                planes = decode_global(header, payload, partial=partial)
            else:
                predicted = version == PREDICTED_VERSION
                planes = decode_payload(header, payload, partial=partial, predicted=predicted)
        except PrefixTooShortError as short:
            least = len(data) - len(payload) + _least_payload(whole, short)
            means = "the plane means" if version == GLOBAL_VERSION else "the patch means"
            raise FormatError(
                f"the first {len(data):,} bytes hold no complete part of this file's stream: "
                f"the smallest prefix that decodes (to {means}, with no component yet) "
                f"is {least:,} bytes; pass max_bytes of at least {least:,}."
            ) from None
        return _finish_v2(header, planes, eight_bits=eight_bits)
    canvas = _Canvas(header, [grid(p["shape"], header["tile"]) for p in header["planes"]])
    read_components(header, payload, partial=partial, canvas=canvas)
    image = canvas.finish(version)
    return to_uint8(image) if eight_bits else image


def _eight_bits(dtype: DTypeLike) -> bool:
    """Whether ``decode``'s ``dtype`` asks for 8-bit pixels (float32 or uint8 only)."""
    try:
        kind = np.dtype(dtype)
    except TypeError:
        kind = None
    if kind not in (np.dtype(np.float32), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be numpy.float32 or numpy.uint8; got {dtype!r}.")
    return kind == np.dtype(np.uint8)


def _least_payload(whole: bytes | bytearray | memoryview, short: PrefixTooShortError) -> int:
    """Payload bytes of the smallest prefix that decodes: read from the whole file's segment
    table when the caller holds it (``decode(data, max_bytes=N)`` with all of ``data``),
    else the least the short prefix tells."""
    try:
        _, payload, _ = unpack(bytes(whole), partial=True)
        (count,) = struct.unpack_from("<I", payload)
        (first,) = struct.unpack_from("<I", payload, 4)
    except (FormatError, struct.error):
        return short.least
    return 4 + 4 * count + first


def _finish_v2(
    header: dict[str, Any], planes: list[np.ndarray], *, eight_bits: bool = False
) -> np.ndarray:
    """Float32 planes to the clipped float32 image: chroma upsampled (as version 1) and
    converted to RGB in float32, strip by strip so that the work stays in cache; with
    ``eight_bits``, each strip goes on to :func:`~svdimage.io.to_uint8`'s pixels."""
    if len(planes) == 1 or header["color"] == "rgb":
        out = planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)
        del planes[:]
        return to_uint8(out) if eight_bits else np.clip(out, 0.0, 1.0, out=out)
    M, N = header["shape"][:2]
    y, cb, cr = planes
    out = np.empty((M, N, 3), dtype=np.uint8 if eight_bits else np.float32)
    rgb = np.empty((16, N, 3), dtype=np.float32) if eight_bits else None
    strip = 16  # rows: their temporaries stay in cache (64: 0.31 s at 12 MP, 16: 0.26 s)
    for top in range(0, M, strip):
        rows = slice(top, min(top + strip, M))
        if cb.shape == (M, N):
            b, r = cb[rows], cr[rows]
        else:  # 4:2:0: the coarse rows this strip needs, upsampled (3/4-1/4, edges repeated)
            fine = np.arange(rows.start, rows.stop)
            coarse = fine // 2
            near = np.clip(np.where(fine % 2 == 0, coarse - 1, coarse + 1), 0, cb.shape[0] - 1)
            b, r = (
                _double_columns(np.float32(0.75) * c[coarse] + np.float32(0.25) * c[near])[:, :N]
                for c in (cb, cr)
            )
        b = b - np.float32(0.5)
        r = r - np.float32(0.5)
        luma = y[rows]
        block = out[rows] if rgb is None else rgb[: luma.shape[0]]
        block[:, :, 0] = luma + np.float32(1.402) * r
        block[:, :, 1] = luma - np.float32(0.344136) * b - np.float32(0.714136) * r
        block[:, :, 2] = luma + np.float32(1.772) * b
        if rgb is None:
            np.clip(block, 0.0, 1.0, out=block)
        else:
            out[rows] = to_uint8(block)
    return out


def _double_columns(x: np.ndarray) -> np.ndarray:
    """:func:`~svdimage.codec._planes.double` along the columns of a float32 block, the
    same arithmetic written straight into its output (no shifted copies)."""
    out = np.empty((x.shape[0], 2 * x.shape[1]), dtype=x.dtype)
    three = np.float32(0.75) * x
    np.multiply(np.float32(0.25), x[:, :-1], out=out[:, 2::2])
    out[:, 2::2] += three[:, 1:]
    np.multiply(np.float32(0.25), x[:, 1:], out=out[:, 1:-1:2])
    out[:, 1:-1:2] += three[:, :-1]
    out[:, 0] = three[:, 0] + np.float32(0.25) * x[:, 0]
    out[:, -1] = three[:, -1] + np.float32(0.25) * x[:, -1]
    return out


def _check_max_bytes(max_bytes: object) -> None:
    if max_bytes is None:
        return
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(f"max_bytes must be an integer or None; got {max_bytes!r}.")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1; got {max_bytes}.")


def load(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Read and decode an ``.svdz`` file (see :func:`decode` and :func:`read_file`)."""
    # A prefix is read with room for the header and the segment table beyond it, so that a
    # prefix too short to decode can name the smallest one that does.
    room = None if max_bytes is None else max_bytes + HEAD_BYTES + largest_segment_table()
    try:
        data = read_file(path, max_bytes=room, max_pixels=max_pixels)
    except TruncatedFileError as error:
        with opened(path) as (handle, _):
            version = read_head(handle.read(HEAD_BYTES), max_pixels=max_pixels)[1]
        raise _progressive_hint(error, version) from None
    return decode(data, max_bytes=max_bytes, max_pixels=max_pixels, dtype=dtype)


def _progressive_hint(error: TruncatedFileError, version: tuple[int, int]) -> FormatError:
    """A truncated file's error, telling how to decode the part it holds when its version
    is progressive (every version but the tiled ones)."""
    if version in TILE_VERSIONS:
        return error
    return FormatError(
        f"{error} It may be a prefix of a file (an interrupted download): "
        f"pass max_bytes of at most {error.length:,} to decode the part it holds."
    )


def read_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> bytes:
    """The bytes of an ``.svdz`` file, checked from its first bytes before the rest is read.

    The magic bytes, the version and the header (checksum, keys, ranges,
    ``max_pixels``) are checked on the first 64 KiB at most, and the file's
    length against its payload length field, before the payload is read: a
    large file that is not an ``.svdz`` file costs one small read.

    Parameters
    ----------
    path : str or path
    max_bytes : int, optional
        Read only the first ``max_bytes`` bytes (progressive decoding, as
        :func:`decode`'s ``max_bytes``); the file's length is then not checked.
    max_pixels : int or None, optional
        Refuse files that claim more pixels than this.

    Returns
    -------
    bytes

    Raises
    ------
    FileNotFoundError, IsADirectoryError, OSError
        When ``path`` is missing, a folder, or not a regular file (a FIFO, a
        device: refused at once, never read).
    FormatError
        When the file's first bytes or its length are not those of an
        ``.svdz`` file that this reader decodes.
    """
    _check_max_bytes(max_bytes)
    with opened(path) as (handle, length):
        head = handle.read(HEAD_BYTES if max_bytes is None else min(HEAD_BYTES, max_bytes))
        _, _, start, size = read_head(head, max_pixels=max_pixels)
        total = start + size + 4
        if max_bytes is None:
            check_length(start, size, length - start)
        else:
            total = min(total, max_bytes)
        rest = handle.read(max(total - len(head), 0))
    return (head + rest)[:total]


@dataclass(frozen=True)
class FileInfo:
    """What :func:`inspect` reports of a file.

    Attributes
    ----------
    version : (int, int)
    header : dict
    file_bytes, header_bytes, payload_bytes : int
        The whole file, the JSON header, and the entropy-coded payload.
    tile_ranks : list of dict
        Per plane: ``tiles`` (count), ``mean_rank``, ``max_rank`` (version 1); ``patches``
        (count) and ``components`` (of the shared basis; version 2).
    """

    version: tuple[int, int]
    header: dict[str, Any]
    file_bytes: int
    header_bytes: int
    payload_bytes: int
    tile_ranks: list[dict[str, float]]


def inspect(data: bytes, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> FileInfo:
    """Header, sizes and per-plane rank statistics of ``.svdz`` bytes.

    Fully checked: the container, both checksums and every payload count, as
    :func:`decode` checks them, without building the image.

    Raises
    ------
    FormatError
        For any file that :func:`decode` would refuse.
    """
    header, payload, version = unpack(bytes(data), max_pixels=max_pixels)
    stats: list[dict[str, float]]
    if version in TILE_VERSIONS:
        decode_tiled(data, max_pixels=max_pixels, build=False)  # every tile, as decode does
        stats = [{"tiles": len(tile_regions(tuple(header["shape"]), header["tile"]))}]
    elif version[0] == 2:
        decode_payload(header, payload, build=False)  # every check decode makes (2.3 alike)
        stats = [
            {
                "patches": int(np.prod(grid_of(plane["shape"], header["patch"]))),
                "components": int(plane["components"]),
            }
            for plane in header["planes"]
        ]
    elif version == GLOBAL_VERSION:
        decode_global(header, payload, build=False)
        stats = [{"components": int(plane["components"])} for plane in header["planes"]]
    else:
        ranks = read_components(header, payload)
        stats = [
            {
                "tiles": int(r.size),
                "mean_rank": float(r.mean()) if r.size else 0.0,
                "max_rank": int(r.max(initial=0)),
            }
            for r in ranks
        ]
    return FileInfo(
        version=version,
        header=header,
        file_bytes=len(data),
        header_bytes=len(data) - len(payload) - FRAMING_BYTES,
        payload_bytes=len(payload),
        tile_ranks=stats,
    )

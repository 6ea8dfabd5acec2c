"""The decoder, and ``inspect``: symbols back to planes, planes back to an image.

Package-internal; the public functions are re-exported by :mod:`svdimage.codec`.
:func:`read_components` parses and checks the whole payload against the
header without building any plane, so :func:`inspect` runs exactly the checks
:func:`decode` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svdimage._validation import DEFAULT_MAX_PIXELS
from svdimage.codec._entropy import decompress_symbols
from svdimage.codec._format import FRAMING_BYTES, FormatError, unpack
from svdimage.codec._planes import DEBLOCK_STRENGTH, deblock, from_planes, grid, untile

__all__ = ["decode", "load", "inspect", "FileInfo", "read_components", "PlaneSymbols"]

#: The first version whose tiled files are deblocked when decoded (1.0 files are not).
DEBLOCK_SINCE = (1, 1)


@dataclass
class PlaneSymbols:
    """One plane's parsed symbols: tile means, tile ranks, and per component
    ``(tiles holding it, a rows, b rows)``."""

    dc: np.ndarray
    ranks: np.ndarray
    components: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def read_components(
    header: dict[str, Any], payload: bytes, *, partial: bool = False
) -> list[PlaneSymbols]:
    """Decompress and parse the payload of a validated header, checking every count.

    Raises
    ------
    FormatError
        When the symbols do not match what the header and the tile ranks
        describe (too few, too many, ranks out of range, bad LZMA data).
    """
    planes = header["planes"]
    grids = [grid(p["shape"], header["tile"]) for p in planes]
    counts = [rows * cols for rows, cols, _, _ in grids]
    # Upper bound of the symbols the header allows, before decompressing anything.
    bound = sum(n * (2 + p["max_rank"] * (g[2] + g[3])) for n, p, g in zip(counts, planes, grids))
    values = decompress_symbols(payload, max_symbols=bound, partial=partial)
    position = 0
    parsed: list[PlaneSymbols] = []
    for n, plane in zip(counts, planes):
        if values.size < position + 2 * n:
            raise FormatError("payload is too short for the tile means and ranks.")
        dc = np.cumsum(values[position : position + n])
        ranks = values[position + n : position + 2 * n]
        position += 2 * n
        if ranks.min(initial=0) < 0 or ranks.max(initial=0) > plane["max_rank"]:
            raise FormatError(f"a tile rank is outside 0..{plane['max_rank']}.")
        parsed.append(PlaneSymbols(dc, ranks.copy(), []))
    top = max((p["max_rank"] for p in planes), default=0)
    for i in range(top):
        for symbols, (_, _, th, tw) in zip(parsed, grids):
            chosen = np.flatnonzero(symbols.ranks > i)
            if chosen.size == 0:
                continue
            need = chosen.size * (th + tw)
            available = values.size - position
            if available < need:
                if not partial:
                    raise FormatError("payload is too short for the ranks its tiles claim.")
                complete = available // (th + tw)
                symbols.ranks[chosen[complete:]] = i  # these tiles stop before component i
                chosen = chosen[:complete]
                need = chosen.size * (th + tw)
            block = values[position : position + need].reshape(chosen.size, th + tw)
            position += need
            a, b = block[:, :th], block[:, th:]
            if i == 0:
                a, b = np.cumsum(a, axis=1), np.cumsum(b, axis=1)
            symbols.components.append((chosen, a, b))
    if not partial and position != values.size:
        raise FormatError(
            f"payload has {values.size - position} symbols more than its header and ranks describe."
        )
    return parsed


def decode(
    data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode ``.svdz`` bytes to a float32 image in [0, 1].

    Parameters
    ----------
    data : bytes
    max_bytes : int, optional
        Use only the first ``max_bytes`` bytes of the file: a truncated
        payload decodes to the components it holds completely (progressive
        decoding; the payload checksum is then not checked).
    max_pixels : int or None, optional
        Refuse files that claim more pixels than this.

    Returns
    -------
    image : (M, N) or (M, N, 3) ndarray of float32

    Raises
    ------
    FormatError
        For any malformed, truncated, tampered or unsupported file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}.")
    partial = max_bytes is not None
    if partial:
        data = bytes(data[:max_bytes])
    header, payload, version = unpack(bytes(data), max_pixels=max_pixels, partial=partial)
    parsed = read_components(header, payload, partial=partial)
    tile = header["tile"]
    smooth = tile is not None and DEBLOCK_STRENGTH > 0 and version >= DEBLOCK_SINCE
    decoded = []
    for symbols, plane in zip(parsed, header["planes"]):
        plane_grid = grid(plane["shape"], tile)
        rows, cols, th, tw = plane_grid
        tiles = np.empty((rows * cols, th, tw), dtype=np.float64)
        tiles[:] = (symbols.dc * plane["dc_step"]).astype(np.float64)[:, None, None]
        scale = plane["step"] ** 2
        for chosen, a, b in symbols.components:
            tiles[chosen] += scale * a[:, :, None] * b[:, None, :]
        full = untile(tiles, plane_grid, plane["shape"])
        if smooth:
            full = deblock(full, tile, DEBLOCK_STRENGTH * plane["step"])
        decoded.append(full)
    image = from_planes(decoded, tuple(header["shape"]), header["color"])
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def load(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read and decode an ``.svdz`` file (see :func:`decode`)."""
    return decode(Path(path).read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)


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
        Per plane: ``tiles`` (count), ``mean_rank``, ``max_rank``.
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
    parsed = read_components(header, payload)
    stats = [
        {
            "tiles": int(p.ranks.size),
            "mean_rank": float(p.ranks.mean()) if p.ranks.size else 0.0,
            "max_rank": int(p.ranks.max(initial=0)),
        }
        for p in parsed
    ]
    return FileInfo(
        version=version,
        header=header,
        file_bytes=len(data),
        header_bytes=len(data) - len(payload) - FRAMING_BYTES,
        payload_bytes=len(payload),
        tile_ranks=stats,
    )

"""Formats 2.1 and 2.4: images bigger than memory, as independently decodable tiles.

Package-internal; :func:`save_tiled` and :func:`open_tiled` are public as
``svdimage.codec.save_tiled`` and ``svdimage.codec.open_tiled``. The image is cut
in square tiles of side ``T`` (2048 by default); each tile is encoded on its
own as a version-2.3 file (format 2.4; its own patch basis, from the SVD of its own
patch matrix, and every other patch predicted from its neighbours) or, for older
readers, a version-2.0 file (format 2.1), at one quantizer step for the whole image,
so that quality is even across tiles. The container (:mod:`svdimage.codec._format`,
``docs/format.md``) holds a table of the tiles' lengths, then the tiles.

Writing streams: tiles are read from the (Dask) image a few at a time, encoded
in parallel by Dask (on this process's threads or a cluster's workers), and
appended to a temporary file in row-major order; the table, the payload length
and the checksum are written at the end, and the file is renamed into place.
Memory: the tiles in flight, never the image. Reading is lazy: :func:`open_tiled`
is a Dask array whose chunks are the tiles, each decoded when it is read, so
that ``decompress`` writes a tiled TIFF or a Zarr array band by band.

The cost of independence: each tile stores its own basis (a few kilobytes; under
2 % of a 2048-pixel tile at 0.5 bpp), and the deblocking filter does not cross
tile edges.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svdimage._fileutil import atomic_path
from svdimage.codec._format import (
    HEAD_BYTES,
    TILE_VERSIONS,
    TILED_PREDICTED_VERSION,
    TILED_VERSION,
    FormatError,
    opened,
    pack_head,
    read_head,
)

__all__ = ["save_tiled", "open_tiled", "is_tiled", "TiledFile", "DEFAULT_TILE", "tile_regions"]

#: Tile side of :func:`save_tiled` (pixels): 4 MP tiles, whose own bases cost under 2 %.
DEFAULT_TILE = 2048

#: The smallest version-2.0 or 2.3 file (prefix, a minimal header, checksums): a tile's
#: length below it is refused before anything is decoded.
_MIN_TILE_BYTES = 64


def tile_regions(shape: tuple[int, ...], tile: int) -> list[tuple[int, int, int, int]]:
    """``(row0, row1, col0, col1)`` of every tile of an image of ``shape``, row-major."""
    M, N = shape[:2]
    return [
        (r, min(r + tile, M), c, min(c + tile, N))
        for r in range(0, M, tile)
        for c in range(0, N, tile)
    ]


@dataclass(frozen=True)
class TiledFile:
    """What :func:`save_tiled` wrote.

    Attributes
    ----------
    path : Path
    nbytes : int
        The file's size.
    tiles : int
    squared_error : float
        Sum over all pixels and channels of the squared difference between the
        image (in [0, 1]) and the decoded tiles (float, before any 8-bit
        rounding): the PSNR is ``10 log10(size / squared_error)``.
    quality : float
        The quality every tile was encoded at (one quantizer step for all).
    """

    path: Path
    nbytes: int
    tiles: int
    squared_error: float
    quality: float


def save_tiled(
    path: str | os.PathLike[str],
    image: Any,
    *,
    quality: float = 75,
    tile: int = DEFAULT_TILE,
    force: bool = False,
    on_tile: Callable[[], None] | None = None,
    version: int = 3,
) -> TiledFile:
    """Write a (Dask) image bigger than memory as a tiled ``.svdz`` file (format 2.4).

    Parameters
    ----------
    path : str or path
        The output file, written atomically (a temporary name, renamed when
        complete); an existing file is refused unless ``force``.
    image : (M, N) or (M, N, 3) dask.array.Array or ndarray
        Values in [0, 1], or unsigned integers (scaled by their range).
    quality : float, optional
        1-100, as :func:`svdimage.codec.encode`: one quantizer step for every tile.
    tile : int, optional
        Tile side, a multiple of 16 in 256..8192.
    force : bool, optional
    on_tile : callable, optional
        Called after each tile is written (progress).
    version : {3, 2}, optional
        As :func:`svdimage.codec.encode`'s: 3 writes format 2.4 (tiles of format 2.3,
        every other patch predicted); 2 writes format 2.1 (tiles of format 2.0), for
        readers older than 2.4.

    Returns
    -------
    TiledFile
    """
    import dask.array as da
    from dask.base import compute
    from dask.delayed import delayed

    from svdimage.chunked_io import unit_range

    lazy = image if hasattr(image, "dask") else da.from_array(np.asarray(image))
    if np.dtype(lazy.dtype).kind == "u" or np.dtype(lazy.dtype) != np.float32:
        lazy = unit_range(lazy)
    shape = tuple(int(n) for n in lazy.shape)
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3; got {version!r}.")
    header = {"shape": list(shape), "tile": int(tile), "coder": "tiles"}
    tiled = TILED_PREDICTED_VERSION if version == 3 else TILED_VERSION
    head = pack_head(header, 0, version=tiled)  # validates shape and tile
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100; got {quality}.")
    regions = tile_regions(shape, tile)
    table = bytearray(8 * len(regions))
    # A few tiles per core in flight: their pixels and the encoder's work, never the image.
    window = 2 * max(1, os.cpu_count() or 1)
    squared = 0.0
    with atomic_path(Path(path), force=force) as tmp, open(tmp, "wb") as out:
        out.write(head)
        out.write(table)
        for first in range(0, len(regions), window):
            batch = regions[first : first + window]
            done = compute(
                *[
                    delayed(_encode_tile)(lazy[r0:r1, c0:c1], quality, version)
                    for r0, r1, c0, c1 in batch
                ]
            )
            for index, (data, error) in enumerate(done, start=first):
                out.write(data)
                struct.pack_into("<Q", table, 8 * index, len(data))
                squared += error
                if on_tile is not None:
                    on_tile()
        payload = out.tell() - len(head)
        out.seek(len(head) - 8)
        out.write(struct.pack("<Q", payload))
        out.write(table)
        # The checksum covers the table as finally written: read the payload back once.
        out.flush()
        out.seek(0, os.SEEK_END)
        out.write(struct.pack("<I", _payload_crc(tmp, len(head), payload)))
        out.flush()
        nbytes = out.tell()
    return TiledFile(Path(path), nbytes, len(regions), squared, float(quality))


def _payload_crc(path: Path, start: int, length: int) -> int:
    crc = 0
    with open(path, "rb") as handle:
        handle.seek(start)
        left = length
        while left:
            block = handle.read(min(left, 1 << 22))
            if not block:
                raise OSError(f"{path} ended while its checksum was computed.")
            crc = zlib.crc32(block, crc)
            left -= len(block)
    return crc


def _encode_tile(pixels: np.ndarray, quality: float, version: int) -> tuple[bytes, float]:
    """One tile as a version-2.3 (``version`` 3) or 2.0 (2) file at ``quality`` (a luma step
    that does not depend on the tile's content), and its squared error."""
    from svdimage.codec._decode import decode
    from svdimage.codec._encode import encode

    tile = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    data = encode(tile, quality=quality, version=version)  # a 2.3 or a 2.0 file
    decoded = decode(data, max_pixels=None)
    difference = decoded - tile
    return data, float(np.sum(np.square(difference, out=difference), dtype=np.float64))


def is_tiled(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file that starts as a tiled (version 2.1 or 2.4) ``.svdz``
    file; nothing but its first bytes is read (anything else: ``False``)."""
    from svdimage.codec._format import MAGIC

    try:
        path = Path(path)
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            head = handle.read(7)
    except OSError:
        return False
    return head[:5] == MAGIC and tuple(head[5:7]) in TILE_VERSIONS


def read_table(
    path: str | os.PathLike[str], *, max_pixels: int | None = None
) -> tuple[dict[str, Any], list[tuple[int, int]], tuple[int, int]]:
    """Check a tiled file's head, table and length; return its header, each tile's
    ``(offset, length)`` in the file, and the version its tiles must be. Nothing
    proportional to the image is read."""
    with opened(path) as (handle, length):
        header, version, start, size = read_head(handle.read(HEAD_BYTES), max_pixels=max_pixels)
        if version not in TILE_VERSIONS:
            raise FormatError(
                f"{str(path)!r} is a version-{version[0]}.{version[1]} file, not tiled."
            )
        handle.seek(start)
        places = _tiles(header, handle.read(8 * _count(header)), start, size, length)
        return header, places, TILE_VERSIONS[version]


def _count(header: dict[str, Any]) -> int:
    return len(tile_regions(tuple(header["shape"]), header["tile"]))


def _tiles(
    header: dict[str, Any], table: bytes, start: int, size: int, length: int
) -> list[tuple[int, int]]:
    """Each tile's ``(offset, length)``, after checking the table against the payload."""
    count = _count(header)
    if len(table) < 8 * count or size < 8 * count:
        raise FormatError(f"truncated file: the table of {count} tiles is incomplete.")
    if length - start != size + 4:
        raise FormatError(
            f"the payload length field says {size + 4} bytes follow offset {start}; "
            f"{max(length - start, 0)} do."
        )
    lengths = struct.unpack(f"<{count}Q", table[: 8 * count])
    if min(lengths) < _MIN_TILE_BYTES or sum(lengths) != size - 8 * count:
        raise FormatError("the tile table does not add up to the payload: the file is damaged.")
    offsets = np.cumsum((start + 8 * count,) + lengths[:-1])
    return [(int(o), int(n)) for o, n in zip(offsets, lengths)]


def decode_tiled(
    data: bytes, *, max_pixels: int | None = None, build: bool = True
) -> np.ndarray | None:
    """A whole tiled file (bytes) decoded in memory: each tile checked and decoded on its
    own, then placed. With ``build=False`` every tile is checked and decoded, one at a
    time, and nothing is built (``inspect``)."""
    from svdimage.codec._format import unpack

    header, payload, version = unpack(bytes(data), max_pixels=max_pixels)
    if version not in TILE_VERSIONS:
        raise FormatError("not a tiled (version 2.1 or 2.4) file.")
    count = _count(header)
    start = len(data) - len(payload) - 4
    places = _tiles(header, payload[: 8 * count], start, len(payload), len(data))
    shape = tuple(header["shape"])
    out = np.empty(shape, dtype=np.float32) if build else None
    for (r0, r1, c0, c1), (offset, n) in zip(tile_regions(shape, header["tile"]), places):
        tile = _decoded_tile(
            data[offset : offset + n], (r1 - r0, c1 - c0), shape, TILE_VERSIONS[version]
        )
        if out is not None:
            out[r0:r1, c0:c1] = tile
    return out


def _decoded_tile(
    data: bytes, region: tuple[int, int], shape: tuple[int, ...], version: tuple[int, int]
) -> np.ndarray:
    """A tile's pixels, after checking that it is a file of ``version`` (its container's)
    and of its ``region``'s shape."""
    from svdimage.codec._decode import decode

    if bytes(data[5:7]) != bytes(version):
        raise FormatError(f"a tile is not a version-{version[0]}.{version[1]} file.")
    tile = decode(data, max_pixels=None)
    if tile.shape != region + tuple(shape[2:]):
        raise FormatError(
            f"a tile holds a {tile.shape} image where its place is {region + tuple(shape[2:])}."
        )
    return tile


def open_tiled(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Any:
    """A tiled ``.svdz`` file as a lazy Dask array (float32 in [0, 1]) whose chunks are
    its tiles, each read and decoded when needed (by this process's threads, or a
    cluster's workers that see the same path).

    Raises
    ------
    FormatError
        When the head, the table or the length is wrong (at once), or a tile is
        (when it is decoded).
    """
    import dask.array as da

    header, places, version = read_table(path, max_pixels=max_pixels)
    shape = tuple(int(n) for n in header["shape"])
    tile = int(header["tile"])
    regions = tile_regions(shape, tile)
    rows = tuple(min(tile, shape[0] - r) for r in range(0, shape[0], tile))
    cols = tuple(min(tile, shape[1] - c) for c in range(0, shape[1], tile))
    per_row = len(cols)
    where = {(i // per_row, i % per_row): (regions[i], places[i]) for i in range(len(regions))}
    reader = _TileReader(str(path), shape, version)

    def block(block_id: tuple[int, ...] = (0, 0)) -> np.ndarray:
        (r0, r1, c0, c1), (offset, n) = where[block_id[0], block_id[1]]
        return reader(offset, n, (r1 - r0, c1 - c0))

    chunks = (rows, cols) + tuple((n,) for n in shape[2:])
    return da.map_blocks(
        block, chunks=chunks, dtype=np.float32, meta=np.empty((0,) * len(shape), np.float32)
    )


class _TileReader:
    """Reads and decodes one tile of a file by path (picklable: the path travels)."""

    def __init__(self, path: str, shape: tuple[int, ...], version: tuple[int, int]) -> None:
        self.path, self.shape, self.version = path, shape, version

    def __call__(self, offset: int, n: int, region: tuple[int, int]) -> np.ndarray:
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(n)
        if len(data) != n:
            raise FormatError(f"{self.path!r} ended inside a tile: the file was cut.")
        return _decoded_tile(data, region, self.shape, self.version)


def iter_tiles(path: str | os.PathLike[str]) -> Iterator[tuple[tuple[int, int, int, int], bytes]]:
    """Each tile's region and bytes, in order (for ``inspect``)."""
    header, places, _ = read_table(path, max_pixels=None)
    with open(path, "rb") as handle:
        for region, (offset, n) in zip(
            tile_regions(tuple(header["shape"]), header["tile"]), places
        ):
            handle.seek(offset)
            yield region, handle.read(n)


def psnr_of(saved: TiledFile, shape: tuple[int, ...]) -> float:
    """PSNR (dB) of a :func:`save_tiled` file's decoded image against its original."""
    size = math.prod(shape)
    return math.inf if saved.squared_error <= 0 else 10 * math.log10(size / saved.squared_error)

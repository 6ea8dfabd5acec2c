"""The ``.svdz`` container: layout, header validation, checksums.

Layout (all integers little-endian)::

    offset  size  field
    0       5     magic b"\\x93SVDZ" (first byte non-ASCII, as numpy's .npy)
    5       1     major version (3; 1 and 2 are still read)
    6       1     minor version (1.0, 1.1, 2.0, 2.1, 2.2, 2.3, 2.4 and 3.0 are read)
    7       4     header length H (uint32, at most 65536)
    11      H     header: UTF-8 JSON object with exactly the keys below
    11+H    4     CRC-32 of bytes [0, 11+H)
    15+H    8     payload length P (uint64)
    23+H    P     payload: the entropy-coded symbols (see the codec's docstring)
    23+H+P  4     CRC-32 of the payload

Header keys (no others): ``shape`` ([M, N] or [M, N, 3]); ``color``
("gray", "ycbcr" or "rgb"); ``chroma`` ("444" or "420"); ``tile`` (tile side
in pixels, 4-256, or null for one tile per plane: the global SVD); ``planes``
(one object per plane with exactly ``shape`` [h, w], ``step`` and ``dc_step``
(positive finite floats: the quantizer steps of the factors and of the tile
means) and ``max_rank`` (an int, at most the tile's short side)); ``coder``
("lzma-varint": zigzag LEB128 integers compressed by raw LZMA2, preset 9e,
8 MiB dictionary, lc=lp=pb=0); ``order``
("rank-major").

Header keys starting with ``x-`` are extensions: metadata (a comment, the
encoder's name) that never changes the decoded image. Writers may add them;
readers ignore them, in every version. Any other unknown key is an error.

Versions. A *minor* version changes what a file decodes to or adds keys that
matter, within the same container; a *major* version changes the container.
A reader decodes every version up to its own exactly as that version is
specified, and refuses a newer one (major or minor) with a message asking to
upgrade, never guessing. Versions so far:

* 1.0: tiles are decoded without post-filtering.
* 1.1: in tiled mode each plane is deblocked after the tiles are put together
  (:func:`svdimage.codec._planes.deblock`). Same keys as 1.0.
* 2.0: the SVD of each plane's patch matrix, context-coded
  (:mod:`svdimage.codec._patches`, :mod:`svdimage.codec._patch_payload`).
  Header keys ``shape``, ``color`` ("gray" or "ycbcr"), ``chroma``, ``patch``
  (4, 8 or 16), ``planes`` (each exactly ``shape``, ``step`` and
  ``components``) and ``coder`` ("context-range"); the payload is a list of
  range-coded segments, each holding at most 1,024 integers per byte as the
  header counts them (writers pad with zero words; readers refuse more:
  :data:`svdimage.codec._context.MAX_INTEGERS_PER_BYTE`). The keys listed above are those of
  version 1.
* 2.1: *tiled*, for images bigger than memory (:mod:`svdimage.codec._tiled`):
  the image cut in square tiles, each an independent version-2.0 file.
  Header keys ``shape`` (sides up to 2^24), ``tile`` (the side T, a multiple
  of 16 in 256..8192) and ``coder`` ("tiles"). The payload is a table of
  ``ceil(M/T) * ceil(N/T)`` uint64 lengths, one per tile in row-major order,
  then the tiles' files back to back, in the same order. Tile ``(i, j)``
  covers rows ``iT`` to ``min((i+1)T, M)`` and columns ``jT`` to
  ``min((j+1)T, N)``; its file's ``shape`` must be exactly that region's (and
  its colour that of the image). Every length is at least the smallest
  version-2.0 file, and the table and the lengths add up to the payload;
  a tile is decoded (and checked, with its own checksums) on its own, so a
  reader holds one tile's bytes at a time. ``max_bytes`` does not apply.
* 2.2: version 2.0 with a ``mean_divisor`` (1, 2, 4, ..., 64) in each plane:
  its patch means are ``D * step / (patch * mean_divisor)``. Writers use it when
  a plane's means need a finer step than 2.0's (chroma at low rates).
* 2.3: version 2.2 (a ``mean_divisor`` in every plane; the same payload) whose
  second checkerboard half of patches is predicted from the first: once the
  patches are in place, each patch ``(r, c)`` with ``r + c`` odd adds its
  prediction from its four neighbours' facing edges
  (:mod:`svdimage.codec._prediction`) times ``prediction / 4``, before
  deblocking. Each plane has a key ``prediction``, an integer 0..4.
* 2.4: version 2.1 (tiled; the same header and table) whose tiles are each a
  version-2.3 file (a reader refuses any other tile version).
* 3.0: the global SVD of each plane, range-coded vector by vector
  (:mod:`svdimage.codec._global`). Header keys ``shape``, ``color`` ("gray",
  "ycbcr" or "rgb"), ``chroma``, ``planes`` (each exactly ``shape``, ``step``
  and ``components``, at most the plane's short side) and ``coder``
  ("context-range"); the payload is a list of range-coded segments as in 2.0,
  under the same integers-per-byte bound.

The header is parsed as JSON with integers of at most 18 digits, no NaN or
infinity, and at most 8 levels of nesting; every number where an integer
belongs must be a JSON integer (``40.0`` is refused). Nothing is ever unpickled
or evaluated; every size is checked against the header and the file before
anything proportional to it is allocated.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "FormatError",
    "TruncatedFileError",
    "MAGIC",
    "VERSION",
    "GLOBAL_VERSION",
    "EXTENSION_PREFIX",
    "pack",
    "unpack",
    "validate_header",
]

MAGIC = b"\x93SVDZ"
#: The version :func:`pack` writes unless told (2.0: the tiles of a 2.1 file, and ``encode(...,
#: version=2)``); ``encode`` writes patch files as PREDICTED_VERSION. Every version in
#: KNOWN_VERSIONS is read.
VERSION = (2, 0)
#: Every version this reader decodes, each exactly as specified.
KNOWN_VERSIONS = ((1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (3, 0))
#: The tiled version: independently decodable tiles, each a version-2.0 file.
TILED_VERSION = (2, 1)
#: Patch files whose planes carry a mean divisor (finer patch means).
MEAN_DIVISOR_VERSION = (2, 2)
#: Patch files whose second checkerboard half is predicted (and every plane has a divisor).
PREDICTED_VERSION = (2, 3)
#: The tiled version whose tiles are version-2.3 files (what ``save_tiled`` writes).
TILED_PREDICTED_VERSION = (2, 4)
#: Each tiled version, and the version its tiles must be.
TILE_VERSIONS = {TILED_VERSION: VERSION, TILED_PREDICTED_VERSION: PREDICTED_VERSION}
#: The global SVD, range-coded (what ``tile=None`` writes).
GLOBAL_VERSION = (3, 0)
#: Prefix of extension keys that readers ignore.
EXTENSION_PREFIX = "x-"
MAX_HEADER = 65536
#: Deepest nesting a header may have (a valid one has 3: object, planes, plane shape;
#: extension keys may add a little).
MAX_DEPTH = 8
#: Longest integer a header may hold, in digits (sides, tiles and ranks need at most 5).
MAX_INT_DIGITS = 18
MAX_SIDE = 65535
_PREFIX = struct.Struct("<5sBBI")
#: Bytes of a file that are neither header text nor payload: the prefix, two CRC-32s and the
#: payload length.
FRAMING_BYTES = _PREFIX.size + 4 + 8 + 4


class FormatError(ValueError):
    """An ``.svdz`` file is malformed, truncated, tampered with or unsupported."""


class TruncatedFileError(FormatError):
    """A file shorter than its payload length field says: it holds ``length`` bytes (a
    prefix of a file, such as an interrupted download)."""

    def __init__(self, message: str, *, length: int) -> None:
        super().__init__(message)
        self.length = length


def pack(header: dict[str, Any], payload: bytes, *, version: tuple[int, int] = VERSION) -> bytes:
    """Assemble a file from a validated header and a payload.

    ``version`` is for tests that need files of an older version.
    """
    if version not in KNOWN_VERSIONS:
        raise ValueError(f"version must be one of {KNOWN_VERSIONS}; got {version}.")
    validate_header(header, version=version)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(text) > MAX_HEADER:
        raise FormatError(f"header is {len(text)} bytes, over the {MAX_HEADER}-byte limit.")
    head = _PREFIX.pack(MAGIC, *version, len(text)) + text
    return b"".join(
        [
            head,
            struct.pack("<I", zlib.crc32(head)),
            struct.pack("<Q", len(payload)),
            payload,
            struct.pack("<I", zlib.crc32(payload)),
        ]
    )


def pack_head(
    header: dict[str, Any], payload_length: int, *, version: tuple[int, int] = VERSION
) -> bytes:
    """The bytes of a file before its payload (prefix, header, header checksum, payload
    length): for a writer that streams the payload, then appends its checksum."""
    return pack(header, b"", version=version)[:-4][:-8] + struct.pack("<Q", payload_length)


@contextlib.contextmanager
def opened(path: str | os.PathLike[str]) -> Iterator[tuple[BinaryIO, int]]:
    """An ``.svdz`` file opened for reading, with its length: missing files and anything
    but a regular file (a FIFO, a device: never opened) refused first."""
    from svdimage._fileutil import check_regular_input

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f".svdz file {str(path)!r} does not exist.")
    check_regular_input(path, what=".svdz file")
    with open(path, "rb") as handle:
        yield handle, os.fstat(handle.fileno()).st_size


def read_head(
    data: bytes | memoryview, *, max_pixels: int | None = None
) -> tuple[dict[str, Any], tuple[int, int], int, int]:
    """Check a file's first bytes: magic, version, header (its checksum, keys and
    ranges) and the payload length field; return ``(header, version, start, size)``.

    ``data`` needs to hold only the start of the file, up to the payload: a
    reader checks a file from its first :data:`HEAD_BYTES` bytes at most, before
    reading (or allocating) anything in proportion to what it declares.
    """
    view = memoryview(data)
    _need(view, _PREFIX.size, "the fixed prefix")
    magic, major, minor, length = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise FormatError(f"not an .svdz file: bad magic bytes {bytes(magic)!r}.")
    if (major, minor) not in KNOWN_VERSIONS:
        raise FormatError(
            f"unsupported .svdz version {major}.{minor}; this reader knows "
            f"{', '.join(f'{a}.{b}' for a, b in KNOWN_VERSIONS)}. Upgrade svdimage to read it."
        )
    if length > MAX_HEADER:
        raise FormatError(f"header length {length} is over the {MAX_HEADER}-byte limit.")
    end = _PREFIX.size + length
    _need(view, end + 4 + 8, "the header")
    (crc,) = struct.unpack_from("<I", view, end)
    if crc != zlib.crc32(view[:end]):
        raise FormatError("header checksum mismatch: the file is corrupt or was modified.")
    header = parse_header(bytes(view[_PREFIX.size : end]))
    validate_header(header, max_pixels=max_pixels, version=(major, minor))
    (size,) = struct.unpack_from("<Q", view, end + 4)
    return header, (major, minor), end + 12, size


#: Bytes that always hold a file's fixed prefix, header and payload length field.
HEAD_BYTES = _PREFIX.size + MAX_HEADER + 12


def check_length(start: int, size: int, available: int) -> None:
    """Refuse a file whose length does not match its payload length field: ``available``
    bytes follow the field, where the payload and its checksum need ``size + 4``."""
    if available < size + 4:
        raise TruncatedFileError(
            f"truncated file: the payload needs {size + 4} bytes after offset "
            f"{start}, got {max(available, 0)}.",
            length=start + max(available, 0),
        )
    if available > size + 4:
        raise FormatError(f"{available - size - 4} unexpected bytes after the payload.")


def unpack(
    data: bytes, *, max_pixels: int | None = None, partial: bool = False
) -> tuple[dict[str, Any], bytes, tuple[int, int]]:
    """Split a file into ``(header, payload, version)``, checking everything.

    With ``partial=True`` the payload may be cut short (a prefix of the file,
    for progressive decoding); its checksum is then not checked.
    """
    view = memoryview(data)
    header, version, start, size = read_head(view, max_pixels=max_pixels)
    available = len(view) - start
    if partial:
        return header, bytes(view[start : start + min(size, max(available, 0))]), version
    check_length(start, size, available)
    payload = bytes(view[start : start + size])
    (crc,) = struct.unpack_from("<I", view, start + size)
    if crc != zlib.crc32(payload):
        raise FormatError("payload checksum mismatch: the file is corrupt or was modified.")
    return header, payload, version


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise FormatError(
            f"header holds an integer of {len(text)} digits; at most {MAX_INT_DIGITS} are allowed."
        )
    return int(text)


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_header(text: bytes) -> Any:
    """Parse the header bytes as JSON, refusing what no valid header holds.

    Integers longer than ``MAX_INT_DIGITS`` digits and nesting deeper than
    ``MAX_DEPTH`` are refused (as are NaN and infinities) before Python's own
    limits could be reached; every failure is a :class:`FormatError`.
    """
    try:
        header = json.loads(
            text.decode("utf-8"), parse_int=_bounded_int, parse_constant=_refuse_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"header is not valid JSON: {err}.") from None
    except RecursionError:
        raise FormatError(f"header nests deeper than {MAX_DEPTH} levels.") from None
    if _depth(header) > MAX_DEPTH:
        raise FormatError(f"header nests deeper than {MAX_DEPTH} levels.")
    return header


def _refuse_constant(name: str) -> float:
    raise FormatError(f"header holds {name}, which is not a number a header may hold.")


def _need(view: memoryview, size: int, what: str) -> None:
    if len(view) < size:
        raise FormatError(
            f"truncated file: expected at least {size} bytes for {what}, got {len(view)}."
        )


_KEYS = {"shape", "color", "chroma", "tile", "planes", "coder", "order"}
_PLANE_KEYS = {"shape", "step", "dc_step", "max_rank"}
_KEYS_V2 = {"shape", "color", "chroma", "patch", "planes", "coder"}
_KEYS_TILED = {"shape", "tile", "coder"}
_KEYS_V3 = {"shape", "color", "chroma", "planes", "coder"}
#: Tile sides of a tiled (2.1 or 2.4) file, and its longest image side.
TILE_SIDES = (256, 8192)
MAX_SIDE_TILED = 2**24
_PLANE_KEYS_V2 = {"shape", "step", "components"}
#: Mean divisors a version-2.2 plane may have.
MEAN_DIVISORS = (1, 2, 4, 8, 16, 32, 64)
#: Patch sides a version-2 file may have.
PATCH_SIDES = (4, 8, 16)


def validate_header(
    header: Any, *, max_pixels: int | None = None, version: tuple[int, int] = VERSION
) -> None:
    """Check keys, types and ranges for ``version``; raise :class:`FormatError`
    naming the problem."""
    if not isinstance(header, dict):
        raise FormatError("header must be a JSON object.")
    tiled = version in TILE_VERSIONS
    expected_keys = (
        _KEYS_TILED
        if tiled
        else _KEYS_V2
        if version[0] == 2
        else _KEYS_V3
        if version == GLOBAL_VERSION
        else _KEYS
    )
    keys = {key for key in header if not key.startswith(EXTENSION_PREFIX)}
    if keys != expected_keys:
        missing, extra = sorted(expected_keys - keys), sorted(keys - expected_keys)
        raise FormatError(f"header keys are wrong: missing {missing}, unexpected {extra}.")
    shape = header["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) not in (2, 3)
        or not all(_is_int(n) for n in shape)
    ):
        raise FormatError(f"header 'shape' must be [M, N] or [M, N, 3]; got {shape!r}.")
    M, N = shape[0], shape[1]
    side = MAX_SIDE_TILED if tiled else MAX_SIDE
    if not (2 <= M <= side and 2 <= N <= side) or (len(shape) == 3 and shape[2] != 3):
        raise FormatError(f"header 'shape' {shape} is out of range (2..{side}, 3 channels).")
    if max_pixels is not None and max_pixels < M * N:
        raise FormatError(
            f"image of {M * N:,} pixels is over the {max_pixels:,}-pixel cap; "
            "raise max_pixels if you trust the file."
        )
    if tiled:
        tile = header["tile"]
        low, high = TILE_SIDES
        if not _is_int(tile) or not low <= tile <= high or tile % 16:
            raise FormatError(
                f"header 'tile' must be a multiple of 16 in {low}..{high}; got {tile!r}."
            )
        if header["coder"] != "tiles":
            raise FormatError(
                f"unknown coder {header['coder']!r} for version {version[0]}.{version[1]}."
            )
        return
    color, chroma = header["color"], header["chroma"]
    if color not in ("gray", "ycbcr", "rgb") or chroma not in ("444", "420"):
        raise FormatError(f"header 'color'/'chroma' unknown: {color!r}, {chroma!r}.")
    if (color == "gray") != (len(shape) == 2) or (chroma == "420" and color != "ycbcr"):
        raise FormatError(
            f"header 'color' {color!r} / 'chroma' {chroma!r} do not fit shape {shape}."
        )
    if version[0] == 2:
        divisors = version in (MEAN_DIVISOR_VERSION, PREDICTED_VERSION)
        _validate_v2(header, M, N, divisors=divisors, predicted=version == PREDICTED_VERSION)
        return
    if version == GLOBAL_VERSION:
        _validate_global(header, M, N)
        return
    tile = header["tile"]
    if tile is not None and not (_is_int(tile) and 4 <= tile <= 256):
        raise FormatError(f"header 'tile' must be null or an int in 4..256; got {tile!r}.")
    if header["coder"] != "lzma-varint" or header["order"] != "rank-major":
        raise FormatError(f"unknown coder/order: {header['coder']!r}, {header['order']!r}.")
    for plane, shape_expected in _checked_planes(header, M, N, _PLANE_KEYS):
        for key in ("step", "dc_step"):
            if not _is_number(plane[key], 1e-9, 1e9, open_range=True):
                raise FormatError(
                    f"plane '{key}' must be a positive finite number; got {plane[key]!r}."
                )
        tile_h, tile_w = (tile, tile) if tile is not None else shape_expected
        if not _is_int(plane["max_rank"]) or not 0 <= plane["max_rank"] <= min(tile_h, tile_w):
            raise FormatError(
                f"plane 'max_rank' must be in 0..{min(tile_h, tile_w)}; got {plane['max_rank']!r}."
            )


def _validate_v2(
    header: dict[str, Any], M: int, N: int, *, divisors: bool = False, predicted: bool = False
) -> None:
    if header["color"] == "rgb":
        raise FormatError("version-2 files are gray or YCbCr; 'rgb' is not one of them.")
    patch = header["patch"]
    if not _is_int(patch) or patch not in PATCH_SIDES:
        raise FormatError(f"header 'patch' must be one of {PATCH_SIDES}; got {patch!r}.")
    if header["coder"] != "context-range":
        raise FormatError(f"unknown coder {header['coder']!r} for version 2.")
    keys = _PLANE_KEYS_V2 | {"mean_divisor"} if divisors else _PLANE_KEYS_V2
    if predicted:
        keys = keys | {"prediction"}
    for plane, _ in _checked_planes(header, M, N, keys):
        if not _is_number(plane["step"], 1e-6, 1e3):
            raise FormatError(f"plane 'step' must be a number in 1e-6..1e3; got {plane['step']!r}.")
        weight = plane.get("prediction", 0)
        if not (_is_int(weight) and 0 <= weight <= 4):
            raise FormatError(f"plane 'prediction' must be an integer in 0..4; got {weight!r}.")
        divisor = plane.get("mean_divisor", 1)
        if not (_is_int(divisor) and divisor in MEAN_DIVISORS):
            raise FormatError(
                f"plane 'mean_divisor' must be one of {MEAN_DIVISORS}; got {divisor!r}."
            )
        if not _is_int(plane["components"]) or not 0 <= plane["components"] <= patch * patch:
            raise FormatError(
                f"plane 'components' must be in 0..{patch * patch}; got {plane['components']!r}."
            )


def _validate_global(header: dict[str, Any], M: int, N: int) -> None:
    if header["coder"] != "context-range":
        raise FormatError(f"unknown coder {header['coder']!r} for version 3.0.")
    for plane, (h, w) in _checked_planes(header, M, N, _PLANE_KEYS_V2):
        if not _is_number(plane["step"], 1e-6, 1e3):
            raise FormatError(f"plane 'step' must be a number in 1e-6..1e3; got {plane['step']!r}.")
        if not _is_int(plane["components"]) or not 0 <= plane["components"] <= min(h, w):
            raise FormatError(
                f"plane 'components' must be in 0..{min(h, w)}; got {plane['components']!r}."
            )


def _checked_planes(
    header: dict[str, Any], M: int, N: int, keys: set[str]
) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """The header's planes, each with its expected shape, after checking their number,
    their keys (exactly ``keys``) and their shapes."""
    planes = header["planes"]
    expected = _plane_shapes(M, N, header["color"], header["chroma"])
    if not isinstance(planes, list) or len(planes) != len(expected):
        raise FormatError(f"header 'planes' must list {len(expected)} planes.")
    for plane, shape_expected in zip(planes, expected):
        if not isinstance(plane, dict) or set(plane) != keys:
            raise FormatError(f"each plane must have exactly the keys {sorted(keys)}.")
        shape_given = plane["shape"]
        if (
            not isinstance(shape_given, list)
            or not all(_is_int(n) for n in shape_given)
            or shape_given != list(shape_expected)
        ):
            raise FormatError(f"plane shape {plane['shape']!r} should be {list(shape_expected)}.")
    return list(zip(planes, expected))


def _is_number(value: Any, low: float, high: float, *, open_range: bool = False) -> bool:
    """A finite JSON number (not a bool) in ``[low, high]`` (``(low, high)`` if open)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    return low < value < high if open_range else low <= value <= high


def _plane_shapes(M: int, N: int, color: str, chroma: str) -> list[tuple[int, int]]:
    if color == "gray":
        return [(M, N)]
    if chroma == "420":
        half = ((M + 1) // 2, (N + 1) // 2)
        return [(M, N), half, half]
    return [(M, N)] * 3


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""Entropy coding of the payload: zigzag LEB128 varints compressed by raw LZMA2.

Package-internal: :func:`compress_symbols` and :func:`decompress_symbols` are
the payload's coder (``"coder": "lzma-varint"`` in the header).
"""

from __future__ import annotations

import lzma

import numpy as np

from svdimage.codec._format import FormatError

__all__ = ["to_varints", "from_varints", "compress_symbols", "decompress_symbols", "FILTERS"]

# Raw LZMA2, preset 9e with an 8 MiB dictionary (the decoder allocates it: a fixed
# cost, not one a file can inflate) and no literal context (the bytes are varints).
FILTERS = [
    {
        "id": lzma.FILTER_LZMA2,
        "preset": 9 | lzma.PRESET_EXTREME,
        "dict_size": 1 << 23,
        "lc": 0,
        "lp": 0,
        "pb": 0,
    }
]


def compress_symbols(values: np.ndarray) -> bytes:
    """Integers to payload bytes."""
    return lzma.compress(to_varints(values), format=lzma.FORMAT_RAW, filters=FILTERS)


def decompress_symbols(payload: bytes, *, max_symbols: int, partial: bool = False) -> np.ndarray:
    """Payload bytes to integers, refusing more than ``max_symbols`` of them.

    The decompressor's output is capped at 10 bytes per allowed symbol (the
    longest 64-bit varint) before anything proportional to it is allocated.
    With ``partial=True`` (a prefix of the payload) a cut stream is accepted
    and decodes to what it holds.

    Raises
    ------
    FormatError
        For invalid LZMA data, a truncated stream, or too much data.
    """
    limit = 10 * max_symbols
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=FILTERS)
    try:
        raw = decompressor.decompress(payload, max_length=limit + 1)
    except lzma.LZMAError as err:
        if not partial:
            raise FormatError(f"payload is not valid LZMA data ({err}).") from None
        raw = b""
    if len(raw) > limit:
        raise FormatError("payload holds more data than the header allows.")
    if not partial and not decompressor.eof:
        raise FormatError("payload ends before its compressed stream does (truncated).")
    return from_varints(raw)


def to_varints(values: np.ndarray) -> bytes:
    """Zigzag LEB128, vectorized."""
    v = np.asarray(values, dtype=np.int64)
    z = ((v << 1) ^ (v >> 63)).astype(np.uint64)
    counts = np.ones(z.shape, dtype=np.int64)
    for bits in range(7, 64, 7):
        counts += z >= (np.uint64(1) << np.uint64(bits))
    owner = np.repeat(np.arange(z.size), counts)
    position = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    chunk = (z[owner] >> (7 * position).astype(np.uint64)) & np.uint64(0x7F)
    more = position < (counts[owner] - 1)
    return (chunk | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8).tobytes()


def from_varints(data: bytes) -> np.ndarray:
    """Inverse of :func:`to_varints`; an unterminated last varint is dropped."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64)
    raw = raw[: ends[-1] + 1]
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise FormatError("payload holds an integer longer than 64 bits.")
    owner = np.repeat(np.arange(ends.size), lengths)
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    parts = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    z = np.zeros(ends.size, dtype=np.uint64)
    np.add.at(z, owner, parts)
    return ((z >> np.uint64(1)).astype(np.int64)) ^ -((z & np.uint64(1)).astype(np.int64))

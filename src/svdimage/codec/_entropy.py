"""Entropy coding of the payload: zigzag LEB128 varints compressed by raw LZMA2.

Package-internal: :func:`compress_symbols` and :class:`SymbolReader` are
the payload's coder (``"coder": "lzma-varint"`` in the header).
"""

from __future__ import annotations

import lzma

import numpy as np

from svdimage.codec._format import FormatError

__all__ = [
    "to_varints",
    "from_varints",
    "compress_symbols",
    "quick_size",
    "SymbolReader",
    "capacity",
    "count_symbols",
    "FILTERS",
]

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


#: LZMA's fastest preset on the same varints: :func:`quick_size`.
QUICK_FILTERS = [dict(FILTERS[0], preset=0)]


def quick_size(values: np.ndarray) -> int:
    """About how large :func:`compress_symbols` makes ``values``, ten times faster: the
    bytes of LZMA's fastest preset (about 1.25 times the real size on photos, a ratio
    that changes slowly with the symbols), for searches that then measure real sizes."""
    return len(lzma.compress(to_varints(values), format=lzma.FORMAT_RAW, filters=QUICK_FILTERS))


#: Bytes of varints one payload byte can expand to, at most (see :func:`capacity`).
MAX_EXPANSION = 8192
#: Added to the bound for short payloads (the LZMA2 stream's own framing).
EXPANSION_SLACK = 4096


def capacity(payload_bytes: int) -> int:
    """The most symbols a payload of ``payload_bytes`` bytes can hold.

    Every symbol is at least one varint byte, and raw LZMA2 cannot expand
    one compressed byte into more than about 6,900 bytes: a chunk holds at
    most 2 MiB, each match at most 273 bytes, and each match costs at least
    14 range-coded bits of at least 0.022 bits each (the model's 11-bit
    probabilities never pass 2017/2048), so 7,680 matches take ≥ 298 bytes
    plus the chunk's header. Measured on 128 MiB of zeros with this
    package's filters: 6,854. The bound used, 8,192 per byte plus 4,096,
    leaves a margin; a header and tile ranks that declare more symbols than
    this describe a file no encoder can have written.
    """
    return MAX_EXPANSION * payload_bytes + EXPANSION_SLACK


def count_symbols(payload: bytes, *, chunk: int = 1 << 20) -> int:
    """How many integers a whole payload holds, counted a chunk at a time (their last
    bytes: those below 0x80), without keeping them; every failure is a FormatError.

    The decoder counts first when what a payload declares is large: a file whose
    stream is shorter than its header and ranks say is then refused before the image
    is allocated, not after.
    """
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=FILTERS)
    data, count = payload, 0
    while not decompressor.eof:
        try:
            raw = decompressor.decompress(data, max_length=chunk)
        except lzma.LZMAError as err:
            raise FormatError(f"payload is not valid LZMA data ({err}).") from None
        data = b""
        if not raw and decompressor.needs_input:
            raise FormatError("payload ends before its compressed stream does (truncated).")
        count += int(np.count_nonzero(np.frombuffer(raw, dtype=np.uint8) < 0x80))
    if decompressor.unused_data:
        raise FormatError(
            f"payload has {len(decompressor.unused_data)} bytes after its compressed stream ends."
        )
    return count


class SymbolReader:
    """Integers from a payload, decompressed and parsed a bounded chunk at a time.

    Memory stays proportional to ``chunk`` whatever the payload claims;
    :meth:`read` is called with the counts the header and tile ranks
    describe and :meth:`finish` refuses anything left over.

    Parameters
    ----------
    payload : bytes
    partial : bool
        The payload is a prefix (progressive decoding): a cut or invalid
        stream ends the symbols instead of raising.
    chunk : int
        Decompressed bytes per step.
    """

    def __init__(self, payload: bytes, *, partial: bool = False, chunk: int = 1 << 17) -> None:
        self._decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=FILTERS)
        self._input = payload
        self._partial = partial
        self._chunk = chunk
        self._carry = np.zeros(0, dtype=np.uint8)
        self._values = np.zeros(0, dtype=np.int64)
        self._ended = False
        #: Symbols handed out so far.
        self.consumed = 0

    def _more(self) -> bool:
        """Decompress and parse one more chunk; False once the stream is done."""
        if self._ended:
            return False
        data, self._input = self._input, b""
        try:
            raw = self._decompressor.decompress(data, max_length=self._chunk)
        except lzma.LZMAError as err:
            if not self._partial:
                raise FormatError(f"payload is not valid LZMA data ({err}).") from None
            raw = b""
            self._ended = True
        if self._decompressor.eof:
            self._ended = True
            if self._decompressor.unused_data and not self._partial:
                raise FormatError(
                    f"payload has {len(self._decompressor.unused_data)} bytes after its "
                    "compressed stream ends."
                )
        elif not raw and self._decompressor.needs_input:
            if not self._partial:
                raise FormatError("payload ends before its compressed stream does (truncated).")
            self._ended = True
        buffer = np.concatenate([self._carry, np.frombuffer(raw, dtype=np.uint8)])
        values, used = _parse_varints(buffer)
        self._carry = buffer[used:].copy()
        if self._carry.size > 10:
            raise FormatError("payload holds an integer longer than 64 bits.")
        self._values = np.concatenate([self._values, values]) if self._values.size else values
        return True

    def read(self, count: int) -> np.ndarray:
        """The next ``count`` integers (fewer only when the stream ends first)."""
        while self._values.size < count and self._more():
            pass
        out, self._values = self._values[:count], self._values[count:]
        self.consumed += out.size
        return out

    def finish(self) -> None:
        """Refuse symbols or bytes beyond the ones read (not in partial mode).

        Raises
        ------
        FormatError
            When the stream holds more than was read, or is cut short.
        """
        if self._partial:
            return
        while not self._ended and self._values.size == 0 and self._carry.size == 0:
            self._more()
        if self._values.size or self._carry.size:
            raise FormatError("payload holds more symbols than its header and ranks describe.")


def to_varints(values: np.ndarray) -> bytes:
    """Zigzag LEB128, vectorized a million values at a time (a few MiB of temporaries)."""
    v = np.asarray(values, dtype=np.int64).ravel()
    return b"".join(
        _varints(v[first : first + VARINT_CHUNK]) for first in range(0, v.size, VARINT_CHUNK)
    )


#: Values :func:`to_varints` encodes at a time.
VARINT_CHUNK = 1 << 20


def _varints(v: np.ndarray) -> bytes:
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
    values, _ = _parse_varints(np.frombuffer(data, dtype=np.uint8))
    return values


def _parse_varints(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """The complete varints at the start of ``raw``, and how many bytes they use."""
    ends = np.flatnonzero(raw < 0x80)
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise FormatError("payload holds an integer longer than 64 bits.")
    z = (raw[starts] & 0x7F).astype(np.uint64)
    for j in range(1, int(lengths.max())):
        longer = np.flatnonzero(lengths > j)
        z[longer] |= (raw[starts[longer] + j] & 0x7F).astype(np.uint64) << np.uint64(7 * j)
    values = (z >> np.uint64(1)).astype(np.int64) ^ -(z & np.uint64(1)).astype(np.int64)
    return values, int(ends[-1]) + 1

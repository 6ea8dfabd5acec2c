"""Context-modelled entropy coding for format 2: integers through a range coder.

Package-internal. Every integer of a version-2 payload is coded by
``constriction``'s range coder (a queue: symbols come out in the order they went
in) with one of a few *contexts*, each a categorical distribution that the
encoder measures and sends ahead of the symbols as a small table, so that the
decoder models each integer exactly as the encoder did.

An integer ``v`` becomes

* a symbol ``m = |v|`` when ``|v| < E`` (``E = 8``); otherwise, with
  ``x = |v| - E + 1`` of bit length ``b`` (1 to 25), the symbol ``E - 1 + b``;
  symbols are coded with the context's table;
* for ``v != 0``, a sign (uniform: 1 for negative);
* for ``b >= 2``, the ``b - 1`` low bits of ``x`` (uniform over ``2**(b-1)``).

Symbols, then signs, then low bits, for each batch of integers that share a
context. A table is the highest symbol used plus one (uniform over 0..``ALPHABET``)
and then a 4-bit code per symbol up to it; code ``c`` stands for the integer
weight ``TABLE_WEIGHTS[c]`` (0 for code 0), and the distribution is the weights
divided by their sum: integers and one division, so that every machine builds
the same model. constriction gives every symbol of the alphabet a nonzero
probability, so a table never makes a symbol uncodable.

A payload is a list of *segments*, each one range-coded stream
(:func:`join_segments`, :func:`read_segments`): ``uint32 S``, ``S`` byte
lengths, the segments. A prefix of the payload decodes to its complete
segments (progressive decoding). Each segment may code at most
``MAX_INTEGERS_PER_BYTE`` integers per byte (:func:`check_density`).
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from svdimage.codec._format import FormatError

__all__ = [
    "ContextWriter",
    "ContextReader",
    "ALPHABET",
    "EXACT",
    "codes_of_counts",
    "cheapest_codes",
    "symbols_of",
    "MAX_INTEGERS_PER_BYTE",
    "PrefixTooShortError",
    "join_segments",
    "read_segments",
    "check_density",
]

#: Magnitudes below this are symbols of their own.
EXACT = 8
#: Largest bit length of an escaped magnitude (constriction's uniform model holds < 2**24).
MAX_BITS = 25
#: Symbols of a table: EXACT exact magnitudes and MAX_BITS escape classes.
ALPHABET = EXACT + MAX_BITS
#: Largest magnitude an integer may have.
MAX_MAGNITUDE = EXACT - 1 + (1 << MAX_BITS) - 1
#: Integer weight of each 4-bit table code: ``round(16 * 2**(c / 2))``, 0 for code 0.
TABLE_WEIGHTS = np.array(
    [0, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024, 1448, 2048, 2896],
    dtype=np.int64,
)
#: Format 3's finer tables: 6-bit codes, ``round(16 * 2**(c / 4))``, 0 for code 0.
FINE_WEIGHTS = np.concatenate(
    [[0], np.rint(16 * 2.0 ** (np.arange(1, 64) / 4)).astype(np.int64)]
).astype(np.int64)


_SEGMENT = struct.Struct("<I")
#: Most integers a segment may code per byte of it. A range coder can code a near-certain
#: symbol in almost no bits (a context where only zeros occur: the means of a flat image),
#: so without a bound a file of a few hundred bytes could declare a 90-megapixel image with
#: every component and keep a decoder busy for a minute. Readers refuse a segment that
#: declares more integers than this many times its bytes, before decoding it; writers pad a
#: segment with zero words (which the decoder never reads) up to the bound. Photos code
#: 1 to 40 integers per byte; a constant 1-megapixel image about 220.
MAX_INTEGERS_PER_BYTE = 1024


def symbols_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(symbols, bit lengths, low bits)`` of signed integers (see the module docstring)."""
    magnitude = np.abs(values.astype(np.int64))
    if magnitude.size and int(magnitude.max()) > MAX_MAGNITUDE:
        raise ValueError(f"an integer of magnitude {int(magnitude.max())} cannot be coded.")
    symbols = np.minimum(magnitude, EXACT)
    escaped = magnitude >= EXACT
    x = magnitude[escaped] - EXACT + 1
    bits = np.frexp(x.astype(np.float64))[1].astype(np.int64)  # exact bit length (x < 2**53)
    symbols[escaped] = EXACT - 1 + bits
    return symbols, bits, x - (1 << np.maximum(bits - 1, 0))


def codes_of_counts(counts: np.ndarray, *, weights: np.ndarray = TABLE_WEIGHTS) -> np.ndarray:
    """The table codes that model each row of a ``(contexts, ALPHABET)`` count table:
    the top code plus ``log2`` of each count relative to the row's largest in code steps
    (half an octave for ``TABLE_WEIGHTS``, a quarter for ``FINE_WEIGHTS``), rounded, at
    least 1 for every symbol that occurs (0 for one that does not)."""
    top_code = len(weights) - 1
    per_octave = round(1 / np.log2(weights[top_code] / weights[top_code - 1]))  # 2 or 4
    codes = np.zeros(counts.shape, dtype=np.int64)
    top = counts.max(axis=1, keepdims=True)
    seen = counts > 0
    relative = np.where(seen, counts, 1) / np.maximum(top, 1)
    codes[seen] = np.clip(np.rint(top_code + per_octave * np.log2(relative)), 1, top_code)[seen]
    return codes


#: Bits of a symbol a table leaves out (code 0 or beyond its top): constriction's leaky
#: categorical model gives it the least probability of its 24-bit precision.
LEFT_OUT_BITS = 24.0


def cheapest_codes(counts: np.ndarray, *, weights: np.ndarray = TABLE_WEIGHTS) -> np.ndarray:
    """Table codes for each row of a ``(contexts, ALPHABET)`` count table that cost the
    fewest bits, table and symbols together: :func:`codes_of_counts` of the symbols up to
    a top, leaving the rare symbols above it to the coder's least probability
    (``LEFT_OUT_BITS`` each) when a shorter table saves more than they cost."""
    codes = codes_of_counts(counts, weights=weights)
    per_code = np.log2(len(weights))
    for row, (seen, out) in enumerate(zip(counts, codes)):
        used = np.flatnonzero(seen)
        if used.size < 2:
            continue
        best, best_bits = out, np.inf
        for top in used + 1:  # a table ending just after a symbol that occurs
            trial = codes_of_counts(seen[None, :top], weights=weights)[0]
            if not trial.any():
                continue
            weight = weights[trial].astype(np.float64)
            inside = seen[:top] > 0
            bits = per_code * top + LEFT_OUT_BITS * float(seen[top:].sum())
            bits -= float(np.dot(seen[:top][inside], np.log2(weight[inside] / weight.sum())))
            if bits < best_bits:
                best = np.zeros_like(out)
                best[:top] = trial
                best_bits = bits
        codes[row] = best
    return codes


def _probabilities(codes: np.ndarray, table_weights: np.ndarray = TABLE_WEIGHTS) -> np.ndarray:
    weights = table_weights[codes]
    total = int(weights.sum())
    if total == 0:
        raise FormatError("a context table has no symbol with a nonzero weight.")
    return weights.astype(np.float64) / total


@functools.lru_cache(maxsize=1024)
def _categorical(codes: bytes, fine: bool):  # type: ignore[no-untyped-def]
    """The categorical model of a table (int64 ``codes``, of ``FINE_WEIGHTS`` or
    ``TABLE_WEIGHTS``), built once: a decoder reads every table's model many times."""
    weights = FINE_WEIGHTS if fine else TABLE_WEIGHTS
    probabilities = _probabilities(np.frombuffer(codes, dtype=np.int64), weights)
    return _models()[0].Categorical(probabilities, perfect=False)


def _model_of(codes: np.ndarray, weights: np.ndarray):  # type: ignore[no-untyped-def]
    """The categorical model of a table's ``codes`` (of ``weights``)."""
    if weights is FINE_WEIGHTS or weights is TABLE_WEIGHTS:
        return _categorical(np.asarray(codes, dtype=np.int64).tobytes(), weights is FINE_WEIGHTS)
    return _models()[0].Categorical(_probabilities(codes, weights), perfect=False)


def _models():  # type: ignore[no-untyped-def]
    import constriction

    return constriction.stream.model, constriction.stream.queue


class ContextWriter:
    """Appends integers to one range-coded segment."""

    def __init__(self) -> None:
        model, queue = _models()
        self._model = model
        self._encoder = queue.RangeEncoder()
        self._sign = model.Uniform(2)
        self._bits = model.Uniform()

    def uniform(self, values: np.ndarray | list[int], size: int) -> None:
        """Integers in ``0..size-1``, each equally likely."""
        array = np.asarray(values, dtype=np.int32)
        if array.size:
            self._encoder.encode(array, self._model.Uniform(size))

    def table(self, codes: np.ndarray, *, weights: np.ndarray = TABLE_WEIGHTS) -> None:
        used = np.flatnonzero(codes)
        top = int(used.max()) + 1 if used.size else 0
        self.uniform([top], ALPHABET + 1)
        self.uniform(codes[:top], len(weights))

    def values(
        self, values: np.ndarray, codes: np.ndarray, *, weights: np.ndarray = TABLE_WEIGHTS
    ) -> None:
        """Signed integers with the context of table ``codes`` (codes of ``weights``)."""
        if values.size == 0:
            return
        symbols, bits, low = symbols_of(values)
        self._encoder.encode(symbols.astype(np.int32), _model_of(codes, weights))
        negative = values[values != 0] < 0
        if negative.size:
            self._encoder.encode(negative.astype(np.int32), self._sign)
        wide = bits >= 2
        if wide.any():
            sizes = (1 << (bits[wide] - 1)).astype(np.int32)
            self._encoder.encode(low[wide].astype(np.int32), self._bits, sizes)

    def getvalue(self) -> bytes:
        return self._encoder.get_compressed().astype("<u4").tobytes()


class ContextReader:
    """Reads back what a :class:`ContextWriter` wrote; every failure is a FormatError."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise FormatError("a range-coded segment is not a whole number of 32-bit words.")
        model, queue = _models()
        self._model = model
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._decoder = queue.RangeDecoder(words)
        self._sign = model.Uniform(2)
        self._bits = model.Uniform()

    def _decode(self, *args: object) -> np.ndarray:
        try:
            return np.asarray(self._decoder.decode(*args), dtype=np.int64)
        except (AssertionError, ValueError, RuntimeError, OverflowError) as err:
            raise FormatError(f"the range-coded payload is corrupt ({err}).") from None

    def uniform(self, count: int, size: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        return self._decode(self._model.Uniform(size), count)

    def table(self, *, weights: np.ndarray = TABLE_WEIGHTS) -> np.ndarray:
        top = int(self.uniform(1, ALPHABET + 1)[0])
        codes = np.zeros(ALPHABET, dtype=np.int64)
        codes[:top] = self.uniform(top, len(weights))
        return codes

    def values(
        self, count: int, codes: np.ndarray, *, weights: np.ndarray = TABLE_WEIGHTS
    ) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        magnitude = self._decode(_model_of(codes, weights), count)  # the symbols, then |v|
        escaped = np.flatnonzero(magnitude >= EXACT)
        nonzero = np.flatnonzero(magnitude)
        negative = self.uniform(nonzero.size, 2).astype(bool)
        if escaped.size:  # rare: most contexts hold small magnitudes only
            bits = magnitude[escaped] - EXACT + 1
            x = np.left_shift(1, bits - 1)
            wide = bits >= 2
            if wide.any():
                x[wide] += self._decode(self._bits, (1 << (bits[wide] - 1)).astype(np.int32))
            magnitude[escaped] = x + EXACT - 1
        magnitude[nonzero[negative]] *= -1
        return magnitude


def join_segments(segments: list[bytes], counts: list[int]) -> bytes:
    """The payload of range-coded ``segments``, each padded with zero words to hold at most
    ``MAX_INTEGERS_PER_BYTE`` of the ``counts`` integers it declares per byte."""
    padded = []
    for segment, count in zip(segments, counts, strict=True):
        need = -(-count // MAX_INTEGERS_PER_BYTE)
        need = -(-need // 4) * 4
        padded.append(segment + bytes(max(0, need - len(segment))))
    lengths = b"".join(_SEGMENT.pack(len(s)) for s in padded)
    return _SEGMENT.pack(len(padded)) + lengths + b"".join(padded)


class PrefixTooShortError(FormatError):
    """A prefix (progressive decoding) that holds no complete part of the stream: ``least``
    payload bytes are needed (``exact``: that many; otherwise at least that many)."""

    def __init__(self, least: int, *, exact: bool) -> None:
        super().__init__("the prefix holds no complete part of the stream.")
        self.least, self.exact = least, exact


def read_segments(payload: bytes, *, partial: bool, most: int) -> list[bytes]:
    """The segments of a payload of at most ``most`` segments (with ``partial``, the complete
    ones a prefix holds; the first, the head, is the least that decodes)."""
    view = memoryview(payload)
    if len(view) < 4:
        if partial:
            raise PrefixTooShortError(8, exact=False)
        raise FormatError("payload is too short for its segment count.")
    (count,) = _SEGMENT.unpack_from(view)
    if not 1 <= count <= most:
        raise FormatError(f"payload declares {count} segments; a valid file has 1 to {most}.")
    if len(view) < 4 + 4 * count:
        if partial:
            raise PrefixTooShortError(4 + 4 * count + 1, exact=False)
        raise FormatError("payload is too short for its segment lengths.")
    lengths = [_SEGMENT.unpack_from(view, 4 + 4 * i)[0] for i in range(count)]
    offset = 4 + 4 * count
    segments: list[bytes] = []
    for length in lengths:
        if offset + length > len(view):
            if partial and segments:
                break
            if partial:  # the head segment is the least that decodes
                raise PrefixTooShortError(offset + length, exact=True)
            raise FormatError("truncated payload: a segment runs past its end.")
        segments.append(bytes(view[offset : offset + length]))
        offset += length
    if not partial and offset != len(view):
        raise FormatError(f"{len(view) - offset} unexpected bytes after the last segment.")
    return segments


def check_density(segments: list[bytes], counts: list[int]) -> None:
    """Refuse a segment that declares more than ``MAX_INTEGERS_PER_BYTE`` integers per byte
    (``counts``: what the header puts in each), before decoding any."""
    for segment, count in zip(segments, counts):
        if count > MAX_INTEGERS_PER_BYTE * len(segment):
            raise FormatError(
                f"a {len(segment):,}-byte segment declares {count:,} integers, more than "
                f"{MAX_INTEGERS_PER_BYTE:,} per byte: the file is corrupt or was crafted to "
                "make the decoder work for nothing."
            )

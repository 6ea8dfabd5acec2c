"""Hostile inputs for the fuzz targets (tests) and the campaigns (benchmarks/fuzz_campaign.py).

Each builder turns a seeded NumPy generator into one case; each checker runs one case and
says what went wrong, if anything: a wrong exception type (``MemoryError`` included), a
case over its time limit (a hang), or a peak of memory over the case's bound. The bounds are
those the README states: decoding an ``.svdz`` file peaks at 3x the float32 output + 64 MiB;
loading an image at ``64 MiB + 64 bytes x max_pixels``.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from dataclasses import dataclass

import numpy as np

MiB = 2**20
#: Seconds after which a case counts as a hang.
HANG_SECONDS = 10.0


@dataclass(frozen=True)
class Verdict:
    """What one case did: ``problem`` is None when it behaved."""

    kind: str  # "ok" (decoded), "refused" (the expected error), or the problem
    problem: str | None
    seconds: float
    peak: int
    bound: int


# -- measuring ---------------------------------------------------------------------------------
def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        return False
    return True


def measured(call):
    """``(result or exception, seconds, peak bytes)`` of ``call()``.

    The peak is the growth of the process's resident set (Linux: ``VmHWM`` after a reset,
    which counts the C libraries' allocations, Pillow's and libtiff's included); elsewhere
    Python's own allocations (``tracemalloc``).
    """
    resident = _reset_peak() and _status("VmRSS")
    if not resident:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        result = error
    seconds = time.perf_counter() - start
    if resident:
        peak = (_status("VmHWM") or 0) - resident
    else:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, max(peak, 0)


def verdict(result, seconds, peak, bound, expected) -> Verdict:
    if seconds > HANG_SECONDS:
        problem = f"hang: {seconds:.1f} s"
    elif isinstance(result, BaseException) and not isinstance(result, expected):
        problem = f"wrong exception {type(result).__name__}: {result}"
    elif peak > bound:
        problem = f"peak {peak / MiB:.0f} MiB over the bound {bound / MiB:.0f} MiB"
    else:
        problem = None
    kind = "refused" if isinstance(result, BaseException) else "ok"
    return Verdict(
        kind if problem is None else problem.split(":")[0], problem, seconds, peak, bound
    )


# -- .svdz cases ---------------------------------------------------------------------------------
#: The pixel cap of .svdz cases: any file that decodes is at most this large.
SVDZ_MAX_PIXELS = 4_000_000


def svdz_bound(data: bytes) -> int:
    """3x the float32 output the file's header declares (if it has one) + 64 MiB."""
    from svdimage.codec._format import FormatError, read_head

    try:
        header = read_head(data, max_pixels=SVDZ_MAX_PIXELS)[0]
    except (FormatError, ValueError):
        return 64 * MiB
    return 3 * 4 * int(np.prod(header["shape"])) + 64 * MiB


def check_svdz(data: bytes) -> Verdict:
    """Decode and inspect ``data``: each gives an image or a FormatError, within the bound;
    what decode accepts, inspect accepts."""
    from svdimage.codec import FormatError, decode, inspect

    bound = svdz_bound(data)
    result, seconds, peak = measured(lambda: decode(data, max_pixels=SVDZ_MAX_PIXELS))
    first = verdict(result, seconds, peak, bound, FormatError)
    if first.problem is not None:
        return first
    decoded = not isinstance(result, BaseException)
    if decoded and (result.dtype != np.float32 or not np.isfinite(result).all()):
        return Verdict("bad image", "decoded to a non-finite or non-float32 image", 0, 0, 0)
    checked, seconds, peak = measured(lambda: inspect(data, max_pixels=SVDZ_MAX_PIXELS))
    second = verdict(checked, seconds, peak, bound, FormatError)
    if second.problem is not None:
        return second
    if isinstance(checked, BaseException) != isinstance(result, BaseException):
        return Verdict("disagree", "decode and inspect disagree", seconds, peak, bound)
    return first


def mutated(data: bytes, rng: np.random.Generator) -> bytes:
    """Bit flips, deletions, insertions and JSON punctuation at random places."""
    buffer = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        position = int(rng.integers(0, max(len(buffer), 1)))
        kind = int(rng.integers(0, 4))
        if kind == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            del buffer[position : position + int(rng.integers(1, 17))]
        elif kind == 2:
            buffer[position:position] = bytes(rng.integers(0, 256, int(rng.integers(1, 5))))
        else:
            punctuation = b'0123456789[]{},.-e"'
            char = punctuation[int(rng.integers(0, len(punctuation)))]
            buffer[position:position] = bytes([char]) * int(rng.integers(1, 41))
    return bytes(buffer)


def svdz_case(seeds: list[bytes], rng: np.random.Generator) -> bytes:
    """One hostile .svdz file: a mutated seed (header or payload with checksums recomputed,
    or the raw file), a seed's payload under a header declaring a larger image, or a
    format-2 file declaring a large image with short (or empty) segments."""
    from svdimage.codec._format import unpack

    from .codec.svdz_files import amplified_v2, rebuild, rebuild_text

    kind = int(rng.integers(0, 5))
    seed = seeds[int(rng.integers(0, len(seeds)))]
    if kind == 0:
        return mutated(seed, rng)
    length = struct.unpack_from("<I", seed, 7)[0]
    text, (header, payload, version) = seed[11 : 11 + length], unpack(seed)
    if kind == 1:
        return rebuild_text(mutated(text, rng), payload, version=version)
    if kind == 2:
        return rebuild_text(text, mutated(payload, rng), version=version)
    if kind == 3:  # a larger image declared over the seed's payload
        side = [int(v) for v in rng.integers(2, 2000, 2)]
        header["shape"] = side + header["shape"][2:]
        if "planes" not in header:  # tiled (2.1, 2.4): the shape is all there is
            return rebuild(header, payload, version=version)
        from svdimage.codec._format import _plane_shapes

        shapes = _plane_shapes(*side, header["color"], header["chroma"])
        for plane, shape in zip(header["planes"], shapes):
            plane["shape"] = list(shape)
            if "max_rank" in plane and header.get("tile") is None:
                plane["max_rank"] = min(shape)
        return rebuild(header, payload, version=version)
    shape = tuple(int(v) for v in rng.integers(16, 2000, 2))
    if rng.random() < 0.3:
        shape = (*shape, 3)
    patch = int(rng.choice([4, 8, 16]))
    components = int(rng.integers(0, patch * patch + 1))
    data = amplified_v2(shape, components=components, patch=patch, padded=bool(rng.random() < 0.5))
    if rng.random() < 0.3:  # cut a padded file short
        data = data[: int(rng.integers(11, len(data)))]
    return data


# -- image cases ---------------------------------------------------------------------------------
#: The pixel cap of image cases, and their memory bound.
IMAGE_MAX_PIXELS = 1_000_000
IMAGE_BOUND = 64 * MiB + 64 * IMAGE_MAX_PIXELS

FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")


def image_seeds() -> dict[str, bytes]:
    """One small photo crop, saved in every format the image cases edit."""
    import skimage.data
    from PIL import Image

    pixels = skimage.data.astronaut()[100:164, 180:260]
    seeds = {}
    for fmt in FORMATS:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        seeds[fmt] = buffer.getvalue()
    return seeds


def with_dimensions(fmt: str, data: bytes, width: int, height: int) -> bytes:
    """``data`` with the header's width and height replaced (checksums kept valid)."""
    buffer = bytearray(data)
    if fmt == "PNG":
        buffer[16:24] = struct.pack(">II", width % 2**32, height % 2**32)
        crc = zlib.crc32(bytes(buffer[12:29]))
        buffer[29:33] = struct.pack(">I", crc)
    elif fmt == "BMP":
        buffer[18:26] = struct.pack("<ii", width % 2**31, height % 2**31)
    elif fmt == "GIF":
        buffer[6:10] = struct.pack("<HH", width % 2**16, height % 2**16)
        descriptor = buffer.find(b"\x2c", 13)
        if descriptor > 0:
            buffer[descriptor + 5 : descriptor + 9] = struct.pack(
                "<HH", width % 2**16, height % 2**16
            )
    elif fmt == "JPEG":
        start = buffer.find(b"\xff\xc0")
        if start > 0:
            buffer[start + 5 : start + 9] = struct.pack(">HH", height % 2**16, width % 2**16)
    elif fmt == "TIFF":
        (offset,) = struct.unpack_from("<I", buffer, 4)
        (count,) = struct.unpack_from("<H", buffer, offset)
        for entry in range(offset + 2, offset + 2 + 12 * count, 12):
            tag, kind = struct.unpack_from("<HH", buffer, entry)
            if tag in (256, 257):
                value = width if tag == 256 else height
                if kind == 3:
                    struct.pack_into("<H", buffer, entry + 8, value % 2**16)
                else:
                    struct.pack_into("<I", buffer, entry + 8, value % 2**32)
    elif fmt == "WEBP" and buffer[12:16] == b"VP8 ":
        buffer[26:30] = struct.pack("<HH", width % 2**14, height % 2**14)
    return bytes(buffer)


def image_case(seeds: dict[str, bytes], rng: np.random.Generator) -> bytes:
    """One hostile image: truncated data, edited dimensions, or both, or a mutated file."""
    fmt = FORMATS[int(rng.integers(0, len(FORMATS)))]
    data = seeds[fmt]
    kind = int(rng.integers(0, 4))
    if kind in (1, 3):
        scale = int(rng.choice([2**8, 2**14, 2**16, 2**31]))
        width, height = (int(v) for v in rng.integers(0, scale, 2))
        data = with_dimensions(fmt, data, width, height)
    if kind in (0, 3):
        data = data[: int(rng.integers(8, len(data)))]
    if kind == 2:
        data = mutated(data, rng)
    return data


def check_image(data: bytes) -> Verdict:
    """Load ``data``: a float32 image in [0, 1] or a ValueError, within the bound."""
    import warnings

    from svdimage import load_image

    def load():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_image(data, max_pixels=IMAGE_MAX_PIXELS)

    result, seconds, peak = measured(load)
    found = verdict(result, seconds, peak, IMAGE_BOUND, ValueError)
    if found.problem is None and not isinstance(result, BaseException):
        if result.dtype != np.float32 or not (np.isfinite(result).all() and result.min() >= 0):
            return Verdict("bad image", "loaded a non-finite or negative image", 0, 0, 0)
        if result.max() > 1:
            return Verdict("bad image", "loaded pixels above 1", 0, 0, 0)
    return found

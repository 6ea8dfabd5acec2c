"""Building .svdz files by hand for the codec's tests (any header, correct checksums)."""

import json
import math
import struct
import tracemalloc
import zlib

from svdimage.codec import decode
from svdimage.codec._format import MAGIC

#: The version of the format-1 files most tests below tamper with.
V1 = (1, 1)


def rebuild(header: dict, payload: bytes, *, version=V1) -> bytes:
    """A file with any header (valid or not) and correct checksums."""
    return rebuild_text(json.dumps(header).encode(), payload, version=version)


def rebuild_text(text: bytes, payload: bytes, *, version=V1) -> bytes:
    """A file with any header text (even invalid JSON) and correct checksums."""
    head = MAGIC + bytes(version) + struct.pack("<I", len(text)) + text
    return (
        head
        + struct.pack("<I", zlib.crc32(head))
        + struct.pack("<Q", len(payload))
        + payload
        + struct.pack("<I", zlib.crc32(payload))
    )


def decode_measured(data):
    """The decoded image and the peak of the memory Python allocated to decode it."""
    tracemalloc.start()
    try:
        return decode(data), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def amplified_v2(shape, *, components=None, patch=8, padded=True):
    """A version-2 file that declares an image of ``shape`` with ``components`` components
    per plane (all of them by default), every integer zero, coded in near-zero bits.

    Each context table gives symbol 0 all the weight, so the range coder needs almost no
    bits for any number of zeros. ``padded=False`` leaves the component segments empty (the
    attack: a decoder that reads past a segment's end decodes zeros for ever); ``padded``
    pads every segment to the least bytes a reader accepts for what it declares.
    """
    import numpy as np

    from svdimage.codec._context import ALPHABET, MAX_INTEGERS_PER_BYTE, ContextWriter
    from svdimage.codec._patch_contexts import N_COEF_CONTEXTS, N_MEAN_CONTEXTS
    from svdimage.codec._patch_payload import (
        E_MIN,
        E_SPAN,
        declared_integers,
        grid_of,
        layer_groups,
    )

    width = patch * patch
    components = width if components is None else components
    color = "gray" if len(shape) == 2 else "ycbcr"
    plane_shapes = [tuple(shape[:2])]
    if color == "ycbcr":
        half = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
        plane_shapes += [half, half]
    zero_only = np.zeros(ALPHABET, dtype=np.int64)
    zero_only[0] = 15
    head = ContextWriter()
    for plane in plane_shapes:
        rows, cols = grid_of(plane, patch)
        mask = np.zeros(width, dtype=np.int64)
        mask[:components] = 1
        head.uniform(mask, 2)
        head.uniform(np.full(components, E_MIN) - E_MIN, E_SPAN)
        for _ in range(E_SPAN + N_MEAN_CONTEXTS + N_COEF_CONTEXTS):
            head.table(zero_only)
        head.values(np.zeros(width * components + rows * cols, dtype=np.int64), zero_only)
    grids = [(*grid_of(plane, patch), components) for plane in plane_shapes]
    head_count, group_counts = declared_integers(grids, patch)
    segments = [head.getvalue()] + [b""] * len(layer_groups(components))
    if padded:
        counts = [head_count, *group_counts]
        least = [4 * math.ceil(math.ceil(n / MAX_INTEGERS_PER_BYTE) / 4) for n in counts]
        segments = [s + bytes(max(0, n - len(s))) for s, n in zip(segments, least)]
    payload = struct.pack("<I", len(segments))
    payload += b"".join(struct.pack("<I", len(s)) for s in segments) + b"".join(segments)
    header = {
        "shape": list(shape),
        "color": color,
        "chroma": "444" if color == "gray" else "420",
        "patch": patch,
        "planes": [
            {"shape": list(p), "step": 0.01, "components": components} for p in plane_shapes
        ],
        "coder": "context-range",
    }
    return rebuild(header, payload, version=(2, 0))

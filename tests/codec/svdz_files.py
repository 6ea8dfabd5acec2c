"""Building .svdz files by hand for the codec's tests (any header, correct checksums)."""

import json
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

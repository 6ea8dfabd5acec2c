"""The container (svdimage.codec._format): truncated, tampered and hostile files."""

import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from svdimage import FormatError
from svdimage.codec import (
    decode,
    inspect,
)
from svdimage.codec._format import MAGIC, unpack

from .svdz_files import V1, rebuild, rebuild_text


# -- malformed files: one FormatError naming the problem -------------------------------------
@pytest.mark.parametrize("cut", [0, 3, 7, 11, 20, -30, -5, -1])
def test_truncated_anywhere(small_file, cut):
    with pytest.raises(FormatError, match="truncated|checksum"):
        decode(small_file[:cut])


def test_every_truncation_is_a_format_error(small_file):
    for end in range(len(small_file)):
        with pytest.raises(FormatError):
            decode(small_file[:end])


def test_bad_magic_future_version_and_checksums(small_file):
    with pytest.raises(FormatError, match="bad magic"):
        decode(b"\x89PNG\r\n\x1a\n" + small_file[8:])
    future = bytearray(small_file)
    future[5] = 3
    with pytest.raises(FormatError, match=r"unsupported .svdz version 3\.1.*Upgrade"):
        decode(bytes(future))
    newer_minor = bytearray(small_file)
    newer_minor[6] = 7  # same major, newer minor: refused even with a matching checksum
    head_end = 11 + struct.unpack_from("<I", small_file, 7)[0]
    newer_minor[head_end : head_end + 4] = struct.pack(
        "<I", zlib.crc32(bytes(newer_minor[:head_end]))
    )
    with pytest.raises(FormatError, match="unsupported .svdz version 1.7"):
        decode(bytes(newer_minor))
    flipped = bytearray(small_file)
    flipped[-10] ^= 0x40
    with pytest.raises(FormatError, match="payload checksum"):
        decode(bytes(flipped))
    flipped = bytearray(small_file)
    flipped[15] ^= 0x01
    with pytest.raises(FormatError, match="header checksum"):
        decode(bytes(flipped))
    with pytest.raises(FormatError, match="unexpected bytes"):
        decode(small_file + b"\x00")


def _parts(data):
    header, payload, _ = unpack(data)
    return header, payload


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda h: h.pop("tile"), "missing \\['tile'\\]"),
        (lambda h: h.update(extra=1), "unexpected \\['extra'\\]"),
        (lambda h: h.update(shape="64x80"), "'shape' must be"),
        (lambda h: h.update(shape=[64, 80, 4]), "out of range"),
        (lambda h: h.update(shape=[1, 80]), "out of range"),
        (lambda h: h.update(color="cmyk"), "unknown"),
        (lambda h: h.update(color="ycbcr"), "do not fit"),
        (lambda h: h.update(tile=3), "'tile' must be"),
        (lambda h: h.update(tile=True), "'tile' must be"),
        (lambda h: h.update(coder="pickle"), "unknown coder"),
        (lambda h: h["planes"][0].update(step=-1.0), "'step' must be"),
        (lambda h: h["planes"][0].update(step=float("nan")), "header holds NaN"),
        (lambda h: h["planes"][0].update(max_rank=9), "'max_rank' must be in 0..8"),
        (lambda h: h["planes"][0].update(shape=[64, 81]), "plane shape"),
        (lambda h: h["planes"][0].pop("dc_step"), "exactly the keys"),
        (lambda h: h.update(planes=[]), "must list 1 planes"),
    ],
)
def test_header_with_wrong_keys_types_or_ranges(small_file, mutate, match):
    header, payload = _parts(small_file)
    mutate(header)
    with pytest.raises(FormatError, match=match):
        decode(rebuild(header, payload))


def test_header_that_is_not_json_or_too_long(small_file):
    _, _payload = _parts(small_file)
    text = b"{not json"
    head = MAGIC + bytes((1, 0)) + struct.pack("<I", len(text)) + text
    data = head + struct.pack("<I", zlib.crc32(head)) + struct.pack("<Q", 0) + struct.pack("<I", 0)
    with pytest.raises(FormatError, match="not valid JSON"):
        decode(data)
    huge = MAGIC + bytes((1, 0)) + struct.pack("<I", 10**9)
    with pytest.raises(FormatError, match="over the 65536-byte limit"):
        decode(huge + b"\x00" * 100)


def test_absurd_sizes_are_refused_before_allocating(small_file):
    header, payload = _parts(small_file)
    header["shape"] = [60000, 60000]
    header["planes"][0]["shape"] = [60000, 60000]
    with pytest.raises(FormatError, match="over the 89,478,485-pixel cap"):
        decode(rebuild(header, payload))
    tracemalloc.start()
    with pytest.raises(FormatError, match="payload can describe"):
        decode(rebuild(header, payload), max_pixels=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing proportional to 3.6 gigapixels


def test_payload_length_beyond_the_file(small_file):
    header, payload = _parts(small_file)
    data = bytearray(rebuild(header, payload))
    offset = 11 + struct.unpack_from("<I", data, 7)[0] + 4
    data[offset : offset + 8] = struct.pack("<Q", 2**40)
    with pytest.raises(FormatError, match="truncated file: the payload needs"):
        decode(bytes(data))


def test_payload_inconsistent_with_header(small_file):
    header, payload = _parts(small_file)
    with pytest.raises(FormatError, match="not valid LZMA|too short|truncated"):
        decode(rebuild(header, payload[: len(payload) // 2]))
    with pytest.raises(FormatError):
        decode(rebuild(header, b"\x00" * 40))
    header["planes"][0]["max_rank"] = 0  # the ranks in the payload now exceed it
    with pytest.raises(FormatError, match="tile rank is outside 0..0|more data than the header"):
        decode(rebuild(header, payload))


def test_newer_minor_version_is_refused_with_upgrade_message(small_file):
    header, payload, _ = unpack(small_file)
    newer = rebuild(header, payload, version=(V1[0], V1[1] + 1))
    with pytest.raises(FormatError, match=r"unsupported .svdz version 1\.2.*Upgrade"):
        decode(newer)
    with pytest.raises(FormatError, match="Upgrade"):
        inspect(newer)


def test_extension_keys_are_ignored_other_unknown_keys_refused(small_file):
    header, payload, _ = unpack(small_file)
    extended = rebuild({**header, "x-comment": "made by a test", "x-tool": {"v": [1, 2]}}, payload)
    np.testing.assert_array_equal(decode(extended), decode(small_file))
    assert inspect(extended).header["x-comment"] == "made by a test"
    with pytest.raises(FormatError, match=r"unexpected \['comment'\]"):
        decode(rebuild({**header, "comment": "no prefix"}, payload))


# -- hostile headers (issue 11): every failure is a FormatError naming the field -----------
def _with_header_text(small_file, edit):
    """``small_file`` with its header text replaced by ``edit(text)``, checksums recomputed."""
    header, payload, _ = unpack(small_file)
    original = json.dumps(header)
    text = edit(original).encode()
    assert text != original.encode(), "the edit did not apply"
    return rebuild_text(text, payload)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # 20,000 nested arrays under an extension key: Python's json would recurse too deep.
        (lambda t: t[:-1] + ', "x-deep": ' + "[" * 20_000 + "]" * 20_000 + "}", "nests deeper"),
        (lambda t: t[:-1] + ', "x-deep": ' + "[" * 9 + "]" * 9 + "}", "nests deeper than 8"),
        # A 5,000-digit integer: Python's own int-limit error text must not reach the user.
        (lambda t: t.replace('"tile": 8', '"tile": ' + "9" * 5000), "integer of 5000 digits"),
        (lambda t: t.replace('"tile": 8', '"tile": 8.0'), "'tile' must be null or an int"),
        (
            lambda t: t.replace('"shape": [64, 80], "step"', '"shape": [64.0, 80.0], "step"'),
            "plane shape",
        ),
        (
            lambda t: t.replace('"shape": [64, 80], "step"', '"shape": [64, true], "step"'),
            "plane shape",
        ),
        (
            lambda t: t.replace('"shape": [64, 80], "step"', '"shape": "64x80", "step"'),
            "plane shape",
        ),
        (lambda t: t.replace('"step": ', '"step": NaN, "x-was": '), "NaN"),
        (lambda t: t.replace('"max_rank": ', '"max_rank": 1e0, "x-was": '), "max_rank"),
    ],
)
def test_hostile_headers_are_format_errors_naming_the_problem(small_file, edit, match):
    data = _with_header_text(small_file, edit)
    for reader in (decode, inspect):
        with pytest.raises(FormatError, match=match):
            reader(data)


@pytest.mark.parametrize("payload", [b"", b"\x00garbage", b"\xfd7zXZ\x00" * 10])
def test_inspect_refuses_every_payload_that_decode_refuses(small_file, payload):
    header, _, _ = unpack(small_file)
    data = rebuild(header, payload)
    with pytest.raises(FormatError) as decoding:
        decode(data)
    with pytest.raises(FormatError) as inspecting:
        inspect(data)
    assert str(inspecting.value) == str(decoding.value)


def test_trailing_bytes_after_the_payload_are_refused(small_file):
    with pytest.raises(FormatError, match="3 unexpected bytes after the payload"):
        decode(small_file + b"abc")
    with pytest.raises(FormatError, match="unexpected bytes"):
        inspect(small_file + b"abc")

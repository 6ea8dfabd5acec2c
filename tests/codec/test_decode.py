"""Decoding (svdimage.codec._decode): progressive prefixes, fuzzing, bounded work, golden files."""

import hashlib
import io
import json
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svdimage import FormatError
from svdimage.codec import (
    decode,
    encode,
    inspect,
)
from svdimage.codec._format import unpack
from svdimage.io import to_uint8
from svdimage.metrics import peak_signal_noise_ratio

from .svdz_files import amplified_v2, decode_measured, rebuild, rebuild_text


def test_progressive_prefixes_decode_to_lower_ranks(camera):
    data = encode(camera, quality=85, tile=None)
    scores = [
        peak_signal_noise_ratio(camera, decode(data, max_bytes=int(len(data) * f)))
        for f in (0.2, 0.4, 0.7, 1.0)
    ]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 3
    assert scores[-1] == pytest.approx(peak_signal_noise_ratio(camera, decode(data)))


# -- fuzzing ---------------------------------------------------------------------------------
# The reader's fuzz target: mutations of the header text, of the payload, or of the whole
# file, with both checksums recomputed in the first two cases so that they reach the parser
# and the payload checks. Every case must end in an image or a FormatError, within a time
# and a memory bound.
FUZZ_MAX_PIXELS = 1_000_000


FUZZ_SECONDS = 5.0


#: The output (float32), the decoder's float64 buffer, and a bounded working set.
FUZZ_MAX_MEMORY = 3 * 4 * 3 * FUZZ_MAX_PIXELS + 64 * 2**20


def _mutations(data: bytes, draw_ops):
    buffer = bytearray(data)
    for kind, position, value in draw_ops:
        position %= max(len(buffer), 1)
        if kind == 0:
            buffer[position] ^= 1 << (value % 8)
        elif kind == 1:
            del buffer[position : position + 1 + value % 16]
        elif kind == 2:
            buffer[position:position] = bytes([value % 256]) * (1 + value % 4)
        else:  # digits and JSON punctuation: what moves a header's numbers and structure
            buffer[position:position] = bytes([b'0123456789[]{},.-e"'[value % 19]]) * (
                1 + value % 40
            )
    return bytes(buffer)


def _fuzz_one(data, ops, target):
    header_text, payload = _text_and_payload(data)
    if target == "header":
        mutated = rebuild_text(_mutations(header_text, ops), payload)
    elif target == "payload":
        mutated = rebuild_text(header_text, _mutations(payload, ops))
    else:
        mutated = _mutations(data, ops)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        image = decode(mutated, max_pixels=FUZZ_MAX_PIXELS)
        inspect(mutated, max_pixels=FUZZ_MAX_PIXELS)  # what decode accepts, inspect accepts
    except FormatError as err:
        assert str(err)
        image = None
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < FUZZ_SECONDS
    assert peak < FUZZ_MAX_MEMORY
    if image is not None:
        assert image.dtype == np.float32 and image.ndim in (2, 3)
    else:  # inspect refuses what decode refuses
        with pytest.raises(FormatError):
            inspect(mutated, max_pixels=FUZZ_MAX_PIXELS)


def _text_and_payload(data):
    length = struct.unpack_from("<I", data, 7)[0]
    return data[11 : 11 + length], unpack(data)[1]


@pytest.fixture(scope="module")
def fuzz_seeds(small_gray, astronaut):
    """Files of every kind the encoder writes: gray and colour, tiled and global."""
    colour = np.ascontiguousarray(astronaut[100:148, 200:264])
    return [
        encode(small_gray, quality=80, version=1),
        encode(small_gray, quality=60, tile=None),
        encode(colour, quality=70, version=1),
        encode(colour, quality=50, tile=None, chroma="444"),
        encode(small_gray, quality=80),
        encode(colour, quality=70),
        encode(colour, quality=90, tile=4, chroma="444"),
    ]


OPS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 10**6)),
    min_size=1,
    max_size=4,
)


TARGETS = st.sampled_from(["header", "payload", "file"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, target=TARGETS, seed=st.integers(0, 6))
def test_fuzz_mutated_files_raise_only_format_errors(fuzz_seeds, ops, target, seed):
    _fuzz_one(fuzz_seeds[seed], ops, target)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, target=TARGETS, seed=st.integers(0, 6))
def test_fuzz_many_mutated_files(fuzz_seeds, ops, target, seed):
    _fuzz_one(fuzz_seeds[seed], ops, target)


# -- amplification: tiny valid files that declare a lot of work -------------------------------
def _zeros_file(side, *, tile, rank, surplus=0, components=True):
    """A gray file whose tiles all have ``rank`` components of zeros (a valid file)."""
    from svdimage.codec._entropy import compress_symbols

    tiles = 1 if tile is None else (-(-side // tile)) ** 2
    th = side if tile is None else tile
    symbols = np.zeros(2 * tiles + components * tiles * rank * 2 * th + surplus, dtype=np.int64)
    symbols[tiles : 2 * tiles] = rank
    plane = {"shape": [side, side], "step": 0.01, "dc_step": 0.01, "max_rank": rank}
    header = {
        "shape": [side, side],
        "color": "gray",
        "chroma": "444",
        "tile": tile,
        "planes": [plane],
        "coder": "lzma-varint",
        "order": "rank-major",
    }
    return rebuild(header, compress_symbols(symbols))


def test_small_tiles_decode_in_bounded_memory():
    # Reproducer: a 3 KB file of 3000² in rank-4 4×4 tiles took 1.5 GiB; at 1500² (~800
    # bytes) the decoder holds the output, its float64 buffer and a bounded working set.
    data = _zeros_file(1500, tile=4, rank=4)
    image, peak = decode_measured(data)
    assert image.shape == (1500, 1500)
    assert peak < 3 * image.nbytes + 32 * 2**20


def test_global_rank_1000_of_zeros_decodes_to_its_mean():
    data = _zeros_file(600, tile=None, rank=600)
    assert len(data) < 2000
    image, peak = decode_measured(data)
    np.testing.assert_array_equal(image, 0.0)
    assert peak < 3 * image.nbytes + 32 * 2**20


def test_surplus_symbols_are_refused_before_allocating():
    # Reproducer: a 1.9 KB file whose stream held surplus zeros allocated 955 MiB first.
    # The stream is counted (a MiB at a time, nothing kept) before the image is allocated.
    data = _zeros_file(200, tile=8, rank=0, surplus=20_000_000)
    tracemalloc.start()
    with pytest.raises(FormatError, match="payload holds 20,001,250 integers; .* describe 1,250"):
        decode(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20


def test_work_beyond_what_the_payload_can_hold_is_refused_before_allocating():
    # The ranks claim rank 8 in every 8×8 tile, but the stream ends after the ranks: no
    # encoder can have written this, and it is refused before the 4000² image exists.
    data = _zeros_file(4000, tile=8, rank=8, components=False)
    tracemalloc.start()
    with pytest.raises(FormatError, match="tile ranks declare .* more than a .*-byte payload"):
        decode(data)
    with pytest.raises(FormatError, match="tile ranks declare"):
        inspect(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20


def test_the_capacity_bound_holds_for_the_most_compressible_stream():
    from svdimage.codec._entropy import capacity, compress_symbols

    zeros = np.zeros(1 << 22, dtype=np.int64)
    assert zeros.size <= capacity(len(compress_symbols(zeros)))


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError):
        decode(io.BytesIO(b""))


# -- the format is a promise: golden files and versions ----------------------------------
GOLDEN = Path(__file__).parents[1] / "data" / "svdz"


MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_files_decode_to_their_recorded_pixels(name):
    data = (GOLDEN / name).read_bytes()
    expected = MANIFEST[name]
    assert f"{data[5]}.{data[6]}" == expected["version"]
    scaled = decode(data) * 255
    pixels = np.rint(scaled).astype(np.uint8)
    assert list(pixels.shape) == expected["shape"]
    # Where a product's last bit came from BLAS (the 2.1 and 2.4 records, format 3.0), a
    # pixel at a half level holds its recorded value (it must still be at one here); all
    # others must decode as recorded (the manifest's "about").
    for index, value in expected.get("half_levels", {}).items():
        at = np.unravel_index(int(index), pixels.shape)
        assert abs(scaled[at] - np.floor(scaled[at]) - 0.5) < 1e-4
        assert abs(int(pixels[at]) - value) <= 1
        pixels[at] = value
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == expected["sha256_uint8"]
    assert inspect(data).version == tuple(int(v) for v in expected["version"].split("."))


def test_version_1_0_tiled_files_are_not_deblocked_and_1_1_files_are():
    old = (GOLDEN / "gray-tiled-v1.0.svdz").read_bytes()
    header, payload, _ = unpack(old)
    as_new = rebuild(header, payload, version=(1, 1))
    assert not np.array_equal(decode(old), decode(as_new))  # deblocking changes pixels
    # Global files have no tile edges: the version does not change them.
    glob = (GOLDEN / "gray-global-v1.0.svdz").read_bytes()
    header, payload, _ = unpack(glob)
    np.testing.assert_array_equal(decode(glob), decode(rebuild(header, payload, version=(1, 1))))


# -- hostile files, round 3: amplification, allocation order, reading order -------------------
def _measured(call):
    """``call()``'s result (or exception), its seconds and its peak of Python allocations."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - returned for the test to check
        result = error
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def test_format_2_segments_too_short_for_what_they_declare_are_refused_at_once():
    # Reproducer: 325-760-byte files declaring 9459² with every component (empty segments:
    # the range decoder decoded zeros past their end) decoded in 10-44 s at 4-4.9x the output.
    data = amplified_v2((9459, 9459), padded=False)
    assert len(data) < 1000
    for call in (lambda: decode(data), lambda: inspect(data)):
        error, seconds, peak = _measured(call)
        assert isinstance(error, FormatError)
        assert "integers, more than 1,024 per byte" in str(error)
        assert seconds < 0.5 and peak < 16 * 2**20


@pytest.mark.parametrize("shape", [(1500, 1500), (900, 900, 3)])
def test_format_2_work_and_memory_are_bounded_by_the_bytes_and_the_output(shape):
    # A file padded to the least bytes a reader accepts: it decodes, within the bound
    # docs/format.md derives (3x the float32 output + 64 MiB).
    data = amplified_v2(shape, padded=True)
    image, _, peak = _measured(lambda: decode(data))
    assert image.shape == shape and np.ptp(image, axis=(0, 1)).max() == 0  # constant
    assert peak <= 3 * image.nbytes + 64 * 2**20


def test_a_v1_payload_shorter_than_declared_is_refused_before_the_image_is_allocated(
    small_gray,
):
    # Reproducer: 1.6 KB, header 1365x65535x3 global, payload of a tiny file: inspect refused
    # it, decode allocated a 2 GiB float64 image first.
    noise = np.random.default_rng(1).random((8, 8, 3))
    tiny = encode(noise, quality=60, tile=None, version=1)
    header, payload, _ = unpack(tiny)
    header["shape"] = [1365, 65535, 3]
    half = [683, 32768]
    header["planes"] = [
        dict(plane, shape=shape, max_rank=min(shape))
        for plane, shape in zip(header["planes"], [[1365, 65535], half, half])
    ]
    hostile = rebuild(header, payload)
    for call in (lambda: decode(hostile), lambda: inspect(hostile)):
        error, _, peak = _measured(call)
        assert isinstance(error, FormatError), error
        assert peak < 32 * 2**20


def test_files_are_checked_from_their_first_bytes_not_read_whole(tmp_path):
    # Reproducer: inspect/decompress of a 3 GiB sparse file read 3.2 GB before "bad magic".
    from svdimage.codec import load, read_file

    big = tmp_path / "big.svdz"
    with open(big, "wb") as handle:
        handle.truncate(3 * 2**30)
    for call in (lambda: read_file(big), lambda: load(big)):
        error, seconds, peak = _measured(call)
        assert isinstance(error, FormatError) and "bad magic bytes" in str(error)
        assert peak < 1 * 2**20 and seconds < 0.5
    data = encode(np.full((16, 16), 0.5), quality=50)
    short = tmp_path / "short.svdz"
    short.write_bytes(data + bytes(2**20))  # its length is checked before the rest is read
    with pytest.raises(FormatError, match="unexpected bytes after the payload"):
        read_file(short)
    short.write_bytes(data)
    assert read_file(short) == data
    assert read_file(short, max_bytes=len(data) - 9) == data[:-9]
    with pytest.raises(FormatError, match="truncated file"):  # not even the header
        read_file(short, max_bytes=40)


@pytest.mark.parametrize("max_bytes", [-1, 0, 2.5, True])
def test_max_bytes_must_be_a_positive_integer(max_bytes):
    # Reproducer: decode(data, max_bytes=-1) decoded (a negative slice dropped the last byte).
    data = encode(np.full((16, 16), 0.5), quality=50)
    with pytest.raises((ValueError, TypeError), match="max_bytes must be"):
        decode(data, max_bytes=max_bytes)


def test_fifo_and_folder_inputs_are_refused_at_once(tmp_path):
    import os

    from svdimage.codec import read_file

    fifo = tmp_path / "x.svdz"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"is a FIFO \(named pipe\)"):
        read_file(fifo)
    with pytest.raises(IsADirectoryError):
        read_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_file(tmp_path / "missing.svdz")


# -- the hostile-case target (tests/fuzz_cases.py; the 20,000-case campaign runs the same
# cases: benchmarks/fuzz_campaign.py) ------------------------------------------------------------
@pytest.fixture(scope="module")
def campaign_seeds(small_gray, astronaut):
    colour = np.ascontiguousarray(astronaut[100:148, 200:264])
    return [
        encode(small_gray, quality=80, version=1),
        encode(small_gray, quality=60, tile=None, version=1),
        encode(colour, quality=70, version=1),
        encode(small_gray, quality=80),
        encode(colour, quality=70),
        encode(colour, quality=90, tile=4, chroma="444"),
        encode(small_gray, quality=80, tile=None),
        encode(colour, quality=80, tile=None),
        encode(colour, quality=15),
        (GOLDEN / "color-tiled-v2.1.svdz").read_bytes(),  # tiled: 2x2 tiles of 256 pixels
        (GOLDEN / "color-tiled-v2.4.svdz").read_bytes(),
    ]


def _hostile_case(seeds, seed):
    from ..fuzz_cases import check_svdz, svdz_case

    outcome = check_svdz(svdz_case(seeds, np.random.default_rng(seed)))
    assert outcome.problem is None, outcome


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_hostile_files_decode_or_refuse_within_the_bound(campaign_seeds, seed):
    _hostile_case(campaign_seeds, seed)


@pytest.mark.slow
@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_many_hostile_files(campaign_seeds, seed):
    _hostile_case(campaign_seeds, seed)


def test_a_prefix_too_short_to_decode_names_the_smallest_that_does(astronaut, tmp_path):
    # Reproducer: `decompress --max-bytes 5000` of a 31 KB file said only "a segment runs past
    # its end"; the smallest prefix that decodes was 7,799 bytes, and nothing said so.
    import re

    from svdimage.codec import load

    data = encode(astronaut, quality=60)
    with pytest.raises(FormatError, match="smallest prefix that decodes") as caught:
        decode(data, max_bytes=1000)
    least = int(re.search(r"at least ([\d,]+)", str(caught.value))[1].replace(",", ""))
    assert decode(data, max_bytes=least).shape == astronaut.shape  # the means, no component
    with pytest.raises(FormatError, match=f"is {least:,} bytes"):
        decode(data, max_bytes=least - 1)
    path = tmp_path / "a.svdz"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=f"is {least:,} bytes"):  # reading a prefix from disk
        load(path, max_bytes=1000)
    scores = [
        peak_signal_noise_ratio(astronaut, decode(data, max_bytes=n))
        for n in (least, (least + len(data)) // 2, len(data))
    ]
    assert scores == sorted(scores)


def test_a_truncated_file_says_how_to_decode_the_part_it_holds(astronaut, tmp_path):
    """A file cut short (an interrupted download) is refused, and the message names the
    max_bytes that decodes what it holds; tiled files, which are not progressive, do not."""
    from svdimage.codec import load, save_tiled

    data = encode(astronaut, quality=60)
    cut = data[: len(data) * 2 // 3]
    path = tmp_path / "cut.svdz"
    path.write_bytes(cut)
    for call in (lambda: decode(cut), lambda: load(path)):
        with pytest.raises(FormatError, match="truncated file") as caught:
            call()
        assert f"pass max_bytes of at most {len(cut):,} to decode the part it holds" in str(
            caught.value
        )
    assert decode(cut, max_bytes=len(cut)).shape == astronaut.shape
    tiled = tmp_path / "tiled.svdz"
    save_tiled(tiled, astronaut, tile=256)
    cut = tiled.read_bytes()[:-100]
    with pytest.raises(FormatError, match="truncated file") as caught:
        decode(cut)
    assert "max_bytes" not in str(caught.value)


@pytest.mark.parametrize("width", [1, 2, 7, 64])
def test_chroma_doubling_in_strips_is_the_planes_doubling_bit_for_bit(width):
    """The decoder's strip-wise 4:2:0 doubling writes the same float32 values as
    ``_planes.double`` (the arithmetic of format 2's specification), bit for bit."""
    from svdimage.codec._decode import _double_columns
    from svdimage.codec._planes import double

    x = np.random.default_rng(width).random((5, width), dtype=np.float32)
    np.testing.assert_array_equal(_double_columns(x), double(x, axis=1))


@pytest.mark.parametrize(
    "name",
    [
        "color-patch-v2.3.svdz",
        "gray-patch-v2.3.svdz",
        "color-global-v3.0.svdz",
        "color-rgb-global-v3.0.svdz",
        "color-tiled-v2.4.svdz",
        "color-global-v1.1.svdz",
    ],
)
def test_eight_bit_decoding_gives_to_uint8_of_the_float_image(name):
    data = (GOLDEN / name).read_bytes()
    pixels = decode(data, dtype=np.uint8)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, to_uint8(decode(data)))


def test_decode_refuses_other_dtypes():
    data = (GOLDEN / "gray-patch-v2.3.svdz").read_bytes()
    for dtype in (np.float64, np.uint16, "int8", object):
        with pytest.raises(ValueError, match="dtype must be numpy.float32 or numpy.uint8"):
            decode(data, dtype=dtype)

import hashlib
import io
import json
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.metrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from svdimage import FormatError, decompose
from svdimage._search import largest_true, qualities_for_budgets
from svdimage.codec import (
    decode,
    encode,
    encode_for_sizes,
    inspect,
    jpeg_at_size,
    load,
    quality_to_step,
    save,
)
from svdimage.codec._format import MAGIC, VERSION, unpack
from svdimage.metrics import peak_signal_noise_ratio

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


@pytest.fixture(scope="module")
def small_gray(camera):
    return np.ascontiguousarray(camera[100:164, 200:280])


@pytest.fixture(scope="module")
def small_file(small_gray):
    """A format-1 (per-tile SVD) file: the malformed-file tests below edit its header."""
    return encode(small_gray, quality=80, version=1)


# -- round trips --------------------------------------------------------------------
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    image=st.one_of(
        arrays(
            np.float32,
            st.tuples(st.integers(2, 40), st.integers(2, 40)),
            elements=st.floats(0, 1, width=32),
        ),
        arrays(
            np.float32,
            st.tuples(st.integers(2, 30), st.integers(2, 30), st.just(3)),
            elements=st.floats(0, 1, width=32),
        ),
    ),
    tile=st.sampled_from([None, 4, 8, 16]),
    color=st.sampled_from(["ycbcr", "rgb"]),
    quality=st.integers(1, 100),
)
def test_round_trip_any_shape_mode_and_quality(image, tile, color, quality):
    data = encode(image, quality=quality, tile=tile, color=color)
    decoded = decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.float32
    assert decoded.min() >= 0 and decoded.max() <= 1
    assert decode(data).tobytes() == decoded.tobytes()  # deterministic


@pytest.mark.parametrize("tile", [None, 8])
def test_high_quality_is_nearly_lossless(small_gray, astronaut, tile):
    assert (
        peak_signal_noise_ratio(small_gray, decode(encode(small_gray, quality=100, tile=tile))) > 45
    )
    rgb = astronaut[::8, ::8]
    assert (
        peak_signal_noise_ratio(rgb, decode(encode(rgb, quality=100, tile=tile, color="rgb"))) > 45
    )


def test_quality_is_monotone_in_size_and_psnr(camera):
    sizes, scores = [], []
    for quality in (10, 30, 50, 70, 90):
        data = encode(camera, quality=quality)
        sizes.append(len(data))
        scores.append(peak_signal_noise_ratio(camera, decode(data)))
    assert sizes == sorted(sizes) and scores == sorted(scores)
    steps = [quality_to_step(q) for q in range(1, 101)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))


def test_rate_targets(camera):
    data = encode(camera, psnr=33.0)
    assert peak_signal_noise_ratio(camera, decode(data)) >= 33.0
    assert len(encode(camera, max_bytes=20_000)) <= 20_000
    assert len(encode(camera, bpp=0.5)) <= 0.5 * 512 * 512 / 8
    with pytest.raises(ValueError, match="even the coarsest step does not fit 50 bytes"):
        encode(camera, max_bytes=50)
    with pytest.raises(ValueError, match="one of quality, step, psnr, max_bytes or bpp"):
        encode(camera, quality=50, psnr=30)


@given(
    steps=st.lists(st.integers(0, 400), min_size=100, max_size=100),
    budgets=st.lists(st.integers(1, 40_000), min_size=1, max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_equal_bisection_with_fewer_trials(steps, budgets):
    """Any size that grows with the quality (plateaus included): the bisection's answers."""
    sizes = dict(zip(range(1, 101), np.cumsum(steps) + 1))
    trials = []

    def size_at(q):
        trials.append(q)
        return int(sizes[q])

    got = qualities_for_budgets(size_at, budgets)
    expected = [
        largest_true(lambda q, b=b: sizes[q] <= b, 1, 100) if sizes[1] <= b else None
        for b in budgets
    ]
    assert got == expected
    assert len(trials) == len(set(trials))  # each quality encoded once, shared by the budgets
    # Worst case about twice bisection's 7 trials per budget (a secant step that fails to
    # halve the bracket is followed by a bisection step); on photos far fewer (next test).
    assert len(trials) <= 15 * len(set(budgets))


@given(
    top=st.integers(2, 5000),
    slope=st.floats(10, 5000),
    budget=st.floats(1, 1e7),
    seen=st.lists(st.integers(1, 5000), max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_over_any_range_with_known_sizes(top, slope, budget, seen):
    """The same search over ranks 1..top (sizes growing with the rank, some already known):
    the bisection answer, and no known size measured again."""

    def size_of(k):
        return int(200 + slope * k + 0.01 * k * k)

    known = {k: size_of(k) for k in seen if k <= top}
    calls = []
    (got,) = qualities_for_budgets(
        lambda k: calls.append(k) or size_of(k), [budget], lowest=1, highest=top, known=known
    )
    expected = (
        largest_true(lambda k: size_of(k) <= budget, 1, top) if size_of(1) <= budget else None
    )
    assert got == expected
    assert not set(calls) & set(known)


@given(
    steps=st.lists(st.integers(0, 400), min_size=1101, max_size=1101),
    budgets=st.lists(st.integers(1, 400_000), min_size=1, max_size=4),
    slope=st.sampled_from([None, 0.012, 0.05]),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_with_a_tolerance_fit_and_stop_near(steps, budgets, slope):
    """With a tolerance: an answer that fits and is within it of the budget, or, when no
    level is, the bisection's answer; never more trials than an exact search."""
    sizes = dict(zip(range(0, 1101), np.cumsum(steps) + 1))
    trials = []

    def size_at(q):
        trials.append(q)
        return int(sizes[q])

    got = qualities_for_budgets(
        size_at, budgets, lowest=0, highest=1100, first=500, tolerance=0.02, slope=slope
    )
    for budget, level in zip(budgets, got):
        best = (
            largest_true(lambda q, b=budget: sizes[q] <= b, 0, 1100) if sizes[0] <= budget else None
        )
        if best is None:
            assert level is None
        elif sizes[best] >= 0.98 * budget:
            assert sizes[level] <= budget and sizes[level] >= 0.98 * budget
        else:
            assert level == best
    assert len(trials) == len(set(trials))
    assert len(trials) <= 24 * len(set(budgets))


def test_encode_for_sizes_is_encode_at_each_size(camera, monkeypatch):
    from svdimage.codec import _patches

    sizes = [6_000, 15_000, 40_000]
    calls, factored = [], []
    at_step, analysis = _patches.PatchTrials.at_step, _patches._PlaneAnalysis.__init__
    monkeypatch.setattr(
        _patches.PatchTrials, "at_step", lambda *a, **k: calls.append(1) or at_step(*a, **k)
    )
    monkeypatch.setattr(
        _patches._PlaneAnalysis,
        "__init__",
        lambda *a, **k: factored.append(1) or analysis(*a, **k),
    )
    files = encode_for_sizes(camera, sizes + [40])
    assert len(calls) <= 15  # bisection over 1100 levels: 11 per budget, 44 in all
    assert len(factored) == 1  # the patch SVD of the one plane, shared by every trial
    monkeypatch.undo()
    assert files[-1] is None  # not even the coarsest step fits 40 bytes
    for nbytes, data in zip(sizes, files):
        assert 0.97 * nbytes <= len(data) <= nbytes
        assert data == encode(camera, max_bytes=nbytes)
    assert len(files[0]) < len(files[1]) < len(files[2])


@pytest.mark.parametrize("format", ["JPEG", "WEBP"])
def test_pillow_at_size_is_the_best_quality_that_fits(camera, astronaut, format):
    from PIL import Image

    from svdimage.codec import pillow_at_size

    for image in (camera, astronaut):
        found = pillow_at_size(image, 15_000, format=format)
        quality, data, decoded = found.quality, found.data, found.image
        assert len(data) <= 15_000 and decoded.shape == image.shape
        pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))
        options = {"optimize": True} if format == "JPEG" else {}
        buffer = io.BytesIO()
        pixels.save(buffer, format=format, quality=quality + 1, **options)
        assert len(buffer.getvalue()) > 15_000  # one step better no longer fits
    assert pillow_at_size(camera, 50, format=format) is None
    with pytest.raises(ValueError, match="format"):
        pillow_at_size(camera, 1000, format="PNG")


def test_global_rank_cap_and_real_compression(camera):
    data = encode(camera, rank=40, tile=None, quality=90)
    info = inspect(data)
    assert info.header["tile"] is None and info.tile_ranks[0]["max_rank"] <= 40
    # Honest storage: far smaller than float32 factors of the same rank and than the pixels.
    assert len(data) < 4 * decompose(camera, rank=40).stored_values(40) / 3
    assert len(data) < camera.size


def test_color_ycbcr_420_beats_rgb_at_equal_quality_on_size(astronaut):
    ycbcr, rgb = encode(astronaut, quality=60), encode(astronaut, quality=60, color="rgb")
    assert len(ycbcr) < len(rgb)
    assert inspect(ycbcr).header["planes"][1]["shape"] == [256, 256]


def test_progressive_prefixes_decode_to_lower_ranks(camera):
    data = encode(camera, quality=85, tile=None)
    scores = [
        peak_signal_noise_ratio(camera, decode(data, max_bytes=int(len(data) * f)))
        for f in (0.2, 0.4, 0.7, 1.0)
    ]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 3
    assert scores[-1] == pytest.approx(peak_signal_noise_ratio(camera, decode(data)))


def test_jpeg_at_size_respects_the_budget(camera):
    found = jpeg_at_size(camera, 30_000)
    quality, data, decoded = found.quality, found.data, found.image
    assert len(data) <= 30_000 and 1 <= quality <= 95 and decoded.shape == camera.shape
    assert jpeg_at_size(camera, 100) is None


# -- files -----------------------------------------------------------------------------
def test_save_and_load_never_overwrite_without_force(tmp_path, small_gray):
    path = save(tmp_path / "a.svdz", small_gray, quality=50)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save(path, small_gray, quality=90)
    assert path.read_bytes() == before
    save(path, small_gray, quality=90, force=True)
    assert load(path).shape == small_gray.shape
    assert [p.name for p in tmp_path.iterdir()] == ["a.svdz"]


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


def _decode_measured(data):
    tracemalloc.start()
    try:
        return decode(data), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_small_tiles_decode_in_bounded_memory():
    # Reproducer: a 3 KB file of 3000² in rank-4 4×4 tiles took 1.5 GiB; at 1500² (~800
    # bytes) the decoder holds the output, its float64 buffer and a bounded working set.
    data = _zeros_file(1500, tile=4, rank=4)
    image, peak = _decode_measured(data)
    assert image.shape == (1500, 1500)
    assert peak < 3 * image.nbytes + 32 * 2**20


def test_global_rank_1000_of_zeros_decodes_to_its_mean():
    data = _zeros_file(600, tile=None, rank=600)
    assert len(data) < 2000
    image, peak = _decode_measured(data)
    np.testing.assert_array_equal(image, 0.0)
    assert peak < 3 * image.nbytes + 32 * 2**20


def test_surplus_symbols_are_refused_without_decompressing_them():
    # Reproducer: a 1.9 KB file whose stream held surplus zeros allocated 955 MiB first.
    data = _zeros_file(200, tile=8, rank=0, surplus=20_000_000)
    tracemalloc.start()
    with pytest.raises(FormatError, match="more symbols than its header and ranks describe"):
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


def test_chroma_upsampling_matches_skimage_bilinear():
    from skimage.transform import resize

    from svdimage.codec._planes import double as _double

    plane = np.random.default_rng(1).random((7, 9))
    ours = _double(_double(plane, axis=0), axis=1)
    reference = resize(plane, (14, 18), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_deblocking_smooths_small_tile_steps_only():
    from svdimage.codec._planes import deblock as _deblock

    plane = np.zeros((16, 16))
    plane[:, 8:] = 0.05  # a small step at the tile edge: smoothed
    out = _deblock(plane, 8, threshold=0.1)
    np.testing.assert_allclose(out[0, 6:10], [0.05 / 8, 0.05 / 4, 0.05 - 0.05 / 4, 0.05 - 0.05 / 8])
    edge = np.zeros((16, 16))
    edge[:, 8:] = 0.5  # a real edge: kept
    np.testing.assert_array_equal(_deblock(edge, 8, threshold=0.1), edge)


# -- the format is a promise: golden files and versions ----------------------------------
GOLDEN = Path(__file__).parent / "data" / "svdz"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_files_decode_to_their_recorded_pixels(name):
    data = (GOLDEN / name).read_bytes()
    expected = MANIFEST[name]
    assert f"{data[5]}.{data[6]}" == expected["version"]
    pixels = np.rint(decode(data) * 255).astype(np.uint8)
    assert list(pixels.shape) == expected["shape"]
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


def test_new_files_carry_the_current_version():
    data = encode(np.random.default_rng(0).random((20, 24)))
    assert (data[5], data[6]) == VERSION == (2, 0)
    assert encode(np.random.default_rng(0).random((20, 24)), tile=None)[5:7] == bytes(V1)
    assert encode(np.random.default_rng(0).random((20, 24)), version=1)[5:7] == bytes(V1)


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


# -- the compression report is honest (issue 10: speed changes no result) ---------------------
@pytest.mark.parametrize("which", ["gray", "color"])
def test_compress_report_equals_independent_measurements(tmp_path, camera, astronaut, which):
    """Every number of compress's report, recomputed from the written file and from Pillow:
    the .svdz row from the file decoded and scikit-image's PSNR and SSIM; the JPEG row from
    Pillow at the reported quality (the largest whose file fits the .svdz bytes)."""
    from PIL import Image

    from svdimage.codec import compress

    image = camera[::2, ::2] if which == "gray" else astronaut[::2, ::2]
    path = tmp_path / "out.svdz"
    report = compress(path, image, bpp=1.0)
    data = path.read_bytes()
    assert report.svdz.nbytes == len(data) <= image.shape[0] * image.shape[1] / 8
    assert report.svdz.bits_per_pixel == 8 * len(data) / (image.shape[0] * image.shape[1])
    channel = {} if which == "gray" else {"channel_axis": -1}

    def measured(approx):
        return (
            skimage.metrics.peak_signal_noise_ratio(image, approx, data_range=1.0),
            skimage.metrics.structural_similarity(image, approx, data_range=1.0, **channel),
        )

    psnr, ssim = measured(decode(data))
    assert report.svdz.psnr == pytest.approx(psnr, abs=1e-6)
    assert report.svdz.ssim == pytest.approx(ssim, abs=1e-5)
    jpeg = next(row for row in report.rows if row.name == "JPEG")
    pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))

    def jpeg_at(quality):
        buffer = io.BytesIO()
        pixels.save(buffer, format="JPEG", quality=quality, optimize=True)
        return buffer.getvalue()

    q = report.jpeg_quality
    assert len(jpeg_at(q)) == jpeg.nbytes <= len(data)
    assert q == 100 or len(jpeg_at(q + 1)) > len(data)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg_at(q))), dtype=np.float64) / 255
    psnr, ssim = measured(decoded)
    assert jpeg.psnr == pytest.approx(psnr, abs=1e-6)
    assert jpeg.ssim == pytest.approx(ssim, abs=1e-5)


# -- format 2: the patch-matrix SVD (issue 12) ----------------------------------------------
def test_patch_basis_is_the_svd_of_the_patch_matrix(camera):
    """The basis and coefficients are a truncated SVD of the mean-free patch matrix: checked
    against LAPACK's SVD of the same matrix, built here independently."""
    from svdimage.codec._patches import _PlaneAnalysis

    analysis = _PlaneAnalysis(camera, 8)
    patches = camera.astype(np.float64).reshape(64, 8, 64, 8).transpose(0, 2, 1, 3)
    patches = patches.reshape(-1, 64)
    residual = patches - patches.mean(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(residual, full_matrices=False)
    # float32 patches: singular values to 1e-4 relative, 1e-3 of the largest absolute
    expected = s / np.sqrt(residual.shape[0])
    np.testing.assert_allclose(analysis.rms, expected, rtol=1e-4, atol=1e-3 * expected[0])
    for j in range(10):  # the leading right singular vectors, up to sign
        assert abs(abs(analysis.basis[:, j] @ vt[j]) - 1) < 1e-5
    # deterministic signs: each basis vector's largest entry is positive
    top = np.argmax(np.abs(analysis.basis), axis=0)
    assert (analysis.basis[top, np.arange(64)] > 0).all()


@pytest.mark.parametrize("which", ["gray", "colour"])
def test_patch_files_decode_close_to_the_step(camera, astronaut, which):
    # Colour at 4:4:4, so that only the quantizer errs; YCbCr to RGB amplifies a plane's
    # error by at most 3 in the mean square (the inverse matrix's mean squared row norm).
    image, chroma, gain = (camera, "420", 1) if which == "gray" else (astronaut, "444", 3)
    previous = None
    for step in (0.08, 0.03, 0.01):
        data = encode(image, step=step, chroma=chroma)
        info = inspect(data)
        assert info.version == (2, 0) and info.header["patch"] == 8
        decoded = decode(data)
        assert decoded.dtype == np.float32 and decoded.shape == image.shape
        mse = float(np.mean((decoded.astype(np.float64) - image) ** 2))
        assert mse < gain * step**2  # a uniform quantizer errs step^2 / 12 per kept value
        score = peak_signal_noise_ratio(image, decoded)
        assert previous is None or (score > previous[0] and len(data) > previous[1])
        previous = (score, len(data))


def test_patch_progressive_prefixes_decode_to_fewer_components(camera):
    data = encode(camera, quality=90)
    scores = [
        peak_signal_noise_ratio(camera, decode(data, max_bytes=int(len(data) * f)))
        for f in (0.3, 0.5, 0.8, 1.0)
    ]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 3
    assert scores[-1] == pytest.approx(peak_signal_noise_ratio(camera, decode(data)))


@pytest.mark.parametrize("which", ["gray", "colour"])
@pytest.mark.parametrize("bpp", [0.3, 0.75, 1.5])
def test_bpp_lands_within_three_percent_below_the_target(camera, astronaut, which, bpp):
    image = camera if which == "gray" else astronaut
    data = encode(image, bpp=bpp)
    reached = 8 * len(data) / (image.shape[0] * image.shape[1])
    assert 0.97 * bpp <= reached <= bpp


def test_rank_means_the_rank(camera, astronaut):
    # Global files: --rank K alone keeps exactly K luma components, whatever the default
    # quality would have dropped; with a quality it is a cap.
    for rank in (8, 30, 110):
        header = inspect(encode(camera, rank=rank, tile=None)).header
        assert header["planes"][0]["max_rank"] == rank
    header = inspect(encode(astronaut, rank=30, tile=None)).header
    assert header["planes"][0]["max_rank"] == 30
    assert inspect(encode(camera, rank=40, tile=None, quality=20)).tile_ranks[0]["max_rank"] <= 40
    # Patch files: a cap on the components of the shared basis, max_components (rank= meant
    # it too before 0.2, and still does until 0.3, with a warning).
    assert inspect(encode(camera, max_components=5)).header["planes"][0]["components"] == 5
    with pytest.deprecated_call(match="max_components"):
        assert encode(camera, rank=5) == encode(camera, max_components=5)
    with pytest.raises(ValueError, match="max_components"):
        encode(camera, max_components=65)
    with pytest.deprecated_call(match=r"encode\(size=\.\.\.\) is deprecated"):
        assert encode(camera, size=20_000) == encode(camera, max_bytes=20_000)
    with pytest.raises(ValueError, match="patch side"):
        encode(camera, tile=12)


@pytest.fixture(scope="module")
def patch_file(small_gray):
    return encode(small_gray, quality=80)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda h: h.update(patch=5), "'patch' must be one of"),
        (lambda h: h.update(patch=None), "'patch' must be one of"),
        (lambda h: h.update(tile=8), r"unexpected \['tile'\]"),
        (lambda h: h.update(coder="lzma-varint"), "unknown coder"),
        (lambda h: h.update(color="rgb"), "'rgb'"),
        (lambda h: h["planes"][0].update(components=65), "'components' must be in 0..64"),
        (lambda h: h["planes"][0].update(components=-1), "'components'"),
        (lambda h: h["planes"][0].update(step=float("nan")), "NaN"),
        (lambda h: h["planes"][0].update(step=0), "'step'"),
        (lambda h: h["planes"][0].update(shape=[10, 10]), "plane shape"),
        (lambda h: h["planes"][0].pop("step"), "exactly the keys"),
        (lambda h: h["planes"][0].update(components=3), "keeps .* components but its header"),
    ],
)
def test_patch_header_with_wrong_keys_types_or_ranges(patch_file, mutate, match):
    header, payload, _ = unpack(patch_file)
    mutate(header)
    text = json.dumps(header, allow_nan=True).encode()
    with pytest.raises(FormatError, match=match):
        decode(rebuild_text(text, payload, version=(2, 0)))


def _keep_segment_table(payload, fill):
    """``payload`` with every segment's bytes replaced by ``fill``, lengths kept."""
    start = 4 + 4 * struct.unpack_from("<I", payload)[0]
    return payload[:start] + fill * (len(payload) - start)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p[:3], "too short for its segment count"),
        (lambda p: struct.pack("<I", 0) + p[4:], "declares 0 segments"),
        (lambda p: struct.pack("<I", 10**6) + p[4:], "declares 1000000 segments"),
        (lambda p: p[:4] + struct.pack("<I", 2**31) + p[8:], "runs past its end"),
        (lambda p: p + b"\x00\x00\x00\x00", "unexpected bytes after the last segment"),
        (lambda p: _keep_segment_table(p, b"\xff"), "corrupt|components|table"),
        (lambda p: _keep_segment_table(p, b"\x00"), "corrupt|components|table"),
    ],
)
def test_patch_payload_inconsistent_with_header(patch_file, edit, match):
    header, payload, _ = unpack(patch_file)
    bad = rebuild(header, edit(payload), version=(2, 0))
    with pytest.raises(FormatError, match=match):
        decode(bad)
    with pytest.raises(FormatError):
        inspect(bad)


def test_patch_decode_memory_is_bounded_by_the_image():
    flat = np.full((1200, 1600), 0.25, dtype=np.float32)
    data = encode(flat, quality=90)
    assert len(data) < 2000  # a tiny file that declares a large image
    image, peak = _decode_measured(data)
    np.testing.assert_allclose(image, 0.25, atol=1 / 255)
    assert peak < 4 * image.nbytes + 32 * 2**20


def test_context_coder_round_trips_any_integers():
    from svdimage.codec._context import (
        ALPHABET,
        MAX_MAGNITUDE,
        ContextReader,
        ContextWriter,
        codes_of_counts,
        symbols_of,
    )

    rng = np.random.default_rng(0)
    batches = [
        rng.laplace(0, 3, 1000).round().astype(np.int64),
        np.array([0, 1, -1, 7, -8, 9, 1000, -(2**20), MAX_MAGNITUDE, -MAX_MAGNITUDE]),
        np.zeros(500, dtype=np.int64),
    ]
    writer = ContextWriter()
    tables = []
    for values in batches:
        counts = np.bincount(symbols_of(values)[0], minlength=ALPHABET)[None]
        codes = codes_of_counts(counts)[0]
        writer.table(codes)
        writer.values(values, codes)
        tables.append(codes)
    reader = ContextReader(writer.getvalue())
    for values, codes in zip(batches, tables):
        np.testing.assert_array_equal(reader.table(), codes)
        np.testing.assert_array_equal(reader.values(values.size, codes), values)
    with pytest.raises(ValueError, match="cannot be coded"):
        writer.values(np.array([MAX_MAGNITUDE + 1]), tables[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (1, 1), (31, 2)])
def test_halve_is_the_block_mean_within_one_ulp(dtype, shape):
    from svdimage.codec._planes import halve

    plane = np.random.default_rng(5).random(shape).astype(dtype) * 0.7 + 0.1
    h, w = shape
    padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    expected = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).mean(axis=(1, 3))
    got = halve(plane)
    assert got.dtype == dtype
    np.testing.assert_array_max_ulp(got, expected, maxulp=1)
    if shape[1] > 2:  # the same summation order as NumPy's strided mean: the same bits
        assert np.array_equal(got, expected)


def test_varints_coded_by_chunks_equal_one_pass_and_round_trip(monkeypatch, rng):
    from svdimage.codec import _entropy

    values = np.concatenate(
        [rng.integers(-300, 300, 1000), [0, -1, 2**40, -(2**62), 2**63 - 1, -(2**63)]]
    )
    one_pass = _entropy.to_varints(values)  # all in one chunk
    monkeypatch.setattr(_entropy, "VARINT_CHUNK", 7)
    assert _entropy.to_varints(values) == one_pass
    np.testing.assert_array_equal(_entropy.from_varints(one_pass), values)

"""Format 2 (svdimage.codec._patches, _patch_payload): the patch basis and its payload."""

import json
import struct

import numpy as np
import pytest

from svdimage import FormatError
from svdimage.codec import (
    decode,
    encode,
    inspect,
)
from svdimage.codec._format import unpack
from svdimage.codec._patches import PatchTrials
from svdimage.metrics import peak_signal_noise_ratio

from .svdz_files import decode_measured, rebuild, rebuild_text


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
        assert info.version == (2, 3) and info.header["patch"] in (4, 8)  # tile="auto"
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


@pytest.fixture(scope="module")
def patch_file(small_gray):
    return encode(small_gray, quality=80, tile=8)


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
    header, payload, version = unpack(patch_file)
    mutate(header)
    text = json.dumps(header, allow_nan=True).encode()
    with pytest.raises(FormatError, match=match):
        decode(rebuild_text(text, payload, version=version))


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
    header, payload, version = unpack(patch_file)
    bad = rebuild(header, edit(payload), version=version)
    with pytest.raises(FormatError, match=match):
        decode(bad)
    with pytest.raises(FormatError):
        inspect(bad)


def test_patch_decode_memory_is_bounded_by_the_image():
    flat = np.full((1200, 1600), 0.25, dtype=np.float32)
    data = encode(flat, quality=90)
    assert len(data) < 2000  # a tiny file that declares a large image
    image, peak = decode_measured(data)
    np.testing.assert_allclose(image, 0.25, atol=1 / 255)
    assert peak < 4 * image.nbytes + 32 * 2**20


def test_writers_pad_segments_to_the_readers_bound_and_padding_decodes_the_same(
    monkeypatch, astronaut
):
    from svdimage.codec import _context

    image = np.ascontiguousarray(astronaut[::4, ::4])
    plain = encode(image, quality=50, tile=8)
    expected = decode(plain)
    monkeypatch.setattr(_context, "MAX_INTEGERS_PER_BYTE", 2)  # pad nearly every segment
    padded = encode(image, quality=50, tile=8)
    assert len(padded) > len(plain) + 2000
    np.testing.assert_array_equal(decode(padded), expected)
    with pytest.raises(FormatError, match="more than 2 per byte"):  # the reader's side
        decode(plain)
    monkeypatch.undo()
    np.testing.assert_array_equal(decode(padded), expected)  # trailing words: never read


def test_a_flat_image_many_times_the_bound_still_round_trips():
    # 4 million pixels of one grey: 62,500 patch means cost almost no bits, so the head
    # segment is padded to the bound (61 bytes) and the file stays small.
    flat = np.full((2000, 2000), 0.4, dtype=np.float32)
    data = encode(flat, quality=80)
    assert len(data) < 1000
    np.testing.assert_allclose(decode(data), 0.4, atol=1 / 255)


# -- format 2.2: chroma means refined where 2.0's step is coarse ------------------------------
def test_low_rate_files_refine_the_chroma_means_and_keep_greys_neutral():
    """A tinted grey (R - B of 14 levels) with texture in its luma: at low qualities format
    2.0 rounds the chroma means to steps of up to 17 levels, so the tint comes out wrong by
    several levels; 2.2 refines them (a power-of-two divisor, luma untouched) to steps of at
    most CHROMA_MEAN_LEVELS, so Cb and Cr stay within half of that of the original's."""
    from svdimage.codec._patches import CHROMA_MEAN_LEVELS, mean_divisor

    rng = np.random.default_rng(3)
    grey = 0.45 + 0.1 * rng.random((96, 128))
    image = np.clip(grey[:, :, None] + np.array([8.0, 0.0, -6.0]) / 255, 0, 1)
    to_chroma = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]).T

    def chroma_error(data):
        error = (decode(data).astype(np.float64) - image) * 255
        return np.abs(np.mean(error @ to_chroma, axis=(0, 1))).max()

    worst_old, worst_new = 0.0, 0.0
    for quality in range(5, 50, 3):
        new = encode(image, quality=quality, tile=8)
        old = encode(image, quality=quality, tile=8, version=2)
        header = inspect(new).header
        divisors = [plane.get("mean_divisor", 1) for plane in header["planes"]]
        assert divisors[0] == 1 and divisors[1] == divisors[2]
        step = header["planes"][1]["step"]
        assert divisors[1] == mean_divisor(step, 8, chroma=True)
        assert step / (8 * divisors[1]) * 255 <= CHROMA_MEAN_LEVELS
        assert (new[5], new[6]) == (2, 3)
        assert (old[5], old[6]) == (2, 0)
        worst_new = max(worst_new, chroma_error(new))
        worst_old = max(worst_old, chroma_error(old))
    assert worst_new <= CHROMA_MEAN_LEVELS / 2 < CHROMA_MEAN_LEVELS < worst_old


def test_mean_divisors_are_checked_by_the_reader(small_color):
    data = encode(small_color[0], quality=10)
    header, payload, version = unpack(data)
    assert version == (2, 3)
    # The same planes as a 2.2 file: its keys less the prediction weight.
    header = dict(header, planes=[dict(p) for p in header["planes"]])
    for plane in header["planes"]:
        del plane["prediction"]
    for bad in (3, 128, True, 2.0, None):
        planes = [dict(plane, mean_divisor=bad) for plane in header["planes"]]
        with pytest.raises(FormatError, match="mean_divisor"):
            decode(rebuild(dict(header, planes=planes), payload, version=(2, 2)))
    with pytest.raises(FormatError, match="keys"):  # 2.0 has no such key
        decode(rebuild(header, payload, version=(2, 0)))
    bare = [{k: v for k, v in plane.items() if k != "mean_divisor"} for plane in header["planes"]]
    with pytest.raises(FormatError, match="keys"):  # and 2.2 needs it
        decode(rebuild(dict(header, planes=bare), payload, version=(2, 2)))


def test_mean_estimate_of_a_large_grid_from_bands_is_near_the_whole(camera):
    """On a grid of more patch rows than the bands hold, the bands' estimate is near the
    whole grid's."""
    from svdimage.codec._patch_contexts import mean_bits
    from svdimage.codec._patches import MEAN_BANDS, _mean_estimate

    tall = np.concatenate([camera, camera[::-1], camera], axis=0)  # 384 patch rows of 4
    trials = PatchTrials(tall, patch=4, max_rank=None, chroma="420")
    analysis = trials.analysis(0)
    assert analysis.rows > 2 * MEAN_BANDS[0] * MEAN_BANDS[1]
    for step in (0.05, 0.01):
        whole = mean_bits(np.rint(analysis.means * 4 / step).reshape(analysis.rows, -1))
        assert abs(_mean_estimate(analysis, step, 1) / whole - 1) < 0.1


@pytest.mark.parametrize("side", [4, 8])
def test_size_estimate_is_near_the_file(side):
    """Rate control's first guess comes from the size estimate: on evaluation photos (no
    constant was chosen on them), gray and colour, the file is 0.7 to 1.25 times it from
    0.25 to 2 bits per pixel: the coder's contexts and the optimized rounding write less
    than the estimate's first-order entropy (0.77-0.98 of it here), and a file estimated
    at half its size (too small a sample) is caught."""
    import skimage.data

    from svdimage import load_image

    checked = 0
    for name in ("coins", "rocket"):
        image = load_image(getattr(skimage.data, name)())
        trials = PatchTrials(image, patch=side, max_rank=None, chroma="420")
        for step in (0.08, 0.04, 0.02, 0.01):
            data = trials.at_step(step)
            bpp = 8 * len(data) / (image.shape[0] * image.shape[1])
            if 0.25 <= bpp <= 2:
                assert 0.7 < len(data) / trials.estimate(step) < 1.25
                checked += 1
    assert checked >= 4

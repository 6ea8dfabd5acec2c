"""Format 3.0, the global SVD range-coded vector by vector (svdimage.codec._global)."""

import struct

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from svdimage.codec import FormatError, decode, encode, inspect
from svdimage.codec._context import ContextWriter, join_segments
from svdimage.codec._format import unpack
from svdimage.codec._global import (
    MEAN_DIVISOR,
    MEAN_OFFSET,
    declared_integers,
    decode_payload,
    layer_groups,
)

from .svdz_files import rebuild


def test_global_files_are_3_0_and_smaller_than_1_1_at_the_same_rank(camera, astronaut):
    for image in (camera, astronaut):
        for rank in (10, 60):
            new = encode(image, rank=rank, tile=None)
            old = encode(image, rank=rank, tile=None, version=2)  # the 1.1 global file
            assert inspect(new).version == (3, 0) and inspect(old).version == (1, 1)
            assert len(new) < 0.95 * len(old)
            # The same quantized factors: the same image, up to float32 products.
            np.testing.assert_allclose(decode(new), decode(old), atol=2e-5)


def test_decoded_plane_is_the_mean_plus_the_quantized_factors(camera):
    """The decoder against an independent float64 reference built from the integers the
    encoder quantized (Trials.global_planes_at), before any range coding."""
    from svdimage.codec._tiles import Trials, quality_to_step

    trials = Trials(camera, max_rank=None, tile=None, color="ycbcr", chroma="420")
    step = quality_to_step(90)
    header, planes = trials.global_planes_at(step)
    (plane,) = planes
    q = header["planes"][0]["step"]
    reference = plane.mean * q / MEAN_DIVISOR + q * q * (
        plane.a.astype(np.float64) @ plane.b.astype(np.float64).T
    )
    decoded = decode(encode(camera, step=step, tile=None))
    np.testing.assert_allclose(decoded, np.clip(reference, 0, 1), atol=1e-5)
    assert header["planes"][0]["components"] == plane.a.shape[1] > 0


@pytest.mark.parametrize("options", [{}, {"chroma": "444"}, {"color": "rgb"}])
def test_colour_layouts_round_trip(astronaut, options):
    image = np.ascontiguousarray(astronaut[::2, ::2])
    data = encode(image, tile=None, quality=90, **options)
    header, _, version = unpack(data)
    assert version == (3, 0) and header["color"] == options.get("color", "ycbcr")
    decoded = decode(data)
    assert decoded.dtype == np.float32 and decoded.shape == image.shape
    assert peak_signal_noise_ratio(image, decoded, data_range=1.0) > 25


def test_every_segment_prefix_decodes_to_its_components(camera):
    data = encode(camera, rank=70, tile=None)
    _, payload, _ = unpack(data)
    start = len(data) - len(payload) - 4
    (count,) = struct.unpack_from("<I", payload)
    lengths = struct.unpack_from(f"<{count}I", payload, 4)
    groups = layer_groups(70)
    assert count == 1 + len(groups) and groups[-1] == (64, 70) and groups[5] == (16, 32)
    full = decode(data)
    previous_error = np.inf
    end = start + 4 + 4 * count
    for segment, length in enumerate(lengths):
        end += length
        prefix = decode(data, max_bytes=end)
        error = float(np.mean((prefix - camera) ** 2))
        assert error < previous_error  # each segment adds components
        previous_error = error
        if segment + 1 < count:  # a byte short of the next segment: the same image
            np.testing.assert_array_equal(
                decode(data, max_bytes=end + lengths[segment + 1] - 1), prefix
            )
    np.testing.assert_array_equal(prefix, full)
    head_end = start + 4 + 4 * count + lengths[0]
    with pytest.raises(FormatError, match=f"smallest prefix that decodes .* is {head_end:,} bytes"):
        decode(data, max_bytes=head_end - 1)


def test_tampered_and_truncated_files_are_refused(camera):
    data = encode(camera, rank=20, tile=None)
    header, payload, _ = unpack(data)
    with pytest.raises(FormatError, match="checksum|CRC"):
        decode(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    with pytest.raises(FormatError):
        decode(data[:-10])
    for bad in (
        dict(header, coder="lzma-varint"),
        dict(header, planes=[dict(header["planes"][0], components=513)]),
        dict(header, planes=[dict(header["planes"][0], step=0)]),
        dict(header, tile=None),  # a 1.1 key
    ):
        with pytest.raises(FormatError):
            decode(rebuild(bad, payload, version=(3, 0)))
    # The segments must match the components the header declares.
    fewer = dict(header, planes=[dict(header["planes"][0], components=8)])
    with pytest.raises(FormatError, match="segments"):
        decode(rebuild(fewer, payload, version=(3, 0)))
    # Garbage words in a segment are the range decoder's errors, reported as FormatErrors
    # (or a different image: never a crash).
    (count,) = struct.unpack_from("<I", payload)
    body = bytearray(payload)
    body[4 + 4 * count + 2 :] = bytes(len(body) - (4 + 4 * count + 2))
    try:
        image = decode(rebuild(header, bytes(body), version=(3, 0)))
    except FormatError:
        image = None
    assert image is None or image.shape == camera.shape


def test_a_file_declaring_every_component_in_few_bytes_is_refused_at_once():
    """Integers per byte: empty component segments behind a header that declares a full
    2,000-component SVD of a 2,000 x 2,000 image are refused before any decoding."""
    shape = [2000, 2000]
    head = ContextWriter()
    head.uniform(list(divmod(MEAN_OFFSET, 1 << 12)), 1 << 12)
    head.uniform([0], 65)
    segments = [head.getvalue()] + [b""] * len(layer_groups(2000))
    payload = struct.pack("<I", len(segments)) + struct.pack("<I", len(segments[0]))
    payload += bytes(4 * (len(segments) - 1)) + segments[0]
    header = {
        "shape": shape,
        "color": "gray",
        "chroma": "444",
        "planes": [{"shape": shape, "step": 0.01, "components": 2000}],
        "coder": "context-range",
    }
    with pytest.raises(FormatError, match="per byte"):
        decode(rebuild(header, payload, version=(3, 0)))
    # The same header with no component, padded as a writer pads, decodes to the mean.
    header["planes"][0]["components"] = 0
    flat = join_segments([head.getvalue()], [declared_integers([(2000, 2000, 0)])[0]])
    image = decode(rebuild(header, flat, version=(3, 0)), max_pixels=None)
    assert image.shape == (2000, 2000) and float(image.max()) == 0.0


def test_inspect_checks_the_whole_payload_without_building(camera, monkeypatch):
    data = encode(camera, rank=12, tile=None)
    info = inspect(data)
    assert info.tile_ranks == [{"components": 12}]
    from svdimage.codec import _global

    monkeypatch.setattr(_global, "_apply", lambda *a: pytest.fail("inspect built a plane"))
    header, payload, _ = unpack(data)
    assert decode_payload(header, payload, build=False) == []


def test_vectors_are_measured_a_matrix_at_a_time_as_one_by_one():
    from svdimage.codec._context import symbols_of
    from svdimage.codec._global import (
        CLASSES_PER_OCTAVE,
        MAX_CLASSES,
        _coded,
        _histograms,
        _scale_classes,
    )

    rng = np.random.default_rng(5)
    # Columns of every kind: smooth (coded as differences), noisy, zero, with escapes.
    smooth = np.cumsum(rng.integers(-2, 3, size=(300, 4)), axis=0)
    noisy = rng.integers(-40, 41, size=(300, 4))
    matrix = np.concatenate([smooth, noisy, np.zeros((300, 1), int)], axis=1).astype(np.int32)
    matrix[7, 5] = 3_000_000
    forms, rows = _coded(matrix)
    histograms, scales = _histograms(rows), _scale_classes(rows)
    for j in range(matrix.shape[1]):
        column = matrix[:, j].astype(np.int64)
        differences = np.diff(column, prepend=0)
        form = int(np.abs(differences).sum() < np.abs(column).sum())
        integers = differences if form else column
        assert forms[j] == form
        np.testing.assert_array_equal(rows[j], integers)
        counts = np.bincount(symbols_of(integers)[0], minlength=histograms.shape[1])
        np.testing.assert_array_equal(histograms[j], counts)
        mean = float(np.abs(integers).mean())
        assert scales[j] == min(int(CLASSES_PER_OCTAVE * np.log2(1.0 + mean)), MAX_CLASSES - 1)
    assert forms[:4].all() and not forms[4:8].any()

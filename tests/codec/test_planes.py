"""Planes (svdimage.codec._planes): chroma resampling and deblocking."""

import numpy as np
import pytest


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


@pytest.mark.parametrize("tile", [4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deblocking_by_strided_tiles_equals_boundary_by_boundary(tile, dtype, monkeypatch):
    """The strided filter (whole tiles at once, in batches) gives exactly the pixels of
    the rule applied boundary by boundary, the format's definition, for every shape:
    multiples of the tile, a partial last tile, a single tile, batches of one boundary."""
    from svdimage.codec import _planes

    rng = np.random.default_rng(tile)
    for shape in [(4 * tile, 3 * tile), (5 * tile + 3, 2 * tile + 1), (tile + 2, tile), (3, 7)]:
        plane = rng.random(shape).astype(dtype)
        threshold = 0.3
        expected = plane.copy()
        for axis in (0, 1):
            x = np.moveaxis(expected, axis, 0)
            for edge in range(tile, x.shape[0], tile):
                _planes._deblock_edges(x, np.array([edge]), threshold)
        np.testing.assert_array_equal(_planes.deblock(plane, tile, threshold), expected)
        monkeypatch.setattr(_planes, "_DEBLOCK_BYTES", 1)  # one boundary per batch
        np.testing.assert_array_equal(_planes.deblock(plane, tile, threshold), expected)
        monkeypatch.undo()


@pytest.mark.parametrize("chroma", ["420", "444"])
@pytest.mark.parametrize("shape", [(301, 457), (300, 1), (1, 301), (513, 300), (1001, 2)])
def test_ycbcr_planes_by_blocks_of_rows_equal_the_whole_image_at_once(chroma, shape):
    # to_planes converts and halves a block of rows at a time (2**16 pixels: several here;
    # no full-resolution chroma planes); the planes are those of the whole image converted
    # at once, to the bit, odd sides included.
    from svdimage.codec import _planes

    image = np.random.default_rng(2).random((*shape, 3), dtype=np.float32)
    matrix = np.array(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
        dtype=np.float32,
    )
    mixed = image @ matrix.T
    cb, cr = np.add(mixed[:, :, 1], 0.5), np.add(mixed[:, :, 2], 0.5)
    if chroma == "420":
        cb, cr = _planes.halve(cb), _planes.halve(cr)
    y, got_cb, got_cr = _planes.to_planes(image, "ycbcr", chroma)
    for got, expected in ((y, mixed[:, :, 0]), (got_cb, cb), (got_cr, cr)):
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)

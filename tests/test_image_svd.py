import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from svdimage import ImageSVD, decompose


def _direct_error(image, approx):
    a = image.astype(np.float64)
    return np.linalg.norm(a - approx) / np.linalg.norm(a)


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 24), st.integers(2, 24)),
        # Pixel values; magnitudes below 1e-6 would underflow the reference's own squares.
        elements=st.one_of(st.just(0.0), st.floats(1e-6, 1, width=64)),
    ),
)
def test_relative_error_matches_eckart_young_for_any_shape(image):
    svd = decompose(image, method="exact")
    curve = svd.relative_error()
    assert curve.shape == (min(image.shape),)
    if not np.any(image):
        assert np.all(curve == 0)
        return
    for k in range(1, svd.max_rank + 1):
        direct = _direct_error(image, svd.reconstruct(k, clip=False))
        assert curve[k - 1] == pytest.approx(direct, abs=1e-7)


@pytest.mark.parametrize("shape", [(40, 25), (25, 40), (33, 33)])
def test_relative_error_truncated_equals_direct(shape, rng):
    image = rng.random(shape)
    svd = decompose(image, rank=7, method="exact")
    assert not svd.is_complete
    for k in (1, 4, 7):
        direct = _direct_error(image, svd.reconstruct(k, clip=False))
        assert svd.relative_error(k) == pytest.approx(direct, rel=1e-10)


def test_reconstruct_clips_by_default_and_keeps_values_when_asked(camera):
    svd = decompose(camera, rank=5)
    raw = svd.reconstruct(5, clip=False)
    assert raw.min() < 0 or raw.max() > 1  # low ranks overshoot on this photo
    clipped = svd.reconstruct(5)
    assert clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_array_equal(clipped, np.clip(raw, 0, 1))


def test_iter_reconstructions_matches_reconstruct(astronaut):
    svd = decompose(astronaut, rank=40)
    seen = []
    for k, image in svd.iter_reconstructions([40, 1, 7, 20], clip=False):
        seen.append(k)
        np.testing.assert_allclose(image, svd.reconstruct(k, clip=False), atol=2e-5)
    assert seen == [1, 7, 20, 40]


def test_energy_is_one_minus_error_squared(camera):
    svd = decompose(camera)
    assert svd.energy(svd.max_rank) == pytest.approx(1.0)
    np.testing.assert_allclose(svd.energy(), 1 - svd.relative_error() ** 2)
    s = svd.s.astype(np.float64)
    assert svd.energy(10) == pytest.approx((s[:10] ** 2).sum() / (s**2).sum(), rel=1e-6)


@pytest.mark.parametrize("true_rank", [1, 4, 9])
def test_numerical_rank_matches_numpy_matrix_rank(true_rank, rng):
    matrix = rng.random((50, true_rank)) @ rng.random((true_rank, 30))
    svd = decompose(matrix)
    assert svd.numerical_rank() == np.linalg.matrix_rank(matrix) == true_rank


def test_numerical_rank_of_photo_and_color(camera, astronaut):
    assert decompose(camera).numerical_rank() == np.linalg.matrix_rank(camera)
    ranks = decompose(astronaut).numerical_rank()
    assert ranks == tuple(np.linalg.matrix_rank(astronaut[:, :, c]) for c in range(3))


def test_numerical_rank_refuses_truncated_svd_that_cannot_tell(camera):
    with pytest.raises(ValueError, match="complete SVD"):
        decompose(camera, rank=10).numerical_rank()


@pytest.mark.parametrize("shape,true_rank", [((40, 25), 6), ((25, 40), 3)])
def test_lstsq_matches_numpy_on_rank_deficient_systems(shape, true_rank, rng):
    matrix = rng.random((shape[0], true_rank)) @ rng.random((true_rank, shape[1]))
    b = rng.random(shape[0])
    B = rng.random((shape[0], 3))
    svd = decompose(matrix)
    x_ref = np.linalg.lstsq(matrix, b, rcond=None)[0]
    np.testing.assert_allclose(svd.lstsq(b), x_ref, atol=1e-9)
    np.testing.assert_allclose(svd.lstsq(B), np.linalg.lstsq(matrix, B, rcond=None)[0], atol=1e-9)
    np.testing.assert_allclose(svd.lstsq(b), np.linalg.pinv(matrix) @ b, atol=1e-9)


def test_lstsq_truncated_rank_is_pseudo_inverse_of_a_k(rng):
    matrix = rng.random((30, 20))
    svd = decompose(matrix)
    a3 = svd.reconstruct(3, clip=False)
    b = rng.random(30)
    np.testing.assert_allclose(svd.lstsq(b, rank=3), np.linalg.pinv(a3, rcond=1e-10) @ b, atol=1e-8)


def test_lstsq_rejects_color_and_bad_b(astronaut, rng):
    with pytest.raises(ValueError, match="gray"):
        decompose(astronaut, rank=2).lstsq(np.ones(512))
    with pytest.raises(ValueError, match="b must have shape"):
        decompose(rng.random((10, 8))).lstsq(np.ones(9))


def test_reconstruct_rejects_rank_above_held(camera):
    svd = decompose(camera, rank=10)
    with pytest.raises(ValueError, match="between 1 and 10.*got 11"):
        svd.reconstruct(11)
    with pytest.raises(TypeError, match="integer"):
        svd.reconstruct(2.5)


def test_factors_are_read_only(camera):
    svd = decompose(camera, rank=3)
    assert isinstance(svd, ImageSVD)
    with pytest.raises(ValueError):
        svd.s[0] = 0


def test_iter_reconstructions_streaming_view_is_read_only(camera):
    svd = decompose(camera, rank=6)
    frames = []
    for k, image in svd.iter_reconstructions([2, 6], clip=False, copy=False):
        assert not image.flags.writeable
        np.testing.assert_allclose(image, svd.reconstruct(k, clip=False), atol=2e-5)
        frames.append(image)
    kept = list(svd.iter_reconstructions([2, 6], clip=False))
    assert not np.array_equal(kept[0][1], kept[1][1])  # copies are independent


@pytest.mark.parametrize("clip", [True, False])
def test_reconstruct_rows_are_the_rows_of_reconstruct(camera, astronaut, clip):
    for image in (camera, astronaut):
        svd = decompose(image, rank=30, rng=0)
        whole = svd.reconstruct(17, clip=clip)
        for start, stop in [(0, 1), (0, 512), (100, 229), (511, 512), (40, 40)]:
            rows = svd.reconstruct_rows(17, start, stop, clip=clip)
            assert rows.shape == whole[start:stop].shape and rows.dtype == whole.dtype
            np.testing.assert_allclose(rows, whole[start:stop], atol=1e-6)
    with pytest.raises(ValueError, match="not within the 512 rows"):
        svd.reconstruct_rows(17, 500, 513)
    with pytest.raises(ValueError, match="between 1 and 30"):
        svd.reconstruct_rows(31, 0, 10)


def test_an_out_of_core_decomposition_reconstructs_lazily_block_by_block(astronaut):
    import dask.array as da

    svd = decompose(da.from_array(astronaut, chunks=(100, 100, 3)), rank=12, rng=0)
    assert svd.out_of_core
    lazy = svd.reconstruct(7)
    assert type(lazy).__module__.startswith("dask") and lazy.shape == astronaut.shape
    U, s, Vt = svd.stacked_factors()
    direct = np.moveaxis(np.matmul(U[:, :, :7] * s[:, None, :7], Vt[:, :7]), 0, -1)
    np.testing.assert_allclose(lazy.compute(), np.clip(direct, 0, 1), atol=1e-12)
    np.testing.assert_allclose(svd.reconstruct(7, clip=False).compute(), direct, atol=1e-12)

import numpy as np
import pytest
import scipy.linalg

from svdimage import decompose, randomized_svd


def _direct_error(image, approx):
    a = image.astype(np.float64)
    return np.linalg.norm(a - approx) / np.linalg.norm(a)


def test_randomized_defaults_within_half_a_percent_of_optimal_error_on_photo(camera):
    big = np.kron(camera, np.ones((2, 2), dtype=np.float32))  # 1024^2, real content
    exact = decompose(big, method="exact")
    for k in (10, 50, 100):
        randomized = decompose(big, rank=k, method="randomized", rng=1)
        assert randomized.method == "randomized"
        ratio = randomized.relative_error(k) / exact.relative_error(k)
        assert 1.0 - 1e-5 <= ratio <= 1.005, (k, ratio)  # float32 rounding below 1
        # Its sigma-derived error is the true error of its reconstruction.
        direct = _direct_error(big, randomized.reconstruct(k, clip=False))
        assert randomized.relative_error(k) == pytest.approx(direct, rel=1e-3)


def test_randomized_is_reproducible_with_seed(camera):
    a = decompose(camera, rank=12, method="randomized", rng=42)
    b = decompose(camera, rank=12, method="randomized", rng=42)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.s, b.s)


@pytest.mark.parametrize("shape", [(300, 120), (120, 300)])
def test_randomized_svd_tall_and_wide_recovers_low_rank(shape, rng):
    left = rng.standard_normal((shape[0], 5))
    right = rng.standard_normal((5, shape[1]))
    matrix = left @ right
    U, s, Vt = randomized_svd(matrix, 5, rng=rng)
    assert U.shape == (shape[0], 5) and Vt.shape == (5, shape[1])
    np.testing.assert_allclose((U * s) @ Vt, matrix, atol=1e-8)
    np.testing.assert_allclose(s, scipy.linalg.svdvals(matrix)[:5], rtol=1e-10)


@pytest.mark.parametrize(
    "options",
    [
        {"lapack_threads": None},
        {"lapack_threads": 2},
        {"normalizer": "qr"},
        {"n_iter": 0, "n_oversamples": 40},
        {"n_iter": 6, "n_oversamples": 0},
    ],
)
def test_randomized_svd_options_keep_the_answer(camera, options):
    _U, s, _Vt = randomized_svd(camera, 10, rng=0, **options)
    exact = scipy.linalg.svdvals(camera.astype(np.float64))[:10]
    tolerance = 0.2 if options.get("n_iter") == 0 else 1e-2  # no power iteration: rough
    np.testing.assert_allclose(s, exact, rtol=tolerance)
    assert s.dtype == np.float32


@pytest.mark.parametrize(
    "options,match",
    [
        ({"n_iter": -1}, "n_iter"),
        ({"n_oversamples": 2.5}, "n_oversamples"),
        ({"lapack_threads": 0}, "lapack_threads"),
        ({"normalizer": "svd"}, "normalizer"),
    ],
)
def test_randomized_svd_rejects_bad_options(camera, options, match):
    with pytest.raises(ValueError, match=match):
        randomized_svd(camera, 5, **options)


def test_randomized_rank_equal_to_short_side_falls_back_to_exact(rng):
    image = rng.random((30, 50))
    svd = decompose(image, rank=30, method="randomized")
    assert svd.method == "exact" and svd.is_complete


def test_chunked_randomized_svd_streams_and_matches_lapack(camera):
    import dask.array as da

    from svdimage.randomized import randomized_svd_chunked

    A = camera.astype(np.float64)
    lazy = da.from_array(A, chunks=(64, 96))  # many chunks: every product is a pass over them
    U, s, Vt, squared = randomized_svd_chunked(lazy, 30, rng=0)
    exact = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(s[:15], exact[:15], rtol=1e-4)
    assert squared == pytest.approx(float((A * A).sum()), rel=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(30), atol=1e-10)  # orthonormal factors
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(30), atol=1e-10)
    rows = np.argmax(np.abs(U), axis=0)
    assert (U[rows, np.arange(30)] > 0).all()  # the package's sign rule
    wide, _, _, _ = randomized_svd_chunked(lazy.T, 10, rng=0)  # a wide matrix too
    assert wide.shape == (A.shape[1], 10)


def test_a_pass_over_a_chunked_matrix_holds_a_few_chunks_never_the_whole(rng):
    """Each chunk is read once a pass and dropped when its task ends (products written as
    Dask matmuls, one per channel, held every chunk until the last channel had used it)."""
    import threading
    import weakref

    import dask
    import dask.array as da

    from svdimage.randomized import chunked_plane_svds

    pixels = rng.integers(0, 256, (20 * 32, 4 * 32, 3), dtype=np.uint8)
    alive, most = [0], [0]
    lock = threading.Lock()

    def gone() -> None:
        with lock:
            alive[0] -= 1

    def chunk(block_info=None):
        (r0, r1), (c0, c1), _ = block_info[None]["array-location"]
        block = pixels[r0:r1, c0:c1].copy()
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        weakref.finalize(block, gone)
        return block

    lazy = da.map_blocks(chunk, chunks=((32,) * 20, (32,) * 4, (3,)), dtype=np.uint8)
    with dask.config.set(scheduler="threads", num_workers=2):
        _, s, _, norms = chunked_plane_svds(lazy, 5, scale=255.0, rng=0)
    assert most[0] <= 8 < lazy.npartitions  # 80 chunks, a few alive at a time
    # Noise: a flat spectrum below the first value (the mean), which the sketch gets right.
    expected = [np.linalg.svd(pixels[..., c] / 255.0, compute_uv=False)[0] for c in range(3)]
    np.testing.assert_allclose(s[:, 0], expected, rtol=1e-4)
    np.testing.assert_allclose(norms, [np.sum((pixels[..., c] / 255.0) ** 2) for c in range(3)])

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from svdimage import ImageSVD, decompose, randomized_svd
from svdimage._linalg import svd_flip
from svdimage.decomposition import _choose_method


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


@pytest.mark.parametrize("shape", [(60, 35), (35, 60)])
def test_decompose_exact_matches_scipy(shape, rng):
    image = rng.random(shape)
    svd = decompose(image, method="exact")
    U, s, Vt = scipy.linalg.svd(image, full_matrices=False)
    np.testing.assert_allclose(svd.s, s, rtol=1e-12, atol=1e-12)
    # Same subspaces: singular vectors agree up to the sign rule.
    np.testing.assert_allclose(np.abs(svd.U.T @ U).diagonal(), 1, atol=1e-8)
    np.testing.assert_allclose(np.abs(Vt @ svd.Vt.T).diagonal(), 1, atol=1e-8)
    np.testing.assert_allclose(svd.reconstruct(clip=False), image, atol=1e-12)


def test_sign_rule_largest_entry_of_each_u_column_is_positive(camera):
    svd = decompose(camera, rank=20, method="exact")
    U = svd.U
    picked = U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])]
    assert np.all(picked > 0)


def test_svd_flip_keeps_the_product(rng):
    U, s, Vt = np.linalg.svd(rng.random((8, 5)), full_matrices=False)
    U2, Vt2 = svd_flip(-U, -Vt)
    np.testing.assert_allclose((U2 * s) @ Vt2, (U * s) @ Vt, atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_decompose_float32_stays_float32(camera, method):
    svd = decompose(camera, rank=30, method=method, rng=0)
    assert camera.dtype == np.float32
    for array in (svd.U, svd.s, svd.Vt, svd.reconstruct(10)):
        assert array.dtype == np.float32


def test_decompose_float64_and_integers_become_float64(camera):
    assert decompose(camera.astype(np.float64), rank=5).dtype == np.float64
    ints = np.rint(camera * 255).astype(np.uint8)
    svd = decompose(ints, rank=5)
    assert svd.dtype == np.float64
    # Integers are scaled to [0, 1] by their range, as skimage.img_as_float.
    assert svd.s[0] == pytest.approx(decompose(ints / 255.0, rank=5).s[0])


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


def test_color_has_one_factorization_per_channel(astronaut):
    svd = decompose(astronaut, rank=8, method="exact")
    assert svd.is_color and svd.n_channels == 3
    assert svd.U.shape == (3, 512, 8) and svd.s.shape == (3, 8) and svd.Vt.shape == (3, 8, 512)
    for c in range(3):
        s = scipy.linalg.svdvals(astronaut[:, :, c].astype(np.float64))[:8]
        np.testing.assert_allclose(svd.s[c], s, rtol=1e-4)
    approx = svd.reconstruct(8, clip=False)
    assert approx.shape == astronaut.shape
    assert svd.relative_error(8) == pytest.approx(_direct_error(astronaut, approx), rel=1e-4)
    assert svd.stored_values(8) == 3 * 8 * (512 + 512 + 1)


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


@pytest.mark.parametrize("rank", [0, -1, 513])
def test_decompose_rejects_bad_rank(camera, rank):
    with pytest.raises(ValueError, match="rank must be between 1 and 512 for a 512x512 image"):
        decompose(camera, rank=rank)


def test_reconstruct_rejects_rank_above_held(camera):
    svd = decompose(camera, rank=10)
    with pytest.raises(ValueError, match="between 1 and 10.*got 11"):
        svd.reconstruct(11)
    with pytest.raises(TypeError, match="integer"):
        svd.reconstruct(2.5)


def test_decompose_rejects_bad_method_and_inputs(camera):
    with pytest.raises(ValueError, match="method must be"):
        decompose(camera, method="fast")
    with pytest.raises(ValueError, match="at least 2x2"):
        decompose(np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        decompose(np.full((3, 3), np.nan))


def test_auto_rule_is_documented_behaviour():
    assert _choose_method("auto", (4000, 3000), None) == "exact"
    assert _choose_method("auto", (512, 512), 10) == "randomized"
    assert _choose_method("auto", (512, 512), 128) == "exact"
    assert _choose_method("auto", (96, 200), 2) == "exact"
    assert _choose_method("auto", (97, 200), 2) == "randomized"
    assert _choose_method("auto", (4000, 3000), 100) == "randomized"
    assert _choose_method("auto", (4000, 3000), 1000) == "exact"
    assert _choose_method("randomized", (100, 80), 80) == "exact"


def test_factors_are_read_only(camera):
    svd = decompose(camera, rank=3)
    assert isinstance(svd, ImageSVD)
    with pytest.raises(ValueError):
        svd.s[0] = 0


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_torch_backend_agrees_with_numpy_backend(camera, method):
    pytest.importorskip("torch")
    ours = decompose(camera, rank=20, method=method, rng=3)
    theirs = decompose(camera, rank=20, method=method, rng=3, backend="torch")
    assert theirs.dtype == np.float32 and theirs.method == ours.method
    np.testing.assert_allclose(theirs.s, ours.s, rtol=2e-3)
    # Same sign rule: the leading vectors agree, not only up to sign.
    np.testing.assert_allclose(theirs.U[:, :5], ours.U[:, :5], atol=5e-3)
    np.testing.assert_allclose(theirs.reconstruct(20), ours.reconstruct(20), atol=2e-2)


def test_torch_backend_missing_gives_install_hint(camera, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match=r"pip install 'svdimage\[torch\]'"):
        decompose(camera, rank=3, backend="torch")


def test_decompose_rejects_unknown_backend(camera):
    with pytest.raises(ValueError, match="backend must be"):
        decompose(camera, backend="jax")


def test_iter_reconstructions_streaming_view_is_read_only(camera):
    svd = decompose(camera, rank=6)
    frames = []
    for k, image in svd.iter_reconstructions([2, 6], clip=False, copy=False):
        assert not image.flags.writeable
        np.testing.assert_allclose(image, svd.reconstruct(k, clip=False), atol=2e-5)
        frames.append(image)
    kept = list(svd.iter_reconstructions([2, 6], clip=False))
    assert not np.array_equal(kept[0][1], kept[1][1])  # copies are independent


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


def test_spectrum_only_decomposition_matches_full_and_refuses_vectors(astronaut):
    image = astronaut[::4, ::4].copy()
    full = decompose(image)
    values = decompose(image, compute_vectors=False)
    assert not values.has_vectors and full.has_vectors
    np.testing.assert_allclose(values.s, full.s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values.relative_error(), full.relative_error(), atol=1e-6)
    assert values.numerical_rank() == full.numerical_rank()
    for call in (lambda: values.reconstruct(3), lambda: list(values.iter_reconstructions([2]))):
        with pytest.raises(ValueError, match="singular values only"):
            call()
    with pytest.raises(ValueError, match="leave rank=None"):
        decompose(image, rank=5, compute_vectors=False)

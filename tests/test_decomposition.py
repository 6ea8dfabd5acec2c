import numpy as np
import pytest
import scipy.linalg

from svdimage import decompose
from svdimage.svd_kernels import choose_method


def _direct_error(image, approx):
    a = image.astype(np.float64)
    return np.linalg.norm(a - approx) / np.linalg.norm(a)


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


@pytest.mark.parametrize("rank", [0, -1, 513])
def test_decompose_rejects_bad_rank(camera, rank):
    with pytest.raises(ValueError, match="rank must be between 1 and 512 for a 512x512 image"):
        decompose(camera, rank=rank)


def test_decompose_rejects_bad_method_and_inputs(camera):
    with pytest.raises(ValueError, match="method must be"):
        decompose(camera, method="fast")
    with pytest.raises(ValueError, match="at least 2x2"):
        decompose(np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        decompose(np.full((3, 3), np.nan))


def test_auto_rule_is_documented_behaviour():
    assert choose_method("auto", (4000, 3000), None) == "exact"
    assert choose_method("auto", (512, 512), 10) == "randomized"
    assert choose_method("auto", (512, 512), 128) == "exact"
    assert choose_method("auto", (96, 200), 2) == "exact"
    assert choose_method("auto", (97, 200), 2) == "randomized"
    assert choose_method("auto", (4000, 3000), 100) == "randomized"
    assert choose_method("auto", (4000, 3000), 1000) == "exact"
    assert choose_method("randomized", (100, 80), 80) == "exact"


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


# -- only the singular values a request needs (issue 10) -------------------------------------
@pytest.fixture(scope="module")
def medium_photo(astronaut):
    """A 900x1200 colour photo: above the complete-SVD crossover, below a second."""
    import skimage.transform

    big = skimage.transform.resize(astronaut, (900, 1200), order=1)
    return np.clip(big, 0, 1).astype(np.float32)


def test_decompose_until_matches_the_full_spectrum_where_it_answers(medium_photo):
    from svdimage.decomposition import decompose_until
    from svdimage.rank_selection import rank_for_energy

    svd = decompose_until(medium_photo, lambda t: t.energy(t.max_rank) >= 0.999)
    full = decompose(medium_photo, compute_vectors=False)
    assert not svd.is_complete and svd.max_rank < full.full_rank // 4
    k = svd.max_rank
    np.testing.assert_allclose(svd.energy()[:k], full.energy()[:k], atol=2e-6)
    np.testing.assert_allclose(svd.s[:, :8], full.s[:, :8], rtol=1e-5)
    for fraction in (0.9, 0.99, 0.999):
        assert rank_for_energy(svd, fraction) == rank_for_energy(full, fraction)


def test_decompose_until_grows_and_computes_everything_for_small_images(camera, medium_photo):
    from svdimage.decomposition import FULL_SPECTRUM_MAX_SIDE, decompose_until

    sizes = []
    decompose_until(medium_photo, lambda t: sizes.append(t.max_rank) or t.max_rank >= 100, start=16)
    assert sizes == [16, 32, 64, 128]  # doubling until the request is answered
    sizes.clear()
    svd = decompose_until(
        medium_photo, lambda t: sizes.append(t.max_rank) or t.max_rank >= 100, start=16, growth=4
    )
    # 256 is past the randomized crossover (a quarter of 900): the exact top 256 (half of
    # 900 at most), then the complete SVD (not asked: it answers everything) when that is
    # not enough.
    assert sizes == [16, 64, 256]
    assert svd.max_rank == 256 and svd.method == "exact" and not svd.is_complete
    sizes.clear()
    svd = decompose_until(
        medium_photo, lambda t: sizes.append(t.max_rank) or t.max_rank >= 300, start=16, growth=4
    )
    assert sizes == [16, 64, 256] and svd.is_complete
    with pytest.raises(ValueError, match="growth"):
        decompose_until(medium_photo, lambda t: True, growth=1)
    # A proposal replaces the growth, past the crossover too (exact top 250, then 400, at
    # most half of 900); one not above the last K falls back to doubling.
    sizes.clear()
    proposals = iter([40, 30, 250, 400, None])
    svd = decompose_until(
        medium_photo,
        lambda t: sizes.append(t.max_rank) or t.max_rank >= 390,
        start=16,
        propose=lambda t: next(proposals),
    )
    assert sizes == [16, 40, 80, 250, 400]
    assert svd.max_rank == 400 and svd.method == "exact" and not svd.is_complete
    assert min(camera.shape) <= FULL_SPECTRUM_MAX_SIDE
    assert decompose_until(camera, lambda t: False).is_complete


@pytest.mark.parametrize(("tall", "k"), [(False, 150), (True, 150), (False, 250), (True, 400)])
def test_exact_top_ranks_of_float32_come_from_the_gram_matrix_to_float64_accuracy(
    medium_photo, tall, k
):
    """The exact top-k SVD of a large float32 image (k up to half the side) is the float64
    Gram matrix's top eigenpairs (a subset for k up to a quarter of the side, all of them
    above): closer to float64 LAPACK than float32 LAPACK is."""
    import scipy.linalg

    from svdimage.svd_kernels import GRAM_MAX_RANK_FRACTION, GRAM_SUBSET_FRACTION, gram_svd

    plane = np.ascontiguousarray(medium_photo[:, :, 1].T if tall else medium_photo[:, :, 1])
    assert k <= GRAM_MAX_RANK_FRACTION * min(plane.shape)
    # 150 takes the subset route, 250 and 400 the complete eigendecomposition.
    assert (k <= GRAM_SUBSET_FRACTION * min(plane.shape)) == (k == 150)
    assert gram_svd(plane, k) is not None  # the spectrum is wide enough for the Gram route
    svd = decompose(plane, rank=k, method="exact")
    assert svd.dtype == np.float32 and svd.U.shape == (*plane.shape[:1], k)
    U64, s64, Vt64 = scipy.linalg.svd(plane.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(svd.s, s64[:k], rtol=1e-6)
    _, s32, _ = scipy.linalg.svd(plane, full_matrices=False)
    assert np.abs(svd.s - s64[:k]).max() <= np.abs(s32[:k] - s64[:k]).max()
    for r in (10, 100, k):
        best = (U64[:, :r] * s64[:r]) @ Vt64[:r]
        np.testing.assert_allclose(svd.reconstruct(r, clip=False), best, atol=2e-6)
    # Orthonormal factors, and the package's sign rule (largest |entry| of each u positive).
    np.testing.assert_allclose(svd.U.T @ svd.U, np.eye(k), atol=1e-5)
    np.testing.assert_allclose(svd.Vt @ svd.Vt.T, np.eye(k), atol=1e-5)
    rows = np.abs(svd.U).argmax(axis=0)
    assert (svd.U[rows, np.arange(k)] > 0).all()


def test_exact_top_ranks_of_a_nearly_low_rank_image_use_lapack():
    """Below s_k / s_1 = 1e-4 the Gram matrix would lose float32's precision: gesdd instead."""
    from svdimage.svd_kernels import gram_svd

    rng = np.random.default_rng(3)
    image = (rng.random((300, 3)) @ rng.random((3, 400)) / 3).astype(np.float32)
    assert gram_svd(image, 50) is None
    svd = decompose(image, rank=50, method="exact")
    np.testing.assert_allclose(svd.reconstruct(3, clip=False), image, atol=1e-5)

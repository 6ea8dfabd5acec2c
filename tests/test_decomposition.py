import numpy as np
import pytest
import scipy.linalg

from svdimage import decompose


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


def test_decompose_until_matches_the_full_spectrum_where_it_answers(medium_photo):
    from svdimage.decomposition import decompose_until
    from svdimage.ranks.selection import rank_for_energy

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


@pytest.mark.parametrize("which", ["gray", "colour"])
def test_a_chunked_image_is_decomposed_out_of_core_like_lapack(which, camera, astronaut):
    import dask.array as da

    pixels = np.rint((camera if which == "gray" else astronaut) * 255).astype(np.uint8)
    lazy = da.from_array(pixels, chunks=(100, 128) + pixels.shape[2:])
    svd = decompose(lazy, rank=20, rng=0)
    exact = decompose(pixels, method="exact")  # uint8 scaled the same way, in memory
    assert svd.shape == pixels.shape and svd.max_rank == 20 and svd.method == "randomized"
    _, s, _ = svd.stacked_factors()
    _, s_exact, _ = exact.stacked_factors()
    np.testing.assert_allclose(s[:, :10], s_exact[:, :10], rtol=1e-4)
    assert svd.squared_norm == pytest.approx(exact.squared_norm, rel=1e-12)
    np.testing.assert_allclose(svd.relative_error(5), exact.relative_error(5), rtol=1e-4)
    np.testing.assert_allclose(svd.reconstruct(5), exact.reconstruct(5), atol=1e-3)


def test_a_chunked_image_needs_a_rank_and_the_randomized_method(camera):
    import dask.array as da

    lazy = da.from_array(camera, chunks=64)
    with pytest.raises(ValueError, match="needs rank=K"):
        decompose(lazy)
    with pytest.raises(ValueError, match="randomized method only"):
        decompose(lazy, rank=5, method="exact")
    with pytest.raises(ValueError, match="signed integer"):
        decompose(da.from_array(np.zeros((8, 8), np.int16), chunks=4), rank=2)


def test_out_of_core_progress_counts_the_passes_over_the_image(astronaut):
    import dask.array as da

    from svdimage import _progress
    from svdimage.randomized import chunked_passes

    seen = []

    class Recorder:
        def started(self, task):
            pass

        def advanced(self, task):
            seen.append((task.done, task.total, task.unit))

        def finished(self, task):
            pass

    with _progress.listening(Recorder()):
        decompose(da.from_array(astronaut, chunks=(128, 128, 3)), rank=8, rng=0)
    total = chunked_passes(8)  # every channel in the same passes
    assert [done for done, _, _ in seen] == list(range(1, total + 1))
    assert {t for _, t, _ in seen} == {total} and seen[0][2] == "passes over the image"


def test_out_of_core_reconstructions_equal_the_in_memory_paths_within_1e_5(astronaut):
    """The same request (rank 30, kept from a sketch twice as wide, as every command asks)
    on a float32 image in memory and on the same pixels in chunks: the rank-30 images agree
    to 1e-5, although one path multiplies in passes over the chunks."""
    import dask.array as da

    from svdimage.ranks.growth import resolve_rank_items

    lazy = da.from_array(astronaut, chunks=(64, 512, 3))
    loaded = resolve_rank_items(astronaut, [30])
    streamed = resolve_rank_items(lazy, [30])
    assert streamed.svd.out_of_core and not loaded.svd.out_of_core
    image = loaded.svd.reconstruct(30)
    np.testing.assert_allclose(streamed.svd.reconstruct(30).compute(), image, atol=1e-5)
    np.testing.assert_allclose(streamed.svd.s[:, :30], loaded.svd.s[:, :30], rtol=1e-5)

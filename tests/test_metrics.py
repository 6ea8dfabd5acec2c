import numpy as np
import pytest
import skimage.metrics

from svdimage import metrics


def test_relative_error_matches_numpy_norm(camera, rng):
    noisy = camera + 0.05 * rng.standard_normal(camera.shape).astype(np.float32)
    expected = np.linalg.norm(noisy.astype(np.float64) - camera) / np.linalg.norm(
        camera.astype(np.float64)
    )
    assert metrics.relative_error(camera, noisy) == pytest.approx(expected, rel=1e-12)
    assert metrics.relative_error(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0
    assert metrics.relative_error(np.zeros((3, 3)), np.ones((3, 3))) == float("inf")


def test_relative_error_of_a_large_colour_image_in_blocks_without_float64_copies(rng):
    import tracemalloc

    image = rng.random((1200, 900, 3), dtype=np.float32)  # 12 MB, several blocks of rows
    approx = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(0.1)
    expected = np.linalg.norm(approx.astype(np.float64) - image) / np.linalg.norm(
        image.astype(np.float64)
    )
    tracemalloc.start()
    try:
        got = metrics.relative_error(image, approx)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(expected, rel=1e-12)
    assert peak < image.nbytes / 2  # a float64 copy of either image is twice its bytes


def test_psnr_and_ssim_match_skimage_with_data_range_one(astronaut, rng):
    noisy = np.clip(astronaut + 0.03 * rng.standard_normal(astronaut.shape), 0, 1)
    a, b = astronaut.astype(np.float64), noisy.astype(np.float64)
    assert metrics.peak_signal_noise_ratio(astronaut, noisy) == pytest.approx(
        skimage.metrics.peak_signal_noise_ratio(a, b, data_range=1.0)
    )
    assert metrics.structural_similarity(astronaut, noisy) == pytest.approx(
        skimage.metrics.structural_similarity(a, b, data_range=1.0, channel_axis=-1), abs=1e-5
    )


def _skimage_ssim(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return skimage.metrics.structural_similarity(
        a, b, data_range=1.0, channel_axis=-1 if a.ndim == 3 else None
    )


def _pairs(camera, astronaut):
    rng = np.random.default_rng(5)
    noisy = np.clip(astronaut + 0.05 * rng.standard_normal(astronaut.shape), 0, 1)
    return {
        "random": (rng.random((61, 83)), rng.random((61, 83))),
        "flat": (np.full((30, 40), 0.5), np.full((30, 40), 0.5)),
        "flat vs noise": (np.full((30, 40), 0.5), rng.random((30, 40))),
        "tiny 7x7": (rng.random((7, 7)), rng.random((7, 7))),
        "tiny colour": (rng.random((7, 9, 3)), rng.random((7, 9, 3))),
        "real gray, float32": (camera, np.clip(camera + 0.002, 0, 1).astype(np.float32)),
        "real colour": (astronaut.astype(np.float64), noisy),
        "real colour, float32": (astronaut, noisy.astype(np.float32)),
        "odd strip count": (camera[:77, :301], np.clip(camera[:77, :301] * 0.9, 0, 1)),
    }


def test_ssim_equals_scikit_image_on_random_flat_tiny_and_real_images(camera, astronaut):
    for name, (a, b) in _pairs(camera, astronaut).items():
        expected = _skimage_ssim(a, b)
        assert abs(metrics.structural_similarity(a, b) - expected) < 1e-5, name


def test_ssim_reference_is_reused_across_approximations(camera):
    from svdimage import decompose

    svd = decompose(camera, rank=40, rng=0)
    reference = metrics.SSIMReference(camera)
    for k in (1, 5, 40):
        approx = svd.reconstruct(k)
        assert abs(reference(approx) - _skimage_ssim(camera, approx)) < 1e-5
    assert reference(camera) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        reference(camera[:-1])


def test_ssim_reference_of_a_tiny_image_is_nan_or_an_error():
    assert np.isnan(metrics.SSIMReference(np.ones((5, 9)), too_small="nan")(np.ones((5, 9))))
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.SSIMReference(np.ones((5, 9)))


def test_psnr_by_hand(camera):
    shifted = np.clip(camera + 0.01, 0, 1)
    mse = np.mean((shifted.astype(np.float64) - camera) ** 2)
    assert metrics.peak_signal_noise_ratio(camera, shifted) == pytest.approx(-10 * np.log10(mse))
    assert metrics.peak_signal_noise_ratio(camera, camera) == float("inf")


def test_metrics_reject_mismatched_and_tiny_images():
    with pytest.raises(ValueError, match="same shape"):
        metrics.relative_error(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.structural_similarity(np.ones((4, 4)), np.ones((4, 4)))


def test_bits_per_pixel_and_compression_ratio():
    assert metrics.bits_per_pixel(512 * 512 * 3, (512, 512, 3)) == 24.0
    assert metrics.bits_per_pixel(1000, (100, 80)) == 1.0
    assert metrics.compression_ratio(786_432, 65_536) == 12.0
    with pytest.raises(ValueError):
        metrics.compression_ratio(10, 0)
    with pytest.raises(ValueError):
        metrics.bits_per_pixel(-1, (2, 2))


def test_bd_psnr_against_numerical_integration_of_the_fits(rng):
    from scipy.integrate import quad

    from svdimage.metrics import bd_psnr

    for _ in range(20):
        ra = np.sort(rng.uniform(0.1, 3, 5))
        rb = np.sort(rng.uniform(0.1, 3, 4))
        qa = 30 + 6 * np.log2(ra) + rng.normal(0, 0.3, 5)
        qb = 29 + 6 * np.log2(rb) + rng.normal(0, 0.3, 4)
        fa = np.poly1d(np.polyfit(np.log10(ra), qa, 3))
        fb = np.poly1d(np.polyfit(np.log10(rb), qb, 3))
        lo = max(np.log10(ra).min(), np.log10(rb).min(), np.log10(0.25))
        hi = min(np.log10(ra).max(), np.log10(rb).max(), np.log10(2.0))
        if hi <= lo:
            continue
        expected = quad(np.polysub(fa, fb), lo, hi)[0] / (hi - lo)
        assert bd_psnr(ra, qa, rb, qb, low=0.25, high=2.0) == pytest.approx(expected, abs=1e-9)
    same = [0.25, 0.5, 1.0, 2.0]
    assert np.isnan(bd_psnr([1.0], [30.0], same, [1, 2, 3, 4]))  # one point: no curve
    assert np.isnan(bd_psnr([4.0, 8.0], [1, 2], same, [1, 2, 3, 4]))  # no common rates
    assert bd_psnr([0.5, 1.0, np.nan], [30, 33, 99], [0.5, 1.0], [29, 32]) == pytest.approx(1.0)


@pytest.mark.parametrize("band", [1, 5, 32, 100, 10_000])
def test_ssim_of_rows_handed_over_in_bands_equals_the_whole_image(camera, astronaut, band):
    """Bands of any height (one row of windows, not a multiple of a strip, taller than the
    image) give scikit-image's SSIM, and each band is asked for with its window's overlap."""
    for name, (a, b) in _pairs(camera, astronaut).items():
        reference = metrics.SSIMReference(a, too_small="nan")
        planes = np.asarray(b)[None] if np.ndim(b) == 2 else np.moveaxis(np.asarray(b), -1, 0)
        asked = []

        def rows(start, stop, planes=planes, asked=asked):
            asked.append((start, stop))
            return planes[:, start:stop]

        value = reference.of_rows(rows, band=band)
        if reference.too_small:
            assert np.isnan(value) and asked == [], name
            continue
        assert abs(value - _skimage_ssim(a, b)) < 1e-5, name
        M, w = planes.shape[1], metrics.SSIM_WINDOW
        starts = sorted(start for start, _ in asked)
        assert starts == list(range(0, M - w + 1, band)), name
        assert all(stop == min(start + band, M - w + 1) + w - 1 for start, stop in asked), name


def test_ssim_without_kept_statistics_gives_the_same_numbers(camera, astronaut):
    """structural_similarity recomputes the original's statistics strip by strip instead of
    holding twice the image: the same float32 arithmetic, the same result to the bit."""
    for name, (a, b) in _pairs(camera, astronaut).items():
        kept = metrics.SSIMReference(a, too_small="nan")(b)
        recomputed = metrics.SSIMReference(a, too_small="nan", keep_statistics=False)(b)
        assert kept == recomputed or (np.isnan(kept) and np.isnan(recomputed)), name
        if not np.isnan(kept):
            assert metrics.structural_similarity(a, b) == kept, name


@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_map_is_scikit_images_map_inside_the_border_and_averages_to_ssim(rng, channels):
    from skimage.metrics import structural_similarity as skimage_ssim

    from svdimage.metrics import ssim_map, structural_similarity

    shape = (40, 53) if channels is None else (40, 53, channels)
    original = rng.random(shape)
    approx = np.clip(original + 0.1 * rng.standard_normal(shape), 0, 1)
    local = ssim_map(original, approx)
    assert local.shape == (34, 47)
    axis = None if channels is None else 2
    _, full = skimage_ssim(original, approx, data_range=1.0, full=True, channel_axis=axis)
    reference = full[3:-3, 3:-3] if channels is None else full[3:-3, 3:-3].mean(axis=2)
    np.testing.assert_allclose(local, reference, atol=1e-9)
    assert local.mean() == pytest.approx(structural_similarity(original, approx), abs=1e-6)
    with pytest.raises(ValueError, match="smaller than SSIM's 7x7 window"):
        ssim_map(original[:6], approx[:6])

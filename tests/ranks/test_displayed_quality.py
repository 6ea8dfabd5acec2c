import math

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose, metrics
from svdimage.ranks.displayed_quality import DisplayedQuality


def test_measurement_cache_shares_one_decomposition_s_quality_and_frees_it(camera):
    """The displayed quality is shared through an explicit cache (no state on the SVD): the
    same object for the same decomposition, a new one for another, and nothing holds the
    decomposition once the cache forgets it."""
    import gc
    import weakref

    from svdimage.ranks.selection import MeasurementCache

    svd = decompose(camera[::4, ::4].copy())
    image = camera[::4, ::4].copy()
    cache = MeasurementCache(image)
    quality = cache.quality(svd)
    assert cache.quality(svd) is quality
    assert not hasattr(svd, "shared")
    k = quality.rank_for_psnr(30)
    expected = skimage.metrics.peak_signal_noise_ratio(image, svd.reconstruct(k), data_range=1.0)
    assert math.isclose(quality.psnr(k), expected, rel_tol=1e-6)
    other = decompose(image, rank=40)
    assert cache.quality(other) is not quality
    held = weakref.ref(svd)
    cache.forget(other)
    del svd, quality
    gc.collect()
    assert held() is None


def test_displayed_quality_measures_bands_not_whole_images(astronaut):
    """PSNR and SSIM of a truncated SVD equal scikit-image's on the clipped reconstruction,
    while the measurement holds a few bands of rows, never an image."""
    import tracemalloc

    image = np.concatenate([astronaut, astronaut[::-1]] * 2, axis=0)  # 2048x512: 16 bands
    svd = decompose(image, rank=60, rng=0)
    quality = DisplayedQuality(svd, image)
    quality.ssim(1)  # the SSIM statistics of the original are made once, before measuring
    tracemalloc.start()
    try:
        for k in (5, 60):
            quality.ssim(k)  # and the PSNR with it
        quality.psnr(20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < image.nbytes / 3
    for k in (5, 20, 60):
        shown = svd.reconstruct(k).astype(np.float64)
        expected_psnr = skimage.metrics.peak_signal_noise_ratio(
            image.astype(np.float64), shown, data_range=1.0
        )
        expected_ssim = skimage.metrics.structural_similarity(
            image.astype(np.float64), shown, data_range=1.0, channel_axis=-1
        )
        assert quality.psnr(k) == pytest.approx(expected_psnr, abs=1e-4)
        if k != 20:
            assert quality.ssim(k) == pytest.approx(expected_ssim, abs=1e-5)


def test_released_ssim_statistics_keep_the_measurements(astronaut):
    svd = decompose(astronaut, rank=30, rng=0)
    quality = DisplayedQuality(svd, astronaut)
    before = quality.ssim(10)
    quality.release_statistics()
    assert quality._ssim_reference is None
    assert quality.ssim(10) == before  # kept
    made_again = metrics.structural_similarity(astronaut, svd.reconstruct(20))
    assert quality.ssim(20) == pytest.approx(made_again, abs=1e-6)


def test_displayed_quality_holds_ssim_statistics_only_when_asked(astronaut):
    svd = decompose(astronaut, rank=30, rng=0)
    lean, keeping = DisplayedQuality(svd, astronaut), DisplayedQuality(svd, astronaut)
    keeping.keep_statistics = True
    for k in (3, 12, 30):
        assert lean.ssim(k) == keeping.ssim(k)  # the same float32 arithmetic either way
    assert not lean._ssim_reference.keeps_statistics
    assert keeping._ssim_reference.keeps_statistics

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


def test_psnr_and_ssim_match_skimage_with_data_range_one(astronaut, rng):
    noisy = np.clip(astronaut + 0.03 * rng.standard_normal(astronaut.shape), 0, 1)
    a, b = astronaut.astype(np.float64), noisy.astype(np.float64)
    assert metrics.peak_signal_noise_ratio(astronaut, noisy) == pytest.approx(
        skimage.metrics.peak_signal_noise_ratio(a, b, data_range=1.0)
    )
    assert metrics.structural_similarity(astronaut, noisy) == pytest.approx(
        skimage.metrics.structural_similarity(a, b, data_range=1.0, channel_axis=-1)
    )


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

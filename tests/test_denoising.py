import math

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose
from svdimage.denoising import (
    add_noise,
    denoise,
    marchenko_pastur_median,
    optimal_hard_threshold_rank,
    optimal_threshold_coefficient,
)


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_omega_matches_the_papers_cubic_within_half_a_percent(beta):
    omega = optimal_threshold_coefficient(beta) / math.sqrt(marchenko_pastur_median(beta))
    cubic = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    assert omega == pytest.approx(cubic, rel=5e-3)


def test_marchenko_pastur_median_against_sampled_noise(rng):
    # The median eigenvalue of X X^T / n for Gaussian noise converges to mu_beta.
    m, n = 400, 1600
    eigenvalues = np.linalg.eigvalsh((lambda X: X @ X.T / n)(rng.standard_normal((m, n))))
    assert np.median(eigenvalues) == pytest.approx(marchenko_pastur_median(m / n), rel=1e-2)


def test_square_threshold_is_four_over_root_three():
    assert optimal_threshold_coefficient(1.0) == pytest.approx(4 / math.sqrt(3))


@pytest.mark.parametrize("shape", [(200, 200), (150, 300), (300, 120)])
@pytest.mark.parametrize("known", [True, False])
def test_gavish_donoho_recovers_true_rank(shape, known, rng):
    true_rank, sigma = 7, 0.02
    m, n = shape
    left = np.linalg.qr(rng.standard_normal((m, true_rank)))[0]
    right = np.linalg.qr(rng.standard_normal((n, true_rank)))[0]
    # singular values well above the noise edge sigma * (sqrt(m) + sqrt(n))
    strengths = np.linspace(3, 6, true_rank) * sigma * (math.sqrt(m) + math.sqrt(n))
    clean = (left * strengths) @ right.T
    noisy = clean + sigma * rng.standard_normal(shape)
    svd = decompose(noisy)
    rank = optimal_hard_threshold_rank(svd, sigma=sigma if known else None)
    assert rank == true_rank


def test_denoise_improves_psnr_on_noisy_low_rank_image(rng):
    y, x = np.mgrid[0:160, 0:240] / 240
    clean = (
        0.5 + 0.25 * np.sin(6 * x) * np.cos(4 * y) + 0.2 * np.outer(np.ones(160), np.cos(9 * x[0]))
    )
    noisy = add_noise(clean, 0.08, rng=rng)
    result = denoise(noisy, sigma=0.08)
    before = skimage.metrics.peak_signal_noise_ratio(clean, np.clip(noisy, 0, 1), data_range=1)
    after = skimage.metrics.peak_signal_noise_ratio(clean, result.image, data_range=1)
    assert after > before + 10
    assert 1 <= result.rank <= 10
    assert denoise(noisy).rank == result.rank  # estimated sigma agrees here


def test_denoise_color_uses_one_rank_per_channel(small_color, rng):
    image, _ = small_color
    result = denoise(add_noise(image, 0.05, rng=rng))
    assert isinstance(result.rank, tuple) and len(result.rank) == 3
    assert result.image.shape == image.shape


def test_add_noise_is_seeded_and_keeps_dtype(camera):
    a = add_noise(camera, 0.1, rng=5)
    b = add_noise(camera, 0.1, rng=5)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert np.std(a - camera) == pytest.approx(0.1, rel=0.02)
    assert add_noise(camera, 0.5, rng=1, clip=True).max() <= 1


def test_gavish_donoho_errors(camera):
    with pytest.raises(ValueError, match="complete SVD"):
        optimal_hard_threshold_rank(decompose(camera, rank=20))
    with pytest.raises(ValueError, match="sigma must be positive"):
        optimal_hard_threshold_rank(decompose(camera), sigma=0)

import math

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose
from svdimage.rank_selection import (
    Criterion,
    add_noise,
    denoise,
    knee_rank,
    marchenko_pastur_median,
    optimal_hard_threshold_rank,
    optimal_threshold_coefficient,
    parse_criterion,
    rank_for_energy,
    rank_for_error,
    rank_for_fraction,
    rank_for_psnr,
    rank_for_ssim,
    rank_for_storage,
    resolve_criterion,
    criterion_value,
    recommend,
)


@pytest.fixture(scope="module")
def camera_svd(camera):
    return decompose(camera)


@pytest.fixture(scope="module")
def small_color(astronaut):
    image = astronaut[::4, ::4].copy()
    return image, decompose(image)


def _direct_error(image, approx):
    a = image.astype(np.float64)
    return np.linalg.norm(a - approx) / np.linalg.norm(a)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99, 0.999, 1.0])
def test_rank_for_energy_is_smallest_rank_meeting_target(camera_svd, fraction):
    s2 = camera_svd.s.astype(np.float64) ** 2
    cumulative = np.cumsum(s2) / s2.sum()
    k = rank_for_energy(camera_svd, fraction)
    assert cumulative[k - 1] >= fraction - 1e-9
    if k > 1:
        assert cumulative[k - 2] < fraction


@pytest.mark.parametrize("target", [0.2, 0.05, 0.01])
def test_rank_for_error_brute_force(camera, camera_svd, target):
    k = rank_for_error(camera_svd, target)
    before, at = (_direct_error(camera, camera_svd.reconstruct(r, clip=False))
                  for r in (k - 1, k))
    assert at <= target + 1e-6 and before > target


@pytest.mark.parametrize("db", [20.0, 28.0, 33.0])
def test_rank_for_psnr_brute_force_on_displayed_image(camera, camera_svd, db):
    def psnr(k):
        return skimage.metrics.peak_signal_noise_ratio(
            camera.astype(np.float64), camera_svd.reconstruct(k).astype(np.float64),
            data_range=1.0)

    k = rank_for_psnr(camera_svd, db)
    assert psnr(k) >= db and psnr(k - 1) < db
    # brute force: no smaller rank reaches it
    assert all(psnr(r) < db for r in range(max(1, k - 15), k))


@pytest.mark.parametrize("value", [0.6, 0.8, 0.9])
def test_rank_for_ssim_brute_force_color(small_color, value):
    image, svd = small_color

    def ssim(k):
        return skimage.metrics.structural_similarity(
            image.astype(np.float64), svd.reconstruct(k).astype(np.float64), data_range=1.0,
            channel_axis=-1)

    k = rank_for_ssim(svd, value)
    assert ssim(k) >= value and ssim(k - 1) < value
    assert [r for r in range(1, k) if ssim(r) >= value] == []


def test_rank_for_psnr_and_ssim_need_image_for_truncated_svd(camera):
    truncated = decompose(camera, rank=80)
    with pytest.raises(ValueError, match="pass image="):
        rank_for_psnr(truncated, 30)
    assert rank_for_psnr(truncated, 25, image=camera) == rank_for_psnr(decompose(camera), 25)


def test_rank_for_storage_float32_bytes(camera_svd):
    per_rank = 4 * (512 + 512 + 1)
    assert rank_for_storage(camera_svd, bytes=10 * per_rank) == 10
    assert rank_for_storage(camera_svd, bytes=10 * per_rank - 1) == 9
    k = rank_for_storage(camera_svd, ratio=4)
    assert 512 * 512 / (k * per_rank) >= 4 > 512 * 512 / ((k + 1) * per_rank)
    k = rank_for_storage(camera_svd, bpp=1.0)
    assert 8 * k * per_rank / (512 * 512) <= 1.0 < 8 * (k + 1) * per_rank / (512 * 512)
    with pytest.raises(ValueError, match="exactly one"):
        rank_for_storage(camera_svd, bytes=100, bpp=1)
    with pytest.raises(ValueError, match="even rank 1"):
        rank_for_storage(camera_svd, bytes=100)


def test_rank_for_fraction(camera_svd):
    assert rank_for_fraction(camera_svd, 10) == math.ceil(51.2)
    assert rank_for_fraction(camera_svd, 100) == 512
    assert rank_for_fraction(camera_svd, 0.01) == 1
    with pytest.raises(ValueError, match="percent"):
        rank_for_fraction(camera_svd, 0)


def test_knee_rank_finds_the_elbow_of_a_low_rank_signal(rng):
    signal = rng.random((120, 6)) @ rng.random((6, 90))
    svd = decompose(signal / signal.max() + 0.002 * rng.standard_normal((120, 90)))
    assert knee_rank(svd) in (5, 6, 7)
    photo_knee = knee_rank(decompose(rng.random((8, 8))))
    assert 1 <= photo_knee <= 8


def test_unreachable_targets_raise(camera):
    svd = decompose(camera, rank=5)
    with pytest.raises(ValueError, match="no rank up to 5.*truncated"):
        rank_for_energy(svd, 0.9999)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        rank_for_energy(svd, 1.5)
    with pytest.raises(ValueError, match="no rank up to 5"):
        rank_for_psnr(svd, 80, image=camera)
    with pytest.raises(ValueError, match="SSIM target"):
        rank_for_ssim(svd, 2, image=camera)


# -- Gavish-Donoho --------------------------------------------------------------------
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
    clean = 0.5 + 0.25 * np.sin(6 * x) * np.cos(4 * y) + 0.2 * np.outer(np.ones(160), np.cos(9 * x[0]))
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


# -- criteria -------------------------------------------------------------------------
def test_parse_and_resolve_criteria(camera, camera_svd):
    assert parse_criterion("psnr=35") == Criterion("psnr", 35.0)
    assert parse_criterion(" knee ") == Criterion("knee")
    assert resolve_criterion(camera_svd, parse_criterion("energy=0.99")) == rank_for_energy(
        camera_svd, 0.99)
    assert resolve_criterion(camera_svd, parse_criterion("bytes=41000")) == 10
    for bad, match in (("psnr", "needs a number"), ("speed=3", "unknown rank criterion"),
                       ("knee=3", "takes no value")):
        with pytest.raises(ValueError, match=match):
            parse_criterion(bad)


def test_criterion_value_explains_the_choice(camera, camera_svd):
    k = resolve_criterion(camera_svd, Criterion("psnr", 30.0))
    assert criterion_value(camera_svd, Criterion("psnr", 30.0), k) >= 30
    assert criterion_value(camera_svd, Criterion("psnr", 30.0), k - 1) < 30
    assert criterion_value(camera_svd, Criterion("bytes", 1.0), 10) == 4 * 10 * 1025
    assert criterion_value(camera_svd, Criterion("percent", 1.0), 256) == 50.0


def test_recommend_rows_agree_with_the_criteria(small_color):
    image, svd = small_color
    rows = recommend(svd)
    labels = [row.criterion for row in rows]
    assert labels[0] == "knee" and "SSIM 0.95" in labels and "energy 99%" in labels
    by_label = {row.criterion: row for row in rows}
    assert by_label["energy 99%"].rank == rank_for_energy(svd, 0.99)
    assert by_label["SSIM 0.95"].ssim >= 0.95
    assert by_label["PSNR 35 dB"].psnr >= 35
    row = by_label["SSIM 0.90"]
    assert row.factor_bytes_float32 == 4 * 3 * row.rank * (128 + 128 + 1)
    assert 0 < row.svdz_bytes < row.factor_bytes_float32


def test_rank_for_storage_counts_real_svdz_bytes(camera):
    from svdimage import codec
    from svdimage.rank_selection import svdz_bytes

    svd = decompose(camera[::2, ::2].copy())
    sizes = [svdz_bytes(svd, k) for k in (5, 20, 60, 120)]
    assert sizes == sorted(sizes)  # grows with the rank
    k = rank_for_storage(svd, bytes=sizes[2], storage="svdz")
    assert svdz_bytes(svd, k) <= sizes[2] < svdz_bytes(svd, k + 1)
    # A real file: it decodes, holds at most k components, and is far below float32 factors.
    data = codec._encode_at(camera[::2, ::2].copy(), quality=100, max_rank=k, tile=None,
                            color="ycbcr", chroma="420",
                            step=None)
    assert codec.inspect(data).tile_ranks[0]["max_rank"] <= k
    assert svdz_bytes(svd, k) < 4 * svd.stored_values(k) / 4
    with pytest.raises(ValueError, match="storage must be"):
        rank_for_storage(svd, bytes=10**6, storage="png")

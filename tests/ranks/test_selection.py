import math

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose
from svdimage.ranks.selection import (
    knee_rank,
    rank_for_energy,
    rank_for_error,
    rank_for_fraction,
    rank_for_psnr,
    rank_for_ssim,
    rank_for_storage,
)
from svdimage.ranks.storage import factor_bytes, storage_rank, svdz_bytes


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
    before, at = (_direct_error(camera, camera_svd.reconstruct(r, clip=False)) for r in (k - 1, k))
    assert at <= target + 1e-6 and before > target


@pytest.mark.parametrize("db", [20.0, 28.0, 33.0])
def test_rank_for_psnr_brute_force_on_displayed_image(camera, camera_svd, db):
    def psnr(k):
        return skimage.metrics.peak_signal_noise_ratio(
            camera.astype(np.float64), camera_svd.reconstruct(k).astype(np.float64), data_range=1.0
        )

    k = rank_for_psnr(camera_svd, db)
    assert psnr(k) >= db and psnr(k - 1) < db
    # brute force: no smaller rank reaches it
    assert all(psnr(r) < db for r in range(max(1, k - 15), k))


@pytest.mark.parametrize("value", [0.6, 0.8, 0.9])
def test_rank_for_ssim_brute_force_color(small_color, value):
    image, svd = small_color

    def ssim(k):
        return skimage.metrics.structural_similarity(
            image.astype(np.float64),
            svd.reconstruct(k).astype(np.float64),
            data_range=1.0,
            channel_axis=-1,
        )

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
    assert rank_for_storage(camera_svd, max_bytes=10 * per_rank) == 10
    assert rank_for_storage(camera_svd, max_bytes=10 * per_rank - 1) == 9
    k = rank_for_storage(camera_svd, ratio=4)
    assert 512 * 512 / (k * per_rank) >= 4 > 512 * 512 / ((k + 1) * per_rank)
    k = rank_for_storage(camera_svd, bpp=1.0)
    assert 8 * k * per_rank / (512 * 512) <= 1.0 < 8 * (k + 1) * per_rank / (512 * 512)
    with pytest.raises(ValueError, match="exactly one"):
        rank_for_storage(camera_svd, max_bytes=100, bpp=1)
    with pytest.raises(ValueError, match="even rank 1"):
        rank_for_storage(camera_svd, max_bytes=100)


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
    # An 8x8 matrix built with a known spectrum: three large singular values, then a flat
    # tail. Scaled errors (rank 1..8) fall 1, .67, .15, .12, ...: the point farthest below
    # the chord is rank 3 (Kneedle by hand: 0.565 there, 0.447 at rank 4).
    U = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    V = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    spectrum = np.array([10, 9, 8, 1, 0.9, 0.8, 0.7, 0.6])
    assert knee_rank(decompose((U * spectrum) @ V.T)) == 3


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


def test_rank_for_storage_counts_real_svdz_bytes(camera):
    from svdimage import codec

    original = camera[::2, ::2].copy()
    svd = decompose(original)
    sizes = [svdz_bytes(svd, k) for k in (5, 20, 60, 120)]
    assert sizes == sorted(sizes)  # grows with the rank
    k = rank_for_storage(svd, max_bytes=sizes[2], storage="svdz")
    assert svdz_bytes(svd, k) <= sizes[2] < svdz_bytes(svd, k + 1)
    # A real file: the one `compress --rank k --global` writes, which keeps exactly k luma
    # components, far below the float32 factors.
    data = codec.encode(original, rank=k, tile=None)
    assert len(data) == svdz_bytes(svd, k, image=original) == svdz_bytes(svd, k)
    assert codec.inspect(data).tile_ranks[0]["components"] == k
    assert svdz_bytes(svd, k) < 4 * svd.stored_values(k) / 4
    with pytest.raises(ValueError, match="storage must be"):
        rank_for_storage(svd, max_bytes=10**6, storage="png")


def test_rank_for_storage_needs_the_answer_held(camera):
    """A budget's rank depends on the shape alone; a truncated SVD that does not hold it
    says so, where it once answered its last rank."""
    truncated = decompose(camera, rank=20, method="exact")
    per_rank = 4 * (512 + 512 + 1)
    assert rank_for_storage(truncated, max_bytes=20 * per_rank) == 20
    with pytest.raises(ValueError, match="fits rank 21, above the 20 held"):
        rank_for_storage(truncated, max_bytes=21 * per_rank)
    assert storage_rank(camera.shape, max_bytes=21 * per_rank) == 21
    assert factor_bytes(camera.shape, 21) == 21 * per_rank
    assert factor_bytes((10, 20, 3), 2, bytes_per_value=8) == 3 * 2 * 31 * 8


def test_knee_of_a_truncated_svd_is_certain_or_refused(astronaut):
    """A truncated SVD gives the knee of the whole curve only when a bound proves that no
    later rank scores higher; otherwise it asks for more ranks."""
    import skimage.transform

    from svdimage import decompose
    from svdimage.ranks.selection import knee_rank

    image = skimage.transform.resize(astronaut, (600, 800), order=1).astype(np.float32)
    exact = decompose(image, method="exact")
    full = knee_rank(exact)
    with pytest.raises(ValueError, match="knee may lie beyond rank"):
        knee_rank(exact.truncated(full + 1))  # the knee is in range, but not yet provably
    certain = [r for r in range(full + 1, exact.full_rank, 25) if _certain(exact.truncated(r))]
    assert certain and certain[0] < exact.full_rank // 2  # proven long before the end
    for rank in certain:
        assert knee_rank(exact.truncated(rank)) == full
    randomized = decompose(image, rank=certain[0] + 20, method="randomized", rng=0)
    assert knee_rank(randomized) == full


def _certain(svd):
    from svdimage.ranks.selection import knee_rank

    try:
        knee_rank(svd)
    except ValueError:
        return False
    return True


def test_extrapolated_rank_is_exact_where_held_and_near_beyond(rng):
    """From a truncated spectrum, the rank whose squared error falls to a target: exact
    when held; beyond, the power law fitted to the second half of the held ranks, which
    a matrix with a power-law spectrum follows (and None with too few ranks held)."""
    from svdimage.ranks.selection import extrapolated_rank

    n = 600
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = np.arange(1, n + 1, dtype=np.float64) ** -0.75
    A = (U * sigma) @ V.T
    full = decompose(A, method="exact")
    total = full.squared_norm
    for fraction in (0.9, 0.99):
        target = (1 - fraction) * total
        truth = rank_for_energy(full, fraction)
        assert extrapolated_rank(full, target) == truth
        held = full.truncated(truth // 4)
        assert abs(extrapolated_rank(held, target) - truth) <= 0.02 * truth
    assert extrapolated_rank(full.truncated(7), 0.01 * total) is None
    assert extrapolated_rank(full.truncated(64), -1.0) is None  # never reached

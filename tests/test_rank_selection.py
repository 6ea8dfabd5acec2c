import numpy as np
import pytest

from svdimage import decompose
from svdimage.rank_selection import rank_for_energy, rank_for_error


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99, 0.999, 1.0])
def test_rank_for_energy_is_smallest_rank_meeting_target(camera, fraction):
    svd = decompose(camera)
    s2 = svd.s.astype(np.float64) ** 2
    cumulative = np.cumsum(s2) / s2.sum()
    k = rank_for_energy(svd, fraction)
    assert cumulative[k - 1] >= fraction - 1e-9
    if k > 1:
        assert cumulative[k - 2] < fraction


@pytest.mark.parametrize("target", [0.2, 0.05, 0.01])
def test_rank_for_error_brute_force(camera, target):
    svd = decompose(camera)
    k = rank_for_error(svd, target)
    direct = [np.linalg.norm(camera - svd.reconstruct(r, clip=False)) / np.linalg.norm(camera)
              for r in (k - 1, k)]
    assert direct[1] <= target + 1e-6 and direct[0] > target


def test_unreachable_targets_raise(camera):
    svd = decompose(camera, rank=5)
    with pytest.raises(ValueError, match="no rank up to 5.*truncated"):
        rank_for_energy(svd, 0.9999)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        rank_for_energy(svd, 1.5)

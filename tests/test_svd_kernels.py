"""The exact SVD kernels (svdimage.svd_kernels): the method rule, the Gram route and its limit,
against LAPACK."""

import numpy as np
import pytest

from svdimage import decompose
from svdimage.svd_kernels import choose_method


def test_auto_rule_is_documented_behaviour():
    assert choose_method("auto", (4000, 3000), None) == "exact"
    assert choose_method("auto", (512, 512), 10) == "randomized"
    assert choose_method("auto", (512, 512), 128) == "exact"
    assert choose_method("auto", (96, 200), 2) == "exact"
    assert choose_method("auto", (97, 200), 2) == "randomized"
    assert choose_method("auto", (4000, 3000), 100) == "randomized"
    assert choose_method("auto", (4000, 3000), 1000) == "exact"
    assert choose_method("randomized", (100, 80), 80) == "exact"


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

"""The exact SVD kernels: LAPACK's thin SVD, or the Gram matrix's top eigenpairs.

The lowest layer of the SVD, shared by :mod:`svdimage.decomposition` (an image's
SVD for every rank) and the codec (the factors of a plane): which method a
request uses (:func:`choose_method`), and the exact top ``k`` singular triplets
of a matrix (:func:`exact_svd`), from LAPACK ``gesdd`` or, for a large float32
matrix, from the eigenpairs of its float64 Gram matrix (:func:`gram_svd`) [1]_. The
randomized kernel is :func:`svdimage.randomized.randomized_svd`.

SciPy is imported on first use, so that commands that only decode do not load it.

References
----------
.. [1] Golub, G. H. and Van Loan, C. F., *Matrix Computations*, 4th ed., Johns
   Hopkins University Press, 2013, sections 8.6 (the SVD) and 8.1 (the symmetric
   eigenproblem).
"""

from __future__ import annotations

import numpy as np

from svdimage._linalg import svd_flip

__all__ = [
    "exact_svd",
    "gram_svd",
    "choose_method",
    "uses_gram",
    "AUTO_EXACT_MAX_SIDE",
    "AUTO_EXACT_RANK_FRACTION",
    "GRAM_MAX_RANK_FRACTION",
    "GRAM_SUBSET_FRACTION",
    "GRAM_MIN_SIDE",
    "GRAM_MIN_RELATIVE",
    "GRAM_BLOCK",
]

#: ``method='auto'`` uses the exact SVD when the short side is at most this. Measured on
#: astronaut resized (benchmarks/README.md): the exact SVD is 1.2-2x faster at 64 px, the
#: randomized one 1.2-2.5x faster at 128 px and 4-28x at 256-512 px for ranks below a
#: quarter of the side (2x to 28x at rank 2-10), with errors within 0.04 % of the optimum.
AUTO_EXACT_MAX_SIDE = 96
#: ... or when the requested rank is at least this fraction of the short side.
AUTO_EXACT_RANK_FRACTION = 0.25
#: The exact top-``k`` SVD of a float32 image with ``k`` at most this fraction of the short
#: side comes from the eigenvectors of its float64 Gram matrix (see :func:`exact_svd`). Measured
#: on a 3000x4000 photo's luma, same run: the top 512 in 4.0 s, the top 1000 in 4.9 s (all
#: eigenpairs, see :data:`GRAM_SUBSET_FRACTION`), LAPACK's complete float32 SVD with vectors
#: in 8.2 s.
GRAM_MAX_RANK_FRACTION = 1 / 2
#: Up to this fraction of the side the Gram matrix's top ``k`` eigenpairs alone are computed
#: (LAPACK ``syevr``: bisection and inverse iteration, whose cost grows with ``k``); above it
#: all of them (``syevd``, divide and conquer), which is then faster. Measured on the Gram
#: matrix of a 3000x4000 photo channel: the top 512 in 2.8 s, the top 1000 in 6.3 s, all
#: 3000 in 3.5-3.8 s.
GRAM_SUBSET_FRACTION = 1 / 4
#: ... when the short side is larger than this (below it the complete SVD takes milliseconds).
GRAM_MIN_SIDE = 256


def choose_method(method: str, shape: tuple[int, int], rank: int | None) -> str:
    """The method ``decompose(method=...)`` runs for ``rank`` of a ``shape`` matrix:
    ``'exact'`` or ``'randomized'``; see :func:`svdimage.decomposition.decompose`'s Notes."""
    if method != "auto":
        if rank is None or rank >= min(shape):
            return "exact"
        return method
    short = min(shape)
    if rank is None or short <= AUTO_EXACT_MAX_SIDE or rank >= AUTO_EXACT_RANK_FRACTION * short:
        return "exact"
    return "randomized"


def uses_gram(shape: tuple[int, ...], k: int) -> bool:
    """Whether the exact top ``k`` of a float32 matrix of ``shape`` come from its Gram
    matrix (:func:`gram_svd`) rather than from LAPACK's complete SVD: the short side is
    above :data:`GRAM_MIN_SIDE` and ``k`` at most :data:`GRAM_MAX_RANK_FRACTION` of it."""
    short = min(shape[:2])
    return short > GRAM_MIN_SIDE and k <= GRAM_MAX_RANK_FRACTION * short


def exact_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` singular triplets, exact: LAPACK's ``gesdd``, or for a large float32
    matrix and ``k`` up to half its side, its float64 Gram matrix's top eigenpairs."""
    import scipy.linalg

    if A.dtype == np.float32 and uses_gram(A.shape, k):
        top = gram_svd(A, k)
        if top is not None:
            return top
    U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    U, Vt = svd_flip(U[:, :k], Vt[:k])
    return U, s[:k].copy(), Vt


#: The Gram route is used only while ``s_k >= GRAM_MIN_RELATIVE * s_1``: its relative error in
#: ``s_i`` is about ``eps64 * (s_1 / s_i)**2``, below float32's ``eps`` down to 1e-4.
GRAM_MIN_RELATIVE = 1e-4
#: Columns of the matrix converted to float64 at a time (24 MiB of a 3000-row channel).
GRAM_BLOCK = 1024


def gram_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top ``k`` singular triplets of a float32 ``A`` from ``B B^T`` in float64, with ``B``
    ``A`` or its transpose (the short side): ``B B^T = X diag(s^2) X^T`` (LAPACK ``syevr``
    for the top ``k`` eigenpairs only, or ``syevd`` for all of them when ``k`` is past
    :data:`GRAM_SUBSET_FRACTION` of the side), then ``B^T X diag(1/s)``.

    Squaring in float64 loses nothing float32 keeps while ``s_k / s_1 >= 1e-4``: on a 12 MP
    photo channel, singular values agree with float64 ``gesdd`` to 1e-10 and rank-454
    reconstructions to 4e-11 (float32 ``gesdd``: 8e-4 and 2e-3), at half its time. ``None``
    when the spectrum falls below that (a nearly low-rank matrix): the caller uses ``gesdd``.
    """
    import scipy.linalg
    from scipy.linalg.blas import dsyrk

    wide = A.shape[0] <= A.shape[1]
    B = A if wide else A.T  # float32: converted a block of columns at a time, never whole
    n, m = B.shape
    blocks = [slice(j, j + GRAM_BLOCK) for j in range(0, m, GRAM_BLOCK)]
    gram = np.zeros((n, n), order="F")
    for block in blocks:  # the upper triangle of B B^T, by BLAS syrk
        part = np.asfortranarray(B[:, block], dtype=np.float64)
        gram = dsyrk(1.0, part, beta=1.0, c=gram, overwrite_c=True)
    if k <= GRAM_SUBSET_FRACTION * n:
        w, X = scipy.linalg.eigh(
            gram,
            lower=False,
            subset_by_index=[n - k, n - 1],
            driver="evr",
            overwrite_a=True,
            check_finite=False,
        )
    else:  # all eigenpairs (the vectors overwrite the Gram matrix), of which the top k
        w, X = scipy.linalg.eigh(
            gram, lower=False, driver="evd", overwrite_a=True, check_finite=False
        )
        w, X = w[n - k :], X[:, n - k :]
    del gram
    w, X = w[::-1], X[:, ::-1]
    if not (w[0] > 0 and w[-1] >= GRAM_MIN_RELATIVE**2 * w[0]):
        return None
    s = np.sqrt(w)
    Y = np.empty((m, k))  # the other side's vectors, as columns: B^T X / s
    for block in blocks:
        np.divide(B[:, block].T.astype(np.float64) @ X, s, out=Y[block])
    left, right = (X, Y) if wide else (Y, X)
    U, Vt = svd_flip(left.astype(np.float32), np.ascontiguousarray(right.T, dtype=np.float32))
    return U, s.astype(np.float32), Vt

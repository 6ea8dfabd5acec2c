"""The SVD of an image: exact or randomized, computed once, reused for every rank.

An image ``A`` (one matrix per channel) is factored as ``A = U diag(s) Vt``.
Its best rank-``k`` approximation in the Frobenius norm keeps the ``k``
largest singular values (Eckart--Young), and the error of that approximation
follows from the singular values alone, so one decomposition answers every
question about every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike
from scipy.linalg.blas import dsyrk

from svdimage import _progress
from svdimage._linalg import squared_norm, svd_flip
from svdimage._validation import as_image_array, check_rank
from svdimage.image_svd import ImageSVD
from svdimage.randomized import auto_sketch, check_sketch_options, randomized_svd

__all__ = ["ImageSVD", "decompose", "decompose_until", "FULL_SPECTRUM_MAX_SIDE"]

Method = Literal["auto", "exact", "randomized"]

#: ``method='auto'`` uses the exact SVD when the short side is at most this. Measured on
#: astronaut resized (benchmarks/README.md): the exact SVD is 1.2-2x faster at 64 px, the
#: randomized one 1.2-2.5x faster at 128 px and 4-28x at 256-512 px for ranks below a
#: quarter of the side (2x to 28x at rank 2-10), with errors within 0.04 % of the optimum.
AUTO_EXACT_MAX_SIDE = 96
#: ... or when the requested rank is at least this fraction of the short side.
AUTO_EXACT_RANK_FRACTION = 0.25
#: :func:`decompose_until` computes the complete SVD when the short side is at most this.
#: Measured (photo, 99.9 % energy): the complete SVD is faster up to 512 px and as fast at
#: 768 px; from 1000 px on the randomized one wins, by 5-10x at 3000 px.
FULL_SPECTRUM_MAX_SIDE = 768
#: The exact top-``k`` SVD of a float32 image with ``k`` at most this fraction of the short
#: side comes from the eigenvectors of its float64 Gram matrix (see ``_exact_svd``). Measured
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


def decompose(
    image: ArrayLike,
    *,
    rank: int | None = None,
    method: Method = "auto",
    n_oversamples: int | Literal["auto"] = "auto",
    n_iter: int | Literal["auto"] = "auto",
    rng: int | np.random.Generator | None = None,
    lapack_threads: int | None = 1,
    backend: Literal["numpy", "torch"] = "numpy",
    compute_vectors: bool = True,
) -> ImageSVD:
    """Compute the (truncated) SVD of an image, once, for every later rank.

    Parameters
    ----------
    image : (M, N) or (M, N, C) array_like
        Gray or color image in [0, 1]. float32 stays float32; integers are
        scaled to [0, 1] and computed in float64, as are other floats.
    rank : int, optional
        Components to keep, 1 to ``min(M, N)``; ``None`` keeps all.
    method : {'auto', 'exact', 'randomized'}, optional
        ``'exact'`` is LAPACK's divide-and-conquer thin SVD (``gesdd``);
        ``'randomized'`` is the Halko--Martinsson--Tropp sketch with power
        iterations (:func:`randomized_svd`). ``'auto'``: see Notes.
    n_oversamples, n_iter, lapack_threads : optional
        Passed to :func:`randomized_svd`.
    rng : int or numpy.random.Generator, optional
        Seed for the randomized method.
    backend : {'numpy', 'torch'}, optional
        ``'torch'`` runs the same algorithms with PyTorch, on CUDA when
        available (``pip install 'svdimage[torch]'``); the factors come back
        as NumPy arrays with the same dtype and sign rule.
    compute_vectors : bool, optional
        ``False`` computes every singular value and no vectors (LAPACK
        ``gesdd`` without U and V: about 1.7x faster and far less memory on
        12 MP photos). Errors, energy and the numerical rank work; anything
        that reconstructs raises ``ValueError``. Requires ``rank=None``.

    Returns
    -------
    svd : ImageSVD

    Raises
    ------
    ValueError
        If ``rank`` is out of range or ``method`` unknown.
    ImportError
        If ``backend='torch'`` and PyTorch is not installed.

    Notes
    -----
    ``'auto'`` uses the exact SVD when ``rank`` is ``None``, when the short
    side is at most ``AUTO_EXACT_MAX_SIDE`` (96) pixels, or when ``rank`` is
    at least ``AUTO_EXACT_RANK_FRACTION`` (1/4) of the short side; otherwise the
    randomized SVD, which then costs a few passes over the image instead of a
    full factorization. A rank equal to ``min(M, N)`` is always exact.

    Singular-vector signs are fixed (the largest-magnitude entry of each left
    singular vector is positive), so results do not depend on the LAPACK
    build or the random seed's sign choices.

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage import decompose
    >>> image = np.outer(np.linspace(0, 1, 6), np.ones(4)).astype(np.float32)
    >>> svd = decompose(image)
    >>> svd.numerical_rank(), svd.dtype
    (1, dtype('float32'))
    >>> bool(svd.relative_error(1) < 1e-6)
    True
    """
    array = as_image_array(image)
    check_sketch_options(n_oversamples, n_iter, lapack_threads)
    if method not in ("auto", "exact", "randomized"):
        raise ValueError(f"method must be 'auto', 'exact' or 'randomized'; got {method!r}.")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch'; got {backend!r}.")
    if backend == "torch":
        from svdimage import _torch

        _torch.import_torch()
    M, N = array.shape[:2]
    full = min(M, N)
    k = full if rank is None else check_rank(rank, full, shape=array.shape)
    if not compute_vectors:
        if rank is not None:
            raise ValueError("compute_vectors=False computes the whole spectrum: leave rank=None.")
        return _spectrum_only(array)
    chosen = _choose_method(method, (M, N), None if rank is None else k)
    planes = [array] if array.ndim == 2 else [array[:, :, c] for c in range(array.shape[2])]
    generator = np.random.default_rng(rng)
    Us, ss, Vts, norms = [], [], [], []
    what = "complete SVD" if k == full else f"rank-{k} SVD ({chosen})"
    with _progress.task(f"{what} of {N}x{M}", len(planes), unit="channels") as step:
        for plane in planes:
            plane = np.ascontiguousarray(plane)
            U, s, Vt = _plane_svd(
                plane,
                k,
                chosen,
                backend=backend,
                rng=generator,
                n_oversamples=n_oversamples,
                n_iter=n_iter,
                lapack_threads=lapack_threads,
            )
            norms.append(squared_norm(plane))
            Us.append(U)
            ss.append(s)
            Vts.append(Vt)
            step.advance()
    return ImageSVD(
        np.stack(Us),
        np.stack(ss),
        np.stack(Vts),
        shape=array.shape,
        norm_sq=np.array(norms),
        method=chosen,
    )


def _plane_svd(
    plane: np.ndarray,
    k: int,
    chosen: str,
    *,
    backend: str,
    rng: np.random.Generator,
    n_oversamples: int | Literal["auto"],
    n_iter: int | Literal["auto"],
    lapack_threads: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if backend == "torch":
        return _torch_svd(plane, k, chosen, n_oversamples, n_iter, rng)
    if chosen == "exact":
        return _exact_svd(plane, k)
    return randomized_svd(
        plane,
        k,
        n_oversamples=n_oversamples,
        n_iter=n_iter,
        rng=rng,
        lapack_threads=lapack_threads,
    )


def decompose_until(
    image: ArrayLike,
    enough: Callable[[ImageSVD], bool],
    *,
    start: int = 64,
    sketch: int = 1,
    growth: int = 2,
    rng: int | np.random.Generator | None = 0,
    full_max_side: int | None = None,
    propose: Callable[[ImageSVD], int | None] | None = None,
) -> ImageSVD:
    """The top singular triplets, as many as a request needs: no full SVD unless it does.

    Computes a randomized SVD of rank ``K`` (from ``start``), multiplying ``K``
    by ``growth`` (or taking ``propose``'s next ``K``) until ``enough(svd)``
    holds; once ``K`` has grown to where the
    exact SVD is cheaper, the exact top ``K`` (up to half the short side;
    for float32, from the Gram matrix) and then, if still not enough, the
    complete SVD; the complete SVD at once when the image is small.
    Energies and errors of every rank up to ``K`` then follow from these
    singular values and the exact ``||A||_F`` (Eckart--Young).

    Parameters
    ----------
    image : (M, N) or (M, N, C) array_like
    enough : callable
        ``enough(svd) -> bool``: whether ``svd`` answers the request, e.g.
        ``lambda svd: svd.energy(svd.max_rank) >= 0.999``.
    start : int, optional
        The first ``K``.
    sketch : int, optional
        Compute ``sketch * K`` components and keep the first ``K``: with 2,
        the kept singular values and vectors are exact to float precision
        (see Notes), for reconstructions that must equal the optimal ones.
    growth : int, optional
        Factor of ``K`` between tries (2 or more): 4 reaches a large answer in
        fewer tries, each a new randomized SVD, at the price of a wider last one.
    rng : int or numpy.random.Generator, optional
        Seed of the randomized SVD (seeded by default: results repeat).
    full_max_side : int, optional
        Compute the complete SVD when the short side is at most this
        (default :data:`FULL_SPECTRUM_MAX_SIDE`, the measured crossover).
    propose : callable, optional
        ``propose(svd) -> int or None``, called when ``svd`` was not enough:
        the next ``K``, such as an estimate of the answer from the spectrum
        computed so far (:func:`svdimage.rank_selection.extrapolated_rank`);
        ``None``, or a ``K`` not above the last, grows it by ``growth``. Past
        the randomized crossover, a proposal also gets another exact top ``K``
        (up to half the short side) before the complete SVD.

    Returns
    -------
    svd : ImageSVD
        ``svd.is_complete`` tells whether the complete SVD was computed.

    Notes
    -----
    The randomized SVD's singular values are accurate to float precision at
    the top and less so in the last few of the ``K`` (relative error up to
    ~5e-3 for the last, ≤ 2e-6 for the first half, on a 12 MP photo), but
    cumulative energies, sums of squares, stay within ~1e-6 of LAPACK's for
    every rank up to ``K``.
    """
    if isinstance(growth, bool) or not isinstance(growth, int) or growth < 2:
        raise ValueError(f"growth must be an integer >= 2; got {growth!r}.")
    array = as_image_array(image)
    full = min(array.shape[:2])
    limit = FULL_SPECTRUM_MAX_SIDE if full_max_side is None else full_max_side
    generator = np.random.default_rng(rng)
    k = max(1, min(start, full))
    while full > limit and sketch * k < AUTO_EXACT_RANK_FRACTION * full:
        svd = decompose(array, rank=sketch * k, method="randomized", rng=generator).truncated(k)
        if enough(svd):
            return svd
        proposed = None if propose is None else propose(svd)
        k = growth * k if proposed is None or proposed <= k else min(int(proposed), full)
    while full > limit and k <= GRAM_MAX_RANK_FRACTION * full:
        # The exact top k (from the Gram matrix for float32: half the complete SVD's time),
        # again at a larger proposed k while one is below the complete SVD.
        svd = decompose(array, rank=k, method="exact")
        if enough(svd):
            return svd
        proposed = None if propose is None else propose(svd)
        if proposed is None or proposed <= k:
            break
        k = int(proposed)
    return decompose(array, method="exact")


def _spectrum_only(array: np.ndarray) -> ImageSVD:
    planes = [array] if array.ndim == 2 else [array[:, :, c] for c in range(array.shape[2])]
    values = []
    with _progress.task(
        f"singular values of {array.shape[1]}x{array.shape[0]}", len(planes), unit="channels"
    ) as step:
        for p in planes:
            values.append(
                scipy.linalg.svd(
                    np.ascontiguousarray(p),
                    compute_uv=False,
                    lapack_driver="gesdd",
                    check_finite=False,
                )
            )
            step.advance()
    M, N = array.shape[:2]
    C = len(planes)
    return ImageSVD(
        np.zeros((C, M, 0), array.dtype),
        np.stack(values),
        np.zeros((C, 0, N), array.dtype),
        shape=array.shape,
        norm_sq=np.array([squared_norm(np.ascontiguousarray(p)) for p in planes]),
        method="exact",
    )


def _choose_method(method: str, shape: tuple[int, int], rank: int | None) -> str:
    if method != "auto":
        if rank is None or rank >= min(shape):
            return "exact"
        return method
    short = min(shape)
    if rank is None or short <= AUTO_EXACT_MAX_SIDE or rank >= AUTO_EXACT_RANK_FRACTION * short:
        return "exact"
    return "randomized"


def _torch_svd(
    plane: np.ndarray,
    k: int,
    method: str,
    n_oversamples: int | Literal["auto"],
    n_iter: int | Literal["auto"],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from svdimage import _torch

    if method == "exact":
        U, s, Vt = _torch.exact_svd(plane, k)
    else:
        p, q = auto_sketch(k, n_oversamples, n_iter)
        U, s, Vt = _torch.randomized_svd(
            plane, k, width=min(k + p, min(plane.shape)), n_iter=q, rng=rng
        )
    U, Vt = svd_flip(U, Vt)
    return U, s, Vt


def _exact_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` singular triplets, exact: LAPACK's ``gesdd``, or for a large float32
    matrix and ``k`` up to half its side, its float64 Gram matrix's top eigenpairs."""
    short = min(A.shape)
    if A.dtype == np.float32 and short > GRAM_MIN_SIDE and k <= GRAM_MAX_RANK_FRACTION * short:
        top = _gram_svd(A, k)
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


def _gram_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top ``k`` singular triplets of a float32 ``A`` from ``B B^T`` in float64, with ``B``
    ``A`` or its transpose (the short side): ``B B^T = X diag(s^2) X^T`` (LAPACK ``syevr``
    for the top ``k`` eigenpairs only, or ``syevd`` for all of them when ``k`` is past
    :data:`GRAM_SUBSET_FRACTION` of the side), then ``B^T X diag(1/s)``.

    Squaring in float64 loses nothing float32 keeps while ``s_k / s_1 >= 1e-4``: on a 12 MP
    photo channel, singular values agree with float64 ``gesdd`` to 1e-10 and rank-454
    reconstructions to 4e-11 (float32 ``gesdd``: 8e-4 and 2e-3), at half its time. ``None``
    when the spectrum falls below that (a nearly low-rank matrix): the caller uses ``gesdd``.
    """
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

"""The SVD of an image: exact or randomized, computed once, reused for every rank.

An image ``A`` (one matrix per channel) is factored as ``A = U diag(s) Vt``.
Its best rank-``k`` approximation in the Frobenius norm keeps the ``k``
largest singular values (Eckart--Young), and the error of that approximation
follows from the singular values alone, so one decomposition answers every
question about every rank.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from svdimage._validation import as_image_array, check_rank, check_ranks

__all__ = ["ImageSVD", "decompose", "randomized_svd", "svd_flip"]

Method = Literal["auto", "exact", "randomized"]

#: ``method='auto'`` uses the exact SVD when the short side is at most this.
AUTO_EXACT_MAX_SIDE = 512
#: ... or when the requested rank is at least this fraction of the short side.
AUTO_EXACT_RANK_FRACTION = 0.25


def AUTO_OVERSAMPLES(k: int) -> int:  # noqa: N802 - a documented rule, named as a constant
    """``n_oversamples='auto'``: ``max(20, k // 4)``, and ``k // 2`` from k = 100 (measured,
    see benchmarks/README.md)."""
    return k // 2 if k >= 100 else max(20, k // 4)


def AUTO_N_ITER(k: int) -> int:  # noqa: N802
    """``n_iter='auto'``: 1 for k <= 10, 2 for k <= 25, 3 below 100, and 2 from 100, where
    the larger oversampling does the work of one power iteration for less (measured)."""
    if k >= 100:
        return 2
    return 1 if k <= 10 else 2 if k <= 25 else 3


class ImageSVD:
    """Truncated SVD of a gray or color image, one factorization per channel.

    Create it with :func:`decompose`. All arrays are read-only views.

    Attributes
    ----------
    U : (M, K) or (C, M, K) ndarray
        Left singular vectors (per channel for color images).
    s : (K,) or (C, K) ndarray
        Singular values, largest first.
    Vt : (K, N) or (C, K, N) ndarray
        Right singular vectors, as rows.
    shape : tuple of int
        Shape of the decomposed image, ``(M, N)`` or ``(M, N, C)``.
    max_rank : int
        Number of components held, ``K``. Equals ``min(M, N)`` for a
        complete SVD.
    method : str
        ``'exact'`` or ``'randomized'``: how the factors were computed.
    """

    def __init__(self, U: np.ndarray, s: np.ndarray, Vt: np.ndarray, *,
                 shape: tuple[int, ...], norm_sq: np.ndarray, method: str) -> None:
        # Internally always stacked by channel: U (C, M, K), s (C, K), Vt (C, K, N).
        for array in (U, s, Vt):
            array.flags.writeable = False
        self._U, self._s, self._Vt = U, s, Vt
        self.shape = tuple(int(n) for n in shape)
        self.method = method
        self._norm_sq = np.asarray(norm_sq, dtype=np.float64)

    # -- shapes and factors -------------------------------------------------
    @property
    def is_color(self) -> bool:
        """True for an ``(M, N, C)`` image."""
        return len(self.shape) == 3

    @property
    def n_channels(self) -> int:
        """Number of channels, 1 for gray."""
        return self._s.shape[0]

    @property
    def max_rank(self) -> int:
        """Number of components held."""
        return self._s.shape[1]

    @property
    def full_rank(self) -> int:
        """``min(M, N)``: the number of singular values of each channel."""
        return min(self.shape[0], self.shape[1])

    @property
    def is_complete(self) -> bool:
        """True when every singular value was computed."""
        return self.max_rank == self.full_rank

    @property
    def has_vectors(self) -> bool:
        """False for a spectrum-only decomposition (``compute_vectors=False``)."""
        return self._U.shape[2] == self.max_rank

    def _vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.has_vectors:
            raise ValueError("this decomposition holds singular values only "
                             "(compute_vectors=False); decompose with vectors to reconstruct.")
        return self._U, self._s, self._Vt

    @property
    def dtype(self) -> np.dtype:
        """Floating dtype of the factors (float32 for float32 images)."""
        return self._s.dtype

    @property
    def U(self) -> np.ndarray:
        return self._U if self.is_color else self._U[0]

    @property
    def s(self) -> np.ndarray:
        return self._s if self.is_color else self._s[0]

    @property
    def Vt(self) -> np.ndarray:
        return self._Vt if self.is_color else self._Vt[0]

    def __repr__(self) -> str:
        kind = "color" if self.is_color else "gray"
        return (f"ImageSVD(shape={self.shape}, {kind}, max_rank={self.max_rank}, "
                f"method={self.method!r}, dtype={self.dtype})")

    # -- reconstruction -----------------------------------------------------
    def reconstruct(self, rank: int | Sequence[int] | None = None, *,
                    clip: bool = True) -> np.ndarray:
        """Return the rank-``rank`` approximation ``U_k diag(s_k) Vt_k``.

        Parameters
        ----------
        rank : int or sequence of int, optional
            Number of components, 1 to ``max_rank`` (default: all); for color
            images also one rank per channel.
        clip : bool, optional
            Clip to [0, 1] for display (default). Use ``clip=False`` for error
            computations: the best low-rank approximation leaves that range.

        Returns
        -------
        image : (M, N) or (M, N, C) ndarray
            Same dtype as the factors.
        """
        U, s, Vt = self._vectors()
        if isinstance(rank, (Sequence, np.ndarray)):
            if len(rank) != self.n_channels:
                raise ValueError(f"rank needs one value per channel ({self.n_channels}); "
                                 f"got {len(rank)}.")
            ks = [self._check(r) for r in rank]
            planes = np.stack([(U[c, :, :k] * s[c, :k]) @ Vt[c, :k, :]
                               for c, k in enumerate(ks)])
            return self._finish(planes, clip=clip)
        k = self.max_rank if rank is None else self._check(rank)
        planes = np.matmul(U[:, :, :k] * s[:, None, :k], Vt[:, :k, :])
        return self._finish(planes, clip=clip)

    def iter_reconstructions(self, ranks: Iterable[int], *, clip: bool = True,
                             copy: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(rank, image)`` for increasing ranks, updating incrementally.

        Going from rank ``j`` to ``k`` adds ``U[:, j:k] diag(s[j:k]) Vt[j:k]`` to
        the running image in place (one BLAS ``gemm`` with ``beta=1``) instead
        of rebuilding it, so a sweep over ranks costs about one full
        reconstruction plus one pass over the pixels per rank.

        Parameters
        ----------
        ranks : iterable of int
            Visited in increasing order, each once.
        clip : bool, optional
            Clip the yielded images to [0, 1] (the running sum is not clipped).
        copy : bool, optional
            Yield a new array each time (default). With ``copy=False`` and
            ``clip=False`` the image is a read-only view of the running sum,
            valid until the next step: the fastest way to stream frames.
        """
        from scipy.linalg.blas import get_blas_funcs

        U, s, Vt = self._vectors()
        ordered = check_ranks(ranks, self.max_rank, shape=self.shape)
        top = ordered[-1]
        M, N = self.shape[:2]
        # Fortran order lets gemm update the running sum in place.
        left = [np.asfortranarray(U[c, :, :top] * s[c, :top]) for c in range(self.n_channels)]
        right = [np.asfortranarray(Vt[c, :top]) for c in range(self.n_channels)]
        acc = [np.zeros((M, N), dtype=self.dtype, order="F") for _ in range(self.n_channels)]
        gemm = get_blas_funcs("gemm", (acc[0],))
        previous = 0
        for k in ordered:
            for c in range(self.n_channels):
                acc[c] = gemm(1.0, left[c][:, previous:k], right[c][previous:k], beta=1.0,
                              c=acc[c], overwrite_c=True)
            previous = k
            image = np.stack(acc, axis=-1) if self.is_color else acc[0]
            if clip:
                image = np.clip(image, 0.0, 1.0)
            elif copy and not self.is_color:
                image = image.copy(order="K")
            elif not copy:
                image = image.view()
                image.flags.writeable = False
            yield k, image

    def _finish(self, planes: np.ndarray, *, clip: bool, copy: bool = False) -> np.ndarray:
        out = np.moveaxis(planes, 0, -1) if self.is_color else planes[0]
        if clip:
            return np.clip(out, 0.0, 1.0)
        return np.array(out, copy=True) if copy or self.is_color else out

    # -- errors and storage -------------------------------------------------
    @functools.cached_property
    def _tail_sq(self) -> np.ndarray:
        """(C, K + 1) float64: ``||A_c - A_c,k||_F^2`` for k = 0..K."""
        s2 = self._s.astype(np.float64) ** 2
        after = np.cumsum(s2[:, ::-1], axis=1)[:, ::-1]  # sum over i >= j
        tail = np.concatenate([after, np.zeros((self.n_channels, 1))], axis=1)
        if not self.is_complete:
            residual = np.maximum(self._norm_sq - s2.sum(axis=1), 0.0)
            tail += residual[:, None]
        return tail

    @functools.cached_property
    def _error_curve(self) -> np.ndarray:
        total = self._norm_sq.sum()
        if total == 0:
            return np.zeros(self.max_rank)
        curve = np.sqrt(self._tail_sq[:, 1:].sum(axis=0) / total)
        curve.flags.writeable = False
        return curve

    def relative_error(self, rank: int | None = None) -> float | np.ndarray:
        """Relative Frobenius error ``||A - A_k||_F / ||A||_F`` from the singular values.

        Parameters
        ----------
        rank : int, optional
            The rank ``k``. Without it, the errors for every rank
            ``1..max_rank`` are returned as an array (index ``k - 1``).

        Returns
        -------
        error : float or (max_rank,) ndarray of float64

        Notes
        -----
        By Eckart--Young, ``||A - A_k||_F^2 = sum_{i>k} s_i^2`` for a complete
        SVD, so no reconstruction is needed. For a truncated SVD the error is
        ``||A||_F^2 - sum_{i<=k} s_i^2``, which is exact for the returned
        approximation (an orthogonal projection of ``A``) and equals the
        optimum when the factors are exact. Color images combine all channels.

        References
        ----------
        .. [1] C. Eckart and G. Young, "The approximation of one matrix by
               another of lower rank", Psychometrika 1, 211-218 (1936).
               :doi:`10.1007/BF02288367`
        """
        if rank is None:
            return self._error_curve
        return float(self._error_curve[self._check(rank) - 1])

    def energy(self, rank: int | None = None) -> float | np.ndarray:
        """Fraction of ``||A||_F^2`` captured by the first ``rank`` components.

        Equals ``1 - relative_error(rank)**2``. Without ``rank``, an array for
        every rank ``1..max_rank``.
        """
        curve = 1.0 - self._error_curve**2
        if rank is None:
            return curve
        return float(curve[self._check(rank) - 1])

    def stored_values(self, rank: int) -> int:
        """Numbers kept by a rank-``rank`` approximation: ``C * k * (M + N + 1)``."""
        k = self._check(rank)
        return self.n_channels * k * (self.shape[0] + self.shape[1] + 1)

    # -- linear algebra -----------------------------------------------------
    def numerical_rank(self, tol: float | None = None) -> int | tuple[int, ...]:
        """Number of singular values above ``tol``: the numerical rank.

        Parameters
        ----------
        tol : float, optional
            Default ``s_max * max(M, N) * eps``, the rule of LAPACK-based
            ``numpy.linalg.matrix_rank``, with ``eps`` of the factors' dtype.

        Returns
        -------
        rank : int, or tuple of int (one per channel) for color images

        Raises
        ------
        ValueError
            If the SVD is truncated and every held singular value is above
            ``tol`` (the rank could be larger than ``max_rank``).
        """
        ranks = []
        eps = np.finfo(self.dtype).eps
        for s in self._s:
            limit = (s[0] * max(self.shape[:2]) * eps) if tol is None else tol
            count = int(np.count_nonzero(s > limit))
            if count == self.max_rank and not self.is_complete:
                raise ValueError(
                    "numerical_rank needs the complete SVD: all "
                    f"{self.max_rank} held singular values are above the tolerance. "
                    "Decompose with rank=None."
                )
            ranks.append(count)
        return ranks[0] if not self.is_color else tuple(ranks)

    def lstsq(self, b: ArrayLike, *, rank: int | None = None) -> np.ndarray:
        """Least-squares solution of ``A x = b`` via the truncated pseudo-inverse.

        Returns ``x = V_k diag(1 / s_k) U_k^T b``, the minimum-norm minimizer of
        ``||b - A_k x||_2``; with the numerical rank this is ``pinv(A) @ b``.

        Parameters
        ----------
        b : (M,) or (M, P) array_like
            Right-hand side(s).
        rank : int, optional
            Components used (default: :meth:`numerical_rank`).

        Returns
        -------
        x : (N,) or (N, P) ndarray

        Raises
        ------
        ValueError
            For color images, or when ``b`` has the wrong number of rows.
        """
        if self.is_color:
            raise ValueError("lstsq is defined for gray images (one matrix) only.")
        b = np.asarray(b)
        if b.ndim not in (1, 2) or b.shape[0] != self.shape[0]:
            raise ValueError(
                f"b must have shape ({self.shape[0]},) or ({self.shape[0]}, P); got {b.shape}."
            )
        k = self.numerical_rank() if rank is None else self._check(rank)
        assert isinstance(k, int)
        U, s, Vt = (factor[0] for factor in self._vectors())
        U, s, Vt = U[:, :k], s[:k], Vt[:k, :]
        coeffs = U.T @ b
        coeffs = coeffs / (s[:, None] if b.ndim == 2 else s)
        return Vt.T @ coeffs

    def _check(self, rank: object) -> int:
        return check_rank(rank, self.max_rank, shape=self.shape)


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
    side is at most ``AUTO_EXACT_MAX_SIDE`` (512) pixels, or when ``rank`` is
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
    _check_sketch_options(n_oversamples, n_iter, lapack_threads)
    if method not in ("auto", "exact", "randomized"):
        raise ValueError(
            f"method must be 'auto', 'exact' or 'randomized'; got {method!r}."
        )
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
    for plane in planes:
        plane = np.ascontiguousarray(plane)
        norms.append(_squared_norm(plane))
        if backend == "torch":
            U, s, Vt = _torch_svd(plane, k, chosen, n_oversamples, n_iter, generator)
        elif chosen == "exact":
            U, s, Vt = _exact_svd(plane, k)
        else:
            U, s, Vt = _randomized_svd(plane, k, n_oversamples=n_oversamples,
                                       n_iter=n_iter, rng=generator,
                                       lapack_threads=lapack_threads)
        Us.append(U)
        ss.append(s)
        Vts.append(Vt)
    return ImageSVD(np.stack(Us), np.stack(ss), np.stack(Vts), shape=array.shape,
                    norm_sq=np.array(norms), method=chosen)


def _spectrum_only(array: np.ndarray) -> ImageSVD:
    planes = [array] if array.ndim == 2 else [array[:, :, c] for c in range(array.shape[2])]
    values = [scipy.linalg.svd(np.ascontiguousarray(p), compute_uv=False, lapack_driver="gesdd",
                               check_finite=False) for p in planes]
    M, N = array.shape[:2]
    C = len(planes)
    return ImageSVD(np.zeros((C, M, 0), array.dtype), np.stack(values),
                    np.zeros((C, 0, N), array.dtype), shape=array.shape,
                    norm_sq=np.array([_squared_norm(np.ascontiguousarray(p)) for p in planes]),
                    method="exact")


def _squared_norm(plane: np.ndarray, *, block_rows: int = 64) -> float:
    """``||plane||_F^2`` accumulated in float64, a block of rows at a time.

    float32 sums lose digits on 12 MP images; converting the whole image to
    float64 would double its memory. Small blocks keep both small and stay in
    cache for BLAS's float64 dot product (12 ms at 12 MP, against 20 ms for
    einsum on 256-row blocks).
    """
    total = 0.0
    for start in range(0, plane.shape[0], block_rows):
        block = plane[start:start + block_rows].astype(np.float64).ravel()
        total += float(block @ block)
    return total


def _choose_method(method: str, shape: tuple[int, int], rank: int | None) -> str:
    if method != "auto":
        if rank is None or rank >= min(shape):
            return "exact"
        return method
    short = min(shape)
    if rank is None or short <= AUTO_EXACT_MAX_SIDE or rank >= AUTO_EXACT_RANK_FRACTION * short:
        return "exact"
    return "randomized"


def _torch_svd(plane: np.ndarray, k: int, method: str, n_oversamples: int | str,
               n_iter: int | str, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from svdimage import _torch

    if method == "exact":
        U, s, Vt = _torch.exact_svd(plane, k)
    else:
        p, q = _auto_sketch(k, n_oversamples, n_iter)
        U, s, Vt = _torch.randomized_svd(plane, k, width=min(k + p, min(plane.shape)),
                                         n_iter=q, rng=rng)
    U, Vt = svd_flip(U, Vt)
    return U, s, Vt


def _exact_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd",
                                check_finite=False)
    U, Vt = svd_flip(U[:, :k], Vt[:k])
    return U, s[:k].copy(), Vt


def svd_flip(U: np.ndarray, Vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fix singular-vector signs: the largest-magnitude entry of each ``U`` column > 0.

    ``U[:, j]`` and ``Vt[j]`` are both negated where needed, so ``U diag(s) Vt``
    is unchanged. As ``sklearn.utils.extmath.svd_flip`` with ``u_based_decision``.
    """
    rows = np.argmax(np.abs(U), axis=0)
    signs = np.sign(U[rows, np.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * signs, Vt * signs[:, None]


def randomized_svd(
    A: ArrayLike,
    rank: int,
    *,
    n_oversamples: int | Literal["auto"] = "auto",
    n_iter: int | Literal["auto"] = "auto",
    rng: int | np.random.Generator | None = None,
    lapack_threads: int | None = 1,
    normalizer: Literal["lu", "qr"] = "lu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomized truncated SVD of one matrix (Halko, Martinsson & Tropp).

    Parameters
    ----------
    A : (M, N) array_like
        The matrix; float32 stays float32.
    rank : int
        Number of singular triplets returned.
    n_oversamples : int or 'auto', optional
        Extra sketch columns, ``l = rank + n_oversamples``. ``'auto'`` is
        ``max(20, rank // 4)`` below rank 100 and ``rank // 2`` from 100.
    n_iter : int or 'auto', optional
        Power iterations ``q``. ``'auto'`` is 1 for ``rank <= 10``, 2 for
        ``rank <= 25``, 3 below 100 and 2 from 100.
    rng : int or numpy.random.Generator, optional
        Seed of the Gaussian sketch.
    lapack_threads : int or None, optional
        BLAS threads for the small factorizations (LU, QR, SVD of the
        sketch); the products with ``A`` use all threads. ``None`` leaves the
        thread count alone. 1 (default) was 1.5-4x faster for the
        tall-skinny factorizations on the 2-core machine we measured.
    normalizer : {'lu', 'qr'}, optional
        How the sketch is re-normalized between power iterations. LU (as
        scikit-learn) is several times cheaper than QR and as accurate here.

    Returns
    -------
    U : (M, rank) ndarray
    s : (rank,) ndarray
    Vt : (rank, N) ndarray

    Notes
    -----
    The sketch ``Y = (A A^T)^q A Omega`` is re-normalized by an LU
    factorization between passes (cheaper than QR, and as stable for this
    purpose), orthonormalized once by QR to ``Q``, and the small matrix
    ``Q^T A`` is factored exactly. The matrix is handled as tall (``M >= N``)
    through a transposed view, never a copy; extra memory is a few
    ``(M, l)`` blocks. The cost is ``2 q + 2`` passes of ``2 M N l`` flops.

    The ``'auto'`` rules keep the relative Frobenius error within 0.2 % of
    the optimum (the full SVD's) for ranks 10-200 on four 12 MP photos,
    with fewer passes than scikit-learn's default (``q = 7`` below
    ``0.1 * min(M, N)``); ``benchmarks/bench_svd.py`` measures both.

    References
    ----------
    .. [1] N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
           randomness: probabilistic algorithms for constructing approximate
           matrix decompositions", SIAM Review 53(2), 217-288 (2011).
           :arxiv:`0909.4061`
    """
    matrix = np.asarray(A)
    if matrix.ndim != 2:
        raise ValueError(f"A must be a 2-D matrix; got shape {matrix.shape}.")
    if not np.issubdtype(matrix.dtype, np.floating):
        matrix = matrix.astype(np.float64)
    k = check_rank(rank, min(matrix.shape))
    _check_sketch_options(n_oversamples, n_iter, lapack_threads)
    if normalizer not in _NORMALIZERS:
        raise ValueError(f"normalizer must be 'lu' or 'qr'; got {normalizer!r}.")
    return _randomized_svd(matrix, k, n_oversamples=n_oversamples, n_iter=n_iter,
                           rng=np.random.default_rng(rng), lapack_threads=lapack_threads,
                           normalizer=normalizer)


def _check_sketch_options(n_oversamples: object, n_iter: object,
                          lapack_threads: object) -> None:
    for name, value in (("n_oversamples", n_oversamples), ("n_iter", n_iter)):
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                or value < 0):
            raise ValueError(f"{name} must be 'auto' or an integer >= 0; got {value!r}.")
    if lapack_threads is not None and (not isinstance(lapack_threads, numbers.Integral)
                                       or isinstance(lapack_threads, bool)
                                       or lapack_threads < 1):
        raise ValueError(f"lapack_threads must be None or an integer >= 1; got {lapack_threads!r}.")


def _randomized_svd(A: np.ndarray, k: int, *, n_oversamples: int | str,
                    n_iter: int | str, rng: np.random.Generator,
                    lapack_threads: int | None = 1, normalizer: str = "lu",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker of :func:`randomized_svd`; trusts its arguments."""
    transpose = A.shape[0] < A.shape[1]
    if transpose:
        A = A.T  # a view: the matrix is handled as tall, never copied
    short = A.shape[1]
    p, q = _auto_sketch(k, n_oversamples, n_iter)
    width = min(k + p, short)
    normalize = _NORMALIZERS[normalizer]
    # GEMMs (the flops) run on all BLAS threads; the small factorizations of
    # the (M, width) sketch run on `lapack_threads`, which was faster here.
    Q = A @ rng.standard_normal((short, width), dtype=A.dtype)
    for _ in range(q):
        with _blas_threads(lapack_threads):
            L = normalize(Q)
        Q = A.T @ L
        with _blas_threads(lapack_threads):
            L = normalize(Q)
        Q = A @ L
    with _blas_threads(lapack_threads):
        Q = scipy.linalg.qr(Q, mode="economic", overwrite_a=True, check_finite=False)[0]
    B = Q.T @ A
    with _blas_threads(lapack_threads):
        Uh, s, Vt = scipy.linalg.svd(B, full_matrices=False, overwrite_a=True,
                                     lapack_driver="gesdd", check_finite=False)
    U = Q @ Uh[:, :k]
    s, Vt = s[:k].copy(), Vt[:k]
    if transpose:
        U, Vt = Vt.T, U.T
    U, Vt = svd_flip(U, Vt)
    return np.ascontiguousarray(U), s, np.ascontiguousarray(Vt)


_NORMALIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lu": lambda Y: scipy.linalg.lu(Y, permute_l=True, overwrite_a=True, check_finite=False)[0],
    "qr": lambda Y: scipy.linalg.qr(Y, mode="economic", overwrite_a=True, check_finite=False)[0],
}


def _auto_sketch(k: int, n_oversamples: int | str, n_iter: int | str) -> tuple[int, int]:
    """Resolve ``'auto'`` oversampling and power iterations (rules in randomized_svd)."""
    p = AUTO_OVERSAMPLES(k) if n_oversamples == "auto" else int(n_oversamples)
    q = AUTO_N_ITER(k) if n_iter == "auto" else int(n_iter)
    return p, q


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def _blas_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
    else:
        with _blas_controller().limit(limits=threads, user_api="blas"):
            yield

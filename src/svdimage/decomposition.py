"""The SVD of an image: exact or randomized, computed once, reused for every rank.

An image ``A`` (one matrix per channel) is factored as ``A = U diag(s) Vt``.
Its best rank-``k`` approximation in the Frobenius norm keeps the ``k``
largest singular values (Eckart--Young), and the error of that approximation
follows from the singular values alone, so one decomposition answers every
question about every rank.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from svdimage._linalg import RankAccumulator, squared_norm, svd_flip
from svdimage._validation import as_image_array, check_rank, check_ranks
from svdimage.randomized import auto_sketch, check_sketch_options, randomized_svd

__all__ = ["ImageSVD", "decompose"]

Method = Literal["auto", "exact", "randomized"]

#: ``method='auto'`` uses the exact SVD when the short side is at most this. Measured on
#: astronaut resized (benchmarks/README.md): the exact SVD is 1.2-2x faster at 64 px, the
#: randomized one 1.2-2.5x faster at 128 px and 4-28x at 256-512 px for ranks below a
#: quarter of the side (2x to 28x at rank 2-10), with errors within 0.04 % of the optimum.
AUTO_EXACT_MAX_SIDE = 96
#: ... or when the requested rank is at least this fraction of the short side.
AUTO_EXACT_RANK_FRACTION = 0.25


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

    def __init__(
        self,
        U: np.ndarray,
        s: np.ndarray,
        Vt: np.ndarray,
        *,
        shape: tuple[int, ...],
        norm_sq: np.ndarray,
        method: str,
    ) -> None:
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

    def stacked_factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, s, Vt)`` stacked by channel even for gray images: ``(C, M, K)``,
        ``(C, K)``, ``(C, K, N)``, read-only.

        Raises
        ------
        ValueError
            For a spectrum-only decomposition (``compute_vectors=False``).
        """
        if not self.has_vectors:
            raise ValueError(
                "this decomposition holds singular values only "
                "(compute_vectors=False); decompose with vectors to reconstruct."
            )
        return self._U, self._s, self._Vt

    @property
    def dtype(self) -> np.dtype:
        """Floating dtype of the factors (float32 for float32 images)."""
        return self._s.dtype

    @property
    def U(self) -> np.ndarray:  # noqa: N802 - the name of linear algebra
        return self._U if self.is_color else self._U[0]

    @property
    def s(self) -> np.ndarray:
        return self._s if self.is_color else self._s[0]

    @property
    def Vt(self) -> np.ndarray:  # noqa: N802
        return self._Vt if self.is_color else self._Vt[0]

    def __repr__(self) -> str:
        kind = "color" if self.is_color else "gray"
        return (
            f"ImageSVD(shape={self.shape}, {kind}, max_rank={self.max_rank}, "
            f"method={self.method!r}, dtype={self.dtype})"
        )

    # -- reconstruction -----------------------------------------------------
    def reconstruct(
        self, rank: int | Sequence[int] | None = None, *, clip: bool = True
    ) -> np.ndarray:
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
        U, s, Vt = self.stacked_factors()
        if isinstance(rank, (Sequence, np.ndarray)):
            if len(rank) != self.n_channels:
                raise ValueError(
                    f"rank needs one value per channel ({self.n_channels}); got {len(rank)}."
                )
            ks = [self._check(r) for r in rank]
            planes = np.stack([(U[c, :, :k] * s[c, :k]) @ Vt[c, :k, :] for c, k in enumerate(ks)])
            return self._finish(planes, clip=clip)
        k = self.max_rank if rank is None else self._check(rank)
        planes = np.matmul(U[:, :, :k] * s[:, None, :k], Vt[:, :k, :])
        return self._finish(planes, clip=clip)

    def iter_reconstructions(
        self, ranks: Iterable[int], *, clip: bool = True, copy: bool = True
    ) -> Iterator[tuple[int, np.ndarray]]:
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
        U, s, Vt = self.stacked_factors()
        ordered = check_ranks(ranks, self.max_rank, shape=self.shape)
        top = ordered[-1]
        sums = RankAccumulator(
            [U[c, :, :top] * s[c, :top] for c in range(self.n_channels)],
            [Vt[c, :top] for c in range(self.n_channels)],
        )
        for k in ordered:
            acc = sums.advance(k)
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
        U, s, Vt = (factor[0] for factor in self.stacked_factors())
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
    for plane in planes:
        plane = np.ascontiguousarray(plane)
        norms.append(squared_norm(plane))
        if backend == "torch":
            U, s, Vt = _torch_svd(plane, k, chosen, n_oversamples, n_iter, generator)
        elif chosen == "exact":
            U, s, Vt = _exact_svd(plane, k)
        else:
            U, s, Vt = randomized_svd(
                plane,
                k,
                n_oversamples=n_oversamples,
                n_iter=n_iter,
                rng=generator,
                lapack_threads=lapack_threads,
            )
        Us.append(U)
        ss.append(s)
        Vts.append(Vt)
    return ImageSVD(
        np.stack(Us),
        np.stack(ss),
        np.stack(Vts),
        shape=array.shape,
        norm_sq=np.array(norms),
        method=chosen,
    )


def _spectrum_only(array: np.ndarray) -> ImageSVD:
    planes = [array] if array.ndim == 2 else [array[:, :, c] for c in range(array.shape[2])]
    values = [
        scipy.linalg.svd(
            np.ascontiguousarray(p), compute_uv=False, lapack_driver="gesdd", check_finite=False
        )
        for p in planes
    ]
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
    n_oversamples: int | str,
    n_iter: int | str,
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
    U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    U, Vt = svd_flip(U[:, :k], Vt[:k])
    return U, s[:k].copy(), Vt

"""The result of a decomposition: :class:`ImageSVD`, one factorization per channel.

Everything that follows from the factors lives here: rank-k reconstructions
(one at a time, or incrementally over increasing ranks), the exact error and
energy of every rank from the singular values (Eckart--Young), storage
counts, the numerical rank and least squares through the pseudo-inverse.
:func:`svdimage.decompose` computes one.

The class is long for a reason: it is the one object a user holds, and each
method is short and documented; splitting it would scatter one concept.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from svdimage._linalg import RankAccumulator
from svdimage._validation import check_rank, check_ranks

__all__ = ["ImageSVD"]


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
        out_of_core: bool = False,
    ) -> None:
        # Internally always stacked by channel: U (C, M, K), s (C, K), Vt (C, K, N).
        for array in (U, s, Vt):
            array.flags.writeable = False
        self._U, self._s, self._Vt = U, s, Vt
        self.shape = tuple(int(n) for n in shape)
        self.method = method
        #: Decomposed from a chunked (Dask) image: ``reconstruct`` returns a Dask array.
        self.out_of_core = bool(out_of_core)
        self._norm_sq = np.asarray(norm_sq, dtype=np.float64)

    def _lazy_reconstruction(self, k: int, *, clip: bool, block: int = 1024) -> np.ndarray:
        """The rank-``k`` image as a Dask array of ``block``-sided blocks, each one
        ``U[rows] diag(s) Vt[:, cols]`` when it is read. The factors enter the graph as
        chunked arrays, so that a cluster's workers receive the rows and columns of their
        blocks, not the whole factors with every task."""
        import dask.array as da

        U, s, Vt = self.stacked_factors()
        left = da.from_array(U[:, :, :k] * s[:, None, :k], chunks=(1, block, k))
        right = da.from_array(np.ascontiguousarray(Vt[:, :k]), chunks=(1, k, block))
        planes = da.matmul(left, right)  # (C, M, N): one product per block, k not split
        out = (
            planes[0]
            if not self.is_color
            else da.moveaxis(planes, 0, -1).rechunk({2: self.n_channels})
        )
        return out.clip(0, 1) if clip else out

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

    @property
    def squared_norm(self) -> float:
        """``||A||_F^2`` of the decomposed image, all channels (exact, truncated or not)."""
        return float(self._norm_sq.sum())

    def truncated(self, rank: int) -> ImageSVD:
        """The same decomposition keeping its first ``rank`` components (views, no copy)."""
        k = self._check(rank)
        vectors = self.has_vectors
        return ImageSVD(
            self._U[:, :, :k] if vectors else self._U,
            self._s[:, :k],
            self._Vt[:, :k] if vectors else self._Vt,
            shape=self.shape,
            norm_sq=self._norm_sq,
            method=self.method,
            out_of_core=self.out_of_core,
        )

    def __repr__(self) -> str:
        """Shape, method, rank held, the largest singular value and the energy at a few ranks.

        >>> import numpy as np
        >>> from svdimage import decompose
        >>> decompose(np.eye(4, dtype=np.float32))
        ImageSVD(shape=(4, 4), gray, method='exact', rank 4 of 4, s1=1, energy k=1: 25%, k=4: 100%)
        """
        kind = "color" if self.is_color else "gray"
        ranks = [k for k in (1, 10, 100) if k < self.max_rank] + [self.max_rank]
        energy = np.atleast_1d(self.energy())
        kept = ", ".join(f"k={k}: {100 * float(energy[k - 1]):.4g}%" for k in ranks)
        return (
            f"ImageSVD(shape={self.shape}, {kind}, method={self.method!r}, "
            f"rank {self.max_rank} of {self.full_rank}, "
            f"s1={float(np.max(self._s[:, 0])):.4g}, energy {kept})"
        )

    def _repr_html_(self) -> str:
        """The interactive explorer (:func:`svdimage.explore`), inline in Jupyter.

        A complete SVD rebuilds the image; a truncated one its rank-K image, which
        the page then explores (call ``svdimage.explore(svd, image=...)`` to explore
        the original instead).
        """
        # The package's one upward import (documented in pyproject.toml's import-linter
        # contract and docs/architecture.md): Jupyter asks the result itself for its
        # display, and the explorer sits at the top of the layers.
        from svdimage.explorer import explore

        return explore(self, storage=False)._repr_html_()

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
            Same dtype as the factors; a Dask array, computed block by block
            when read, for a decomposition of a chunked image
            (:attr:`out_of_core`), so that the image is never whole in memory.
        """
        U, s, Vt = self.stacked_factors()
        if self.out_of_core:
            k = self.max_rank if rank is None else self._check(rank)
            return self._lazy_reconstruction(k, clip=clip)
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

    def reconstruct_rows(
        self, rank: int, start: int, stop: int, *, clip: bool = True
    ) -> np.ndarray:
        """Rows ``start:stop`` of :meth:`reconstruct`, built alone.

        For measuring or streaming an approximation a band at a time, so that
        memory holds the band, not the image. Equal to
        ``reconstruct(rank, clip=clip)[start:stop]`` up to the last bits of the
        matrix product.

        Returns
        -------
        rows : (stop - start, N) or (stop - start, N, C) ndarray
            For color, a view of channel planes.
        """
        U, s, Vt = self.stacked_factors()
        k = self._check(rank)
        if not 0 <= start <= stop <= self.shape[0]:
            raise ValueError(f"rows {start}:{stop} are not within the {self.shape[0]} rows.")
        planes = np.matmul(U[:, start:stop, :k] * s[:, None, :k], Vt[:, :k, :])
        if clip:
            np.clip(planes, 0.0, 1.0, out=planes)
        return np.moveaxis(planes, 0, -1) if self.is_color else planes[0]

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

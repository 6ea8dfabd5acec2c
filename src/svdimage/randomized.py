"""The randomized truncated SVD (Halko, Martinsson & Tropp), tuned for photos.

:func:`randomized_svd` factors one matrix; :func:`svdimage.decompose` calls it
per channel when ``method='randomized'`` (or ``'auto'`` picks it). The
``'auto'`` rules for oversampling and power iterations are measured in
``benchmarks/bench_svd.py`` (see benchmarks/README.md).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage._linalg import blas_threads, svd_flip
from svdimage._validation import check_rank

__all__ = [
    "randomized_svd",
    "randomized_svd_chunked",
    "chunked_plane_svds",
    "chunked_passes",
    "AUTO_OVERSAMPLES",
    "AUTO_N_ITER",
    "auto_sketch",
    "check_sketch_options",
]


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
    check_sketch_options(n_oversamples, n_iter, lapack_threads)
    if normalizer not in _NORMALIZERS:
        raise ValueError(f"normalizer must be 'lu' or 'qr'; got {normalizer!r}.")
    return _randomized_svd(
        matrix,
        k,
        n_oversamples=n_oversamples,
        n_iter=n_iter,
        rng=np.random.default_rng(rng),
        lapack_threads=lapack_threads,
        normalizer=normalizer,
    )


def check_sketch_options(n_oversamples: object, n_iter: object, lapack_threads: object) -> None:
    for name, value in (("n_oversamples", n_oversamples), ("n_iter", n_iter)):
        if value != "auto" and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0
        ):
            raise ValueError(f"{name} must be 'auto' or an integer >= 0; got {value!r}.")
    if lapack_threads is not None and (
        not isinstance(lapack_threads, numbers.Integral)
        or isinstance(lapack_threads, bool)
        or lapack_threads < 1
    ):
        raise ValueError(f"lapack_threads must be None or an integer >= 1; got {lapack_threads!r}.")


def _randomized_svd(
    A: np.ndarray,
    k: int,
    *,
    n_oversamples: int | str,
    n_iter: int | str,
    rng: np.random.Generator,
    lapack_threads: int | None = 1,
    normalizer: str = "lu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker of :func:`randomized_svd`; trusts its arguments."""
    import scipy.linalg  # heavy: loaded on first use (commands that only decode skip it)

    transpose = A.shape[0] < A.shape[1]
    if transpose:
        A = A.T  # a view: the matrix is handled as tall, never copied
    short = A.shape[1]
    p, q = auto_sketch(k, n_oversamples, n_iter)
    width = min(k + p, short)
    normalize = _NORMALIZERS[normalizer]
    # GEMMs (the flops) run on all BLAS threads; the small factorizations of
    # the (M, width) sketch run on `lapack_threads`, which was faster here.
    Q = A @ rng.standard_normal((short, width), dtype=A.dtype)
    for _ in range(q):
        with blas_threads(lapack_threads):
            L = normalize(Q)
        Q = A.T @ L
        with blas_threads(lapack_threads):
            L = normalize(Q)
        Q = A @ L
    with blas_threads(lapack_threads):
        Q = scipy.linalg.qr(Q, mode="economic", overwrite_a=True, check_finite=False)[0]
    B = Q.T @ A
    with blas_threads(lapack_threads):
        Uh, s, Vt = scipy.linalg.svd(
            B, full_matrices=False, overwrite_a=True, lapack_driver="gesdd", check_finite=False
        )
    U = Q @ Uh[:, :k]
    s, Vt = s[:k].copy(), Vt[:k]
    if transpose:
        U, Vt = Vt.T, U.T
    U, Vt = svd_flip(U, Vt)
    return np.ascontiguousarray(U), s, np.ascontiguousarray(Vt)


def randomized_svd_chunked(
    A: object,
    rank: int,
    *,
    n_oversamples: int | Literal["auto"] = "auto",
    n_iter: int | Literal["auto"] = "auto",
    rng: int | np.random.Generator | None = None,
    on_pass: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The randomized SVD of a matrix that need not fit in memory (a Dask array).

    The same sketch as :func:`randomized_svd` -- ``rank + oversamples`` random
    directions, ``n_iter`` power iterations, then the small SVD of ``Q^T A`` --
    expressed as passes over ``A``: each product with ``A`` or ``A^T`` reads the
    matrix once, chunk by chunk (``2 n_iter + 2`` passes), and only the thin
    factors (``M x width`` and ``N x width``, float64) are ever in memory. The
    sketches are orthonormalized by QR (Halko, Martinsson & Tropp [1]_,
    Algorithm 4.4); ``||A||_F^2`` is summed in the first pass.

    Parameters
    ----------
    A : (M, N) dask.array.Array
        The matrix, in chunks; its products are computed in float32 for float32
        and 8- or 16-bit matrices (as the in-memory path), else in float64.
    rank : int
    n_oversamples, n_iter : int or 'auto', optional
        As in :func:`randomized_svd`.
    rng : int or numpy.random.Generator, optional
    on_pass : callable, optional
        Called after each pass over ``A`` (for a progress display: there are
        :func:`chunked_passes` of them).

    Returns
    -------
    U : (M, rank) ndarray
    s : (rank,) ndarray
    Vt : (rank, N) ndarray
    squared_norm : float
        ``||A||_F^2``.

    References
    ----------
    .. [1] N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
           randomness: probabilistic algorithms for constructing approximate
           matrix decompositions", SIAM Review 53(2), 217-288 (2011).
           :doi:`10.1137/090771806`
    """
    U, s, Vt, squared = chunked_plane_svds(
        A[:, :, None],  # type: ignore[index]
        rank,
        n_oversamples=n_oversamples,
        n_iter=n_iter,
        rng=rng,
        on_pass=on_pass,
    )
    return U[0], s[0], Vt[0], float(squared[0])


def chunked_plane_svds(
    A: Any,
    rank: int,
    *,
    scale: float = 1.0,
    n_oversamples: int | Literal["auto"] = "auto",
    n_iter: int | Literal["auto"] = "auto",
    rng: int | np.random.Generator | None = None,
    on_pass: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`randomized_svd_chunked` of each plane ``A[:, :, c]`` of an ``(M, N, C)`` Dask
    array divided by ``scale``, all planes in the same passes (each chunk is read once a
    pass, whatever its channels): stacked ``U (C, M, k)``, ``s (C, k)``, ``Vt (C, k, N)``
    and each plane's ``||A_c||_F^2``. The random directions are drawn plane after plane
    from ``rng``, as :func:`randomized_svd_chunked` of one plane after another would."""
    import scipy.linalg

    M, N, C = (int(n) for n in A.shape)
    k = check_rank(rank, min(M, N))
    check_sketch_options(n_oversamples, n_iter, 1)
    generator = np.random.default_rng(rng)
    p, q = auto_sketch(k, n_oversamples, n_iter)
    width = min(k + p, min(M, N))
    # float32 products for float32 and 8/16-bit images, as the in-memory path computes them
    # (half the memory and time of float64); the thin factors and the small SVD in float64.
    dtype = np.dtype(A.dtype)
    work = np.float32 if dtype.itemsize <= 2 or dtype == np.float32 else np.float64
    # The products are taken with the values as stored (scaling them would cost another
    # chunk-sized temporary); the sketches' scale does not change their orthonormal bases,
    # and B = Q^T A is divided by ``scale`` at the end.
    passes = _ChunkPasses(A, work)

    def economic_q(Y: np.ndarray) -> np.ndarray:
        with blas_threads(1):  # thin: LAPACK's threads cost more than they give (measured)
            return scipy.linalg.qr(Y, mode="economic", overwrite_a=True, check_finite=False)[0]

    def done(result: Any) -> Any:
        if on_pass is not None:
            on_pass()
        return result

    omega = np.stack([generator.standard_normal((N, width)).astype(work) for _ in range(C)])
    Y, norms = done(passes.right(omega, norms=True))  # ||A_c||_F^2 in the same pass
    squared = norms / scale**2
    for _ in range(q):
        Z = done(passes.left(np.stack([economic_q(y) for y in Y]).astype(work)))
        Y, _ = done(passes.right(np.stack([economic_q(z) for z in Z]).astype(work)))
    Qs = [economic_q(y) for y in Y]
    Bs = done(passes.left(np.stack(Qs).astype(work)))  # (Q^T A)^T per plane, (N, width)
    Us, ss, Vts = [], [], []
    for Q, B in zip(Qs, Bs):
        with blas_threads(1):
            Uh, s, Vt = scipy.linalg.svd(
                B.T.astype(np.float64) / scale,
                full_matrices=False,
                lapack_driver="gesdd",
                check_finite=False,
            )
        U, Vt = svd_flip(Q @ Uh[:, :k], Vt[:k])
        Us.append(np.ascontiguousarray(U))
        ss.append(s[:k].copy())
        Vts.append(np.ascontiguousarray(Vt))
    return np.stack(Us), np.stack(ss), np.stack(Vts), squared


class _ChunkPasses:
    """The products of an ``(M, N, C)`` Dask array's planes with thin matrices, one task
    per chunk: each task reads its chunk once and returns its small share of every plane's
    product (and of the squared norms), which are summed band by band as they come. The
    chunk is freed as soon as its task ends, so a pass holds a few chunks, never the image
    (products written as Dask matmuls held every chunk until the last plane's product had
    used it: memory grew with the image)."""

    def __init__(self, A: Any, work: type) -> None:
        self.blocks = A.to_delayed().reshape(A.numblocks[0], A.numblocks[1])
        self.rows = np.cumsum([0, *A.chunks[0]]).tolist()
        self.cols = np.cumsum([0, *A.chunks[1]]).tolist()
        self.shape = tuple(int(n) for n in A.shape)
        self.work = work

    def right(self, thin: np.ndarray, *, norms: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``A_c @ thin[c]`` for every plane ``c`` (``thin`` is ``(C, N, w)``), and the planes'
        squared norms (float64) when ``norms``."""
        from dask.base import compute
        from dask.delayed import delayed

        pieces = [delayed(np.ascontiguousarray(thin[:, a:b]), pure=True)
                  for a, b in zip(self.cols[:-1], self.cols[1:])]  # fmt: skip
        rows = [
            _tree_sum([
                delayed(_right_share)(self.blocks[i, j], pieces[j], self.work, norms)
                for j in range(len(pieces))
            ])
            for i in range(len(self.rows) - 1)
        ]  # fmt: skip
        done = compute(*rows)
        out = np.concatenate([d[0] for d in done], axis=1)
        return out, np.sum([d[1] for d in done], axis=0)

    def left(self, thin: np.ndarray) -> np.ndarray:
        """``A_c^T @ thin[c]`` for every plane ``c`` (``thin`` is ``(C, M, w)``)."""
        from dask.base import compute
        from dask.delayed import delayed

        pieces = [delayed(np.ascontiguousarray(thin[:, a:b]), pure=True)
                  for a, b in zip(self.rows[:-1], self.rows[1:])]  # fmt: skip
        cols = [
            _tree_sum([
                delayed(_left_share)(self.blocks[i, j], pieces[i], self.work)
                for i in range(len(pieces))
            ])
            for j in range(len(self.cols) - 1)
        ]  # fmt: skip
        return np.concatenate([d[0] for d in compute(*cols)], axis=1)


def _planes_of(block: np.ndarray, work: type) -> list[np.ndarray]:
    return [np.asarray(block[:, :, c], dtype=work) for c in range(block.shape[2])]


def _right_share(
    block: np.ndarray, thin: np.ndarray, work: type, norms: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's share of ``A_c @ thin[c]`` (its rows, summed over its columns), and of
    the squared norms."""
    planes = _planes_of(block, work)
    share = np.stack([plane @ thin[c] for c, plane in enumerate(planes)])
    squares = np.zeros(len(planes))
    if norms:
        squares = np.array([np.sum(np.square(p, dtype=np.float64)) for p in planes])
    return share, squares


def _left_share(block: np.ndarray, thin: np.ndarray, work: type) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's share of ``A_c^T @ thin[c]`` (its columns, summed over its rows)."""
    planes = _planes_of(block, work)
    return np.stack([plane.T @ thin[c] for c, plane in enumerate(planes)]), np.zeros(0)


def _tree_sum(shares: list[Any]) -> Any:
    """The sum of delayed shares, added in pairs (a tree), so that each pair is added as
    soon as both are computed: a sum over the 200 bands of a gigapixel image holds a few
    shares at a time, not all 200 (as a single sum of a list would, its argument computed
    whole first)."""
    from dask.delayed import delayed

    while len(shares) > 1:
        paired = [delayed(_added)(a, b) for a, b in zip(shares[::2], shares[1::2])]
        shares = paired + ([shares[-1]] if len(shares) % 2 else [])
    return shares[0]


def _added(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two shares (products and squares) added, in the order given."""
    return a[0] + b[0], a[1] + b[1]


def chunked_passes(rank: int, n_iter: int | Literal["auto"] = "auto") -> int:
    """Passes :func:`randomized_svd_chunked` makes over its matrix: ``2 n_iter + 2``."""
    return 2 * auto_sketch(rank, "auto", n_iter)[1] + 2


def _lu_normalize(Y: np.ndarray) -> np.ndarray:
    import scipy.linalg

    return scipy.linalg.lu(Y, permute_l=True, overwrite_a=True, check_finite=False)[0]


def _qr_normalize(Y: np.ndarray) -> np.ndarray:
    import scipy.linalg

    return scipy.linalg.qr(Y, mode="economic", overwrite_a=True, check_finite=False)[0]


_NORMALIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lu": _lu_normalize,
    "qr": _qr_normalize,
}


def auto_sketch(k: int, n_oversamples: int | str, n_iter: int | str) -> tuple[int, int]:
    """Resolve ``'auto'`` oversampling and power iterations (rules in randomized_svd)."""
    p = AUTO_OVERSAMPLES(k) if n_oversamples == "auto" else int(n_oversamples)
    q = AUTO_N_ITER(k) if n_iter == "auto" else int(n_iter)
    return p, q

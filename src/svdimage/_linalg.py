"""Small linear-algebra helpers shared inside the package (not public API).

* :func:`svd_flip`: the one singular-vector sign rule, for single and stacked
  factorizations (the decomposition and the codec's tiles use it);
* :class:`RankAccumulator`: ``sum_{i<k} left[:, i] right[i]`` grown in place, one
  BLAS ``gemm`` per step (rank sweeps and animation frames use it);
* :func:`squared_norm`: ``||A||_F^2`` in float64 without a float64 copy;
* :func:`blas_threads`: a context that limits BLAS threads;
* :func:`one_core`: a context that keeps everything (BLAS and the package's own
  thread pools) on one core: a batch worker's share of the machine;
* :func:`map_on_cores`: a function over items on every core, one BLAS thread each;
* :func:`row_blocks`: slices of an array's rows, so that temporaries stay small.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = [
    "svd_flip",
    "RankAccumulator",
    "squared_norm",
    "blas_threads",
    "one_core",
    "pool_threads",
    "map_on_cores",
    "row_blocks",
]


def svd_flip(U: np.ndarray, Vt: np.ndarray, *, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fix singular-vector signs: the largest-magnitude entry of each ``U`` column > 0.

    ``U[..., :, j]`` and ``Vt[..., j, :]`` are both negated where needed, so
    ``U diag(s) Vt`` is unchanged. Works on one factorization ``(M, K)``,
    ``(K, N)`` or a stack ``(T, M, K)``, ``(T, K, N)``. As
    ``sklearn.utils.extmath.svd_flip`` with ``u_based_decision``; ties go to
    the first entry. With ``copy=False``, ``U`` and ``Vt`` (writeable arrays
    the caller owns) are flipped in place and returned.
    """
    rows = np.argmax(np.abs(U), axis=-2)
    signs = np.take_along_axis(U, rows[..., None, :], axis=-2)[..., 0, :]
    signs = np.sign(signs)
    signs[signs == 0] = 1
    if not copy:
        U *= signs[..., None, :]
        Vt *= signs[..., :, None]
        return U, Vt
    return U * signs[..., None, :], Vt * signs[..., :, None]


class RankAccumulator:
    """Running sums ``left[c][:, :k] @ right[c][:k]``, one per channel, grown in place.

    Going from rank ``j`` to ``k`` adds ``left[:, j:k] @ right[j:k]`` with one
    BLAS ``gemm`` (``beta=1``) on a Fortran-ordered sum, so a sweep over ranks
    costs about one full product plus one pass over the output per step.

    Parameters
    ----------
    left : sequence of (M, K) ndarray
        Per channel, singular values already folded in.
    right : sequence of (K, N) ndarray
        Per channel.
    """

    def __init__(self, left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> None:
        from scipy.linalg.blas import get_blas_funcs

        self._left = [np.asfortranarray(a) for a in left]
        self._right = [np.asfortranarray(b) for b in right]
        dtype = np.result_type(self._left[0], self._right[0])
        shape = (self._left[0].shape[0], self._right[0].shape[1])
        self.sums = [np.zeros(shape, dtype=dtype, order="F") for _ in self._left]
        self._gemm: Any = get_blas_funcs("gemm", (self.sums[0],))
        self.rank = 0

    def advance(self, rank: int) -> list[np.ndarray]:
        """Grow the sums to ``rank`` (>= the current rank); return them (not copies)."""
        for c, total in enumerate(self.sums):
            self.sums[c] = self._gemm(
                1.0,
                self._left[c][:, self.rank : rank],
                self._right[c][self.rank : rank],
                beta=1.0,
                c=total,
                overwrite_c=True,
            )
        self.rank = rank
        return self.sums


def squared_norm(plane: np.ndarray, *, block_rows: int = 64) -> float:
    """``||plane||_F^2`` accumulated in float64, a block of rows at a time.

    float32 sums lose digits on 12 MP images; converting the whole image to
    float64 would double its memory. Small blocks keep both small and stay in
    cache for BLAS's float64 dot product (12 ms at 12 MP, against 20 ms for
    einsum on 256-row blocks).
    """
    total = 0.0
    for start in range(0, plane.shape[0], block_rows):
        block = plane[start : start + block_rows].astype(np.float64).ravel()
        total += float(block @ block)
    return total


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Limit BLAS to ``threads`` threads inside the block (``None``: leave it alone)."""
    if threads is None:
        yield
    else:
        with _blas_controller().limit(limits=threads, user_api="blas"):
            yield


_ONE_CORE: contextvars.ContextVar[bool] = contextvars.ContextVar("svdimage_one_core", default=False)


def pool_threads(limit: int = 8) -> int:
    """Threads for the package's own pools: the cores (at most ``limit``); 1 in :func:`one_core`."""
    return 1 if _ONE_CORE.get() else min(os.cpu_count() or 1, limit)


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Run the block on one core: one BLAS thread, and the package's pools single-threaded."""
    token = _ONE_CORE.set(True)
    try:
        with blas_threads(1):
            yield
    finally:
        _ONE_CORE.reset(token)


def map_on_cores(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``[function(item) for item in items]``, the items spread over the package's threads
    (:func:`pool_threads`), with BLAS on one thread meanwhile: NumPy releases the GIL, and
    BLAS's own threads, idling between small products, would compete with them."""
    items = list(items)
    workers = min(pool_threads(), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with blas_threads(1), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def row_blocks(array: np.ndarray, elements: int) -> Iterator[slice]:
    """Slices of ``array``'s first axis, each about ``elements`` elements (a row at least):
    for working on an image a block of rows at a time, with temporaries of a block."""
    rows = max(1, elements // max(1, array[:1].size))
    for first in range(0, array.shape[0], rows):
        yield slice(first, first + rows)

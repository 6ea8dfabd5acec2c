"""The SVD of an image: exact or randomized, computed once, reused for every rank.

An image ``A`` (one matrix per channel) is factored as ``A = U diag(s) Vt``.
Its best rank-``k`` approximation in the Frobenius norm keeps the ``k``
largest singular values (Eckart--Young), and the error of that approximation
follows from the singular values alone, so one decomposition answers every
question about every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, _torch
from svdimage._linalg import squared_norm, svd_flip
from svdimage._validation import as_image_array, check_rank, is_chunked
from svdimage.image_svd import ImageSVD
from svdimage.randomized import (
    auto_sketch,
    check_sketch_options,
    chunked_passes,
    chunked_plane_svds,
    randomized_svd,
)
from svdimage.svd_kernels import (
    AUTO_EXACT_RANK_FRACTION,
    GRAM_MAX_RANK_FRACTION,
    choose_method,
    exact_svd,
)

__all__ = ["decompose", "decompose_until", "FULL_SPECTRUM_MAX_SIDE"]

Method = Literal["auto", "exact", "randomized"]

#: :func:`decompose_until` computes the complete SVD when the short side is at most this.
#: Measured (photo, 99.9 % energy): the complete SVD is faster up to 512 px and as fast at
#: 768 px; from 1000 px on the randomized one wins, by 5-10x at 3000 px.
FULL_SPECTRUM_MAX_SIDE = 768


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
    if is_chunked(image):
        return _decompose_chunked(image, rank, method, n_oversamples, n_iter, rng, backend)
    array = as_image_array(image)
    check_sketch_options(n_oversamples, n_iter, lapack_threads)
    if method not in ("auto", "exact", "randomized"):
        raise ValueError(f"method must be 'auto', 'exact' or 'randomized'; got {method!r}.")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch'; got {backend!r}.")
    if backend == "torch":
        _torch.import_torch()
    M, N = array.shape[:2]
    full = min(M, N)
    k = full if rank is None else check_rank(rank, full, shape=array.shape)
    if not compute_vectors:
        if rank is not None:
            raise ValueError("compute_vectors=False computes the whole spectrum: leave rank=None.")
        return _spectrum_only(array)
    chosen = choose_method(method, (M, N), None if rank is None else k)
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


def _decompose_chunked(
    image: Any,
    rank: int | None,
    method: str,
    n_oversamples: int | Literal["auto"],
    n_iter: int | Literal["auto"],
    rng: int | np.random.Generator | None,
    backend: str,
) -> ImageSVD:
    """:func:`decompose` of a Dask array: the randomized SVD in passes over its chunks,
    every channel in the same passes (:func:`svdimage.randomized.chunked_plane_svds`)."""
    if rank is None:
        raise ValueError(
            "a chunked (Dask) image needs rank=K: its truncated SVD streams over the image, "
            "its complete SVD would need all of it in memory."
        )
    if method == "exact" or backend != "numpy":
        raise ValueError("a chunked (Dask) image is decomposed by the randomized method only.")
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 3 and shape[2] == 1:
        image, shape = image[:, :, 0], shape[:2]
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
        raise ValueError(f"image must have shape (M, N) or (M, N, 3); got shape {shape}.")
    M, N = shape[:2]
    if M < 2 or N < 2:
        raise ValueError(f"image must be at least 2x2 pixels; got {N}x{M}.")
    k = check_rank(rank, min(M, N), shape=shape)
    dtype = np.dtype(image.dtype)
    if dtype.kind == "b" or np.issubdtype(dtype, np.integer):
        if np.issubdtype(dtype, np.signedinteger):
            raise ValueError(f"image has signed integer dtype {dtype}; convert it first.")
        scale = 1.0 if dtype.kind == "b" else float(np.iinfo(dtype).max)
        out_dtype: np.dtype[Any] = np.dtype(np.float64)
    else:
        scale, out_dtype = 1.0, np.dtype(np.float32 if dtype == np.float32 else np.float64)
    planes = image[:, :, None] if len(shape) == 2 else image
    passes = chunked_passes(k, n_iter)
    with _progress.task(
        f"rank-{k} SVD of {N}x{M}, out of core", passes, unit="passes over the image"
    ) as step:
        U, s, Vt, norms = chunked_plane_svds(
            planes,
            k,
            scale=scale,
            n_oversamples=n_oversamples,
            n_iter=n_iter,
            rng=rng,
            on_pass=step.advance,
        )
    return ImageSVD(
        U.astype(out_dtype),
        s.astype(out_dtype),
        Vt.astype(out_dtype),
        shape=shape,
        norm_sq=norms,
        method="randomized",
        out_of_core=True,
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
        return exact_svd(plane, k)
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
        computed so far (:func:`svdimage.ranks.selection.extrapolated_rank`);
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
    if is_chunked(image):
        return _chunked_until(image, enough, start, sketch, growth, rng, propose)
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


#: The largest rank :func:`decompose_until` computes for an image read out of core: the
#: rank-k factors of a 100,000-pixel-square image hold 160 MB at rank 100, and every try is
#: a new set of passes over the image.
OUT_OF_CORE_MAX_RANK = 2000
#: The first ``K`` of :func:`decompose_until` out of core, at least: fewer, wider tries.
OUT_OF_CORE_START = 100


def _chunked_until(
    image: Any,
    enough: Callable[[ImageSVD], bool],
    start: int,
    sketch: int,
    growth: int,
    rng: int | np.random.Generator | None,
    propose: Callable[[ImageSVD], int | None] | None,
) -> ImageSVD:
    """:func:`decompose_until` of a Dask image: randomized SVDs in passes over it, growing
    ``K`` up to :data:`OUT_OF_CORE_MAX_RANK` (the exact and complete SVDs would need the
    image in memory); past it, the request is refused."""
    full = min(int(n) for n in image.shape[:2])
    cap = min(OUT_OF_CORE_MAX_RANK, full)
    generator = np.random.default_rng(rng)
    k = max(1, min(max(start, OUT_OF_CORE_START), cap))  # each try is a read of the image
    while True:
        width = min(sketch * k, full)
        svd = decompose(image, rank=width, rng=generator).truncated(min(k, width))
        if enough(svd):
            return svd
        if k >= cap:
            raise ValueError(
                f"no rank up to {k} answers this for an image read out of core (its SVD "
                f"stops at rank {cap}, the factors' memory); ask for less."
            )
        proposed = None if propose is None else propose(svd)
        k = min(cap, growth * k if proposed is None or proposed <= k else int(proposed))


def _spectrum_only(array: np.ndarray) -> ImageSVD:
    import scipy.linalg

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


def _torch_svd(
    plane: np.ndarray,
    k: int,
    method: str,
    n_oversamples: int | Literal["auto"],
    n_iter: int | Literal["auto"],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if method == "exact":
        U, s, Vt = _torch.exact_svd(plane, k)
    else:
        p, q = auto_sketch(k, n_oversamples, n_iter)
        U, s, Vt = _torch.randomized_svd(
            plane, k, width=min(k + p, min(plane.shape)), n_iter=q, rng=rng
        )
    U, Vt = svd_flip(U, Vt)
    return U, s, Vt

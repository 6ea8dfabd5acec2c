"""What a rank costs to store: float32 factors, or a real ``.svdz`` file.

:func:`factor_bytes` counts the factors' values; the codec's
:class:`~svdimage.codec.GlobalSizes` measures the files ``svdimage compress
--rank K --global`` writes, sharing its factorizations between ranks;
:func:`storage_rank` finds the largest rank a budget fits, in few real files.
:func:`svdimage.ranks.selection.rank_for_storage` asks these questions of a
decomposition.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress
from svdimage._deprecation import moved_names, renamed_argument
from svdimage._search import qualities_for_budgets
from svdimage.codec import GlobalSizes
from svdimage.image_svd import ImageSVD
from svdimage.ranks.displayed_quality import reference_image

__all__ = ["factor_bytes", "storage_rank", "svdz_bytes", "sizes_of"]


def storage_rank(
    shape: tuple[int, ...],
    *,
    ratio: float | None = None,
    max_bytes: int | None = None,
    bpp: float | None = None,
    bytes_per_value: int = 4,
    storage: Literal["values", "svdz"] = "values",
    sizes: Callable[[int], int] | None = None,
    bytes: int | None = None,
) -> int:
    """Largest rank of an image of ``shape`` whose storage fits a budget; no SVD needed.

    The budget and ``storage`` are those of
    :func:`svdimage.ranks.selection.rank_for_storage`. With
    ``storage='svdz'``, ``sizes(k)`` gives the file's bytes at rank ``k``
    (:class:`~svdimage.codec.GlobalSizes` of the image). Real files are measured where their
    fast estimates, scaled by the real/estimate ratio of the ranks measured,
    meet the budget, two neighbouring ranks at a time (see ``_svdz_rank``);
    any other ``sizes`` callable is searched by galloping (ranks 1, 16, 64,
    256, ...) until a file is too large, then by the codec's rate control
    inside the last step (a secant on log size). Either way the answer fits
    and the rank above it does not; sizes grow with the rank up to the
    entropy coder's noise (about 1 %), so a rank further up may fit again.
    """
    max_bytes = renamed_argument(
        max_bytes, bytes, new="max_bytes", old="bytes", function="storage_rank"
    )
    given = [
        name
        for name, v in (("ratio", ratio), ("max_bytes", max_bytes), ("bpp", bpp))
        if v is not None
    ]
    if len(given) != 1:
        raise ValueError(f"give exactly one of ratio, max_bytes or bpp; got {given or 'none'}.")
    if storage not in ("values", "svdz"):
        raise ValueError(f"storage must be 'values' or 'svdz'; got {storage!r}.")
    M, N = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    full = min(M, N)
    if ratio is not None:
        if not ratio > 0:
            raise ValueError(f"ratio must be positive; got {ratio}.")
        budget, target = M * N * channels / ratio, f"a ratio of {ratio:g} to raw 8-bit"
    elif max_bytes is not None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0; got {max_bytes}.")
        budget, target = float(max_bytes), f"{max_bytes:,} bytes"
    else:
        assert bpp is not None
        if not bpp > 0:
            raise ValueError(f"bpp must be positive; got {bpp}.")
        budget, target = bpp * M * N / 8, f"{bpp:g} bits per pixel"
    if storage == "values":
        per_rank = factor_bytes(shape, 1, bytes_per_value=bytes_per_value)
        k = min(int(budget // per_rank), full)
        if k < 1:
            raise ValueError(f"even rank 1 ({per_rank:,} bytes) does not fit {target}.")
        return k
    if sizes is None:
        raise ValueError("storage='svdz' needs the sizes of the image's files (codec.GlobalSizes).")
    if sizes(1) > budget:
        raise ValueError(f"even rank 1 ({sizes(1):,} bytes as .svdz) does not fit {target}.")
    if not isinstance(sizes, GlobalSizes):
        return _largest_fitting(sizes, budget, 1, full + 1)
    with _progress.task(f"searching the rank for {target} as .svdz", unit="files measured") as step:
        return _svdz_rank(sizes, budget, full, step=step)


def _largest_fitting(
    size: Callable[[int], int],
    budget: float,
    low: int,
    high: int,
    *,
    tolerance: float = 0.0,
) -> int:
    """The largest ``k`` in ``[low, high)`` with ``size(k) <= budget``, ``size(low)`` fitting
    or ``low`` returned: galloping by 4 from ``low`` (16 at least), then the codec's rate
    control inside the last step (a secant on log size; the answer's neighbour measured,
    or, with ``tolerance``, the first ``k`` that fits within that fraction)."""
    if size(low) > budget:
        return low
    known, top = {low: size(low)}, high - 1
    upper = min(max(4 * low, 16), top)
    while upper < top and size(upper) <= budget:
        known[upper] = size(upper)
        upper = min(4 * upper, top)
    known[upper] = size(upper)
    if known[upper] <= budget:
        return upper
    (k,) = qualities_for_budgets(
        size, [budget], lowest=low, highest=upper, known=known, tolerance=tolerance
    )
    return low if k is None else k


def _svdz_rank(
    sizes: GlobalSizes, budget: float, full: int, *, step: _progress.Task | None = None
) -> int:
    """The largest rank whose real file fits ``budget`` (rank 1's does), in few real files.

    A real file of a large rank needs its own factorization (one per power of two),
    an estimate (:meth:`GlobalSizes.estimate`) none. So the next ranks to
    measure are where the estimates, scaled by the real/estimate ratio (drawn
    through the ranks measured, linear in log rank), meet the budget, and the
    rank above it: both files at once (:meth:`GlobalSizes.many`). The ratio
    changes slowly with the rank, so that the second or third pair is usually
    the answer and its neighbour. A plain bisection takes over should that
    not narrow the bracket. ``step`` counts the real files measured.
    """
    low, high = 1, full + 1  # sizes(low) fits; high is past the end or known not to fit
    k, tries = min(64, full), 0
    ratios: dict[int, float] = {}
    while high - low > 1:
        if not low < k < high or tries >= 8:
            k = (low + high) // 2
        # The first rank only calibrates the estimates: no neighbour (it is 64, a power of
        # two, and its neighbour would need the next factorization).
        pair = [k, k + 1] if k + 1 < high and tries else [k]
        for rank, n in zip(pair, sizes.many(pair)):
            ratios[rank] = n / sizes.estimate(rank)
            if n <= budget:
                low = max(low, rank)
            else:
                high = min(high, rank)
        tries += 1
        if step is not None:
            step.advance(len(pair))
        if high - low <= 1:
            break
        guess = _largest_fitting(functools.partial(_predicted, sizes, ratios), budget, low, high)
        k = guess if guess > low else low + 1
    return low


def _predicted(sizes: GlobalSizes, ratios: dict[int, float], rank: int) -> int:
    """The estimate at ``rank`` scaled by the real/estimate ratio, linear in log rank between
    the ranks measured (constant beyond them)."""
    ranks = sorted(ratios)
    ratio = np.interp(math.log(rank), np.log(ranks), [ratios[r] for r in ranks])
    return round(sizes.estimate(rank) * float(ratio))


def factor_bytes(shape: tuple[int, ...], rank: int, *, bytes_per_value: int = 4) -> int:
    """Bytes of the factors of a rank-``rank`` SVD of an image of ``shape``:
    ``C * k * (M + N + 1) * bytes_per_value``."""
    M, N = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    return channels * int(rank) * (M + N + 1) * bytes_per_value


def svdz_bytes(
    svd: ImageSVD,
    rank: int,
    *,
    image: ArrayLike | None = None,
    sizes: GlobalSizes | None = None,
) -> int:
    """Bytes of a real ``.svdz`` file of the global rank-``rank`` SVD of the image.

    The honest storage of a rank, where float32 factors overstate it: the
    file ``codec.encode(image, rank=rank, tile=None)`` writes (``svdimage
    compress --rank K --global``), which keeps ``rank`` luma components with
    the coarsest quantizer step that still keeps the ``rank``-th (at most
    quality 75's step). Sizes therefore grow with the rank. Any rank of the
    image can be sized, not only those ``svd`` holds: the codec factors the
    image itself.

    Parameters
    ----------
    svd : ImageSVD
    rank : int
    image : array_like, optional
        The original; needed when ``svd`` is truncated.
    sizes : svdimage.codec.GlobalSizes, optional
        The image's sizes, to share the codec's factorizations between calls
        (a search and the table that explains it); see
        :class:`svdimage.ranks.selection.MeasurementCache`. Without it each
        call factors the image anew.
    """
    return (sizes if sizes is not None else sizes_of(svd, image))(rank)


def sizes_of(svd: ImageSVD, image: ArrayLike | None = None) -> GlobalSizes:
    """A new :class:`~svdimage.codec.GlobalSizes` of ``image`` (checked against ``svd``'s
    shape) or, without one, of a complete ``svd``'s own reconstruction."""
    return GlobalSizes(reference_image(svd, image))


# One name per concept, each exported from one place (the old name until 0.3, with a warning).
__getattr__ = moved_names(__name__, {"SvdzSizes": "svdimage.codec.GlobalSizes"}, removed_in="0.3")

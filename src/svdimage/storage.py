"""What a rank costs to store: float32 factors, or a real ``.svdz`` file.

:func:`factor_bytes` counts the factors' values; :class:`SvdzSizes` measures
the files ``svdimage compress --rank K --global`` writes, sharing the codec's
factorizations between ranks; :func:`storage_rank` finds the largest rank a
budget fits, in few real files. :func:`svdimage.rank_selection.rank_for_storage`
asks these questions of a decomposition.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress
from svdimage._linalg import map_on_cores
from svdimage._validation import as_image_array, check_rank
from svdimage.codec._rate import qualities_for_budgets
from svdimage.decomposition import ImageSVD
from svdimage.displayed_quality import reference_image

__all__ = [
    "factor_bytes",
    "storage_rank",
    "SvdzSizes",
    "svdz_bytes",
    "svdz_sizes",
    "shared_sizes",
]


def storage_rank(
    shape: tuple[int, ...],
    *,
    ratio: float | None = None,
    bytes: int | None = None,
    bpp: float | None = None,
    bytes_per_value: int = 4,
    storage: Literal["values", "svdz"] = "values",
    sizes: Callable[[int], int] | None = None,
) -> int:
    """Largest rank of an image of ``shape`` whose storage fits a budget; no SVD needed.

    The budget and ``storage`` are those of
    :func:`svdimage.rank_selection.rank_for_storage`. With
    ``storage='svdz'``, ``sizes(k)`` gives the file's bytes at rank ``k``
    (:func:`svdz_sizes` of the image). Real files are measured where their
    fast estimates, scaled by the real/estimate ratio of the ranks measured,
    meet the budget, two neighbouring ranks at a time (see ``_svdz_rank``);
    any other ``sizes`` callable is searched by galloping (ranks 1, 16, 64,
    256, ...) until a file is too large, then by the codec's rate control
    inside the last step (a secant on log size). Either way the answer fits
    and the rank above it does not; sizes grow with the rank up to the
    entropy coder's noise (about 1 %), so a rank further up may fit again.
    """
    given = [
        name for name, v in (("ratio", ratio), ("bytes", bytes), ("bpp", bpp)) if v is not None
    ]
    if len(given) != 1:
        raise ValueError(f"give exactly one of ratio, bytes or bpp; got {given or 'none'}.")
    if storage not in ("values", "svdz"):
        raise ValueError(f"storage must be 'values' or 'svdz'; got {storage!r}.")
    M, N = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    full = min(M, N)
    if ratio is not None:
        if not ratio > 0:
            raise ValueError(f"ratio must be positive; got {ratio}.")
        budget, target = M * N * channels / ratio, f"a ratio of {ratio:g} to raw 8-bit"
    elif bytes is not None:
        if bytes < 0:
            raise ValueError(f"bytes must be >= 0; got {bytes}.")
        budget, target = float(bytes), f"{bytes:,} bytes"
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
        raise ValueError("storage='svdz' needs the sizes of the image's files (svdz_sizes).")
    if sizes(1) > budget:
        raise ValueError(f"even rank 1 ({sizes(1):,} bytes as .svdz) does not fit {target}.")
    if not isinstance(sizes, SvdzSizes):
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
    sizes: SvdzSizes, budget: float, full: int, *, step: _progress.Task | None = None
) -> int:
    """The largest rank whose real file fits ``budget`` (rank 1's does), in few real files.

    Real files of large ranks take seconds of LZMA each, their estimates
    (:meth:`SvdzSizes.estimate`) a tenth of that. So the next ranks to
    measure are where the estimates, scaled by the real/estimate ratio (drawn
    through the ranks measured, linear in log rank), meet the budget, and the
    rank above it: both files at once (:meth:`SvdzSizes.many`). The ratio
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


def _predicted(sizes: SvdzSizes, ratios: dict[int, float], rank: int) -> int:
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


class SvdzSizes:
    """Bytes of the real global ``.svdz`` files of an image's ranks (:func:`svdz_bytes`),
    sharing the codec's work between ranks.

    The size at rank ``k`` is ``len(codec.encode(image, rank=k, tile=None))``,
    the file ``svdimage compress --rank k --global`` writes. The codec
    factors the image's own planes (YCbCr, chroma at half resolution) once
    per power of two of the rank (:func:`svdimage.codec._tiles.plane_factors`);
    each size then costs a quantization and the entropy coder. Sizes are the
    same whatever ranks were asked before.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
    """

    def __init__(self, image: ArrayLike) -> None:
        from svdimage.codec._tiles import Trials

        array = as_image_array(image)
        if array.ndim == 2:
            array = array.copy()  # the gray plane is kept: not the caller's (svdz_sizes)
        self.shape = array.shape
        self.full_rank = min(array.shape[:2])
        self._trials = Trials(array, max_rank=None, tile=None, color="ycbcr", chroma="420")
        self._sizes: dict[int, int] = {}
        self._estimates: dict[int, int] = {}

    def __call__(self, rank: int) -> int:
        """The file's bytes at ``rank``."""
        k = check_rank(rank, self.full_rank, shape=self.shape)
        if k not in self._sizes:
            self._sizes[k] = len(self._trials.at_rank(k))
        return self._sizes[k]

    def many(self, ranks: Sequence[int]) -> list[int]:
        """The files' bytes at several ranks, coded in parallel threads (LZMA releases the
        GIL): as fast as one on as many cores. The factorizations come first, here; each
        thread then quantizes and codes one file at a time, so that only the files in
        flight hold their symbols. The coding is one counted step (``coding N .svdz
        files``), advanced by each file's rank: the work of a file grows with it."""

        from svdimage.codec._entropy import compress_symbols
        from svdimage.codec._format import pack

        checked = [check_rank(k, self.full_rank, shape=self.shape) for k in ranks]
        todo = [k for k in dict.fromkeys(checked) if k not in self._sizes]
        trials = self._trials
        steps = [trials.step_for_rank(k) for k in todo]
        for k in todo:  # every plane's factors, computed (and cached) before the threads
            for index in range(len(trials.planes)):
                trials.factors(index, k)

        def size(job: tuple[int, float]) -> int:
            k, step = job
            header, symbols = trials.symbols_at(step, max_rank=k)
            n = len(pack(header, compress_symbols(symbols), version=(1, 1)))
            coding.advance(k)  # from a worker thread: the task holds its listener
            return n

        files = f"{len(todo)} .svdz file" + ("s" if len(todo) != 1 else "")
        with _progress.task(f"coding {files}", sum(todo), unit="components") as coding:
            for k, n in zip(todo, map_on_cores(size, list(zip(todo, steps)))):
                self._sizes[k] = n
        return [self._sizes[k] for k in checked]

    def estimate(self, rank: int) -> int:
        """About the file's bytes at ``rank``, ten times faster: the same symbols under
        LZMA's fastest preset (:func:`svdimage.codec._entropy.quick_size`), larger than
        the real size by a ratio that changes slowly with the rank."""
        from svdimage.codec._entropy import quick_size
        from svdimage.codec._format import pack

        k = check_rank(rank, self.full_rank, shape=self.shape)
        if k not in self._estimates:
            trials = self._trials
            header, symbols = trials.symbols_at(trials.step_for_rank(k), max_rank=k)
            self._estimates[k] = len(pack(header, b"", version=(1, 1))) + quick_size(symbols)
        return self._estimates[k]


def svdz_bytes(svd: ImageSVD, rank: int, *, image: ArrayLike | None = None) -> int:
    """Bytes of a real ``.svdz`` file of the global rank-``rank`` SVD of the image.

    The honest storage of a rank, where float32 factors overstate it: the
    file ``codec.encode(image, rank=rank, tile=None)`` writes (``svdimage
    compress --rank K --global``), which keeps ``rank`` luma components with
    the coarsest quantizer step that still keeps the ``rank``-th (at most
    quality 75's step). Sizes therefore grow with the rank. Any rank of the
    image can be sized, not only those ``svd`` holds: the codec factors the
    image itself.

    Calls for the same ``image`` object (or, without one, the same complete
    ``svd``) share one :class:`SvdzSizes` (:func:`svdz_sizes`), so a search
    and the table that explains it factor the planes once.

    See Also
    --------
    SvdzSizes : the sizes of several ranks, sharing the codec's factorizations.
    """
    return shared_sizes(svd, image)(rank)


def svdz_sizes(image: ArrayLike) -> SvdzSizes:
    """The :class:`SvdzSizes` of this very ``image`` object, made once and shared while it
    lives (the cache does not keep it alive; an object that cannot be weakly referenced,
    such as a list, gets a new one)."""
    return _held_sizes(image, lambda: SvdzSizes(image))


#: id(owner) -> (weak reference to the owner, its sizes): an image, or a complete SVD.
_SHARED_SIZES: dict[int, tuple[weakref.ref[object], SvdzSizes]] = {}


def _held_sizes(owner: object, make: Callable[[], SvdzSizes]) -> SvdzSizes:
    held = _SHARED_SIZES.get(id(owner))
    if held is not None and held[0]() is owner:
        return held[1]
    sizes = make()
    try:
        reference = weakref.ref(owner)
    except TypeError:
        return sizes
    _SHARED_SIZES[id(owner)] = (reference, sizes)
    weakref.finalize(owner, _SHARED_SIZES.pop, id(owner), None)
    return sizes


def shared_sizes(svd: ImageSVD, image: ArrayLike | None = None) -> SvdzSizes:
    """The :class:`SvdzSizes` of ``image`` (checked against ``svd``'s shape), or without
    one of a complete ``svd``'s own reconstruction, shared while that object lives (see
    :func:`svdz_sizes`): what :func:`svdz_bytes` and a storage budget's search measure."""
    if image is None:
        return _held_sizes(svd, lambda: SvdzSizes(reference_image(svd, None)))
    if np.shape(image) != svd.shape:
        reference_image(svd, image)  # says how the shapes differ
    return svdz_sizes(image)

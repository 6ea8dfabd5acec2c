"""Choosing a rank from a target: error, energy, PSNR, SSIM, storage, the knee.

Each ``rank_for_*`` function takes an :class:`~svdimage.decomposition.ImageSVD`
and returns the smallest rank whose approximation meets the target (for
storage budgets: the largest rank that fits), or raises ``ValueError`` saying
why no held rank does. PSNR and SSIM are those of the *displayed*
approximation (clipped to [0, 1]), the numbers ``svdimage sweep`` reports.

Denoising thresholds live in :mod:`svdimage.denoising`; criteria written as
text (``psnr=35``) and the recommendation table in :mod:`svdimage.criteria`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, metrics
from svdimage._linalg import map_on_cores
from svdimage._search import smallest_reaching, smallest_true
from svdimage._validation import as_image_array, check_rank
from svdimage.codec._rate import qualities_for_budgets
from svdimage.decomposition import ImageSVD

__all__ = [
    "DisplayedQuality",
    "rank_for_error",
    "rank_for_energy",
    "rank_for_psnr",
    "rank_for_ssim",
    "rank_for_storage",
    "rank_for_fraction",
    "fraction_rank",
    "knee_rank",
    "storage_rank",
    "factor_bytes",
    "svdz_bytes",
    "svdz_sizes",
    "SvdzSizes",
    "reference_image",
]


# -- from the singular values alone -------------------------------------------------
def rank_for_error(svd: ImageSVD, max_relative_error: float) -> int:
    """Smallest rank whose relative Frobenius error is at most ``max_relative_error``.

    The error is that of the unclipped approximation, from the singular values
    (:meth:`ImageSVD.relative_error`).
    """
    if not max_relative_error >= 0:
        raise ValueError(f"max_relative_error must be >= 0; got {max_relative_error}.")
    errors = np.asarray(svd.relative_error())
    return _first(
        errors <= max_relative_error * (1 + 1e-9),
        f"a relative error of {max_relative_error:.6g}",
        svd,
    )


def rank_for_energy(svd: ImageSVD, fraction: float) -> int:
    """Smallest rank keeping at least ``fraction`` of ``||A||_F^2``.

    Parameters
    ----------
    svd : ImageSVD
    fraction : float
        In (0, 1], e.g. 0.99 for 99 %.

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage import decompose
    >>> svd = decompose(np.diag([3.0, 2.0, 1.0]) / 3)
    >>> rank_for_energy(svd, 0.9)  # 9/14 < 0.9 <= 13/14
    2
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}.")
    energy = np.asarray(svd.energy())
    # Tolerate rounding: energy at full rank is 1 up to float error.
    return _first(energy >= fraction - 1e-12, f"{fraction:.6g} of the energy", svd)


def rank_for_fraction(svd: ImageSVD, percent: float) -> int:
    """``ceil(percent / 100 * min(M, N))``, at least 1: "k as a percentage of the short side"."""
    k = fraction_rank(svd.shape, percent)
    if k > svd.max_rank:
        raise ValueError(
            f"{percent:g} % of {svd.full_rank} is rank {k}, above the "
            f"{svd.max_rank} held; decompose with a larger rank."
        )
    return k


def fraction_rank(shape: tuple[int, ...], percent: float) -> int:
    """``ceil(percent / 100 * min(M, N))``, at least 1, for an image of ``shape``."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100]; got {percent}.")
    return max(1, math.ceil(percent / 100 * min(shape[:2]) - 1e-9))


def rank_for_storage(
    svd: ImageSVD,
    *,
    ratio: float | None = None,
    bytes: int | None = None,
    bpp: float | None = None,
    bytes_per_value: int = 4,
    storage: Literal["values", "svdz"] = "values",
    image: ArrayLike | None = None,
) -> int:
    """Largest rank whose factors fit a storage budget (exactly one of the three).

    The storage of a rank depends on the image's shape (and, for ``'svdz'``,
    on the codec's files of the image), not on the singular values, so the
    answer is searched over every rank (:func:`storage_rank`); it must be one
    that ``svd`` holds.

    Parameters
    ----------
    ratio : float, optional
        Minimum compression ratio against the raw 8-bit image (``M * N * C``
        bytes).
    bytes : int, optional
        Maximum size in bytes.
    bpp : float, optional
        Maximum bits per pixel (``8 * bytes / (M * N)``).
    bytes_per_value : int, optional
        With ``storage='values'``: 4 for float32 factors, 8 for float64.
    storage : {'values', 'svdz'}, optional
        ``'values'``: the factors take ``C * k * (M + N + 1) * bytes_per_value``
        bytes (:func:`factor_bytes`). ``'svdz'``: the size of the real global
        ``.svdz`` file of rank ``k`` (:func:`svdz_bytes`).
    image : array_like, optional
        The original, for ``'svdz'`` with a truncated SVD.

    Raises
    ------
    ValueError
        For a bad budget, one that even rank 1 does not fit, or an answer above
        the ranks ``svd`` holds.
    """
    sizes = None
    if storage == "svdz":
        sizes = _shared_sizes(svd, image)
    k = storage_rank(
        svd.shape,
        ratio=ratio,
        bytes=bytes,
        bpp=bpp,
        bytes_per_value=bytes_per_value,
        storage=storage,
        sizes=sizes,
    )
    if k > svd.max_rank:
        raise ValueError(
            f"the budget fits rank {k}, above the {svd.max_rank} held; "
            "decompose with a larger rank."
        )
    return k


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

    The budget and ``storage`` are those of :func:`rank_for_storage`. With
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
    return _svdz_rank(sizes, budget, full)


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


def _svdz_rank(sizes: SvdzSizes, budget: float, full: int) -> int:
    """The largest rank whose real file fits ``budget`` (rank 1's does), in few real files.

    Real files of large ranks take seconds of LZMA each, their estimates
    (:meth:`SvdzSizes.estimate`) a tenth of that. So the next ranks to
    measure are where the estimates, scaled by the real/estimate ratio (drawn
    through the ranks measured, linear in log rank), meet the budget, and the
    rank above it: both files at once (:meth:`SvdzSizes.many`). The ratio
    changes slowly with the rank, so that the second or third pair is usually
    the answer and its neighbour. A plain bisection takes over should that
    not narrow the bracket.
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
        """The files' bytes at several ranks, entropy-coded in parallel threads (LZMA
        releases the GIL): as fast as one on as many cores."""

        from svdimage.codec._entropy import compress_symbols
        from svdimage.codec._format import pack

        checked = [check_rank(k, self.full_rank, shape=self.shape) for k in ranks]
        todo = [k for k in dict.fromkeys(checked) if k not in self._sizes]
        trials = self._trials
        coded = [trials.symbols_at(trials.step_for_rank(k), max_rank=k) for k in todo]
        payloads = map_on_cores(compress_symbols, [symbols for _, symbols in coded])
        for k, (header, _), payload in zip(todo, coded, payloads):
            self._sizes[k] = len(pack(header, payload, version=(1, 1)))
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
    return _shared_sizes(svd, image)(rank)


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


def _shared_sizes(svd: ImageSVD, image: ArrayLike | None) -> SvdzSizes:
    """The sizes of ``image`` (checked against ``svd``), or of a complete ``svd``'s own
    reconstruction, shared while that object lives."""
    if image is None:
        return _held_sizes(svd, lambda: SvdzSizes(reference_image(svd, None)))
    if np.shape(image) != svd.shape:
        reference_image(svd, image)  # says how the shapes differ
    return svdz_sizes(image)


def knee_rank(svd: ImageSVD) -> int:
    """The elbow of the relative-error curve, by the Kneedle rule.

    Ranks and errors are scaled to [0, 1]; the knee is the rank whose point
    lies farthest below the chord from the first rank to the last, i.e. the
    maximum of ``(1 - x) - y`` (Satopaa et al., 2011). On a linear error axis
    this finds where adding ranks stops paying off quickly; it is a rule of
    thumb, not an optimum.

    References
    ----------
    .. [1] V. Satopaa, J. Albrecht, D. Irwin and B. Raghavan, "Finding a
           'Kneedle' in a haystack: detecting knee points in system behavior",
           ICDCS Workshops 2011. :doi:`10.1109/ICDCSW.2011.20`
    """
    errors = np.asarray(svd.relative_error(), dtype=np.float64)
    n = svd.full_rank
    # The curve ends at rank min(M, N), where the error is 0 (a complete SVD computes it).
    end = float(errors[-1]) if svd.is_complete else 0.0
    if n < 3 or errors[0] == end:
        return 1
    x = np.arange(svd.max_rank) / (n - 1)
    y = (errors - end) / (errors[0] - end)
    best = int(np.argmax((1.0 - x) - y)) + 1
    if not svd.is_complete and not _knee_is_certain(svd, errors, n):
        raise ValueError(
            f"the knee may lie beyond rank {svd.max_rank} (the SVD is truncated: decompose "
            "with a larger rank)."
        )
    return best


def _knee_is_certain(svd: ImageSVD, errors: np.ndarray, n: int) -> bool:
    """Whether no rank beyond a truncated SVD's last, ``K``, can score higher.

    With ``e`` the relative error, ``s_K^2`` the sum over channels of the
    ``K``-th squared singular values and ``j > K``: ``e(K)^2 - e(j)^2 <= (j - K)
    s_K^2 / ||A||^2`` (no later singular value is larger), so ``e(K) - e(j) <=
    (j - K) s_K^2 / (||A||^2 e(K))`` and the score ``1 - (j-1)/(n-1) - e(j)/e(1)``
    gains at most ``(j - K) (s_K^2 / (||A||^2 e(K) e(1)) - 1/(n-1))`` on rank
    ``K``'s: nothing when the bracket is not positive.
    """
    K = svd.max_rank
    tail = float(np.sum(np.atleast_2d(svd.s)[:, K - 1].astype(np.float64) ** 2))
    total = svd.squared_norm
    if errors[K - 1] == 0:
        return True
    return tail / (total * errors[K - 1] * errors[0]) <= 1.0 / (n - 1)


# -- from the displayed image (PSNR, SSIM) -------------------------------------------
class DisplayedQuality:
    """PSNR and SSIM of an SVD's displayed rank-``k`` approximations, each measured once.

    The approximations are clipped to [0, 1], as shown and saved. One object
    answers several targets from shared measurements (the recommendation table
    asks for three PSNRs and two SSIMs, then shows both at every chosen rank),
    and the original's SSIM statistics are computed once. An approximation is
    built and measured ``BAND`` rows at a time, never whole, and measuring
    its SSIM measures its PSNR too.

    Parameters
    ----------
    svd : ImageSVD
    image : array_like, optional
        The original; needed only when the SVD is truncated (a complete SVD
        rebuilds it).
    ssim_reference : metrics.SSIMReference, optional
        The original's SSIM statistics, if already computed (for another
        decomposition of the same image).
    keep_statistics : bool, optional
        Hold the original's SSIM statistics (twice the image's memory) between
        SSIM measurements, so that each filters only the approximation. Off by
        default: recomputing them costs about a fifth more per measurement
        (0.1 s on a 12 MP colour photo), which one search of a few measurements
        does not repay. Settable on the object (:func:`svdimage.criteria.recommend`
        turns it on for its many measurements).

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage.decomposition import decompose
    >>> image = np.random.default_rng(0).random((64, 48))
    >>> quality = DisplayedQuality(decompose(image))
    >>> k, m = quality.rank_for_psnr(30), quality.rank_for_ssim(0.9)
    >>> quality.psnr(k) >= 30 > quality.psnr(k - 1), quality.ssim(m) >= 0.9 > quality.ssim(m - 1)
    (True, True)
    """

    #: Rows of an approximation built at a time: a few MiB of a 12 MP photo.
    BAND = 128

    def __init__(
        self,
        svd: ImageSVD,
        image: ArrayLike | None = None,
        *,
        ssim_reference: metrics.SSIMReference | None = None,
        keep_statistics: bool = False,
    ) -> None:
        self.svd = svd
        self.reference = reference_image(svd, image)
        self.keep_statistics = keep_statistics
        self._ssim_reference = ssim_reference
        self._psnr: dict[int, float] = {}
        self._ssim: dict[int, float] = {}
        self._search: _progress.Task | None = None  # counts the measurements of a search

    @classmethod
    def shared(
        cls,
        svd: ImageSVD,
        image: ArrayLike | None = None,
        *,
        ssim_reference: metrics.SSIMReference | None = None,
    ) -> DisplayedQuality:
        """The measurements of ``svd`` against this very ``image`` object, shared by every
        caller while ``svd`` lives (a search and the table that shows its answer)."""
        # Held by the svd itself (a cycle the garbage collector frees with it), with the
        # image object itself: an id could be reused.
        held = svd.shared.get("displayed_quality")
        if isinstance(held, tuple) and held[0] is image:
            return held[1]
        quality = cls(svd, image, ssim_reference=ssim_reference)
        svd.shared["displayed_quality"] = (image, quality)
        return quality

    def psnr(self, rank: int) -> float:
        """PSNR (dB) of the displayed rank-``rank`` image."""
        if rank not in self._psnr:
            self._measure(rank, ssim=False)
        return self._psnr[rank]

    def ssim(self, rank: int) -> float:
        """SSIM of the displayed rank-``rank`` image (scikit-image's definition)."""
        if rank not in self._ssim:
            self._measure(rank, ssim=True)
        return self._ssim[rank]

    def _measure(self, rank: int, *, ssim: bool) -> None:
        """PSNR, and SSIM if asked, of rank ``rank``, built and measured ``BAND`` rows at a
        time (:meth:`ImageSVD.reconstruct_rows`) on every core: a band per core is held,
        never the image."""
        reference = self.reference
        M = reference.shape[0]
        planes_of = _planes if reference.ndim == 3 else (lambda a: a[None])
        squared: dict[int, float] = {}  # first row -> sum of squared differences

        def rows(start: int, stop: int) -> np.ndarray:
            band = planes_of(self.svd.reconstruct_rows(rank, start, stop))
            # SSIM's bands overlap by the window: each counts its rows up to the next one's.
            own = stop if stop == M else min(stop, start + self.BAND)
            new = band[:, : own - start] - planes_of(reference[start:own])
            squared[start] = float(np.sum(np.square(new, out=new), dtype=np.float64))
            return band

        held = self._ssim_reference
        if ssim and (held is None or (self.keep_statistics and not held.keeps_statistics)):
            held = self._ssim_reference = metrics.SSIMReference(  # raises if too small
                reference, keep_statistics=self.keep_statistics
            )
        if ssim and held is not None and not held.too_small:
            self._ssim[rank] = held.of_rows(rows, band=self.BAND)
        else:
            if ssim:
                self._ssim[rank] = float("nan")

            def count(first: int) -> None:  # the band itself is dropped at once
                rows(first, min(first + self.BAND, M))

            map_on_cores(count, range(0, M, self.BAND))
        total = sum(squared[first] for first in sorted(squared))
        self._psnr[rank] = metrics.psnr_of_mse(total / reference.size)
        if self._search is not None:
            self._search.advance()

    def release_statistics(self) -> None:
        """Drop the original's SSIM statistics (twice the image's memory) once no more SSIM
        is to be measured: what was measured is kept; a later SSIM recomputes them."""
        if self._ssim_reference is not None and not self._ssim_reference.too_small:
            self._ssim_reference = None

    @contextlib.contextmanager
    def _searching(self, target: str) -> Iterator[None]:
        with _progress.task(f"searching the rank for {target}", unit="ranks measured") as step:
            self._search = step
            try:
                yield
            finally:
                self._search = None

    def rank_for_psnr(self, db: float) -> int:
        """Smallest rank reaching ``db`` dB: see :func:`rank_for_psnr`."""
        svd, target = self.svd, f"{db:g} dB of PSNR"
        mse = (np.asarray(svd.relative_error()) ** 2) * svd.squared_norm / self.reference.size
        with np.errstate(divide="ignore"):
            bound = np.where(mse > 0, -10 * np.log10(np.maximum(mse, 1e-300)), np.inf)
        upper = _first(bound >= db, target, svd, strict=False)
        with self._searching(target):
            return _bisect(
                lambda k: self.psnr(k) >= db,
                upper or svd.max_rank,
                target,
                svd,
                near_upper=bool(upper),
            )

    def rank_for_ssim(self, value: float) -> int:
        """Smallest rank reaching SSIM ``value``: see :func:`rank_for_ssim`."""
        if not -1 < value <= 1:
            raise ValueError(f"SSIM target must be in (-1, 1]; got {value}.")
        svd, upper = self.svd, self.svd.max_rank
        with self._searching(f"SSIM {value:g}"):
            if self.ssim(upper) < value:
                more = "" if svd.is_complete else " (the SVD is truncated)"
                raise ValueError(f"no rank up to {upper} reaches an SSIM of {value:g}{more}.")
            k = smallest_reaching(self.ssim, value, 1, upper)
            while k > 1 and self.ssim(k - 1) >= value:  # measured already; walk down if not
                k -= 1
        return k


def rank_for_psnr(svd: ImageSVD, db: float, *, image: ArrayLike | None = None) -> int:
    """Smallest rank whose displayed approximation reaches ``db`` dB of PSNR.

    The singular values give the PSNR of the unclipped approximation, a
    lower bound for the clipped one (clipping to [0, 1] only moves values
    towards the original); the answer is searched below that bound by
    bisection and checked: rank ``k`` meets the target and ``k - 1`` does not.

    Parameters
    ----------
    image : array_like, optional
        The original; needed only when the SVD is truncated (a complete SVD
        rebuilds it).

    See Also
    --------
    DisplayedQuality : several targets from shared measurements.
    """
    return DisplayedQuality(svd, image).rank_for_psnr(db)


def rank_for_ssim(svd: ImageSVD, value: float, *, image: ArrayLike | None = None) -> int:
    """Smallest rank whose displayed approximation reaches SSIM ``value``.

    SSIM is not guaranteed to grow with the rank, but does in practice: the
    rank is searched over ``1..max_rank`` by interpolation on ``log k``
    (:func:`svdimage._search.smallest_reaching`, about 6-9 measurements where
    bisection needs 10-13) and its neighbour is verified (``k`` meets the
    target, ``k - 1`` does not; if ``k - 1`` also does, the search walks down
    until it does not).

    See Also
    --------
    DisplayedQuality : several targets from shared measurements.
    """
    return DisplayedQuality(svd, image).rank_for_ssim(value)


def _planes(image: np.ndarray) -> np.ndarray:
    """(M, N, C) as channel planes (C, M, N): a view."""
    return np.moveaxis(image, -1, 0)


def reference_image(svd: ImageSVD, image: ArrayLike | None) -> np.ndarray:
    """The original image: ``image`` checked against ``svd``'s shape, or, for a complete
    SVD, its exact reconstruction (unclipped)."""
    if image is not None:
        reference = as_image_array(image)
        if reference.shape != svd.shape:
            raise ValueError(
                f"image shape {reference.shape} does not match the decomposition's {svd.shape}."
            )
        return reference
    if not svd.is_complete:
        raise ValueError("a truncated SVD cannot rebuild the original: pass image=.")
    return svd.reconstruct(clip=False)


def _bisect(
    meets: Callable[[int], bool],
    upper: int,
    target: str,
    svd: ImageSVD,
    *,
    near_upper: bool = False,
) -> int:
    """Smallest rank that ``meets`` the target, at most ``upper`` if it does.

    With ``near_upper`` (``upper`` is a bound the answer usually sits just
    below, as the singular values' PSNR bound), the search first steps down
    from ``upper`` by 1, 2, 4, ... ranks and bisects only the last step, so
    that a handful of ranks near the answer are measured instead of the whole
    range's midpoints. Both give the same rank for a monotone target.
    """
    test = functools.lru_cache(maxsize=None)(meets)
    if not test(upper):
        if upper == svd.max_rank:
            more = "" if svd.is_complete else " (the SVD is truncated)"
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
        upper = svd.max_rank
        if not test(upper):
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}.")
    low = 1
    if near_upper:
        step = 1
        while upper - step >= 1:
            if not test(upper - step):
                low = upper - step + 1
                break
            upper -= step
            step *= 2
    high = smallest_true(test, low, upper)
    while high > 1 and test(high - 1):  # verify the neighbour; walk down if not monotone
        high -= 1
    return high


def _first(mask: np.ndarray, target: str, svd: ImageSVD, *, strict: bool = True) -> int:
    hits = np.flatnonzero(mask)
    if hits.size == 0:
        if not strict:
            return 0
        more = "" if svd.is_complete else " (the SVD is truncated: decompose with a larger rank)"
        raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
    return int(hits[0]) + 1

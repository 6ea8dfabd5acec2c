"""Choosing a rank from a target: error, energy, PSNR, SSIM, storage, the knee.

Each ``rank_for_*`` function takes an :class:`~svdimage.image_svd.ImageSVD`
and returns the smallest rank whose approximation meets the target (for
storage budgets: the largest rank that fits), or raises ``ValueError`` saying
why no held rank does. PSNR and SSIM are those of the *displayed*
approximation (clipped to [0, 1]), the numbers ``svdimage sweep`` reports.

The measurements behind the rules have their own modules:
:mod:`svdimage.ranks.displayed_quality` (PSNR and SSIM of the displayed
approximations) and :mod:`svdimage.ranks.storage` (bytes of factors and of real
``.svdz`` files). :class:`MeasurementCache` holds what they measured of one
image, for the calls that share it: an explicit object that the caller
creates and passes as ``cache=`` (as scikit-learn's ``memory=``), never state
hung on a result or kept by a module. Denoising thresholds live in
:mod:`svdimage.denoising`; criteria written as text (``psnr=35``) and the
recommendation table in :mod:`svdimage.ranks.criteria`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage._deprecation import moved_names, renamed_argument
from svdimage._validation import is_chunked
from svdimage.codec import GlobalSizes
from svdimage.image_svd import ImageSVD
from svdimage.ranks.displayed_quality import DisplayedQuality, reference_image
from svdimage.ranks.storage import storage_rank

__all__ = [
    "MeasurementCache",
    "rank_for_error",
    "rank_for_energy",
    "rank_for_psnr",
    "rank_for_ssim",
    "rank_for_storage",
    "rank_for_fraction",
    "fraction_rank",
    "extrapolated_rank",
    "knee_rank",
]


class MeasurementCache:
    """What the rank rules measured of one image, for the calls that share it.

    A search and the table that explains its answer ask the same questions:
    PSNR and SSIM of displayed approximations, bytes of real ``.svdz`` files.
    One cache, created by the caller and passed as ``cache=`` to
    :func:`rank_for_storage`, :func:`svdimage.ranks.criteria.resolve_criterion`,
    :func:`~svdimage.ranks.criteria.explain`, :func:`~svdimage.ranks.criteria.recommend`
    and :func:`svdimage.ranks.growth.decompose_for`, measures each once. Without
    one, each call measures anew. The cache holds nothing else, and lives as
    long as the caller keeps it.

    Parameters
    ----------
    image : (M, N[, C]) array_like, optional
        The original. Without it, measurements compare with a complete SVD's
        own reconstruction.

    Notes
    -----
    The displayed quality is kept for one decomposition at a time, the last
    asked for (:meth:`quality`): a decomposition that grows replaces the one
    before (:meth:`forget`). The ``.svdz`` sizes depend on the image alone
    and are kept for it (:meth:`sizes`).

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage.decomposition import decompose
    >>> image = np.random.default_rng(0).random((40, 30))
    >>> svd, cache = decompose(image), MeasurementCache(image)
    >>> cache.quality(svd) is cache.quality(svd)
    True
    """

    def __init__(self, image: ArrayLike | None = None) -> None:
        self.image = image
        self._quality: DisplayedQuality | None = None
        self._sizes: GlobalSizes | None = None

    def quality(self, svd: ImageSVD) -> DisplayedQuality:
        """The :class:`~svdimage.ranks.displayed_quality.DisplayedQuality` of ``svd`` against the
        image, made once for the last decomposition asked for."""
        if self._quality is None or self._quality.svd is not svd:
            self._quality = DisplayedQuality(svd, self.image)
        return self._quality

    def sizes(self, svd: ImageSVD | None = None) -> GlobalSizes:
        """The :class:`~svdimage.codec.GlobalSizes` of the image (checked against ``svd``'s
        shape; without an image, of a complete ``svd``'s reconstruction), made once."""
        if is_chunked(self.image):
            raise ValueError(
                "budgets in .svdz bytes are measured on .svdz files of the whole image; for an "
                "image read out of core, count the bytes of the factors (--storage values)."
            )
        if self._sizes is None:
            if svd is None:
                if self.image is None:
                    raise ValueError("the .svdz sizes need the image: MeasurementCache(image).")
                self._sizes = GlobalSizes(self.image)
            else:
                self._sizes = GlobalSizes(reference_image(svd, self.image))
        elif svd is not None and self._sizes.shape != svd.shape:
            reference_image(svd, self.image)  # says how the shapes differ
        return self._sizes

    def forget(self, svd: ImageSVD) -> None:
        """Drop the measurements of ``svd`` (and the SSIM statistics they hold: twice the
        image) once it is replaced by a larger decomposition."""
        if self._quality is not None and self._quality.svd is svd:
            self._quality = None


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


def extrapolated_rank(svd: ImageSVD, squared_error: float) -> int | None:
    """An estimate of the smallest rank with ``||A - A_k||_F^2 <= squared_error``, beyond
    the ranks ``svd`` holds: how many singular values to compute next.

    The energy each further rank removes (``sum_c sigma_{c,i}^2``) is extrapolated
    by a power law ``i^-alpha`` fitted to the second half of the ranks held, from
    the exact error at the last one (Eckart--Young). A photo's spectrum decays
    about so in its middle range and flattens toward its noise floor further
    on, so the estimate tends to err long. An estimate only: the caller
    computes that many and checks (:func:`svdimage.decomposition.decompose_until`).

    Parameters
    ----------
    svd : ImageSVD
    squared_error : float
        The target ``||A - A_k||_F^2``, all channels: ``(1 - f) ||A||^2`` for an
        energy fraction ``f``, ``e^2 ||A||^2`` for a relative error ``e``,
        ``M N C 10^(-dB/10)`` for a PSNR of the unclipped approximation.

    Returns
    -------
    int or None
        The rank itself when ``svd`` holds it; ``None`` when the model never
        reaches the target within the image's rank, or too few ranks are held
        to fit it (fewer than 8).
    """
    removed = (np.atleast_2d(np.asarray(svd.s, dtype=np.float64)) ** 2).sum(axis=0)
    held = removed.size
    errors = np.atleast_1d(np.asarray(svd.relative_error(), dtype=np.float64)) ** 2
    errors = errors * svd.squared_norm
    reached = np.flatnonzero(errors <= squared_error)
    if reached.size:
        return int(reached[0]) + 1
    if held < 8 or held >= svd.full_rank:
        return None
    ranks = np.arange(held // 2, held) + 1
    tail = removed[held // 2 :]
    fitted = tail > 0
    if fitted.sum() < 4:
        return None
    slope, intercept = np.polyfit(np.log(ranks[fitted]), np.log(tail[fitted]), 1)
    alpha = max(-slope, 0.0)  # a spectrum never grows
    beyond = np.arange(held + 1, svd.full_rank + 1)
    predicted = np.exp(intercept) * beyond ** (-alpha)
    meets = np.flatnonzero(errors[-1] - np.cumsum(predicted) <= squared_error)
    return int(beyond[meets[0]]) if meets.size else None


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
    max_bytes: int | None = None,
    bpp: float | None = None,
    bytes_per_value: int = 4,
    storage: Literal["values", "svdz"] = "values",
    image: ArrayLike | None = None,
    cache: MeasurementCache | None = None,
    bytes: int | None = None,
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
    max_bytes : int, optional
        Maximum size in bytes (the package's one name for a byte budget;
        ``bytes=`` before 0.2, with a ``DeprecationWarning`` until 0.3).
    bpp : float, optional
        Maximum bits per pixel (``8 * max_bytes / (M * N)``).
    bytes_per_value : int, optional
        With ``storage='values'``: 4 for float32 factors, 8 for float64.
    storage : {'values', 'svdz'}, optional
        ``'values'``: the factors take ``C * k * (M + N + 1) * bytes_per_value``
        bytes (:func:`svdimage.ranks.storage.factor_bytes`). ``'svdz'``: the size of
        the real global ``.svdz`` file of rank ``k``
        (:func:`svdimage.ranks.storage.svdz_bytes`).
    image : array_like, optional
        The original, for ``'svdz'`` with a truncated SVD.
    cache : MeasurementCache, optional
        Shares the ``.svdz`` sizes with other calls (its image is the original).

    Raises
    ------
    ValueError
        For a bad budget, one that even rank 1 does not fit, or an answer above
        the ranks ``svd`` holds.
    """
    sizes = None
    if storage == "svdz":
        sizes = (cache if cache is not None else MeasurementCache(image)).sizes(svd)
    max_bytes = renamed_argument(
        max_bytes, bytes, new="max_bytes", old="bytes", function="rank_for_storage"
    )
    k = storage_rank(
        svd.shape,
        ratio=ratio,
        max_bytes=max_bytes,
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


def _first(mask: np.ndarray, target: str, svd: ImageSVD, *, strict: bool = True) -> int:
    hits = np.flatnonzero(mask)
    if hits.size == 0:
        if not strict:
            return 0
        more = "" if svd.is_complete else " (the SVD is truncated: decompose with a larger rank)"
        raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
    return int(hits[0]) + 1


# Re-exported here before 0.2; each is exported from one place now (until 0.3, with a warning).
__getattr__ = moved_names(
    __name__,
    {
        "factor_bytes": "svdimage.ranks.storage.factor_bytes",
        "svdz_bytes": "svdimage.ranks.storage.svdz_bytes",
    },
    removed_in="0.3",
)

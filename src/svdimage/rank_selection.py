"""Choosing a rank from a target: error, energy, PSNR, SSIM, storage, noise.

Each ``rank_for_*`` function takes an :class:`~svdimage.decomposition.ImageSVD`
and returns the smallest rank whose approximation meets the target (for
storage budgets: the largest rank that fits), or raises ``ValueError`` saying
why no held rank does. PSNR and SSIM are those of the *displayed*
approximation (clipped to [0, 1]), the numbers ``svdimage sweep`` reports.

:func:`optimal_hard_threshold_rank` is Gavish and Donoho's optimal singular
value threshold for denoising, and :func:`knee_rank` a documented elbow rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import metrics
from svdimage._search import largest_true, smallest_true
from svdimage._validation import as_image_array
from svdimage.decomposition import ImageSVD

__all__ = [
    "rank_for_error",
    "rank_for_energy",
    "rank_for_psnr",
    "rank_for_ssim",
    "rank_for_storage",
    "rank_for_fraction",
    "knee_rank",
    "optimal_hard_threshold_rank",
    "optimal_hard_threshold",
    "marchenko_pastur_median",
    "optimal_threshold_coefficient",
    "add_noise",
    "denoise",
    "Criterion",
    "parse_criterion",
    "resolve_criterion",
    "VISUALLY_LOSSLESS_SSIM",
    "criterion_value",
    "Recommendation",
    "recommend",
    "svdz_bytes",
]

#: SSIM at or above which most observers no longer tell a compressed gray image
#: from its original: about 0.95 (0.92-0.96 over six images) in the just-noticeable-
#: difference experiment of Flynn, Ward, Abich and Poole, "Image quality assessment
#: using the SSIM and the just noticeable difference paradigm", HCI International 2013,
#: LNCS 8019, pp. 23-30.
VISUALLY_LOSSLESS_SSIM = 0.95


# -- from the singular values alone -------------------------------------------------
def rank_for_error(svd: ImageSVD, max_relative_error: float) -> int:
    """Smallest rank whose relative Frobenius error is at most ``max_relative_error``.

    The error is that of the unclipped approximation, from the singular values
    (:meth:`ImageSVD.relative_error`).
    """
    if not max_relative_error >= 0:
        raise ValueError(f"max_relative_error must be >= 0; got {max_relative_error}.")
    errors = np.asarray(svd.relative_error())
    return _first(errors <= max_relative_error * (1 + 1e-9),
                  f"a relative error of {max_relative_error:.6g}", svd)


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
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100]; got {percent}.")
    k = max(1, math.ceil(percent / 100 * svd.full_rank - 1e-9))
    if k > svd.max_rank:
        raise ValueError(f"{percent:g} % of {svd.full_rank} is rank {k}, above the "
                         f"{svd.max_rank} held; decompose with a larger rank.")
    return k


def rank_for_storage(svd: ImageSVD, *, ratio: float | None = None, bytes: int | None = None,
                     bpp: float | None = None, bytes_per_value: int = 4,
                     storage: Literal["values", "svdz"] = "values",
                     image: ArrayLike | None = None) -> int:
    """Largest rank whose factors fit a storage budget (exactly one of the three).

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
        bytes. ``'svdz'``: the size of a real ``.svdz`` file of the global
        rank-``k`` SVD (:func:`svdz_bytes`), found by bisection over the rank
        (monotone in practice; the rank above is checked not to fit).
    image : array_like, optional
        The original, for ``'svdz'`` with a truncated SVD.
    """
    given = [name for name, v in (("ratio", ratio), ("bytes", bytes), ("bpp", bpp))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of ratio, bytes or bpp; got {given or 'none'}.")
    M, N = svd.shape[:2]
    per_rank = svd.n_channels * (M + N + 1) * bytes_per_value
    if ratio is not None:
        if not ratio > 0:
            raise ValueError(f"ratio must be positive; got {ratio}.")
        budget, target = M * N * svd.n_channels / ratio, f"a ratio of {ratio:g} to raw 8-bit"
    elif bytes is not None:
        if bytes < 0:
            raise ValueError(f"bytes must be >= 0; got {bytes}.")
        budget, target = float(bytes), f"{bytes:,} bytes"
    else:
        assert bpp is not None
        if not bpp > 0:
            raise ValueError(f"bpp must be positive; got {bpp}.")
        budget, target = bpp * M * N / 8, f"{bpp:g} bits per pixel"
    if storage == "svdz":
        reference = _reference(svd, image)
        fits = functools.lru_cache(maxsize=None)(
            lambda k: svdz_bytes(svd, k, image=reference) <= budget)
        if not fits(1):
            raise ValueError(f"even rank 1 ({svdz_bytes(svd, 1, image=reference):,} bytes as "
                             f".svdz) does not fit {target}.")
        return largest_true(fits, 1, svd.max_rank)
    if storage != "values":
        raise ValueError(f"storage must be 'values' or 'svdz'; got {storage!r}.")
    k = min(int(budget // per_rank), svd.max_rank)
    if k < 1:
        raise ValueError(f"even rank 1 ({per_rank:,} bytes) does not fit {target}.")
    return k


def svdz_bytes(svd: ImageSVD, rank: int, *, image: ArrayLike | None = None) -> int:
    """Bytes of a real ``.svdz`` file of the global rank-``rank`` SVD of the image.

    The honest storage of a rank, where float32 factors overstate it. The file
    keeps ``rank`` components (``tile=None``, ``rank=rank``) with the coarsest
    quantizer step that still keeps the ``rank``-th: the codec keeps
    ``s_i > 8 q^2 (M + N) / 12``, so ``q = sqrt(12 s_k / (8 (M + N)))`` with
    ``s_k`` the ``rank``-th singular value (averaged over color channels).
    Sizes therefore grow with the rank.
    """
    from svdimage import codec

    reference = _reference(svd, image)
    k = svd._check(rank)
    sigma = float(np.atleast_2d(svd.s)[:, k - 1].mean())
    M, N = svd.shape[:2]
    # Just below the threshold of the k-th value; floor keeps tiny values codable.
    step = max(math.sqrt(12 * sigma / (codec.RANK_RULE * (M + N))) * 0.999, 1e-4)
    data = codec._encode_at(reference, quality=100, max_rank=k, tile=None, color="ycbcr",
                            chroma="420", step=step)
    return len(data)


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
    errors = np.asarray(svd.relative_error())
    if svd.max_rank < 3 or errors[0] == errors[-1]:
        return 1
    x = np.linspace(0.0, 1.0, svd.max_rank)
    y = (errors - errors[-1]) / (errors[0] - errors[-1])
    return int(np.argmax((1.0 - x) - y)) + 1


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
    """
    reference = _reference(svd, image)
    total = float(np.sum(reference.astype(np.float64) ** 2))
    mse = (np.asarray(svd.relative_error()) ** 2) * total / reference.size
    with np.errstate(divide="ignore"):
        bound = np.where(mse > 0, -10 * np.log10(np.maximum(mse, 1e-300)), np.inf)
    upper = _first(bound >= db, f"{db:g} dB of PSNR", svd, strict=False)
    return _bisect(lambda k: metrics.peak_signal_noise_ratio(reference, svd.reconstruct(k)) >= db,
                   upper or svd.max_rank, f"{db:g} dB of PSNR", svd)


def rank_for_ssim(svd: ImageSVD, value: float, *, image: ArrayLike | None = None) -> int:
    """Smallest rank whose displayed approximation reaches SSIM ``value``.

    SSIM is not guaranteed to grow with the rank, but does in practice: the
    rank is found by bisection over ``1..max_rank`` and its neighbours are
    verified (``k`` meets the target, ``k - 1`` does not; if ``k - 1`` also
    does, the search walks down until it does not).
    """
    if not -1 < value <= 1:
        raise ValueError(f"SSIM target must be in (-1, 1]; got {value}.")
    reference = _reference(svd, image)
    return _bisect(lambda k: metrics.structural_similarity(reference, svd.reconstruct(k)) >= value,
                   svd.max_rank, f"an SSIM of {value:g}", svd)


def _reference(svd: ImageSVD, image: ArrayLike | None) -> np.ndarray:
    if image is not None:
        reference = as_image_array(image)
        if reference.shape != svd.shape:
            raise ValueError(f"image shape {reference.shape} does not match the "
                             f"decomposition's {svd.shape}.")
        return reference
    if not svd.is_complete:
        raise ValueError("a truncated SVD cannot rebuild the original: pass image=.")
    return svd.reconstruct(clip=False)


def _bisect(meets: Callable[[int], bool], upper: int, target: str, svd: ImageSVD) -> int:
    test = functools.lru_cache(maxsize=None)(meets)
    if not test(upper):
        if upper == svd.max_rank:
            more = "" if svd.is_complete else " (the SVD is truncated)"
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
        upper = svd.max_rank
        if not test(upper):
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}.")
    high = smallest_true(test, 1, upper)
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


# -- denoising: Gavish and Donoho's optimal hard threshold ------------------------------
def optimal_threshold_coefficient(beta: float) -> float:
    """``lambda*(beta)``: the threshold on ``s / (sqrt(n) sigma)`` for known noise.

    ``lambda*(beta) = sqrt(2 (beta + 1) + 8 beta / ((beta + 1) + sqrt(beta^2 + 14 beta + 1)))``
    for the aspect ratio ``beta = m / n <= 1``; ``4 / sqrt(3)`` when square.
    """
    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1]; got {beta}.")
    return math.sqrt(2 * (beta + 1) + 8 * beta / ((beta + 1) + math.sqrt(beta**2 + 14 * beta + 1)))


@functools.lru_cache(maxsize=256)
def marchenko_pastur_median(beta: float) -> float:
    """Median of the Marchenko-Pastur distribution with ratio ``beta`` in (0, 1].

    The distribution of the eigenvalues of ``X X^T / n`` for an ``m x n``
    matrix of unit-variance noise, ``beta = m / n``; its density is
    ``sqrt((b - t)(t - a)) / (2 pi beta t)`` on ``[a, b]``,
    ``a, b = (1 -+ sqrt(beta))^2``. Solved numerically (quadrature and Brent's
    method), not by the cubic approximation.
    """
    from scipy.integrate import quad
    from scipy.optimize import brentq

    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1]; got {beta}.")
    lower, upper = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2

    def density(t: float) -> float:
        return math.sqrt(max((upper - t) * (t - lower), 0.0)) / (2 * math.pi * beta * t)

    def mass_below(x: float) -> float:
        return quad(density, lower, x, limit=200, epsabs=1e-13, epsrel=1e-12)[0] - 0.5

    return float(brentq(mass_below, lower, upper, xtol=1e-14, rtol=1e-14))


def optimal_hard_threshold(svd: ImageSVD, *, sigma: float | None = None) -> list[float]:
    """Gavish-Donoho threshold ``tau`` on the singular values, one per channel.

    See :func:`optimal_hard_threshold_rank` for the rule.
    """
    m, n = sorted(svd.shape[:2])
    beta = m / n
    if sigma is None:
        if not svd.is_complete:
            raise ValueError("unknown noise needs the complete SVD (the median of all "
                             "singular values): decompose with rank=None, or pass sigma.")
        omega = optimal_threshold_coefficient(beta) / math.sqrt(marchenko_pastur_median(beta))
        return [omega * float(np.median(s)) for s in np.atleast_2d(svd.s)]
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}.")
    return [optimal_threshold_coefficient(beta) * math.sqrt(n) * sigma] * svd.n_channels


def optimal_hard_threshold_rank(svd: ImageSVD, *, sigma: float | None = None) -> int | tuple[int, ...]:
    """Gavish-Donoho optimal hard-threshold rank for denoising.

    For ``Y = X + sigma Z`` (``X`` low rank, ``Z`` i.i.d. standard normal),
    keeping the singular values above ``tau`` minimizes the asymptotic mean
    squared error among hard thresholds. With ``m <= n`` the image's sides and
    ``beta = m / n``:

    * known ``sigma``: ``tau = lambda*(beta) sqrt(n) sigma``
      (:func:`optimal_threshold_coefficient`; ``4 / sqrt(3) sqrt(n) sigma``
      when square);
    * unknown ``sigma``: ``tau = omega(beta) median(s)``, with
      ``omega(beta) = lambda*(beta) / sqrt(mu_beta)`` and ``mu_beta`` the
      Marchenko-Pastur median (:func:`marchenko_pastur_median`), computed
      exactly; ``0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43`` approximates it.

    Parameters
    ----------
    svd : ImageSVD
        A complete SVD when ``sigma`` is unknown (the median needs all
        singular values).
    sigma : float, optional
        Noise standard deviation per pixel, in the image's units ([0, 1]).

    Returns
    -------
    rank : int, or one per channel for color images (at least 1 each)

    References
    ----------
    .. [1] M. Gavish and D. L. Donoho, "The optimal hard threshold for
           singular values is 4/sqrt(3)", IEEE Trans. Inf. Theory 60(8),
           5040-5053 (2014). :arxiv:`1305.5870`
    """
    thresholds = optimal_hard_threshold(svd, sigma=sigma)
    ranks = []
    for s, tau in zip(np.atleast_2d(svd.s), thresholds):
        k = int(np.count_nonzero(s > tau))
        if k == svd.max_rank and not svd.is_complete:
            raise ValueError(f"all {svd.max_rank} held singular values are above the threshold "
                             f"{tau:.4g}; decompose with a larger rank.")
        ranks.append(max(k, 1))
    return tuple(ranks) if svd.is_color else ranks[0]


def add_noise(image: ArrayLike, sigma: float, *,
              rng: int | np.random.Generator | None = None, clip: bool = False) -> np.ndarray:
    """``image + sigma * N(0, 1)``, i.i.d. per pixel and channel, same float dtype.

    Not clipped by default: clipping to [0, 1] would break the Gaussian model
    that :func:`optimal_hard_threshold_rank` assumes.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_noise(np.zeros((200, 200), np.float32), 0.1, rng=0)
    >>> noisy.dtype, round(float(noisy.std()), 2)
    (dtype('float32'), 0.1)
    """
    array = as_image_array(image)
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0; got {sigma}.")
    generator = np.random.default_rng(rng)
    noisy = array + (sigma * generator.standard_normal(array.shape)).astype(array.dtype)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


@dataclass(frozen=True)
class Denoised:
    """Result of :func:`denoise`: the image, the rank(s) kept, the estimated threshold."""

    image: np.ndarray
    rank: int | tuple[int, ...]
    svd: ImageSVD


def denoise(image: ArrayLike, *, sigma: float | None = None) -> Denoised:
    """Denoise by keeping the singular values above Gavish and Donoho's threshold.

    Parameters
    ----------
    image : (M, N[, C]) array_like
        The noisy image.
    sigma : float, optional
        Known noise level; estimated from the median singular value if not given.

    Returns
    -------
    Denoised
        ``image`` (clipped to [0, 1]), ``rank`` (per channel for color) and ``svd``.
    """
    from svdimage.decomposition import decompose

    svd = decompose(image)
    rank = optimal_hard_threshold_rank(svd, sigma=sigma)
    return Denoised(image=svd.reconstruct(rank), rank=rank, svd=svd)


# -- criteria as text, shared by the CLI ------------------------------------------------
@dataclass(frozen=True)
class Criterion:
    """A target such as ``psnr=35``: its name and value (``None`` for knee/denoise)."""

    name: str
    value: float | None = None


_CRITERIA = {"error", "energy", "psnr", "ssim", "ratio", "bytes", "bpp", "percent", "knee",
             "denoise"}


def parse_criterion(text: str) -> Criterion:
    """Parse ``name=value`` (``error``, ``energy``, ``psnr``, ``ssim``, ``ratio``,
    ``bytes``, ``bpp``, ``percent``) or a bare ``knee`` / ``denoise``."""
    name, _, value = text.strip().partition("=")
    name = name.strip().lower()
    if name not in _CRITERIA:
        raise ValueError(f"unknown rank criterion {text!r}; use one of "
                         "error=E, energy=F, psnr=DB, ssim=V, ratio=R, bytes=N, bpp=B, "
                         "percent=P, knee, denoise.")
    if name in ("knee", "denoise"):
        if value:
            raise ValueError(f"criterion {name!r} takes no value; got {text!r}.")
        return Criterion(name)
    try:
        return Criterion(name, float(value))
    except ValueError:
        raise ValueError(f"criterion {text!r} needs a number after '='.") from None


def resolve_criterion(svd: ImageSVD, criterion: Criterion, *, image: ArrayLike | None = None,
                      storage: Literal["values", "svdz"] = "values") -> int:
    """The rank a criterion picks (for color denoising: the largest channel rank).

    ``storage`` says how ``ratio``, ``bytes`` and ``bpp`` count bytes (see
    :func:`rank_for_storage`).
    """
    name, value = criterion.name, criterion.value
    if name == "knee":
        return knee_rank(svd)
    if name == "denoise":
        rank = optimal_hard_threshold_rank(svd)
        return max(rank) if isinstance(rank, tuple) else rank
    assert value is not None
    if name == "error":
        return rank_for_error(svd, value)
    if name == "energy":
        return rank_for_energy(svd, value)
    if name == "psnr":
        return rank_for_psnr(svd, value, image=image)
    if name == "ssim":
        return rank_for_ssim(svd, value, image=image)
    if name == "percent":
        return rank_for_fraction(svd, value)
    if name == "bytes":
        return rank_for_storage(svd, bytes=int(value), storage=storage, image=image)
    if name == "ratio":
        return rank_for_storage(svd, ratio=value, storage=storage, image=image)
    return rank_for_storage(svd, bpp=value, storage=storage, image=image)


def criterion_value(svd: ImageSVD, criterion: Criterion, rank: int, *,
                    image: ArrayLike | None = None,
                    storage: Literal["values", "svdz"] = "values") -> float:
    """What ``criterion`` measures at ``rank``: the number that explains a choice.

    error: relative error; energy: fraction kept; psnr, ssim: of the displayed
    image; ratio, bytes, bpp: of the float32 factors (or, with
    ``storage='svdz'``, of the ``.svdz`` file); percent: of the short side;
    knee: relative error; denoise: the smallest singular value kept.
    """
    name = criterion.name
    if name in ("error", "knee"):
        return float(svd.relative_error(rank))
    if name == "energy":
        return float(svd.energy(rank))
    if name in ("psnr", "ssim"):
        reference = _reference(svd, image)
        measure = (metrics.peak_signal_noise_ratio if name == "psnr"
                   else metrics.structural_similarity)
        return measure(reference, svd.reconstruct(rank))
    if name == "percent":
        return 100.0 * rank / svd.full_rank
    if name == "denoise":
        return float(np.atleast_2d(svd.s)[:, rank - 1].max())
    nbytes = (svdz_bytes(svd, rank, image=image) if storage == "svdz"
              else 4 * svd.stored_values(rank))
    if name == "bytes":
        return float(nbytes)
    if name == "bpp":
        return metrics.bits_per_pixel(nbytes, svd.shape)
    return metrics.compression_ratio(int(np.prod(svd.shape)), nbytes)


@dataclass(frozen=True)
class Recommendation:
    """One row of :func:`recommend`: a criterion, its rank and what that rank gives."""

    criterion: str
    rank: int
    relative_error: float
    psnr: float
    ssim: float
    factor_bytes_float32: int
    bits_per_pixel: float
    svdz_bytes: int
    svdz_bits_per_pixel: float


def recommend(svd: ImageSVD, *, image: ArrayLike | None = None) -> list[Recommendation]:
    """The ranks that common targets pick, with quality and storage for each.

    Storage is given twice: as float32 factors and as a real global ``.svdz``
    file of that rank (:func:`svdz_bytes`).

    Targets: the knee; 90, 99 and 99.9 % of the energy; PSNR 30, 35 and 40 dB;
    SSIM 0.90 and ``VISUALLY_LOSSLESS_SSIM`` (0.95). Targets no held rank
    reaches are left out.
    """
    reference = _reference(svd, image)
    targets = [("knee", Criterion("knee"))]
    targets += [(f"energy {100 * f:g}%", Criterion("energy", f)) for f in (0.9, 0.99, 0.999)]
    targets += [(f"PSNR {db:g} dB", Criterion("psnr", db)) for db in (30.0, 35.0, 40.0)]
    targets += [(f"SSIM {v:.2f}", Criterion("ssim", v)) for v in (0.90, VISUALLY_LOSSLESS_SSIM)]
    rows = []
    for label, criterion in targets:
        try:
            k = resolve_criterion(svd, criterion, image=reference)
        except ValueError:
            continue
        nbytes = 4 * svd.stored_values(k)
        approx = svd.reconstruct(k)
        real = svdz_bytes(svd, k, image=reference)
        rows.append(Recommendation(
            criterion=label, rank=k, relative_error=float(svd.relative_error(k)),
            psnr=metrics.peak_signal_noise_ratio(reference, approx),
            ssim=metrics.structural_similarity(reference, approx),
            factor_bytes_float32=nbytes, bits_per_pixel=metrics.bits_per_pixel(nbytes, svd.shape),
            svdz_bytes=real, svdz_bits_per_pixel=metrics.bits_per_pixel(real, svd.shape)))
    return rows

"""Denoising by truncated SVD: Gavish and Donoho's optimal hard threshold.

For ``Y = X + sigma Z`` (``X`` low rank, ``Z`` i.i.d. standard normal),
keeping the singular values above a threshold ``tau`` that depends only on
the aspect ratio and the noise level minimizes the asymptotic mean squared
error among hard thresholds [1]_. :func:`add_noise` makes such test images.

References
----------
.. [1] M. Gavish and D. L. Donoho, "The optimal hard threshold for singular
       values is 4/sqrt(3)", IEEE Trans. Inf. Theory 60(8), 5040-5053 (2014).
       :arxiv:`1305.5870`
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from svdimage._validation import as_image_array
from svdimage.decomposition import decompose
from svdimage.image_svd import ImageSVD

__all__ = [
    "optimal_hard_threshold_rank",
    "optimal_hard_threshold",
    "marchenko_pastur_median",
    "optimal_threshold_coefficient",
    "add_noise",
    "denoise",
    "Denoised",
]


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
            raise ValueError(
                "unknown noise needs the complete SVD (the median of all "
                "singular values): decompose with rank=None, or pass sigma."
            )
        omega = optimal_threshold_coefficient(beta) / math.sqrt(marchenko_pastur_median(beta))
        return [omega * float(np.median(s)) for s in np.atleast_2d(svd.s)]
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}.")
    return [optimal_threshold_coefficient(beta) * math.sqrt(n) * sigma] * svd.n_channels


def optimal_hard_threshold_rank(
    svd: ImageSVD, *, sigma: float | None = None
) -> int | tuple[int, ...]:
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
            raise ValueError(
                f"all {svd.max_rank} held singular values are above the threshold "
                f"{tau:.4g}; decompose with a larger rank."
            )
        ranks.append(max(k, 1))
    return tuple(ranks) if svd.is_color else ranks[0]


def add_noise(
    image: ArrayLike,
    sigma: float,
    *,
    rng: int | np.random.Generator | None = None,
    clip: bool = False,
) -> np.ndarray:
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
    svd = decompose(image)
    rank = optimal_hard_threshold_rank(svd, sigma=sigma)
    return Denoised(image=svd.reconstruct(rank), rank=rank, svd=svd)

"""Choosing a rank from a target: the smallest rank that meets it.

Each function takes an :class:`~svdimage.decomposition.ImageSVD` and returns
the smallest rank ``k`` whose approximation meets the target, or raises
``ValueError`` when no held rank does.
"""

from __future__ import annotations

import numpy as np

from svdimage.decomposition import ImageSVD

__all__ = ["rank_for_energy", "rank_for_error"]


def rank_for_energy(svd: ImageSVD, fraction: float) -> int:
    """Smallest rank keeping at least ``fraction`` of ``||A||_F^2``.

    Parameters
    ----------
    svd : ImageSVD
    fraction : float
        In (0, 1], e.g. 0.99 for 99 %.

    Returns
    -------
    rank : int

    Raises
    ------
    ValueError
        If ``fraction`` is outside (0, 1] or no held rank reaches it.

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
    return _first_index(energy >= fraction - 1e-12, f"{fraction:.6g} of the energy", svd)


def rank_for_error(svd: ImageSVD, max_relative_error: float) -> int:
    """Smallest rank whose relative Frobenius error is at most ``max_relative_error``."""
    if not max_relative_error >= 0:
        raise ValueError(f"max_relative_error must be >= 0; got {max_relative_error}.")
    errors = np.asarray(svd.relative_error())
    return _first_index(errors <= max_relative_error + 1e-12,
                        f"a relative error of {max_relative_error:.6g}", svd)


def _first_index(mask: np.ndarray, target: str, svd: ImageSVD) -> int:
    hits = np.flatnonzero(mask)
    if hits.size == 0:
        more = "" if svd.is_complete else " (the SVD is truncated: decompose with a larger rank)"
        raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
    return int(hits[0]) + 1

"""How much SVD a request needs: grow a truncated SVD until its criteria are answered.

A command that shows some ranks and answers some criteria (``sweep``,
``choose``, ``compress --rank``, a survey of a dataset) needs the top ``K``
singular triplets for the smallest ``K`` that holds every answer, not the
complete SVD. :func:`decompose_for` finds that ``K``: criteria of the image's
shape are answered before any SVD (:func:`rank_without_spectrum`); the others
are tried on a truncated SVD that grows (:func:`svdimage.decomposition.decompose_until`)
until each is answered strictly inside it. Rules of the error (PSNR, energy,
relative error) grow straight to their answer extrapolated from the spectrum so
far (:func:`svdimage.rank_selection.extrapolated_rank`), with a margin.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from numpy.typing import ArrayLike

from svdimage._validation import as_image_array
from svdimage.criteria import (
    SHAPE_CRITERIA,
    WHOLE_SPECTRUM_CRITERIA,
    Criterion,
    Storage,
    criterion_label,
    criterion_value,
    resolve_criterion,
)
from svdimage.decomposition import ImageSVD
from svdimage.displayed_quality import DisplayedQuality
from svdimage.rank_selection import extrapolated_rank, fraction_rank
from svdimage.storage import storage_rank, svdz_sizes

__all__ = ["decompose_for", "rank_without_spectrum", "PROPOSAL_MARGIN"]


def rank_without_spectrum(
    image: ArrayLike, criterion: Criterion, *, storage: Storage = "values"
) -> int:
    """The rank a criterion of :data:`~svdimage.criteria.SHAPE_CRITERIA` picks, before any SVD.

    Equal to :func:`~svdimage.criteria.resolve_criterion` on any decomposition that holds the
    answer, so that :func:`decompose_for` knows how far to decompose.
    """
    if criterion.name not in SHAPE_CRITERIA:
        raise ValueError(f"{criterion_label(criterion)} needs the singular values.")
    assert criterion.value is not None
    array = as_image_array(image)
    if criterion.name == "percent":
        return fraction_rank(array.shape, criterion.value)
    value = int(criterion.value) if criterion.name == "bytes" else criterion.value
    budget = {criterion.name: value}
    sizes = svdz_sizes(image) if storage == "svdz" else None
    return storage_rank(array.shape, storage=storage, sizes=sizes, **budget)  # type: ignore[arg-type]


def decompose_for(
    image: ArrayLike,
    criteria: Sequence[Criterion] = (),
    *,
    ranks: Sequence[int] = (),
    storage: Storage = "values",
    answers: dict[Criterion, int] | None = None,
    explain_only: bool = False,
) -> ImageSVD:
    """The SVD that shows ``ranks`` and answers ``criteria``, and no more.

    Criteria of the shape (:data:`~svdimage.criteria.SHAPE_CRITERIA`: budgets, a percentage)
    are answered first, without an SVD (:func:`rank_without_spectrum`), and
    their ranks join ``ranks``. Then the top ``max(ranks)`` singular triplets
    (from a sketch twice as wide, of which the kept half is exact to float
    precision), grown until every other criterion is answered strictly inside
    the computed ranks (an answer at the last one could lie beyond it):
    fourfold for SSIM targets, to :data:`PROPOSAL_MARGIN` times the answers
    extrapolated from the spectrum so far when every criterion is a PSNR,
    energy or error target (:func:`~svdimage.rank_selection.extrapolated_rank`),
    else twofold; the complete SVD for criteria of the
    whole spectrum and for small images
    (:func:`svdimage.decomposition.decompose_until`).

    Parameters
    ----------
    image : (M, N[, C]) array_like
    criteria : sequence of Criterion
    ranks : sequence of int
        Ranks the caller will reconstruct or measure.
    storage : {'values', 'svdz'}, optional
        How budget criteria count bytes (as the caller will resolve them).
    answers : dict, optional
        Filled with each criterion's rank, found on the way (a complete SVD
        computed at the end leaves the spectrum's criteria out).
    explain_only : bool, optional
        The caller only explains the criteria (:func:`~svdimage.criteria.explain` with the
        ``answers``) and reconstructs none of their ranks: criteria of the
        shape then need no singular vectors, and a rank-1 SVD is enough.

    Returns
    -------
    svd : ImageSVD
    """
    from svdimage.decomposition import decompose, decompose_until

    array = as_image_array(image)
    if any(c.name in WHOLE_SPECTRUM_CRITERIA for c in criteria):
        return decompose(array)
    # .svdz sizes are shared per image object: the caller's, so that explain reuses them.
    shaped = {
        c: rank_without_spectrum(image if storage == "svdz" else array, c, storage=storage)
        for c in criteria
        if c.name in SHAPE_CRITERIA
    }
    if answers is not None:
        answers.update(shaped)
    spectral = [c for c in criteria if c not in shaped]
    need = max([*ranks, *([] if explain_only else shaped.values())], default=1)

    def enough(svd: ImageSVD) -> bool:
        if answered(svd):
            return True
        # Its measurements (and SSIM statistics: twice the image) go with it, not at the next
        # garbage collection, nor held while the next SVD runs: they cost less to remake.
        svd.shared.clear()
        return False

    def answered(svd: ImageSVD) -> bool:
        if svd.max_rank < need:
            return False
        below = svd.max_rank - 1
        quality = DisplayedQuality.shared(svd, image)
        # Several SSIM searches (the recommendation table's) repay holding the statistics.
        quality.keep_statistics = sum(c.name == "ssim" for c in spectral) > 1
        for criterion in spectral:
            # One measurement first: a PSNR or SSIM unmet at the rank below the last cannot be
            # answered inside these ranks, and its search (a dozen measurements) would be wasted.
            if (
                criterion.name in ("psnr", "ssim")
                and below >= 1
                and criterion_value(svd, criterion, below, quality=quality) < (criterion.value or 0)
            ):
                return False
        found = {}
        try:
            for criterion in spectral:
                found[criterion] = resolve_criterion(
                    svd, criterion, image=array, storage=storage, quality=quality
                )
        except ValueError:  # not reached within these ranks
            return False
        if any(k >= svd.max_rank for k in found.values()):
            return False
        if answers is not None:
            answers.update(found)
        return True

    # SSIM targets of photos are answered in the hundreds (0.95: ranks 162-454 on the test
    # photos), so K grows fourfold for them: two tries instead of four before the complete
    # SVD of a 12 MP photo. Other criteria double, so as not to overshoot a small answer,
    # unless all are rules of the error (PSNR, energy, relative error): then the next K is
    # their answer extrapolated from the spectrum so far, with a margin.
    growth = 4 if any(c.name == "ssim" for c in spectral) else 2
    start = need if explain_only and not spectral else max(need, 32)
    propose = None
    if spectral and all(c.name in _EXTRAPOLATED for c in spectral):
        propose = functools.partial(_proposed_rank, spectral, array.size)
    return decompose_until(array, enough, start=start, sketch=2, growth=growth, propose=propose)


#: Criteria whose answer :func:`_proposed_rank` extrapolates from a truncated spectrum.
_EXTRAPOLATED = ("psnr", "energy", "error")
#: The next K is this times the extrapolated answer: the power-law fit of the first 32
#: singular values fell up to a quarter short of the answers on five of scikit-image's photos
#: (astronaut, coffee, camera, rocket, chelsea); benchmarks/bench_growth.py judges it on four
#: others.
PROPOSAL_MARGIN = 1.3


def _proposed_rank(criteria: Sequence[Criterion], size: int, svd: ImageSVD) -> int | None:
    """The next K for ``criteria`` (all in :data:`_EXTRAPOLATED`): the largest answer that
    :func:`~svdimage.rank_selection.extrapolated_rank` estimates, times the margin; ``None``
    when one has no estimate."""
    total = svd.squared_norm
    estimates = []
    for criterion in criteria:
        value = float(criterion.value or 0)
        if criterion.name == "psnr":  # of the unclipped approximation: an upper bound
            squared_error = size * 10 ** (-value / 10)
        elif criterion.name == "energy":
            squared_error = (1 - value) * total
        else:
            squared_error = value**2 * total
        k = extrapolated_rank(svd, squared_error)
        if k is None:
            return None
        estimates.append(k)
    return math.ceil(PROPOSAL_MARGIN * max(estimates))

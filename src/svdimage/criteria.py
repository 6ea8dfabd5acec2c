"""Rank criteria written as text (``psnr=35``, ``knee``), what they pick, and why.

The language shared by ``svdimage sweep --ranks``, ``reconstruct --rank``,
``compress --rank`` and ``choose``: a *rank item* is either a whole number (a
rank) or a criterion ``name=value`` (``error``, ``energy``, ``psnr``, ``ssim``,
``ratio``, ``bytes``, ``bpp``, ``percent``) or a bare ``knee`` / ``denoise``.
:func:`is_criterion` is the one rule that tells the two apart: an item that
starts with a letter is a criterion.

:func:`explain` gives the rank a criterion picks with the numbers that justify
it (what ``choose`` prints); :func:`recommend` the table of common targets.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, metrics
from svdimage._validation import as_image_array
from svdimage.decomposition import ImageSVD
from svdimage.denoising import optimal_hard_threshold, optimal_hard_threshold_rank
from svdimage.displayed_quality import DisplayedQuality
from svdimage.rank_selection import (
    extrapolated_rank,
    fraction_rank,
    knee_rank,
    rank_for_energy,
    rank_for_error,
    rank_for_fraction,
    rank_for_storage,
)
from svdimage.storage import factor_bytes, storage_rank, svdz_bytes, svdz_sizes

__all__ = [
    "Criterion",
    "parse_criterion",
    "is_criterion",
    "parse_rank_items",
    "parse_rank_item",
    "resolve_criterion",
    "criterion_value",
    "criterion_unit",
    "criterion_label",
    "Choice",
    "ChannelThreshold",
    "explain",
    "Recommendation",
    "recommend",
    "decompose_for",
    "rank_without_spectrum",
    "RECOMMENDED_TARGETS",
    "VISUALLY_LOSSLESS_SSIM",
    "WHOLE_SPECTRUM_CRITERIA",
    "SHAPE_CRITERIA",
]

Storage = Literal["values", "svdz"]

#: SSIM at or above which most observers no longer tell a compressed gray image
#: from its original: about 0.95 (0.92-0.96 over six images) in the just-noticeable-
#: difference experiment of Flynn, Ward, Abich and Poole, "Image quality assessment
#: using the SSIM and the just noticeable difference paradigm", HCI International 2013,
#: LNCS 8019, pp. 23-30.
VISUALLY_LOSSLESS_SSIM = 0.95


@dataclass(frozen=True)
class Criterion:
    """A target such as ``psnr=35``: its name and value (``None`` for knee/denoise)."""

    name: str
    value: float | None = None


_CRITERIA = (
    "error",
    "energy",
    "psnr",
    "ssim",
    "ratio",
    "bytes",
    "bpp",
    "percent",
    "knee",
    "denoise",
)
_BUDGETS = ("ratio", "bytes", "bpp")


def is_criterion(item: str) -> bool:
    """True when a rank item is a criterion (starts with a letter), False for a number."""
    return item.strip()[:1].isalpha()


def parse_criterion(text: str) -> Criterion:
    """Parse ``name=value`` (``error``, ``energy``, ``psnr``, ``ssim``, ``ratio``,
    ``bytes``, ``bpp``, ``percent``) or a bare ``knee`` / ``denoise``."""
    name, _, value = text.strip().partition("=")
    name = name.strip().lower()
    if name not in _CRITERIA:
        raise ValueError(
            f"unknown rank criterion {text!r}; use one of "
            "error=E, energy=F, psnr=DB, ssim=V, ratio=R, bytes=N, bpp=B, "
            "percent=P, knee, denoise."
        )
    if name in ("knee", "denoise"):
        if value:
            raise ValueError(f"criterion {name!r} takes no value; got {text!r}.")
        return Criterion(name)
    try:
        return Criterion(name, float(value))
    except ValueError:
        raise ValueError(f"criterion {text!r} needs a number after '='.") from None


def parse_rank_items(spec: str) -> tuple[str, list[Criterion]]:
    """Split ``'3,10,psnr=35,knee'`` into its numeric part (``'3,10'``) and criteria.

    The numeric part is left as text for :func:`svdimage._validation.parse_rank_spec`
    (it may hold ranges such as ``1:70``).

    Examples
    --------
    >>> parse_rank_items("3, 10, psnr=35, knee")
    ('3,10', [Criterion(name='psnr', value=35.0), Criterion(name='knee', value=None)])
    """
    items = [item.strip() for item in spec.split(",")]
    criteria = [parse_criterion(item) for item in items if is_criterion(item)]
    numbers = ",".join(item for item in items if not is_criterion(item))
    if not numbers and not criteria:
        raise ValueError(f"ranks {spec!r} names no rank.")
    return numbers, criteria


def parse_rank_item(text: str) -> int | Criterion:
    """One rank item: a whole number (returned as int, not yet range-checked) or a criterion.

    Examples
    --------
    >>> parse_rank_item("50"), parse_rank_item("ssim=0.95")
    (50, Criterion(name='ssim', value=0.95))
    """
    if is_criterion(text):
        return parse_criterion(text)
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(
            f"rank {text!r} is neither a whole number nor a criterion such as psnr=35 or knee."
        ) from None


def criterion_label(criterion: Criterion) -> str:
    """``'psnr=35'``, ``'knee'``: the criterion as the user writes it."""
    if criterion.value is None:
        return criterion.name
    return f"{criterion.name}={criterion.value:g}"


def resolve_criterion(
    svd: ImageSVD,
    criterion: Criterion,
    *,
    image: ArrayLike | None = None,
    storage: Storage = "values",
    quality: DisplayedQuality | None = None,
) -> int:
    """The rank a criterion picks (for color denoising: the largest channel rank).

    ``storage`` says how ``ratio``, ``bytes`` and ``bpp`` count bytes (see
    :func:`rank_for_storage`). ``quality``, a
    :class:`~svdimage.displayed_quality.DisplayedQuality` of ``svd``, shares
    PSNR and SSIM measurements across calls.
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
    if name in ("psnr", "ssim"):
        quality = _displayed(svd, image, quality)
        return quality.rank_for_psnr(value) if name == "psnr" else quality.rank_for_ssim(value)
    if name == "percent":
        return rank_for_fraction(svd, value)
    if name == "bytes":
        return rank_for_storage(svd, bytes=int(value), storage=storage, image=image)
    if name == "ratio":
        return rank_for_storage(svd, ratio=value, storage=storage, image=image)
    return rank_for_storage(svd, bpp=value, storage=storage, image=image)


def criterion_value(
    svd: ImageSVD,
    criterion: Criterion,
    rank: int,
    *,
    image: ArrayLike | None = None,
    storage: Storage = "values",
    quality: DisplayedQuality | None = None,
) -> float:
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
        quality = _displayed(svd, image, quality)
        return quality.psnr(rank) if name == "psnr" else quality.ssim(rank)
    if name == "percent":
        return 100.0 * rank / svd.full_rank
    if name == "denoise":
        return float(np.atleast_2d(svd.s)[:, rank - 1].max())
    nbytes = (
        svdz_bytes(svd, rank, image=image) if storage == "svdz" else factor_bytes(svd.shape, rank)
    )
    if name == "bytes":
        return float(nbytes)
    if name == "bpp":
        return metrics.bits_per_pixel(nbytes, svd.shape)
    return metrics.compression_ratio(int(np.prod(svd.shape)), nbytes)


def _displayed(
    svd: ImageSVD, image: ArrayLike | None, quality: DisplayedQuality | None
) -> DisplayedQuality:
    if quality is None:
        return DisplayedQuality.shared(svd, image)
    if quality.svd is not svd:
        raise ValueError("quality must measure the same decomposition (DisplayedQuality(svd)).")
    return quality


def criterion_unit(name: str, *, storage: Storage = "values") -> str:
    """What :func:`criterion_value` measures for a criterion, as a label.

    Examples
    --------
    >>> criterion_unit("ratio", storage="svdz")
    'ratio to raw 8-bit (.svdz file)'
    """
    if name in _BUDGETS:
        what = "float32 factors" if storage == "values" else ".svdz file"
        return {
            "ratio": f"ratio to raw 8-bit ({what})",
            "bytes": f"bytes ({what})",
            "bpp": f"bits per pixel ({what})",
        }[name]
    return {
        "error": "relative error",
        "energy": "energy kept",
        "psnr": "PSNR (dB)",
        "ssim": "SSIM",
        "percent": "% of the short side",
        "knee": "relative error",
        "denoise": "smallest kept singular value",
    }[name]


@dataclass(frozen=True)
class ChannelThreshold:
    """Gavish-Donoho threshold of one channel and the singular values on either side."""

    rank: int
    threshold: float
    kept: float
    dropped: float | None


@dataclass(frozen=True)
class Choice:
    """The rank a criterion picks and the numbers that justify it (see :func:`explain`).

    Attributes
    ----------
    criterion : Criterion
    rank : int
    unit : str
        What ``value`` measures (:func:`criterion_unit`).
    value : float
        The measure at ``rank``.
    neighbour : tuple of (int, float, str) or None
        The rank next to the answer on the failing side (``rank + 1`` for
        budgets, ``rank - 1`` for targets), its value and why it is shown
        (``'does not fit'``, ``'falls short'``, ``'for comparison'``).
    thresholds : tuple of ChannelThreshold
        For ``denoise``: the threshold of each channel.
    """

    criterion: Criterion
    rank: int
    unit: str
    value: float
    neighbour: tuple[int, float, str] | None
    thresholds: tuple[ChannelThreshold, ...] = ()


def explain(
    svd: ImageSVD,
    criterion: Criterion,
    *,
    image: ArrayLike | None = None,
    storage: Storage = "values",
    rank: int | None = None,
) -> Choice:
    """The rank ``criterion`` picks, its value there, and the neighbouring rank's.

    Parameters
    ----------
    svd : ImageSVD
    criterion : Criterion
    image : array_like, optional
        The original (needed for PSNR, SSIM and .svdz sizes with a truncated SVD).
    storage : {'values', 'svdz'}, optional
        How budgets count bytes (:func:`svdimage.rank_selection.rank_for_storage`).
    rank : int, optional
        The criterion's answer when it is already known (``decompose_for``'s
        ``answers``), which saves searching for it again.
    """
    # The measurements decompose_for made on its way, when it made this svd.
    quality = DisplayedQuality.shared(svd, image) if criterion.name in ("psnr", "ssim") else None
    k = rank
    if k is None:
        k = resolve_criterion(svd, criterion, image=image, storage=storage, quality=quality)

    def value(rank: int) -> float:
        return criterion_value(svd, criterion, rank, image=image, storage=storage, quality=quality)

    unit = criterion_unit(criterion.name, storage=storage)
    if criterion.name == "denoise":
        ranks = optimal_hard_threshold_rank(svd)
        per_channel = ranks if isinstance(ranks, tuple) else (ranks,)
        s_all = np.atleast_2d(svd.s)
        thresholds = tuple(
            ChannelThreshold(
                rank=r,
                threshold=tau,
                kept=float(s_all[c, r - 1]),
                dropped=float(s_all[c, r]) if r < svd.max_rank else None,
            )
            for c, (r, tau) in enumerate(zip(per_channel, optimal_hard_threshold(svd)))
        )
        return Choice(criterion, k, unit, value(k), None, thresholds)
    budget = criterion.name in _BUDGETS
    other = k + 1 if budget else k - 1
    neighbour = None
    # A budget's neighbour is measured from the shape or the codec: any rank of the image.
    if 1 <= other <= (svd.full_rank if budget else svd.max_rank):
        why = "does not fit" if budget else "falls short"
        if criterion.name in ("knee", "percent"):
            why = "for comparison"
        neighbour = (other, value(other), why)
    return Choice(criterion, k, unit, value(k), neighbour)


#: Criteria that depend on the whole spectrum, so that answering one needs the complete SVD:
#: Gavish-Donoho's threshold (the median singular value). The knee is found from the top ranks,
#: with a bound that proves no later rank scores higher (rank_selection.knee_rank).
WHOLE_SPECTRUM_CRITERIA = ("denoise",)

#: Criteria answered from the image's shape (and, for ``.svdz`` budgets, the codec's files of
#: the image) without any singular value: storage budgets and a percentage of the short side.
SHAPE_CRITERIA = ("ratio", "bytes", "bpp", "percent")


def rank_without_spectrum(
    image: ArrayLike, criterion: Criterion, *, storage: Storage = "values"
) -> int:
    """The rank a criterion of :data:`SHAPE_CRITERIA` picks, before any SVD.

    Equal to :func:`resolve_criterion` on any decomposition that holds the
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

    Criteria of the shape (:data:`SHAPE_CRITERIA`: budgets, a percentage)
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
        The caller only explains the criteria (:func:`explain` with the
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


#: What :func:`recommend` answers, as (label, criterion).
RECOMMENDED_TARGETS = (
    [("knee", Criterion("knee"))]
    + [(f"energy {100 * f:g}%", Criterion("energy", f)) for f in (0.9, 0.99, 0.999)]
    + [(f"PSNR {db:g} dB", Criterion("psnr", db)) for db in (30.0, 35.0, 40.0)]
    + [(f"SSIM {v:.2f}", Criterion("ssim", v)) for v in (0.90, VISUALLY_LOSSLESS_SSIM)]
)


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
    # Every PSNR and SSIM measured once, and not again when decompose_for has measured them.
    quality = DisplayedQuality.shared(svd, image)
    quality.keep_statistics = True  # up to a dozen SSIM measurements below
    picked = []
    with _progress.task("recommending ranks", len(RECOMMENDED_TARGETS), unit="targets") as step:
        for label, criterion in RECOMMENDED_TARGETS:
            try:
                k = resolve_criterion(svd, criterion, image=quality.reference, quality=quality)
            except ValueError:  # not reached by a held rank
                k = None
            if k is not None:
                ssim = quality.ssim(k)  # measures the PSNR on the way
                picked.append((label, k, quality.psnr(k), ssim))
            step.advance()
    quality.release_statistics()  # not held while the files are coded
    # The .svdz files of every row at once: their entropy coding in parallel threads.
    with _progress.task(f"sizing {len(picked)} .svdz files"):
        sizes = svdz_sizes(quality.reference if image is None else image)
        real = sizes.many([k for _, k, _, _ in picked])
    rows = []
    for (label, k, psnr, ssim), nbytes_svdz in zip(picked, real):
        nbytes = factor_bytes(svd.shape, k)
        rows.append(
            Recommendation(
                criterion=label,
                rank=k,
                relative_error=float(svd.relative_error(k)),
                psnr=psnr,
                ssim=ssim,
                factor_bytes_float32=nbytes,
                bits_per_pixel=metrics.bits_per_pixel(nbytes, svd.shape),
                svdz_bytes=nbytes_svdz,
                svdz_bits_per_pixel=metrics.bits_per_pixel(nbytes_svdz, svd.shape),
            )
        )
    return rows

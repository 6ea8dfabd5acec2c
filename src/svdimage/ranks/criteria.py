"""Rank criteria written as text (``psnr=35``, ``knee``), what they pick, and why.

The language shared by ``svdimage sweep --ranks``, ``reconstruct --rank``,
``compress --rank`` and ``choose``: a *rank item* is either a whole number (a
rank) or a criterion ``name=value`` (``error``, ``energy``, ``psnr``, ``ssim``,
``ratio``, ``bytes``, ``bpp``, ``percent``) or a bare ``knee`` / ``denoise``.
:func:`is_criterion` is the one rule that tells the two apart: an item that
starts with a letter is a criterion.

:func:`explain` gives the rank a criterion picks with the numbers that justify
it (what ``choose`` prints); :func:`recommend` the table of common targets.
How much SVD a set of criteria needs is :func:`svdimage.ranks.growth.decompose_for`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, metrics
from svdimage._validation import is_chunked
from svdimage.denoising import optimal_hard_threshold, optimal_hard_threshold_rank
from svdimage.image_svd import ImageSVD
from svdimage.ranks.selection import (
    MeasurementCache,
    knee_rank,
    rank_for_energy,
    rank_for_error,
    rank_for_fraction,
    rank_for_storage,
)
from svdimage.ranks.storage import factor_bytes, svdz_bytes

__all__ = [
    "Criterion",
    "CriterionKind",
    "KINDS",
    "parse_criterion",
    "is_criterion",
    "parse_rank_items",
    "parse_rank_item",
    "resolve_criterion",
    "criterion_value",
    "criterion_unit",
    "criterion_label",
    "Choice",
    "Neighbour",
    "ChannelThreshold",
    "explain",
    "Recommendation",
    "recommend",
    "smallest_visually_lossless",
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

#: What a criterion needs to be answered, cheapest first.
Needs = Literal["shape", "singular values", "whole spectrum", "displayed images"]


@dataclass(frozen=True)
class CriterionKind:
    """One kind of criterion, declared once: its name, how it is written, its unit, and what
    answering it needs.

    Attributes
    ----------
    name : str
        As written before ``=`` (``psnr``) or alone (``knee``).
    syntax : str
        How a user writes it (``psnr=DB``).
    unit : str
        What :func:`criterion_value` measures, as a label (budgets add how bytes
        are counted: :func:`criterion_unit`).
    needs : {'shape', 'singular values', 'whole spectrum', 'displayed images'}
        ``'shape'``: answered from the image's shape (and, for ``.svdz``
        budgets, the codec's files of the image) before any SVD;
        ``'singular values'``: from the top singular values; ``'whole
        spectrum'``: from every singular value (the complete SVD);
        ``'displayed images'``: from measured reconstructions (PSNR, SSIM).
    budget : bool
        A storage budget: the answer is the *largest* rank that fits.
    takes_value : bool
        Written ``name=value`` (else bare).
    """

    name: str
    syntax: str
    unit: str
    needs: Needs
    budget: bool = False
    takes_value: bool = True


#: Every criterion kind, by name: the one table the rank language is read from.
KINDS: dict[str, CriterionKind] = {
    kind.name: kind
    for kind in (
        CriterionKind("error", "error=E", "relative error", "singular values"),
        CriterionKind("energy", "energy=F", "energy kept", "singular values"),
        CriterionKind("psnr", "psnr=DB", "PSNR (dB)", "displayed images"),
        CriterionKind("ssim", "ssim=V", "SSIM", "displayed images"),
        CriterionKind("ratio", "ratio=R", "ratio to raw 8-bit", "shape", budget=True),
        CriterionKind("bytes", "bytes=N", "bytes", "shape", budget=True),
        CriterionKind("bpp", "bpp=B", "bits per pixel", "shape", budget=True),
        CriterionKind("percent", "percent=P", "% of the short side", "shape"),
        CriterionKind("knee", "knee", "relative error", "singular values", takes_value=False),
        CriterionKind(
            "denoise",
            "denoise",
            "smallest kept singular value",
            "whole spectrum",
            takes_value=False,
        ),
    )
}


def _known() -> str:
    return ", ".join(kind.syntax for kind in KINDS.values())


@dataclass(frozen=True)
class Criterion:
    """A target such as ``psnr=35``: its name and value (``None`` for knee/denoise).

    The name must be one of :data:`KINDS` (lower case), with a value exactly
    when its kind takes one; anything else is refused here, with the known
    names, so that no later step answers a criterion it does not know.

    Examples
    --------
    >>> Criterion("psnr", 35).kind.needs
    'displayed images'
    >>> Criterion("PSNR", 35)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown rank criterion 'PSNR'; use one of error=E, energy=F, psnr=DB, ...
    """

    name: str
    value: float | None = None

    def __post_init__(self) -> None:
        kind = KINDS.get(self.name) if isinstance(self.name, str) else None
        if kind is None:
            raise ValueError(f"unknown rank criterion {self.name!r}; use one of {_known()}.")
        if kind.takes_value and self.value is None:
            raise ValueError(f"criterion {self.name!r} needs a value: {kind.syntax}.")
        if not kind.takes_value and self.value is not None:
            raise ValueError(f"criterion {self.name!r} takes no value; got {self.value!r}.")

    @property
    def kind(self) -> CriterionKind:
        """Its :class:`CriterionKind`."""
        return KINDS[self.name]


def is_criterion(item: str) -> bool:
    """True when a rank item is a criterion (starts with a letter), False for a number."""
    return item.strip()[:1].isalpha()


def parse_criterion(text: str) -> Criterion:
    """Parse ``name=value`` (``error``, ``energy``, ``psnr``, ``ssim``, ``ratio``,
    ``bytes``, ``bpp``, ``percent``) or a bare ``knee`` / ``denoise``."""
    name, _, value = text.strip().partition("=")
    name = name.strip().lower()
    if name not in KINDS:
        raise ValueError(f"unknown rank criterion {text!r}; use one of {_known()}.")
    if not KINDS[name].takes_value:
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
    cache: MeasurementCache | None = None,
) -> int:
    """The rank a criterion picks (for color denoising: the largest channel rank).

    ``storage`` says how ``ratio``, ``bytes`` and ``bpp`` count bytes (see
    :func:`~svdimage.ranks.selection.rank_for_storage`). ``cache``, a
    :class:`~svdimage.ranks.selection.MeasurementCache` of the image, shares
    PSNR, SSIM and ``.svdz`` measurements across calls.
    """
    cache = _cache(image, cache)
    name, value = criterion.name, criterion.value
    if name == "knee":
        return knee_rank(svd)
    if name == "denoise":
        rank = optimal_hard_threshold_rank(svd)
        return max(rank) if isinstance(rank, tuple) else rank
    assert value is not None  # every other kind takes a value (Criterion checks it)
    if name == "error":
        return rank_for_error(svd, value)
    if name == "energy":
        return rank_for_energy(svd, value)
    if name in ("psnr", "ssim"):
        quality = cache.quality(svd)
        return quality.rank_for_psnr(value) if name == "psnr" else quality.rank_for_ssim(value)
    if name == "percent":
        return rank_for_fraction(svd, value)
    budgets = {"bytes": {"max_bytes": int(value)}, "ratio": {"ratio": value}, "bpp": {"bpp": value}}
    if name in budgets:
        return rank_for_storage(svd, storage=storage, cache=cache, **budgets[name])  # type: ignore[arg-type]
    raise AssertionError(f"criterion kind {name!r} has no rule")  # pragma: no cover


def criterion_value(
    svd: ImageSVD,
    criterion: Criterion,
    rank: int,
    *,
    image: ArrayLike | None = None,
    storage: Storage = "values",
    cache: MeasurementCache | None = None,
) -> float:
    """What ``criterion`` measures at ``rank``: the number that explains a choice.

    error: relative error; energy: fraction kept; psnr, ssim: of the displayed
    image; ratio, bytes, bpp: of the float32 factors (or, with
    ``storage='svdz'``, of the ``.svdz`` file); percent: of the short side;
    knee: relative error; denoise: the smallest singular value kept.
    """
    cache = _cache(image, cache)
    name = criterion.name
    if name in ("error", "knee"):
        return float(svd.relative_error(rank))
    if name == "energy":
        return float(svd.energy(rank))
    if name in ("psnr", "ssim"):
        quality = cache.quality(svd)
        return quality.psnr(rank) if name == "psnr" else quality.ssim(rank)
    if name == "percent":
        return 100.0 * rank / svd.full_rank
    if name == "denoise":
        return float(np.atleast_2d(svd.s)[:, rank - 1].max())
    if storage == "svdz":
        nbytes = svdz_bytes(svd, rank, sizes=cache.sizes(svd))
    else:
        nbytes = factor_bytes(svd.shape, rank)
    if name == "bytes":
        return float(nbytes)
    if name == "bpp":
        return metrics.bits_per_pixel(nbytes, svd.shape)
    return metrics.compression_ratio(int(np.prod(svd.shape)), nbytes)


def _cache(image: ArrayLike | None, cache: MeasurementCache | None) -> MeasurementCache:
    """The caller's cache (whose image must be ``image``, when both are given), or a new
    one for this call alone."""
    if cache is None:
        return MeasurementCache(image)
    if image is not None and cache.image is not None and image is not cache.image:
        raise ValueError("cache must measure the same image object (MeasurementCache(image)).")
    if cache.image is None and image is not None:
        cache.image = image
    return cache


def criterion_unit(name: str, *, storage: Storage = "values") -> str:
    """What :func:`criterion_value` measures for a criterion, as a label.

    Examples
    --------
    >>> criterion_unit("ratio", storage="svdz")
    'ratio to raw 8-bit (.svdz file)'
    """
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown rank criterion {name!r}; use one of {_known()}.")
    if kind.budget:
        return f"{kind.unit} ({'float32 factors' if storage == 'values' else '.svdz file'})"
    return kind.unit


@dataclass(frozen=True)
class ChannelThreshold:
    """Gavish-Donoho threshold of one channel and the singular values on either side."""

    rank: int
    threshold: float
    kept: float
    dropped: float | None


@dataclass(frozen=True)
class Neighbour:
    """The rank next to a criterion's answer, on the failing side (:class:`Choice`).

    Attributes
    ----------
    rank : int
        ``rank + 1`` of the answer for budgets, ``rank - 1`` for targets.
    value : float
        What the criterion measures there.
    why : str
        Why it is shown: ``'does not fit'``, ``'falls short'`` or ``'for comparison'``.
    """

    rank: int
    value: float
    why: str


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
    neighbour : Neighbour or None
        The rank next to the answer on the failing side, its value and why it
        is shown.
    thresholds : tuple of ChannelThreshold
        For ``denoise``: the threshold of each channel.
    """

    criterion: Criterion
    rank: int
    unit: str
    value: float
    neighbour: Neighbour | None
    thresholds: tuple[ChannelThreshold, ...] = ()


def explain(
    svd: ImageSVD,
    criterion: Criterion,
    *,
    image: ArrayLike | None = None,
    storage: Storage = "values",
    rank: int | None = None,
    cache: MeasurementCache | None = None,
) -> Choice:
    """The rank ``criterion`` picks, its value there, and the neighbouring rank's.

    Parameters
    ----------
    svd : ImageSVD
    criterion : Criterion
    image : array_like, optional
        The original (needed for PSNR, SSIM and .svdz sizes with a truncated SVD).
    storage : {'values', 'svdz'}, optional
        How budgets count bytes (:func:`svdimage.ranks.selection.rank_for_storage`).
    rank : int, optional
        The criterion's answer when it is already known (``decompose_for``'s
        ``answers``), which saves searching for it again.
    cache : MeasurementCache, optional
        The measurements made on the way (pass the one given to
        :func:`svdimage.ranks.growth.decompose_for`), so none is made twice.
    """
    cache = _cache(image, cache)
    k = rank
    if k is None:
        k = resolve_criterion(svd, criterion, storage=storage, cache=cache)

    def value(rank: int) -> float:
        return criterion_value(svd, criterion, rank, storage=storage, cache=cache)

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
    budget = criterion.kind.budget
    other = k + 1 if budget else k - 1
    neighbour = None
    # A budget's neighbour is measured from the shape or the codec: any rank of the image.
    if 1 <= other <= (svd.full_rank if budget else svd.max_rank):
        why = "does not fit" if budget else "falls short"
        if criterion.name in ("knee", "percent"):
            why = "for comparison"
        neighbour = Neighbour(other, value(other), why)
    return Choice(criterion, k, unit, value(k), neighbour)


#: Criteria that depend on the whole spectrum, so that answering one needs the complete SVD:
#: Gavish-Donoho's threshold (the median singular value). The knee is found from the top ranks,
#: with a bound that proves no later rank scores higher (selection.knee_rank).
WHOLE_SPECTRUM_CRITERIA = tuple(n for n, k in KINDS.items() if k.needs == "whole spectrum")

#: Criteria answered from the image's shape (and, for ``.svdz`` budgets, the codec's files of
#: the image) without any singular value: storage budgets and a percentage of the short side.
SHAPE_CRITERIA = tuple(n for n, k in KINDS.items() if k.needs == "shape")


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
    svdz_bytes: int | None
    svdz_bits_per_pixel: float | None
    svdz_psnr: float | None = None  # the newest field: a default keeps older callers working


def recommend(
    svd: ImageSVD, *, image: ArrayLike | None = None, cache: MeasurementCache | None = None
) -> list[Recommendation]:
    """The ranks that common targets pick, with quality and storage for each.

    Storage is given twice: as float32 factors and as a real global ``.svdz``
    file of that rank (:func:`svdz_bytes`), with that file's own PSNR (its
    8-bit decode against the image, ``svdz_psnr``: mostly below the rank's
    ``psnr``, as its factors are quantized; see
    :meth:`svdimage.codec.GlobalSizes.decoded_psnrs`); both are ``None`` for an
    image read out of core (a Dask array), whose files are not written whole.

    Targets: the knee; 90, 99 and 99.9 % of the energy; PSNR 30, 35 and 40 dB;
    SSIM 0.90 and ``VISUALLY_LOSSLESS_SSIM`` (0.95). Targets no held rank
    reaches are left out. ``cache`` shares what :func:`svdimage.ranks.growth.decompose_for`
    measured on the way.
    """
    cache = _cache(image, cache)
    # Every PSNR and SSIM measured once, and not again when decompose_for has measured them.
    quality = cache.quality(svd)
    quality.keep_statistics = True  # up to a dozen SSIM measurements below
    picked = []
    with _progress.task("recommending ranks", len(RECOMMENDED_TARGETS), unit="targets") as step:
        for label, criterion in RECOMMENDED_TARGETS:
            try:
                k = resolve_criterion(svd, criterion, cache=cache)
            except ValueError:  # not reached by a held rank
                k = None
            if k is not None:
                ssim = quality.ssim(k)  # measures the PSNR on the way
                picked.append((label, k, quality.psnr(k), ssim))
            step.advance()
    quality.release_statistics()  # not held while the files are coded
    # The .svdz files of every row at once: their entropy coding in parallel threads.
    # Steps of their own: the codec's factorizations, then the files' coding (counted).
    real: list[int | None] = [None] * len(picked)
    file_psnrs: list[float | None] = [None] * len(picked)
    if not is_chunked(cache.image):
        sizes = cache.sizes(svd)
        ranks = [k for _, k, _, _ in picked]
        file_psnrs = list(sizes.decoded_psnrs(ranks))  # codes the files, and keeps their sizes
        real = list(sizes.many(ranks))
    rows = []
    for (label, k, psnr, ssim), nbytes_svdz, file_psnr in zip(picked, real, file_psnrs):
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
                svdz_bits_per_pixel=None
                if nbytes_svdz is None
                else metrics.bits_per_pixel(nbytes_svdz, svd.shape),
                svdz_psnr=file_psnr,
            )
        )
    return rows


def smallest_visually_lossless(rows: Sequence[Recommendation]) -> Recommendation | None:
    """The row of :func:`recommend` with the smallest rank whose SSIM reaches
    :data:`VISUALLY_LOSSLESS_SSIM`, or ``None`` when none does: the rank ``choose``
    marks as the answer to "which rank?"."""
    lossless = [row for row in rows if row.ssim >= VISUALLY_LOSSLESS_SSIM]
    return min(lossless, key=lambda row: row.rank) if lossless else None

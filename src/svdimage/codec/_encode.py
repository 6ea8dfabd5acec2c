"""The encoder's front door: options, targets, files.

Package-internal; the public functions are re-exported by :mod:`svdimage.codec`.
:func:`encode` checks the options and hands the image to a format's trials:
format 2 (:class:`svdimage.codec._patches.PatchTrials`, the default) or
:class:`svdimage.codec._tiles.Trials` (the global SVD as format 3.0; per-tile
SVDs or RGB tiles as format 1.1). Rate control picks the quantizer step, never the
target: ``quality`` maps 1-100 monotonically to a step
(:func:`~svdimage.codec._tiles.quality_to_step`); ``psnr`` searches over the
quality, ``max_bytes`` and ``bpp`` over integer step levels from a first guess
(both in :mod:`svdimage.codec._rate`); the trials share the planes and their
SVDs, so only quantization and entropy coding are repeated.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress
from svdimage._deprecation import renamed_argument
from svdimage._fileutil import atomic_path
from svdimage._validation import as_image_array, check_rank
from svdimage.codec._format import GLOBAL_VERSION, PATCH_SIDES
from svdimage.codec._patches import PatchTrials
from svdimage.codec._rate import (
    Guess,
    cheapest,
    level_for_budget,
    level_to_step,
    quality_for_psnr,
    side_for_budget,
)
from svdimage.codec._tiles import (
    CHROMA_STEP_FACTOR,
    DC_STEP_DIVISOR,
    RANK_RULE,
    Trials,
    quality_to_step,
)

__all__ = [
    "encode",
    "encode_for_sizes",
    "save",
    "quality_to_step",
    "RANK_RULE",
    "CHROMA_STEP_FACTOR",
    "DC_STEP_DIVISOR",
]


def encode(
    image: ArrayLike,
    *,
    quality: float | None = None,
    rank: int | None = None,
    psnr: float | None = None,
    max_bytes: int | None = None,
    bpp: float | None = None,
    step: float | None = None,
    tile: int | Literal["auto"] | None = "auto",
    color: Literal["ycbcr", "rgb"] = "ycbcr",
    chroma: Literal["420", "444"] = "420",
    version: int = 3,
    max_components: int | None = None,
    size: int | None = None,
) -> bytes:
    """Compress an image to ``.svdz`` bytes.

    By default a format-2.3 file: each plane's 4x4 or 8x8 patches (whichever
    codes this image better at this target) are the rows of a matrix whose
    truncated SVD (one shared basis, a few coefficients per patch) is
    quantized and context-coded (:mod:`svdimage.codec._patches`), every other
    patch less its prediction from its four neighbours
    (:mod:`svdimage.codec._prediction`).
    ``tile=None`` writes the global SVD of each plane (format 3.0,
    range-coded: ``rank`` is then the rank of the image), and ``version=1``
    the per-tile SVDs of format 1.1, for readers older than format 2.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
        Values in [0, 1] (integers are scaled by their range).
    quality : float, optional
        1-100, monotone (default 75 when no other target is given).
    rank : int, optional
        The global rank (with ``tile=None``), 1 to ``min(M, N)``: alone, the
        file keeps exactly this many luma components (the step is made fine
        enough); with a quality or target it is a cap.
    psnr : float, optional
        Smallest file whose decoded image reaches this PSNR (dB).
    max_bytes, bpp : optional
        Best file of at most this many bytes / bits per pixel (the step is
        searched in 1 % increments, so the file lands within a few percent).
        ``max_bytes`` is the package's one name for a byte budget.
    step : float, optional
        The luma quantizer step itself, instead of a quality (advanced).
    tile : int, 'auto' or None, optional
        Patch side (4, 8 or 16; format 1: tile side 4-256), ``None`` for one
        global SVD per plane, or ``'auto'`` (the default): the file of patch
        side 4 and of 8 that costs less, by squared error plus ``KEEP_FACTOR
        q**2`` per bit (the slope at which components are kept); for a PSNR
        target the smaller. It encodes twice; for a byte budget, one trial
        per side at its first guess decides by the same cost whose step is
        searched. Format 1, RGB planes and ``max_components`` use 8.
    color : {'ycbcr', 'rgb'}, optional
        Color planes: YCbCr (BT.601, as JPEG) or plain RGB channels (``'rgb'``
        writes format 1).
    chroma : {'420', '444'}, optional
        Chroma resolution for YCbCr: half (4:2:0) or full.
    version : {3, 2, 1}, optional
        The newest format to write. 3 (default): patches as 2.3 (chroma means
        refined where they need it, every other patch predicted); the global
        SVD as 3.0. 2: patches as 2.0 and the global SVD as 1.1, for readers
        older than this package's 2.2, 2.3 and 3.0 (:func:`svdimage.codec.save_tiled`'s
        ``version`` is the same choice for tiled files). 1: format 1.1 for
        everything (with ``tile`` given, the per-tile SVD).
    max_components : int, optional
        With ``tile`` given: a cap on the components of the patch basis (1 to
        ``tile**2``; format 1: per tile, 1 to the tile side). ``rank=`` meant
        this too before 0.2 (with a ``DeprecationWarning`` until 0.3).
    size : int, optional
        Deprecated spelling of ``max_bytes`` (until 0.3).

    Returns
    -------
    data : bytes

    Raises
    ------
    ValueError
        For bad options, or a target no quality reaches.
    TypeError
        For a rank or tile that is not an integer.
    """
    max_bytes = renamed_argument(max_bytes, size, new="max_bytes", old="size", function="encode")
    if rank is not None and tile is not None:
        if max_components is not None:
            raise ValueError("rank is the global rank (tile=None); give max_components alone.")
        warnings.warn(
            "encode(rank=K) with tiles is deprecated and will stop working in 0.3: rank is the "
            "global rank (tile=None); a cap on the components of the patches is max_components.",
            DeprecationWarning,
            stacklevel=2,
        )
        rank, max_components = None, rank
    array = as_image_array(image)
    cap = rank if tile is None else max_components
    targets = [
        name
        for name, value in (
            ("quality", quality),
            ("step", step),
            ("psnr", psnr),
            ("max_bytes", max_bytes),
            ("bpp", bpp),
        )
        if value is not None
    ]
    if len(targets) > 1:
        raise ValueError(
            f"give one of quality, step, psnr, max_bytes or bpp; got {', '.join(targets)}."
        )
    if step is not None and not (math.isfinite(step) and 1e-4 <= step <= 10):
        raise ValueError(f"step must be between 1e-4 and 10; got {step!r}.")
    target: dict[str, Any] = dict(
        quality=quality, step=step, psnr=psnr, max_bytes=max_bytes, bpp=bpp
    )
    sides = _patch_sides(tile, array, color=color, version=version, capped=cap is not None)
    if len(sides) == 1:
        trials = _trials(
            array, rank=cap, tile=sides[0], color=color, chroma=chroma, version=version
        )
        return _encode_target(trials, array, rank=rank, tile=sides[0], **target)

    def trials_of(side: int) -> PatchTrials:
        made = _trials(
            array, rank=cap, tile=side, color=color, chroma=chroma, version=version, compare=True
        )
        assert isinstance(made, PatchTrials)
        return made

    if max_bytes is not None or bpp is not None:
        budget = _budget(max_bytes, bpp, array.shape)
        # tile="auto" under a byte budget: one trial per side decides which side's step is
        # searched (:func:`side_for_budget`).
        trials, guess = side_for_budget(trials_of, sides, budget)
        return _encode_target(trials, array, rank=rank, tile=trials.patch, guess=guess, **target)
    # tile="auto": each patch side encodes the target; the better file is kept.
    made = []
    for side in sides:
        trials = trials_of(side)
        data = _encode_target(trials, array, rank=rank, tile=side, **target)
        made.append((data, trials.squared_error(data)))
    return _better(made, psnr=psnr is not None)


#: The patch sides ``tile="auto"`` tries.
AUTO_PATCHES = (4, 8)


def _patch_sides(
    tile: int | str | None, array: np.ndarray, *, color: str, version: int, capped: bool
) -> list[Any]:
    """The tile or patch sides to encode: ``tile`` itself, or for ``"auto"`` the patch sides
    of :data:`AUTO_PATCHES` (8 alone where patches do not apply, format 1 and RGB planes, or
    with a cap on the components, which is a cap on an 8x8 basis)."""
    if not isinstance(tile, str):
        return [tile]
    if tile != "auto":
        raise ValueError(f"tile must be None, 'auto' or an int in 4..256; got {tile!r}.")
    patches = version >= 2 and (color == "ycbcr" or array.ndim == 2)
    return list(AUTO_PATCHES) if patches and not capped else [8]


def _better(made: list[tuple[bytes, float]], *, psnr: bool) -> bytes:
    """The better of files encoded with different patch sides: for a PSNR target the
    smaller; otherwise the one of :func:`cheapest`."""
    if psnr:
        return min(made, key=lambda item: len(item[0]))[0]
    return made[cheapest(made)][0]


def _budget(max_bytes: int | None, bpp: float | None, shape: tuple[int, ...]) -> float:
    """The byte budget of ``max_bytes`` or of ``bpp`` for an image of ``shape``."""
    if max_bytes is not None:
        return max_bytes
    assert bpp is not None
    return bpp * shape[0] * shape[1] / 8


def _encode_target(
    trials: Trials | PatchTrials,
    array: np.ndarray,
    *,
    quality: float | None,
    step: float | None,
    psnr: float | None,
    max_bytes: int | None,
    bpp: float | None,
    rank: int | None,
    tile: int | None,
    guess: Guess | None = None,
) -> bytes:
    """The file of one target (at most one given; none: quality 75) from ``trials``
    (``guess``: the first guess of a byte budget's search, when already made)."""
    if step is not None:
        return trials.at_step(step)
    if (
        rank is not None
        and isinstance(trials, Trials)
        and tile is None
        and quality is None
        and (psnr is None and max_bytes is None and bpp is None)
    ):
        return trials.at_rank(rank)
    if quality is not None or (psnr is None and max_bytes is None and bpp is None):
        return trials.at_quality(75.0 if quality is None else quality)
    goal = (
        f"PSNR {psnr:g} dB"
        if psnr is not None
        else f"{max_bytes:,} bytes"
        if max_bytes
        else f"{bpp:g} bpp"
    )
    with _progress.task(f"searching the step for {goal}", unit="files encoded") as search:
        tried: set[float] = set()

        def trial(knob: float, at: Callable[[float], bytes]) -> bytes:
            if knob not in tried:
                tried.add(knob)
                search.advance()
            return at(knob)

        if psnr is not None:
            quality = quality_for_psnr(array, lambda q: trial(q, trials.at_quality), psnr)
            return trial(quality, trials.at_quality)
        assert bpp is not None or max_bytes is not None
        budget = _budget(max_bytes, bpp, array.shape)
        level = level_for_budget(
            trials, budget, lambda n: len(trial(level_to_step(n), trials.at_step)), guess=guess
        )
        if level is None:
            raise ValueError(
                f"even the coarsest step does not fit {int(budget):,} bytes; give a larger budget."
            )
        return trial(level_to_step(level), trials.at_step)


def _trials(
    array: np.ndarray,
    *,
    rank: int | None,
    tile: int | None,
    color: str,
    chroma: str,
    version: int = 3,
    compare: bool = False,
) -> Trials | PatchTrials:
    """Check the options shared by every target; the image's trials under them
    (``compare``: patch trials that measure their files' errors, for :func:`_better`)."""
    if version not in (1, 2, 3):
        raise ValueError(f"version must be 1, 2 or 3; got {version!r}.")
    if tile is not None and (
        isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or not 4 <= tile <= 256
    ):
        raise ValueError(f"tile must be None or an int in 4..256; got {tile!r}.")
    tile = None if tile is None else int(tile)
    if color not in ("ycbcr", "rgb") or chroma not in ("420", "444"):
        raise ValueError(
            f"color must be 'ycbcr' or 'rgb' and chroma '420' or '444'; got {color!r}, {chroma!r}."
        )
    patches = version >= 2 and tile is not None and (color == "ycbcr" or array.ndim == 2)
    if patches and tile not in PATCH_SIDES:
        raise ValueError(f"patch side (tile, --tiles) must be 4, 8 or 16; got {tile}.")
    if rank is not None:
        largest = min(array.shape[:2]) if tile is None else tile * tile if patches else tile
        rank = check_rank(
            rank,
            largest,
            shape=array.shape if tile is None else None,
            name="rank"
            if tile is None
            else f"max_components (of the {tile}x{tile} patch basis)"
            if patches
            else f"max_components (per {tile}x{tile} tile)",
        )
    if patches and tile is not None:
        return PatchTrials(
            array,
            patch=int(tile),
            max_rank=rank,
            chroma=chroma,
            newest=version == 3,
            measure_error=compare,
        )
    return Trials(
        array,
        max_rank=rank,
        tile=tile,
        color=color,
        chroma=chroma,
        version=GLOBAL_VERSION if version == 3 else (1, 1),
    )


def encode_for_sizes(
    image: ArrayLike, sizes: Sequence[float], **options: Any
) -> list[bytes | None]:
    """The best ``.svdz`` file of at most each of ``sizes`` bytes, from shared trials.

    Each file is byte for byte the one ``encode(image, max_bytes=n, **options)``
    gives (within 3 % below its budget), but the patch SVDs (or tile SVDs) are
    computed once for all the sizes (with ``tile='auto'``, both patch sides' at once:
    twice the memory of one ``encode``'s analysis). ``None`` where even the coarsest
    step is larger.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
    sizes : sequence of float
        Byte budgets (positive).
    **options
        As :func:`encode`, except the targets (``quality``, ``psnr``, ...).

    Returns
    -------
    list of bytes or None
    """
    unknown = set(options) - {"rank", "max_components", "tile", "color", "chroma", "version"}
    if unknown:
        raise TypeError(f"encode_for_sizes() got unexpected options: {', '.join(sorted(unknown))}.")
    options = {"tile": "auto", "color": "ycbcr", "chroma": "420", "version": 3, **options}
    cap = options.pop("rank", None) if options["tile"] is None else None
    cap = options.pop("max_components", None) if cap is None else cap
    options.pop("rank", None)
    array = as_image_array(image)
    sides = _patch_sides(
        options.pop("tile"),
        array,
        color=options["color"],
        version=options["version"],
        capped=cap is not None,
    )
    if any(not budget > 0 for budget in sizes):
        raise ValueError(f"max_bytes and bpp must be positive; got budgets {list(sizes)!r}.")
    if len(sides) == 1:
        trials = _trials(array, rank=cap, tile=sides[0], **options)
        return _files_for_sizes(lambda budget: (trials, None), sizes)
    # tile="auto": both sides' trials are held, and each budget's side is chosen as
    # encode() chooses it.
    held: dict[int, PatchTrials] = {}
    for side in sides:
        made = _trials(array, rank=cap, tile=side, compare=True, **options)
        assert isinstance(made, PatchTrials)
        held[side] = made
    return _files_for_sizes(lambda budget: side_for_budget(held.__getitem__, sides, budget), sizes)


def _files_for_sizes(
    trials_for: Callable[[float], tuple[Trials | PatchTrials, Guess | None]],
    sizes: Sequence[float],
) -> list[bytes | None]:
    """Each budget's file (``None`` where none fits) from the trials ``trials_for(budget)``
    names, with the first guess of its search when that is already made."""
    files: list[bytes | None] = []
    with _progress.task(
        f"searching the steps for {len(sizes)} sizes", unit="files encoded"
    ) as search:
        for budget in sizes:
            trials, guess = trials_for(budget)

            def size_at(level: int, trials: Trials | PatchTrials = trials) -> int:
                search.advance()
                return len(trials.at_step(level_to_step(level)))

            level = level_for_budget(trials, budget, size_at, guess=guess)
            files.append(None if level is None else trials.at_step(level_to_step(level)))
    return files


def save(
    path: str | os.PathLike[str], image: ArrayLike, *, force: bool = False, **options: Any
) -> Path:
    """Encode ``image`` (options as :func:`encode`) and write it atomically."""
    data = encode(image, **options)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)

"""The encoder: planes, tiles, truncated SVDs, quantization, symbols.

Package-internal; the public functions are re-exported by :mod:`svdimage.codec`.
The design:

An image is turned into planes (gray; or YCbCr, BT.601 full range as in JPEG,
with chroma at half resolution, 4:2:0; or plain RGB), each plane is cut into
tiles (8x8 by default; one tile per plane is the *global* SVD learners
study), and each tile ``T`` is coded as its quantized mean plus a truncated
SVD of ``T`` less its exact mean (the mean's rounding, at most an eighth of a
step, is left uncorrected, so that the SVDs do not depend on the step):

* the singular values are folded into the vectors, ``a_i = sqrt(s_i) u_i``
  and ``b_i = sqrt(s_i) v_i``, and every entry of every vector is quantized
  with one uniform step ``q`` per plane, so the error lands where it costs
  least (a per-vector 8-bit quantizer does not);
* a component is kept when ``s_i > 8 q^2 (h + w) / 12``: quantizing ``a_i`` and
  ``b_i`` adds about ``q^2 (h + w) s_i / 12`` of squared error, keeping it
  removes ``s_i^2``, and the factor 8 was measured to give the best
  rate-distortion trade-off (benchmarks/bench_rd.py);
* the first component's vectors are coded as first differences (they are
  smooth); all integers are zigzag LEB128 varints compressed by raw LZMA2;
* the decoder smooths small steps across tile edges (a deblocking filter,
  part of the format: :func:`_deblock`).

Symbols are stored in *rank-major* order: the tile means and ranks, then
component 1 of every tile of every plane, then component 2, and so on, so
that any prefix of the payload decodes to a lower-rank image
(``decode(data, max_bytes=N)``). The container is specified in
:mod:`svdimage.codec._format` and ``docs/format.md``.

Rate control picks the quantizer step (and so the ranks), never the target:
``quality`` maps 1-100 monotonically to a step (:func:`quality_to_step`);
``psnr``, ``size`` and ``bpp`` search over the quality (:mod:`._rate`), and
their trials share the planes and tile SVDs (:class:`Trials`): only the
quantization and the entropy coding are repeated.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from svdimage import _progress
from svdimage._fileutil import atomic_path
from svdimage._linalg import svd_flip
from svdimage._validation import as_image_array, check_rank
from svdimage.codec._entropy import compress_symbols
from svdimage.codec._format import PATCH_SIDES, pack
from svdimage.codec._patches import PatchTrials
from svdimage.codec._planes import tiles as cut_tiles
from svdimage.codec._planes import to_planes
from svdimage.codec._rate import qualities_for_budgets, quality_for_psnr
from svdimage.decomposition import (
    AUTO_EXACT_RANK_FRACTION,
    GRAM_MAX_RANK_FRACTION,
    GRAM_MIN_SIDE,
    _exact_svd,
)
from svdimage.randomized import randomized_svd

__all__ = [
    "encode",
    "encode_for_sizes",
    "save",
    "quality_to_step",
    "RANK_RULE",
    "CHROMA_STEP_FACTOR",
    "DC_STEP_DIVISOR",
    "CodedPlane",
    "code_plane",
    "serialize",
]

#: Component threshold factor (see the module docstring), measured on camera at 8x8.
RANK_RULE = 8.0
#: Chroma step relative to luma. Measured (BD-PSNR against JPEG on astronaut and coffee):
#: 0.4: -2.5/-1.9 dB, 0.6: -1.5/-0.8, 0.8: -1.5/-0.8, 1.0: -1.9/-1.2, 1.5: -3.4/-2.5.
#: Finer than luma: the chroma planes have a quarter of the tiles, so their bits are cheap.
CHROMA_STEP_FACTOR = 0.7
#: Tile means are quantized with step ``q / DC_STEP_DIVISOR``. Measured (mean BD-PSNR
#: against JPEG on camera, astronaut, coffee): 2: -1.61 dB, 4: -1.00, 8: -0.76, 16: -0.80,
#: 32: -0.97 (with RANK_RULE 8; rule 6 / 12 moved it by -0.09 / +0.02 dB).
DC_STEP_DIVISOR = 8.0


def quality_to_step(quality: float) -> float:
    """The quantizer step of a quality in [1, 100]: JPEG's familiar scaling curve.

    ``step = 0.2 * scale`` with ``scale = 50 / Q`` below 50 and ``(100 - Q) / 50``
    from 50 (as libjpeg scales its tables), never below 0.004; strictly finer
    as ``Q`` grows up to 99.

    Examples
    --------
    >>> quality_to_step(50), quality_to_step(75)
    (0.2, 0.1)
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100; got {quality}.")
    scale = 50.0 / quality if quality < 50 else (100.0 - quality) / 50.0
    return max(0.2 * scale, 0.004)


@dataclass
class CodedPlane:
    dc: np.ndarray  # (tiles,) quantized means
    ranks: np.ndarray  # (tiles,)
    a: np.ndarray  # (tiles, th, R) quantized left vectors
    b: np.ndarray  # (tiles, tw, R) quantized right vectors


def code_plane(
    plane: np.ndarray,
    *,
    tile: int | None,
    step: float,
    dc_step: float,
    max_rank: int | None,
    factors: Factors | None = None,
) -> CodedPlane:
    """Quantize one plane's tile means and truncated SVDs at ``step``.

    ``factors``, from :func:`plane_factors`, are the SVDs of the plane's tiles
    with their means removed: they do not depend on the step, so rate control
    computes them once for all its trials.
    """
    if factors is None:
        factors = plane_factors(plane, tile=tile, max_rank=max_rank)
    U, s, Vt, means = factors
    th, tw = U.shape[1], Vt.shape[2]
    dc = np.rint(means / dc_step)
    ranks = np.count_nonzero(s > RANK_RULE * step**2 * (th + tw) / 12, axis=1)
    if max_rank is not None:
        ranks = np.minimum(ranks, max_rank)
    top = int(ranks.max()) if ranks.size else 0
    root = np.sqrt(s[:, :top])
    a = np.rint(U[:, :, :top] * root[:, None, :] / step)
    b = np.rint(np.swapaxes(Vt[:, :top, :], 1, 2) * root[:, None, :] / step)
    keep = np.arange(top)[None, :] < ranks[:, None]
    a *= keep[:, None, :]
    b *= keep[:, None, :]
    return CodedPlane(
        dc=dc.astype(np.int64),
        ranks=ranks.astype(np.int64),
        a=a.astype(np.int64),
        b=b.astype(np.int64),
    )


#: ``(U, s, Vt, means)`` of a plane's tiles: stacked SVDs of the mean-free tiles, and the means.
Factors = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def plane_factors(plane: np.ndarray, *, tile: int | None, max_rank: int | None) -> Factors:
    """The SVDs of a plane's tiles, less their means, with deterministic signs.

    A global plane (``tile=None``) with a rank cap well below its side is
    factored by a seeded randomized SVD of twice :func:`factored_rank` of the
    cap, of which the first half is kept (exact to float precision; see
    :func:`svdimage.decomposition.decompose_until`); a cap whose power of two
    is past that crossover but at most a third of the side by the exact top
    components (from the plane's Gram matrix); larger caps by the complete SVD.
    Every cap up to the same power of two gets the same components, so one
    factorization serves a search over ranks, and a file does not depend on
    which ranks were tried before it.
    """
    tiles, _ = cut_tiles(plane.astype(np.float64), tile)
    means = tiles.mean(axis=(1, 2))
    residual = tiles - means[:, None, None]
    if residual.shape[0] == 1:
        # One global plane: factored in float32 (LAPACK gesdd; 3x faster than float64 on a
        # 12 MP photo's luma, and 1e-7 relative is far below any quantizer step).
        single = residual[0].astype(np.float32)
        keep = None if max_rank is None else factored_rank(max_rank)
        if keep is not None and 2 * keep < AUTO_EXACT_RANK_FRACTION * min(single.shape):
            u, sv, vt = randomized_svd(single, 2 * keep, rng=0)
            u, sv, vt = u[:, :keep], sv[:keep], vt[:keep]
        elif keep is not None and _exact_top(single.shape, keep):
            u, sv, vt = _exact_svd(single, keep)  # the top ``keep`` (Gram matrix, float64)
        else:
            u, sv, vt = scipy.linalg.svd(
                single, full_matrices=False, lapack_driver="gesdd", check_finite=False
            )
        U, s, Vt = (x[None].astype(np.float64) for x in (u, sv, vt))
    else:
        U, s, Vt = np.linalg.svd(residual, full_matrices=False)
    U, Vt = svd_flip(U, Vt)  # the package's one sign rule, batched over tiles
    return U, s, Vt, means


def _exact_top(shape: tuple[int, ...], keep: int) -> bool:
    """Whether a global plane's top ``keep`` components are computed on their own (exact,
    from its Gram matrix: :func:`svdimage.decomposition._exact_svd`) rather than by the
    complete SVD, which serves every cap above."""
    short = min(shape[:2])
    return short > GRAM_MIN_SIDE and keep <= GRAM_MAX_RANK_FRACTION * short


def factored_rank(max_rank: int) -> int:
    """How many components a global plane is factored to for a rank cap: the
    smallest power of two, at least 16, that holds the cap."""
    return max(16, 1 << (int(max_rank) - 1).bit_length())


def serialize(coded: list[CodedPlane]) -> np.ndarray:
    parts: list[np.ndarray] = []
    for plane in coded:
        parts += [np.diff(plane.dc, prepend=0), plane.ranks]
    top = max((int(p.ranks.max()) if p.ranks.size else 0) for p in coded)
    for i in range(top):
        for plane in coded:
            chosen = plane.ranks > i
            if not chosen.any():
                continue
            a, b = plane.a[chosen, :, i], plane.b[chosen, :, i]
            if i == 0:
                a, b = np.diff(a, axis=1, prepend=0), np.diff(b, axis=1, prepend=0)
            parts.append(np.concatenate([a, b], axis=1).ravel())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class Trials:
    """Encodes of one image at several quantizer steps, sharing its planes and tile SVDs.

    Only the quantization and the entropy coding depend on the step, so rate
    control's trials cost a fraction of a first encode (:func:`encode`,
    :func:`encode_for_sizes`), and the global sizes of
    :func:`svdimage.rank_selection.svdz_bytes` share their factorizations.
    """

    def __init__(
        self,
        image: np.ndarray,
        *,
        max_rank: int | None,
        tile: int | None,
        color: str,
        chroma: str,
    ) -> None:
        self.shape = image.shape
        self.max_rank, self.tile, self.color, self.chroma = max_rank, tile, color, chroma
        self.planes = to_planes(image, color, chroma)
        self._factors: dict[tuple[int, int | None], Factors] = {}
        self._files: dict[float, bytes] = {}  # rate control's last trial is the file itself

    def factors(self, index: int, max_rank: int | None) -> Factors:
        """Plane ``index``'s factors for a rank cap (computed once per power of two)."""
        plane = self.planes[index]
        key = None if max_rank is None else factored_rank(max_rank)
        if self.tile is not None or (
            key is not None
            and 2 * key >= AUTO_EXACT_RANK_FRACTION * min(plane.shape)
            and not _exact_top(plane.shape, key)
        ):
            key = None  # the full SVD of each tile, or of the plane: one for every cap
        if (index, key) not in self._factors:
            what = "global SVD" if self.tile is None else f"{self.tile}x{self.tile} tile SVDs"
            with _progress.task(f"{what} of plane {index + 1} of {len(self.planes)}"):
                self._factors[(index, key)] = plane_factors(
                    plane, tile=self.tile, max_rank=max_rank
                )
        return self._factors[(index, key)]

    def at_step(self, step: float, *, max_rank: int | None = None) -> bytes:
        """The file at a luma quantizer ``step`` (and a rank cap other than the trials')."""
        header, symbols = self.symbols_at(step, max_rank=max_rank)
        return pack(header, compress_symbols(symbols), version=(1, 1))

    def symbols_at(
        self, step: float, *, max_rank: int | None = None
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The header and the integers :meth:`at_step` entropy-codes."""
        max_rank = self.max_rank if max_rank is None else max_rank
        ycbcr = self.color == "ycbcr" and len(self.shape) == 3
        coded, described = [], []
        for index, plane in enumerate(self.planes):
            plane_step = step * (CHROMA_STEP_FACTOR if ycbcr and index > 0 else 1.0)
            dc_step = plane_step / DC_STEP_DIVISOR
            item = code_plane(
                plane,
                tile=self.tile,
                step=plane_step,
                dc_step=dc_step,
                max_rank=max_rank,
                factors=self.factors(index, max_rank),
            )
            coded.append(item)
            described.append(
                {
                    "shape": list(plane.shape),
                    "step": plane_step,
                    "dc_step": dc_step,
                    "max_rank": int(item.ranks.max()) if item.ranks.size else 0,
                }
            )
        header = {
            "shape": list(self.shape),
            "color": self.color if len(self.shape) == 3 else "gray",
            "chroma": self.chroma if ycbcr else "444",
            "tile": self.tile,
            "planes": described,
            "coder": "lzma-varint",
            "order": "rank-major",
        }
        return header, serialize(coded)

    def step_of(self, quality: float) -> float:
        """The luma step of a quality."""
        return quality_to_step(quality)

    def step_keeping(self, rank: int) -> float:
        """A step fine enough that the luma plane keeps ``rank`` components (of a global
        plane: the rule of the module docstring, solved for the step)."""
        U, s, Vt, _ = self.factors(0, rank)
        h, w = U.shape[1], Vt.shape[2]
        sigma = float(s[0, min(rank, s.shape[1]) - 1])
        return max(0.999 * math.sqrt(12 * sigma / (RANK_RULE * (h + w))), 1e-4)

    def at_rank(self, rank: int) -> bytes:
        """The global file that keeps exactly ``rank`` luma components: the step that
        keeps the ``rank``-th (:meth:`step_keeping`), at most quality 75's."""
        return self.at_step(self.step_for_rank(rank), max_rank=rank)

    def step_for_rank(self, rank: int) -> float:
        """The luma step of :meth:`at_rank`."""
        return min(quality_to_step(75.0), self.step_keeping(rank))

    def at_quality(self, quality: float) -> bytes:
        """The file at a quality (:func:`quality_to_step`), each quality encoded once."""
        if quality not in self._files:
            self._files[quality] = self.at_step(quality_to_step(quality))
        return self._files[quality]


def encode(
    image: ArrayLike,
    *,
    quality: float | None = None,
    rank: int | None = None,
    psnr: float | None = None,
    size: int | None = None,
    bpp: float | None = None,
    step: float | None = None,
    tile: int | None = 8,
    color: Literal["ycbcr", "rgb"] = "ycbcr",
    chroma: Literal["420", "444"] = "420",
    version: int = 2,
) -> bytes:
    """Compress an image to ``.svdz`` bytes.

    By default a format-2 file: each plane's 8x8 patches are the rows of a
    matrix whose truncated SVD (one shared basis, a few coefficients per
    patch) is quantized and context-coded (:mod:`svdimage.codec._patches`).
    ``tile=None`` writes the global SVD of each plane (format 1.1: ``rank`` is
    then the rank of the image), and ``version=1`` the per-tile SVDs of
    format 1.1, for readers older than format 2.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
        Values in [0, 1] (integers are scaled by their range).
    quality : float, optional
        1-100, monotone (default 75 when no other target is given).
    rank : int, optional
        With ``tile=None``: the global rank, 1 to ``min(M, N)``; alone, the
        file keeps exactly this many luma components (the step is made fine
        enough), with a quality or target it is a cap. Otherwise a cap on the
        components of the patch basis (1 to ``tile**2``; format 1: per tile, 1
        to the tile side).
    psnr : float, optional
        Smallest file whose decoded image reaches this PSNR (dB).
    size, bpp : optional
        Best file of at most this many bytes / bits per pixel (the step is
        searched in 1 % increments, so the file lands within a few percent).
    step : float, optional
        The luma quantizer step itself, instead of a quality (advanced).
    tile : int or None, optional
        Patch side (4, 8 or 16; format 1: tile side 4-256), or ``None`` for one
        global SVD per plane.
    color : {'ycbcr', 'rgb'}, optional
        Color planes: YCbCr (BT.601, as JPEG) or plain RGB channels (``'rgb'``
        writes format 1).
    chroma : {'420', '444'}, optional
        Chroma resolution for YCbCr: half (4:2:0) or full.
    version : {2, 1}, optional
        The format to write with ``tile`` given (format 1 is the per-tile SVD).

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
    array = as_image_array(image)
    trials = _trials(array, rank=rank, tile=tile, color=color, chroma=chroma, version=version)
    targets = [
        name
        for name, value in (
            ("quality", quality),
            ("step", step),
            ("psnr", psnr),
            ("size", size),
            ("bpp", bpp),
        )
        if value is not None
    ]
    if len(targets) > 1:
        raise ValueError(f"give one of quality, step, psnr, size or bpp; got {', '.join(targets)}.")
    if step is not None and not (math.isfinite(step) and 1e-4 <= step <= 10):
        raise ValueError(f"step must be between 1e-4 and 10; got {step!r}.")

    if step is not None:
        return trials.at_step(step)
    if rank is not None and isinstance(trials, Trials) and tile is None and not targets:
        return trials.at_rank(rank)
    if quality is not None or (psnr is None and size is None and bpp is None):
        return trials.at_quality(75.0 if quality is None else quality)
    goal = (
        f"PSNR {psnr:g} dB" if psnr is not None else f"{size:,} bytes" if size else f"{bpp:g} bpp"
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
        budget = size if size is not None else bpp * array.shape[0] * array.shape[1] / 8
        level = _level_for_budget(
            trials, budget, lambda n: len(trial(level_to_step(n), trials.at_step))
        )
        if level is None:
            raise ValueError(
                f"even the coarsest step does not fit {int(budget):,} bytes; give a larger size."
            )
        return trial(level_to_step(level), trials.at_step)


#: A size or bpp target is met when the file fits and is within this fraction of it.
BUDGET_TOLERANCE = 0.03
#: About how much log(size) grows per level (size ~ step**-1.2 for photos): the second
#: trial's guess.
SIZE_SLOPE = 1.2 * -math.log(0.99)
#: Rate control's steps: ``level_to_step(n) = 2 * 0.99**n`` for n in 0..STEP_LEVELS, so that
#: consecutive levels differ by about 1.3% in size and a budget is met within a few percent.
STEP_LEVELS = 1100


def _level_for_budget(
    trials: Trials | PatchTrials, budget: float, size_at: Callable[[int], int]
) -> int | None:
    """The level of the file for a byte budget: within BUDGET_TOLERANCE below it when one
    is, found from a first guess (:func:`_first_guess`) by secant steps; ``None`` when even
    the coarsest step is larger. The same search for :func:`encode` and
    :func:`encode_for_sizes`, so that both give the same file."""
    if isinstance(trials, PatchTrials):
        trials.decide_at = None
    first, slope = _first_guess(trials, budget)
    (level,) = qualities_for_budgets(
        size_at,
        [budget],
        lowest=0,
        highest=STEP_LEVELS,
        first=first,
        tolerance=BUDGET_TOLERANCE,
        slope=slope,
    )
    if level is None and isinstance(trials, PatchTrials) and trials.decide_at is not None:
        # The guess's components do not fit even at the coarsest step: choose them freely.
        trials.decide_at = None
        (level,) = qualities_for_budgets(
            size_at, [budget], lowest=0, highest=STEP_LEVELS, first=first, tolerance=0.0
        )
    return level


def _first_guess(trials: Trials | PatchTrials, budget: float) -> tuple[int, float]:
    """Rate control's first level and the slope of log(size) per level around it.

    Format 2 has a cheap size estimate (:meth:`PatchTrials.estimate`, no coding):
    the level where it meets the budget, and its local slope, so that the first
    trial is near and the second, corrected by that slope, usually within the
    tolerance. Otherwise the level of quality 75 and a typical slope.
    """
    default = step_to_level(trials.step_of(75.0)), SIZE_SLOPE
    if not isinstance(trials, PatchTrials):
        return default
    estimates: dict[int, float] = {}

    def estimate(level: int) -> int:
        if level not in estimates:
            estimates[level] = trials.estimate(level_to_step(level))
        return int(estimates[level])

    (guess,) = qualities_for_budgets(
        estimate,
        [budget],
        lowest=0,
        highest=STEP_LEVELS,
        first=default[0],
        tolerance=0.02,
        slope=SIZE_SLOPE,
    )
    if guess is None:
        return default
    # Every trial keeps the components of the guess, so that the size changes smoothly
    # with the step (a component dropped or added jumps it by up to 10 %).
    trials.decide_at = level_to_step(guess)
    estimates.clear()
    low, high = max(guess - 15, 0), min(guess + 15, STEP_LEVELS)
    rise = math.log(max(estimate(high), 1)) - math.log(max(estimate(low), 1))
    return guess, rise / (high - low) if rise > 0 else SIZE_SLOPE


def level_to_step(level: int) -> float:
    """The quantizer step of rate control's integer ``level`` (finer as it grows)."""
    return 2.0 * 0.99 ** int(level)


def step_to_level(step: float) -> int:
    """The level whose step is nearest ``step``."""
    return int(np.clip(round(math.log(step / 2.0) / math.log(0.99)), 0, STEP_LEVELS))


def _trials(
    array: np.ndarray,
    *,
    rank: int | None,
    tile: int | None,
    color: str,
    chroma: str,
    version: int = 2,
) -> Trials | PatchTrials:
    """Check the options shared by every target; the image's trials under them."""
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2; got {version!r}.")
    if tile is not None and (
        isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or not 4 <= tile <= 256
    ):
        raise ValueError(f"tile must be None or an int in 4..256; got {tile!r}.")
    tile = None if tile is None else int(tile)
    if color not in ("ycbcr", "rgb") or chroma not in ("420", "444"):
        raise ValueError(
            f"color must be 'ycbcr' or 'rgb' and chroma '420' or '444'; got {color!r}, {chroma!r}."
        )
    patches = version == 2 and tile is not None and (color == "ycbcr" or array.ndim == 2)
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
            else f"rank (components of the {tile}x{tile} patch basis)"
            if patches
            else f"rank (per {tile}x{tile} tile)",
        )
    if patches and tile is not None:
        return PatchTrials(array, patch=int(tile), max_rank=rank, chroma=chroma)
    return Trials(array, max_rank=rank, tile=tile, color=color, chroma=chroma)


def encode_for_sizes(
    image: ArrayLike, sizes: Sequence[float], **options: Any
) -> list[bytes | None]:
    """The best ``.svdz`` file of at most each of ``sizes`` bytes, from shared trials.

    Each file is byte for byte the one ``encode(image, size=n, **options)``
    gives (within 3 % below its budget), but the patch SVDs (or tile SVDs) are
    computed once for all the sizes. ``None`` where even the coarsest step is larger.

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
    unknown = set(options) - {"rank", "tile", "color", "chroma", "version"}
    if unknown:
        raise TypeError(f"encode_for_sizes() got unexpected options: {', '.join(sorted(unknown))}.")
    options = {"rank": None, "tile": 8, "color": "ycbcr", "chroma": "420", "version": 2, **options}
    trials = _trials(as_image_array(image), **options)
    files: list[bytes | None] = []
    with _progress.task(
        f"searching the steps for {len(sizes)} sizes", unit="files encoded"
    ) as search:

        def size_at(level: int) -> int:
            search.advance()
            return len(trials.at_step(level_to_step(level)))

        for budget in sizes:
            if not budget > 0:
                raise ValueError(f"size and bpp must be positive; got budgets {list(sizes)!r}.")
            level = _level_for_budget(trials, budget, size_at)
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

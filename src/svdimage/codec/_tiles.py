"""Planes cut in tiles (format 1.1) or whole (the global SVD, format 3.0), each tile's
truncated SVD, quantized.

Package-internal: the encoder's front door, options and rate control are in
:mod:`svdimage.codec._encode`, which writes these files for ``version=1``,
``tile=None`` (the global SVD) or ``color="rgb"``; the decoder is in
:mod:`svdimage.codec._decode`. A global plane is written as format 3.0 (its
payload: :mod:`svdimage.codec._global`) unless format 1.1 is asked for; what
follows describes format 1.1, whose quantization 3.0 shares:

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
  part of the format: :func:`svdimage.codec._planes.deblock`).

Symbols are stored in *rank-major* order: the tile means and ranks, then
component 1 of every tile of every plane, then component 2, and so on, so
that any prefix of the payload decodes to a lower-rank image
(``decode(data, max_bytes=N)``). The container is specified in
:mod:`svdimage.codec._format` and ``docs/format.md``.

Rate control picks the quantizer step (and so the ranks), never the target:
``quality`` maps 1-100 monotonically to a step (:func:`quality_to_step`);
the trials of a search share the planes and tile SVDs (:class:`Trials`):
only the quantization and the entropy coding are repeated.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from svdimage import _progress
from svdimage._linalg import svd_flip
from svdimage.codec._entropy import compress_symbols
from svdimage.codec._format import GLOBAL_VERSION, pack
from svdimage.codec._global import GlobalPlane, quantize
from svdimage.codec._global import serialize as serialize_global
from svdimage.codec._planes import tiles as cut_tiles
from svdimage.codec._planes import to_planes
from svdimage.randomized import randomized_svd
from svdimage.svd_kernels import AUTO_EXACT_RANK_FRACTION, exact_svd, uses_gram

__all__ = [
    "quality_to_step",
    "RANK_RULE",
    "CHROMA_STEP_FACTOR",
    "DC_STEP_DIVISOR",
    "CodedPlane",
    "code_plane",
    "plane_factors",
    "factored_rank",
    "serialize",
    "Trials",
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
    is past that crossover but at most half the side by the exact top
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
        # 12 MP photo's luma, and 1e-7 relative is far below any quantizer step). The vectors
        # stay float32 (code_plane multiplies them by float64 values: the same products as
        # float64 copies would give, at half the memory); the float64 copies go first.
        single = residual[0].astype(np.float32)
        del tiles, residual
        keep = None if max_rank is None else factored_rank(max_rank)
        if keep is not None and 2 * keep < AUTO_EXACT_RANK_FRACTION * min(single.shape):
            u, sv, vt = randomized_svd(single, 2 * keep, rng=0)
            u, sv, vt = u[:, :keep], sv[:keep], vt[:keep]
        elif keep is not None and uses_gram(single.shape, keep):
            u, sv, vt = exact_svd(single, keep)  # the top ``keep`` (Gram matrix, float64)
        else:
            import scipy.linalg  # heavy: loaded by the encoder only

            u, sv, vt = scipy.linalg.svd(
                single, full_matrices=False, lapack_driver="gesdd", check_finite=False
            )
        del single
        U, Vt = (np.array(x[None], dtype=np.float32) for x in (u, vt))
        s = sv[None].astype(np.float64)
    else:
        U, s, Vt = np.linalg.svd(residual, full_matrices=False)
    U, Vt = svd_flip(U, Vt, copy=False)  # the package's one sign rule, batched over tiles
    return U, s, Vt, means


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
    :func:`svdimage.ranks.storage.svdz_bytes` share their factorizations.
    """

    def __init__(
        self,
        image: np.ndarray,
        *,
        max_rank: int | None,
        tile: int | None,
        color: str,
        chroma: str,
        version: tuple[int, int] = GLOBAL_VERSION,
    ) -> None:
        self.shape = image.shape
        # The global SVD is written as 3.0 (range-coded) unless 1.1 is asked for.
        self.version = version if tile is None else (1, 1)
        self.max_rank, self.tile, self.color, self.chroma = max_rank, tile, color, chroma
        self.planes = to_planes(image, color, chroma)
        self._factors: dict[tuple[int, int | None], Factors] = {}
        self._files: dict[float, bytes] = {}  # rate control's last trial is the file itself
        self._reusing = False

    def factors(self, index: int, max_rank: int | None) -> Factors:
        """Plane ``index``'s factors for a rank cap (computed once per power of two)."""
        plane = self.planes[index]
        key = None if max_rank is None else factored_rank(max_rank)
        if self.tile is not None or (
            key is not None
            and 2 * key >= AUTO_EXACT_RANK_FRACTION * min(plane.shape)
            and not uses_gram(plane.shape, key)
        ):
            key = None  # the full SVD of each tile, or of the plane: one for every cap
        if self._reusing and (index, key) not in self._factors:
            larger = self._covering(index, key)
            if larger is not None:
                return larger
        if (index, key) not in self._factors:
            if self.tile is not None:
                what = f"{self.tile}x{self.tile} tile SVDs"
            else:  # a plane is factored once per power of two of the rank: say which
                what = "complete SVD" if key is None else f"top-{key} SVD"
            with _progress.task(f"{what} of plane {index + 1} of {len(self.planes)}"):
                self._factors[(index, key)] = plane_factors(
                    plane, tile=self.tile, max_rank=max_rank
                )
        return self._factors[(index, key)]

    def _covering(self, index: int, key: int | None) -> Factors | None:
        """A computed factorization of plane ``index`` that holds the components of ``key``
        (a larger power of two, or the complete SVD), if any."""
        held = [
            k
            for i, k in self._factors
            if i == index and (k is None or (key is not None and k >= key))
        ]
        if not held:
            return None
        best = min(held, key=lambda k: math.inf if k is None else k)
        return self._factors[(index, best)]

    def covers(self, rank: int) -> bool:
        """Whether every plane has a computed factorization that holds ``rank`` components."""
        key = factored_rank(rank)
        return all(self._covering(index, key) is not None for index in range(len(self.planes)))

    @contextlib.contextmanager
    def reusing(self) -> Iterator[None]:
        """Within: a rank's factors may come from any computed factorization that holds
        them (a larger power of two), instead of its own. Files then differ from
        :meth:`at_rank`'s by the factorizations' rounding (a fraction of a percent in
        size): for a search's estimates, never for a file that is written."""
        self._reusing = True
        try:
            yield
        finally:
            self._reusing = False

    def at_step(self, step: float, *, max_rank: int | None = None) -> bytes:
        """The file at a luma quantizer ``step`` (and a rank cap other than the trials')."""
        if self.version == GLOBAL_VERSION:
            header, planes = self.global_planes_at(step, max_rank=max_rank)
            return pack(header, serialize_global(planes), version=GLOBAL_VERSION)
        header, symbols = self.symbols_at(step, max_rank=max_rank)
        return pack(header, compress_symbols(symbols), version=(1, 1))

    def _plane_steps(self, step: float) -> list[float]:
        ycbcr = self.color == "ycbcr" and len(self.shape) == 3
        return [
            step * (CHROMA_STEP_FACTOR if ycbcr and index > 0 else 1.0)
            for index in range(len(self.planes))
        ]

    def global_planes_at(
        self, step: float, *, max_rank: int | None = None
    ) -> tuple[dict[str, Any], list[GlobalPlane]]:
        """The header and the quantized planes of the version-3.0 file at ``step``: each
        plane keeps the components the rule of the module docstring keeps, at most
        ``max_rank``."""
        assert self.tile is None
        max_rank = self.max_rank if max_rank is None else max_rank
        ycbcr = self.color == "ycbcr" and len(self.shape) == 3
        planes, described = [], []
        for index, (plane, plane_step) in enumerate(zip(self.planes, self._plane_steps(step))):
            U, s, Vt, means = self.factors(index, max_rank)
            h, w = plane.shape
            keep = int(np.count_nonzero(s[0] > RANK_RULE * plane_step**2 * (h + w) / 12))
            if max_rank is not None:
                keep = min(keep, max_rank)
            planes.append(quantize(U[0], s[0], Vt[0], float(means[0]), step=plane_step, keep=keep))
            described.append({"shape": list(plane.shape), "step": plane_step, "components": keep})
        header = {
            "shape": list(self.shape),
            "color": self.color if len(self.shape) == 3 else "gray",
            "chroma": self.chroma if ycbcr else "444",
            "planes": described,
            "coder": "context-range",
        }
        return header, planes

    def symbols_at(
        self, step: float, *, max_rank: int | None = None
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The header and the integers :meth:`at_step` entropy-codes."""
        max_rank = self.max_rank if max_rank is None else max_rank
        ycbcr = self.color == "ycbcr" and len(self.shape) == 3
        coded, described = [], []
        for index, (plane, plane_step) in enumerate(zip(self.planes, self._plane_steps(step))):
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

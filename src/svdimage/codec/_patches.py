"""Format 2: the truncated SVD of each plane's patch matrix, context-coded.

Package-internal; :func:`svdimage.codec.encode` calls :class:`PatchTrials`, which
decides what a file at a step holds and has
:func:`svdimage.codec._patch_payload.serialize` write it. The design:

Each plane (gray; or Y, Cb, Cr with chroma at half resolution) is cut into
``B x B`` patches (``B`` = ``patch``, 4, 8 or 16; ``encode``'s default tries 4
and 8 and keeps the better file; edges repeated), and the
patches become the rows of the *patch matrix* ``P`` (one row per patch, ``B^2``
columns). Each row's mean is coded on its own; the SVD of the mean-free matrix,
``P - means = U S V^T``, gives one image-adaptive basis ``V`` (the right
singular vectors, sent once per plane) and the coefficients ``C = U S``, of
which the first ``k`` columns are sent: a truncated SVD, with the side
information of one ``B^2 x k`` basis instead of a basis per tile [1]_.

* The quantizer: one step ``q`` per plane; a coefficient ``c`` is decoded as an
  integer times ``q``. The integer is first ``sign(c) floor(|c| / q + 0.35)`` (a
  dead zone: small values go to 0, which costs least); then, coefficient by
  coefficient in decoding order, whichever of 0, ``floor(|c| / q)`` and
  ``floor(|c| / q) + 1`` (with the sign of ``c``) costs least in squared error
  plus ``KEEP_FACTOR * q^2`` times its bits in its context (rate-distortion
  optimized quantization [2]_,
  :func:`svdimage.codec._patch_contexts.optimize_coefficients`). The patch mean
  ``m`` is coded as ``round(B m / q)`` (the orthonormal DC coefficient with the
  same step).
* Which components: component ``j`` is kept when the squared error it removes
  exceeds ``KEEP_FACTOR * q^2`` times its bits (coefficients and basis), the
  slope of a uniform quantizer's rate-distortion curve; ``rank`` caps ``k``.
* The basis: column ``j`` of ``V`` is sent as ``round(V_j 2^e_j)`` with
  ``e_j = ceil(log2(s_j / (sqrt(BASIS_ERROR) q)))`` (clipped to 5..17), where
  ``s_j`` is the coefficients' RMS: the basis is as precise as its component is
  strong. The coefficients are computed against the decoded basis (least
  squares), so its rounding costs no extra error.
* How the quantized planes are laid out and context-coded (means coarse to
  fine, coefficients in checkerboard halves with contexts from their decoded
  neighbours, progressive segments), and how they are read back, is
  :mod:`svdimage.codec._patch_payload`.

References
----------
.. [1] D. Aase, J. H. Husoy and P. Waldemar, "A critique of SVD-based image
   coding systems", ISCAS 1999 (why per-block SVD loses to a shared basis).
.. [2] M. Karczewicz, Y. Ye and I. Chong, "Rate distortion optimized
   quantization", ITU-T VCEG-AH21, 2008.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from svdimage._linalg import svd_flip
from svdimage.codec._context import ALPHABET, symbols_of
from svdimage.codec._format import PREDICTED_VERSION, pack
from svdimage.codec._patch_contexts import mean_bits, optimize_coefficients
from svdimage.codec._patch_payload import E_MIN, E_SPAN, grid_of, put_patches, serialize
from svdimage.codec._planes import to_planes
from svdimage.codec._prediction import PREDICTION_QUARTERS, patch_predictions, second_half
from svdimage.codec._tiles import quality_to_step

__all__ = [
    "PatchTrials",
    "KEEP_FACTOR",
    "BASIS_ERROR",
    "DEAD_ZONE",
    "CHROMA_STEP_FACTOR_V2",
]

#: Rounding offset of the quantizer (0.5 is plain rounding).
DEAD_ZONE = 0.35
#: Patches whose coefficients are quantized at a time (their float32 temporaries: a few MiB).
QUANTIZE_ROWS = 1 << 14
#: Keep a component when it removes more than this times q^2 squared error per bit (also
#: the slope of rate-distortion rounding and of the prediction weight). Chosen on the
#: tuning photos: 0.12 until format 2.3; with 2.3's prediction, 0.09 moved their mean
#: BD-PSNR against WebP from +0.03 to +0.08 dB (0.06-0.105 within 0.02 dB of it, 0.15: -0.06).
KEEP_FACTOR = 0.09
#: The basis error allowed per component, relative to q^2.
BASIS_ERROR = 0.05
#: The step of a quality is this times the version-1 step of that quality.
STEP_SCALE = 0.5
#: The components are chosen on every SAMPLE-th patch.
SAMPLE = 4
#: Rate control's estimates measure at least this many patches of the sample: on fewer
#: (every 16th patch of a 0.3-megapixel photo at patch side 8: 265), too few coefficients
#: of the weak components are nonzero, and a file was estimated at half its size.
COARSE_PATCHES = 1 << 13
#: Chroma step relative to luma.
CHROMA_STEP_FACTOR_V2 = 0.8
#: The coarsest step of a chroma plane's patch means, in 8-bit levels: a coarser one is
#: refined by a power-of-two mean divisor (format 2.2). Chosen on the tuning photos
#: (astronaut, coffee, chelsea): the mean chroma error of neutral grey areas on astronaut
#: fell from 2.0 to 0.4 levels at 0.2-0.5 bpp, for a BD-PSNR change of -0.002 dB or less.
CHROMA_MEAN_LEVELS = 3.0


def mean_divisor(step: float, patch: int, *, chroma: bool) -> int:
    """The mean divisor of a plane at ``step``: 1 for luma; for chroma the smallest power of
    two that brings the means' step ``step / (patch * divisor)`` to at most
    ``CHROMA_MEAN_LEVELS`` levels of 255 (at most 64)."""
    if not chroma:
        return 1
    levels = step / patch * 255 / CHROMA_MEAN_LEVELS
    return int(min(64, max(1, 2 ** math.ceil(math.log2(levels))))) if levels > 1 else 1


class _PlaneAnalysis:
    """What does not depend on the step: patches, means, the patch-matrix SVD."""

    def __init__(self, plane: np.ndarray, patch: int, *, predicted: bool = False) -> None:
        self.shape = plane.shape
        # Format 2.3 (``predicted``): the second checkerboard half is predicted
        # (:mod:`._prediction`; ``second`` is then set). The basis is still the SVD of
        # every mean-free patch (fitting it to the prediction errors instead measured
        # 0.01-0.04 dB worse on four of the five tuning photos, 0.2 dB better on the grainy
        # moon, with the weights then chosen by least squares); the components are chosen
        # on the first half's coefficients and the second half's prediction errors' (from
        # the original first half: ``open_loop``).
        self.patch = patch
        self.rows, self.cols = grid_of(plane.shape, patch)
        h, w = plane.shape
        padded = np.pad(
            plane.astype(np.float32, copy=False),
            ((0, self.rows * patch - h), (0, self.cols * patch - w)),
            mode="edge",
        )
        grid = np.empty((self.rows, self.cols, patch, patch), dtype=np.float32)
        grid[...] = padded.reshape(self.rows, patch, self.cols, patch).transpose(0, 2, 1, 3)
        patches = grid.reshape(self.rows * self.cols, patch * patch)
        del grid
        #: Format 2.3: which patches are in the second half, and the (mean-free)
        #: predictions of them from the original first half, times ``weight``.
        self.second: np.ndarray | None = None
        self.open_loop: np.ndarray | None = None
        #: The open-loop weight of the predictions (in quarters): the least-squares fit of
        #: the original second half by them, rounded; what the component choice sees. Each
        #: file chooses its own weight at its step (:func:`_quantize`).
        self.weight = 0
        if predicted:
            self.second = second_half(self.rows, self.cols)
            self.open_loop = patch_predictions(padded, patch)
        del padded
        self.means = patches.mean(axis=1, dtype=np.float64)
        patches -= self.means[:, None].astype(np.float32)
        self.residual = patches  # float32: the Gram matrix's 1e-7 errors are far below a step
        # Format 2.3: the second half's rows are taken less their open-loop predictions
        # (:func:`_rows`) where the coefficients are computed.
        replaced = None
        if self.open_loop is not None:
            assert self.second is not None
            self.weight = _weight_of(patches[self.second], self.open_loop)
            self.open_loop *= np.float32(self.weight / PREDICTION_QUARTERS)
            errors = patches[self.second]
            errors -= self.open_loop
            replaced = (self.second, errors)
        # The Gram matrix in float64, by blocks of rows: a float32 product of 187,500 rows
        # is summed in an order that depends on BLAS's threads, and the basis with it.
        gram = np.zeros((patches.shape[1],) * 2)
        for start in range(0, patches.shape[0], 1 << 14):
            block = self.residual[start : start + (1 << 14)].astype(np.float64)
            gram += block.T @ block
        eigenvalues, vectors = np.linalg.eigh(gram)
        order = np.argsort(eigenvalues)[::-1]
        columns = vectors[:, order]  # the right singular vectors of the patch matrix
        self.basis = svd_flip(columns, columns.T)[0]
        self.patches = n = patches.shape[0]
        self.rms = np.sqrt(np.maximum(eigenvalues[order], 0) / n)
        # The coefficients, a block of patches at a time (the whole matrix is 48 MB for a
        # 12-megapixel luma plane at patch side 4): their largest magnitudes, and every
        # SAMPLE-th patch's, on which the components are chosen (their statistics, not
        # their values, decide), which makes a rate-control trial 4x cheaper.
        basis32 = self.basis.astype(np.float32)
        self.largest = np.zeros(basis32.shape[1], dtype=np.float32)
        self.sample = np.empty(((n + SAMPLE - 1) // SAMPLE, basis32.shape[1]), dtype=np.float32)
        for start in range(0, n, QUANTIZE_ROWS):  # QUANTIZE_ROWS is a multiple of SAMPLE
            coefficients = _rows(self.residual, slice(start, start + QUANTIZE_ROWS), replaced)
            coefficients = coefficients @ basis32
            np.maximum(self.largest, np.abs(coefficients).max(axis=0), out=self.largest)
            self.sample[start // SAMPLE : start // SAMPLE + -(-coefficients.shape[0] // SAMPLE)] = (
                coefficients[::SAMPLE]
            )
        del replaced, patches
        #: Components chosen at a step (rate control's fixed choice), by (step, coarse, cap).
        self.decided: dict[tuple[float, bool, int | None], np.ndarray] = {}


class PatchTrials:
    """Format-2 encodes of one image at several steps, sharing its patch SVDs."""

    def __init__(
        self,
        image: np.ndarray,
        *,
        patch: int,
        max_rank: int | None,
        chroma: str,
        newest: bool = True,
        measure_error: bool = False,
    ) -> None:
        self.shape = image.shape
        self.patch, self.max_rank, self.chroma = patch, max_rank, chroma
        #: Whether files are format 2.3 (chroma means refined where they need it, the second
        #: checkerboard half predicted); otherwise 2.0.
        self.newest = newest
        #: Whether each file's squared error is measured (:meth:`squared_error`: the encoder
        #: compares patch sides with it); otherwise quantizing skips that work.
        self.measure_error = measure_error
        # Each plane is dropped once analysed: the analysis holds all a trial needs.
        self.planes: list[np.ndarray | None] = list(to_planes(image, "ycbcr", chroma))
        self.shapes = [plane.shape for plane in self.planes if plane is not None]
        self._analyses: dict[int, _PlaneAnalysis] = {}
        #: The last trials, by step and component choice: rate control's answer is one.
        self._files: dict[tuple[float, float | None], bytes] = {}
        self._errors: dict[tuple[float, float | None], float] = {}
        #: When set, the components are chosen as at this luma step, whatever the step.
        self.decide_at: float | None = None

    def analysis(self, index: int) -> _PlaneAnalysis:
        if index not in self._analyses:
            plane = self.planes[index]
            assert plane is not None
            self._analyses[index] = _PlaneAnalysis(plane, self.patch, predicted=self.newest)
            self.planes[index] = None
        return self._analyses[index]

    def _divisor(self, plane_step: float, index: int) -> int:
        if not self.newest:
            return 1
        return mean_divisor(plane_step, self.patch, chroma=index > 0)

    def step_of(self, quality: float) -> float:
        """The luma step of a quality: half of :func:`svdimage.codec.quality_to_step`."""

        return STEP_SCALE * quality_to_step(quality)

    def at_quality(self, quality: float) -> bytes:
        return self.at_step(self.step_of(quality))

    def estimate(self, step: float) -> float:
        """A cheap estimate of the file's bytes at ``step``, for rate control's first
        guess: no coding, but the first-order entropy that chooses the components and the
        patch means' information in their contexts (:func:`_mean_estimate`)."""
        total = 0.0
        for index in range(len(self.shapes)):
            plane_step = step * (CHROMA_STEP_FACTOR_V2 if index > 0 else 1.0)
            decide = None if self.decide_at is None else self.decide_at * (plane_step / step)
            analysis = self.analysis(index)
            divisor = self._divisor(plane_step, index)
            total += _choose(analysis, plane_step, self.max_rank, decide, coarse=True)[2]
            total += _mean_estimate(analysis, plane_step, divisor)
        return total / 8

    def at_step(self, step: float) -> bytes:
        key = (step, self.decide_at)
        if key in self._files:
            return self._files[key]
        coded: list[dict[str, Any]] = []
        described: list[dict[str, Any]] = []
        for index in range(len(self.shapes)):
            plane_step = step * (CHROMA_STEP_FACTOR_V2 if index > 0 else 1.0)
            decide = None if self.decide_at is None else self.decide_at * (plane_step / step)
            divisor = self._divisor(plane_step, index)
            coded.append(
                _quantize(
                    self.analysis(index),
                    plane_step,
                    self.max_rank,
                    decide,
                    divisor,
                    measure=self.measure_error,
                )
            )
            described.append(
                {
                    "shape": list(self.shapes[index]),
                    "step": plane_step,
                    "components": int(coded[-1]["kept"].size),
                    "mean_divisor": divisor,
                    "prediction": coded[-1]["prediction"],
                }
            )
        pixels = self.shape[0] * self.shape[1]
        squared_error = math.nan
        if self.measure_error:
            squared_error = sum(
                plane["squared_error"] * pixels / (shape[0] * shape[1])  # chroma: 4 pixels each
                for plane, shape in zip(coded, self.shapes)
            )
        version = PREDICTED_VERSION if self.newest else (2, 0)
        if not self.newest:
            for plane in described:
                del plane["mean_divisor"], plane["prediction"]
        header = {
            "shape": list(self.shape),
            "color": "ycbcr" if len(self.shape) == 3 else "gray",
            "chroma": self.chroma if len(self.shape) == 3 else "444",
            "patch": self.patch,
            "planes": described,
            "coder": "context-range",
        }
        data = pack(header, serialize(coded, self.patch), version=version)
        self._hold(key, data, squared_error)
        return data

    def adopt(self, step: float, data: bytes, squared_error: float) -> None:
        """Hold ``data``, the file that trials of the same image and options made at
        ``step`` (with this ``decide_at``), and its squared error, as if :meth:`at_step`
        had made it here: the encoder rebuilds the trials of a patch side it let go
        without encoding that file again."""
        self._hold((step, self.decide_at), data, squared_error)

    def _hold(self, key: tuple[float, float | None], data: bytes, squared_error: float) -> None:
        self._files = {**dict(list(self._files.items())[-2:]), key: data}  # the last three
        self._errors = {k: self._errors.get(k, squared_error) for k in self._files}

    def squared_error(self, data: bytes) -> float:
        """The summed squared error (luma, and chroma counted once per pixel it covers) of
        one of the last three files :meth:`at_step` made, as the encoder rebuilds its
        patches (before deblocking): what ``tile="auto"`` compares. Needs
        ``measure_error``."""
        if not self.measure_error:
            raise ValueError("these trials do not measure errors (measure_error=False).")
        for key, made in self._files.items():
            if made is data:
                return self._errors[key]
        raise KeyError("not one of the last files these trials made.")


def _choose(
    analysis: _PlaneAnalysis,
    step: float,
    max_rank: int | None,
    decide: float | None = None,
    *,
    coarse: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(kept components, basis exponents, their estimated bits)`` at ``step``: each
    component's squared error removed against its bits (a first-order entropy of its
    quantized coefficients on the sample, plus its basis), as the module docstring
    describes.

    ``decide``: choose the components as at that step instead (rate control fixes them
    while it searches the step, so that the size changes smoothly with it); the estimate
    is then that of those components at ``step``. ``coarse``: measure on every
    ``4 * SAMPLE``-th patch only (rate control's estimates), or on fewer of them, down to
    every ``SAMPLE``-th, where that would leave less than :data:`COARSE_PATCHES`."""
    if decide is not None and decide != step:
        key = (decide, coarse, max_rank)
        if key not in analysis.decided:  # first: not beside this step's arrays
            analysis.decided[key] = _choose(analysis, decide, max_rank, coarse=coarse)[0]
    sample = analysis.sample
    if coarse:  # every 4th of a large sample, at least COARSE_PATCHES of a small one
        sample = sample[:: max(1, min(4, sample.shape[0] // COARSE_PATCHES))]
    n, width = analysis.patches, sample.shape[1]
    # Columns whose every coefficient rounds to zero are never kept: skip their work.
    live = np.flatnonzero(analysis.largest >= (1 - DEAD_ZONE) * step)
    c = sample[:, live].astype(np.float64)
    m = c.shape[0]
    # In place where the same arithmetic allows (a 12-megapixel luma plane's sample at
    # patch side 4 is 24 MB in float64 per temporary).
    quantized = np.abs(c)
    quantized /= step
    quantized += DEAD_ZONE
    np.floor(quantized, out=quantized)
    quantized *= np.sign(c)  # sign(c) floor(|c| / step + dead zone)
    error = quantized * step
    np.subtract(c, error, out=error)
    error **= 2
    np.square(c, out=c)
    c -= error
    del error
    removed = c.sum(axis=0) * (n / max(m, 1))
    del c
    symbols = symbols_of(quantized.astype(np.int64))[0]
    counts = np.bincount(
        (symbols + ALPHABET * np.arange(live.size)).ravel(), minlength=live.size * ALPHABET
    ).reshape(live.size, ALPHABET)
    with np.errstate(divide="ignore", invalid="ignore"):
        information = np.where(counts > 0, counts * np.log2(m / np.maximum(counts, 1)), 0.0)
    bits = (information.sum(axis=1) + np.count_nonzero(quantized, axis=0)) * (n / max(m, 1))
    exponents = np.clip(
        np.ceil(np.log2(np.maximum(analysis.rms, 1e-30) / (math.sqrt(BASIS_ERROR) * step))),
        E_MIN,
        E_MIN + E_SPAN - 1,
    ).astype(np.int64)
    bits += width * (np.log2(np.maximum(2.0 ** exponents[live] / 8, 1)) + 3)
    if decide is not None and decide != step:
        kept = analysis.decided[(decide, coarse, max_rank)]
    else:
        keep = (removed > KEEP_FACTOR * step**2 * bits) & quantized.any(axis=0)
        kept = live[keep]
        if max_rank is not None:
            kept = kept[:max_rank]
    return kept, exponents, float(bits[np.isin(live, kept)].sum())


def _weight_of(
    patches: np.ndarray, predicted: np.ndarray, basis: np.ndarray | None = None, step: float = 0.0
) -> int:
    """The prediction weight, in quarters (0 to ``PREDICTION_QUARTERS``), for the
    (mean-free) second-half ``patches`` and their ``predicted`` rows.

    Without ``basis``: the least-squares fit, rounded. With the kept components'
    (orthonormal) ``basis`` and the ``step``: the weight whose prediction errors cost
    least by the quantizer's rule of thumb: each kept component's variance ``v`` (over
    the patches) costs ``min(v, D) + KEEP_FACTOR q^2 log2(v / D) / 2`` with
    ``D = q^2 / 12`` (error and bits of a uniform quantizer), and what the kept
    components leave out costs its energy. Prediction adds error where the
    coefficients do not follow it (grain finer than the kept components)."""
    if basis is None:
        fit = float(np.vdot(patches, predicted)) / max(float(np.vdot(predicted, predicted)), 1e-30)
        return int(np.clip(np.rint(PREDICTION_QUARTERS * fit), 0, PREDICTION_QUARTERS))
    n = max(patches.shape[0], 1)
    flat = basis.astype(np.float32)
    total = np.zeros(3)
    per = np.zeros((3, basis.shape[1]))
    for start in range(0, patches.shape[0], QUANTIZE_ROWS):  # temporaries of a block
        x, p = patches[start : start + QUANTIZE_ROWS], predicted[start : start + QUANTIZE_ROWS]
        xb, pb = x @ flat, p @ flat
        for i, (a, b, ab, bb) in enumerate(((x, x, xb, xb), (x, p, xb, pb), (p, p, pb, pb))):
            total[i] += float(np.vdot(a, b))
            per[i] += np.einsum("ij,ij->j", ab, bb, dtype=np.float64)
    total /= n
    per /= n
    floor = step * step / 12
    costs = []
    for quarters in range(PREDICTION_QUARTERS + 1):
        w = quarters / PREDICTION_QUARTERS
        energy = total[0] - 2 * w * total[1] + w * w * total[2]
        kept = np.maximum(per[0] - 2 * w * per[1] + w * w * per[2], 0.0)
        bits = 0.5 * np.log2(np.maximum(kept / floor, 1.0))
        cost = energy - kept.sum() + np.minimum(kept, floor).sum()
        costs.append(cost + KEEP_FACTOR * step * step * bits.sum())
    return int(np.argmin(costs))


def _rows(
    residual: np.ndarray, block: slice, replaced: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Rows ``block`` of ``residual``, those of the second half taken instead from
    ``replaced = (second, rows)`` (what they code, their rows in order): a block at a
    time, so that no copy of the whole residual is made."""
    rows = residual[block]
    if replaced is None:
        return rows
    second, replacement = replaced
    mask = second[block]
    first = int(np.count_nonzero(second[: block.start]))
    rows = rows.copy()
    rows[mask] = replacement[first : first + int(np.count_nonzero(mask))]
    return rows


def _rounded(
    target: np.ndarray,
    solve: np.ndarray,
    replaced: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(scaled, q)``: the coefficients in steps of ``target``'s rows (with ``replaced``,
    :func:`_rows`; components x patches, ``target @ solve`` by blocks of patches) and their
    dead-zone rounding."""
    n, k = target.shape[0], solve.shape[1]
    scaled = np.empty((k, n), dtype=np.float32)
    q = np.empty((k, n), dtype=np.int32)
    for start in range(0, n, QUANTIZE_ROWS):
        block = slice(start, start + QUANTIZE_ROWS)
        coefficients = _rows(target, block, replaced) @ solve
        scaled[:, block] = coefficients.T
        rounded = np.abs(coefficients)
        rounded += np.float32(DEAD_ZONE)
        np.floor(rounded, out=rounded)
        np.copysign(rounded, coefficients, out=rounded)  # sign(c) * floor(|c| + dead zone)
        np.copyto(q[:, block], rounded.T, casting="unsafe")
    return scaled, q


#: Rate control estimates the bits of a grid of patch means with more than twice
#: ``MEAN_BANDS[0] * MEAN_BANDS[1]`` rows on ``MEAN_BANDS[0]`` bands of ``MEAN_BANDS[1]``
#: rows, spread evenly: 9-14 ms instead of 73 ms for the luma of a 12-megapixel photo at
#: patch side 4, within 3-7 % of the whole grid's estimate there and on the camera photo
#: stacked on its mirror image.
MEAN_BANDS = (8, 16)


def _mean_estimate(analysis: _PlaneAnalysis, step: float, divisor: int) -> float:
    """About the bits of the plane's patch means at ``step`` (:func:`mean_bits`), from
    bands of patch rows on a large grid (:data:`MEAN_BANDS`)."""
    grid = analysis.means.reshape(analysis.rows, analysis.cols)
    scale = analysis.patch * divisor / step
    count, height = MEAN_BANDS
    if analysis.rows <= 2 * count * height:
        return mean_bits(np.rint(grid * scale))
    tops = np.linspace(0, analysis.rows - height, count).astype(np.int64)
    bits = sum(mean_bits(np.rint(grid[top : top + height] * scale)) for top in tops)
    return bits * analysis.rows / (count * height)


def _quantize(
    analysis: _PlaneAnalysis,
    step: float,
    max_rank: int | None,
    decide: float | None = None,
    divisor: int = 1,
    *,
    measure: bool = False,
) -> dict[str, Any]:
    """Choose the components, round the basis and the coefficients at ``step`` (a dead
    zone, then :func:`~svdimage.codec._patch_contexts.optimize_coefficients`), and the means
    at ``step / (patch * divisor)``; with ``measure``, the squared error of the patches so
    rebuilt (``None`` otherwise).

    Format 2.3 (``analysis.second`` set): the first checkerboard half is rounded first
    (beside the second half's coefficients as predicted from the original first half);
    then the first half is rebuilt as the decoder will, the second half's patches less
    their predictions from it are the second half's coefficients, rounded with the first
    half kept (closed loop: the second half codes what the decoder's prediction misses)."""
    n = analysis.patches
    kept, exponents, _ = _choose(analysis, step, max_rank, decide)
    integers = np.rint(analysis.basis[:, kept] * 2.0 ** exponents[kept]).astype(np.int64)
    basis = integers / 2.0 ** exponents[kept]
    means = np.rint(analysis.means * (analysis.patch * divisor) / step).astype(np.int64)
    rows, cols, side = analysis.rows, analysis.cols, analysis.patch
    q = np.zeros((0, n), dtype=np.int32)  # (components, patches)
    contexts = None
    # What the coefficients code, a row per patch: the residual, its second half's rows
    # replaced by what they code there (format 2.3).
    replaced: tuple[np.ndarray, np.ndarray] | None = None
    weight = 0
    if kept.size:
        # The coefficients in steps, by least squares on the decoded basis, and their
        # dead-zone rounding, which rate-distortion rounding refines.
        solve = (basis @ np.linalg.inv(basis.T @ basis) / step).astype(np.float32)
        second = analysis.second
        if second is not None:
            assert analysis.open_loop is not None
            open_loop = analysis.residual[second]
            open_loop -= analysis.open_loop
            scaled, q = _rounded(analysis.residual, solve, (second, open_loop))
            del open_loop
            q, _ = optimize_coefficients(
                scaled,
                q,
                rows,
                cols,
                slope=KEEP_FACTOR,
                given=(False, True),
                given_contexts=False,
                overwrite=True,
            )
            del scaled  # not needed while the first half is rebuilt (43 MiB at 12 MP)
            q[:, second] = 0  # the first half alone (the second is coded again below)
            rebuilt = put_patches(
                q,
                basis,
                means.reshape(rows, cols),
                step,
                rows,
                cols,
                side,
                mean_step=step / (side * divisor),
            )
            predicted = patch_predictions(rebuilt, side)
            del rebuilt
            closed = analysis.residual[second]
            weight = _weight_of(closed, predicted, analysis.basis[:, kept], step)
            predicted *= np.float32(weight / PREDICTION_QUARTERS)
            closed -= predicted
            del predicted
            # Only the second half changed: its coefficients again, beside the first's (whose
            # values are given: their scaled coefficients are not read again).
            scaled, again = _rounded(closed, solve)
            if measure:
                replaced = (second, closed)
            del closed
            q[:, second] = again
            del again
            q, contexts = optimize_coefficients(
                (None, scaled),
                q,
                rows,
                cols,
                slope=KEEP_FACTOR,
                given=(True, False),
                overwrite=True,
            )
        else:
            scaled, q = _rounded(analysis.residual, solve)
            q, contexts = optimize_coefficients(
                scaled, q, rows, cols, slope=KEEP_FACTOR, overwrite=True
            )
        del scaled
    squared_error = None
    if measure:  # the patches as decoded (before deblocking): float64 sums of float32 blocks
        rebuild = (basis.T * step).astype(np.float32)
        squared_error = 0.0
        for start in range(0, n, QUANTIZE_ROWS):
            block = slice(start, start + QUANTIZE_ROWS)
            error = _rows(analysis.residual, block, replaced)
            error = error - q[:, block].T.astype(np.float32) @ rebuild
            squared_error += float(np.einsum("ij,ij->", error, error, dtype=np.float64))
        mean_error = analysis.means - means * (step / (analysis.patch * divisor))
        squared_error += analysis.patch**2 * float(np.dot(mean_error, mean_error))
    return {
        "prediction": weight,
        "squared_error": squared_error,
        "kept": kept,
        "exponents": exponents[kept],
        "basis": integers,
        "means": means.reshape(analysis.rows, analysis.cols),
        "q": q,
        "contexts": contexts,
        "rows": analysis.rows,
        "cols": analysis.cols,
    }

"""Quality and storage measures: relative error, PSNR, SSIM, bits per pixel, BD-PSNR.

Images are floats in [0, 1], so PSNR and SSIM use ``data_range=1.0``;
PSNR and SSIM are scikit-image's definitions (and equal its results: the tests
compare), computed here faster: in float32 when both images are float32
(float64 otherwise), by blocks of rows, and for SSIM with the original's
statistics reused across approximations (:class:`SSIMReference`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage._linalg import map_on_cores, row_blocks
from svdimage._validation import as_image_array

__all__ = [
    "relative_error",
    "peak_signal_noise_ratio",
    "psnr_of_mse",
    "structural_similarity",
    "SSIMReference",
    "bits_per_pixel",
    "compression_ratio",
    "bd_psnr",
    "SSIM_WINDOW",
    "ssim_map",
    "ssim_window_sums",
    "band_sums",
    "chunked_psnr_ssim",
]


def _pair(original: ArrayLike, approx: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images; return them in their common float dtype.

    float32 pairs stay float32 (scikit-image then computes PSNR and SSIM in
    float32, half the memory and time on 12 MP photos); anything else is float64.
    """
    a = as_image_array(original, name="original")
    b = as_image_array(approx, name="approx")
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape; got {a.shape} and {b.shape}.")
    dtype = np.result_type(a.dtype, b.dtype)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def relative_error(original: ArrayLike, approx: ArrayLike) -> float:
    """Relative Frobenius error ``||A - B||_F / ||A||_F``, computed in float64, a block
    of rows at a time (no float64 copy of the images: 12 MP colour made two of 288 MB).

    Parameters
    ----------
    original, approx : (M, N[, C]) array_like
        Images of the same shape; all channels count.

    Returns
    -------
    error : float
        ``0.0`` when both are zero; ``inf`` when only ``original`` is zero.

    Examples
    --------
    >>> import numpy as np
    >>> relative_error(np.ones((2, 2)), np.full((2, 2), 0.5))
    0.5
    """
    a, b = _pair(original, approx)
    num = den = 0.0
    for rows in row_blocks(a, 1 << 18):
        block = a[rows].astype(np.float64).ravel()
        den += float(block @ block)
        block -= b[rows].ravel()
        num += float(block @ block)
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(np.sqrt(num / den))


def peak_signal_noise_ratio(original: ArrayLike, approx: ArrayLike) -> float:
    """PSNR in dB for images in [0, 1] (``data_range=1.0``), as scikit-image computes it.

    ``10 log10(1 / MSE)``; ``inf`` for identical images. The squared
    differences are taken in the images' common dtype (float32 stays
    float32, as in scikit-image) and summed in float64, a block of rows at a
    time, so that no full-size temporary is made.

    See Also
    --------
    skimage.metrics.peak_signal_noise_ratio
    """
    a, b = _pair(original, approx)
    return psnr_of_mse(_sum_of_squared_differences(a, b) / a.size)


def psnr_of_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error for images in [0, 1]: ``10 log10(1 / mse)``
    (``inf`` for 0)."""
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(1.0 / mse))


def _sum_of_squared_differences(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for block in row_blocks(a, 1 << 20):
        d = a[block] - b[block]
        total += float(np.sum(np.square(d, out=d), dtype=np.float64))
    return total


#: Side of SSIM's window (scikit-image's default): smaller images have no SSIM.
SSIM_WINDOW = 7


def structural_similarity(
    original: ArrayLike, approx: ArrayLike, *, too_small: Literal["raise", "nan"] = "raise"
) -> float:
    """Mean SSIM for images in [0, 1] (``data_range=1.0``), as scikit-image computes it.

    scikit-image's defaults (7x7 uniform window, K1 = 0.01, K2 = 0.03, sample
    covariance); color images are averaged over channels. Equal to
    :func:`skimage.metrics.structural_similarity` to about 1e-6 (the tests
    check 1e-5), computed by :class:`SSIMReference`, which is faster and
    reusable: compare many approximations with one original through it.

    Parameters
    ----------
    original, approx : (M, N[, C]) array_like
    too_small : {'raise', 'nan'}, optional
        What to do for images smaller than the ``SSIM_WINDOW`` x
        ``SSIM_WINDOW`` window: raise ``ValueError`` (default) or return NaN
        (for tables that cover every image size).

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image
           quality assessment: from error visibility to structural
           similarity", IEEE Trans. Image Process. 13(4), 600-612 (2004).
           :doi:`10.1109/TIP.2003.819861`
    """
    a, b = _pair(original, approx)
    return SSIMReference(a, too_small=too_small, keep_statistics=False)(b)


def ssim_map(original: ArrayLike, approx: ArrayLike) -> np.ndarray:
    """The local SSIM of every ``SSIM_WINDOW`` x ``SSIM_WINDOW`` window inside the image.

    The map whose mean is :func:`structural_similarity`: scikit-image's windows
    and constants (uniform 7x7 window, K1 = 0.01, K2 = 0.03, sample
    covariance, ``data_range=1``), at the windows that lie wholly inside the
    image (scikit-image computes its full map with mirrored borders, then
    averages only these). Computed in float64; colour maps are the mean of
    the channels' maps. The explorer's SSIM view draws this map.

    Parameters
    ----------
    original, approx : (M, N[, C]) array_like
        Images in [0, 1], at least 7 x 7.

    Returns
    -------
    (M - 6, N - 6) ndarray of float64
        Entry ``[i, j]`` is the SSIM of the window whose top-left pixel is
        ``(i, j)``, that is centred on pixel ``(i + 3, j + 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 400).reshape(20, 20)
    >>> ssim_map(x, x).shape, float(ssim_map(x, x).min())
    ((14, 14), 1.0)
    """
    from scipy.ndimage import uniform_filter

    a, b = _pair(original, approx)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"images of {a.shape[1]}x{a.shape[0]} pixels are smaller than SSIM's "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} window."
        )
    half = SSIM_WINDOW // 2
    inside = (slice(half, a.shape[0] - half), slice(half, a.shape[1] - half))
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample covariance
    channels = [(a, b)] if a.ndim == 2 else [(a[..., c], b[..., c]) for c in range(a.shape[2])]
    total = np.zeros((a.shape[0] - 2 * half, a.shape[1] - 2 * half))
    for x, y in channels:
        x, y = x.astype(np.float64), y.astype(np.float64)
        mean = [uniform_filter(v, size=SSIM_WINDOW)[inside] for v in (x, y, x * x, y * y, x * y)]
        ux, uy, uxx, uyy, uxy = mean
        vx, vy, vxy = norm * (uxx - ux * ux), norm * (uyy - uy * uy), norm * (uxy - ux * uy)
        total += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return total / len(channels)


class SSIMReference:
    """SSIM against one original, for many approximations of it.

    The original's local means and variances are computed once; each call
    then filters only the approximation and its product with the original.
    The box sums run over the windows that lie inside the image, which are
    exactly the windows whose SSIM scikit-image averages (it crops half a
    window at the border), in float32 as scikit-image computes them, strip
    by strip (cache-sized, so each strip is read from memory once) and on
    every core (one thread per block of strips; NumPy releases the GIL).
    Memory: the original's two statistics (float32, each the image's size);
    the original itself is referenced, not copied.

    Parameters
    ----------
    original : (M, N[, C]) array_like
        Image in [0, 1].
    too_small : {'raise', 'nan'}, optional
        As in :func:`structural_similarity`.
    keep_statistics : bool, optional
        Keep the original's statistics between calls (default). With False
        they are recomputed strip by strip in each call (the same numbers):
        for one or two comparisons, where holding twice the image in memory
        would buy nothing.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20)
    >>> ssim = SSIMReference(x)
    >>> round(ssim(x), 6), ssim(np.clip(x + 0.1, 0, 1)) < 1
    (1.0, True)
    """

    #: Output rows per strip: a strip's arrays stay in a core's cache.
    STRIP = 32
    K1, K2 = 0.01, 0.03

    def __init__(
        self,
        original: ArrayLike,
        *,
        too_small: Literal["raise", "nan"] = "raise",
        keep_statistics: bool = True,
    ) -> None:
        x = as_image_array(original, name="original")
        self.shape = x.shape
        self.too_small = min(x.shape[:2]) < SSIM_WINDOW
        if self.too_small:
            if too_small == "raise":
                raise ValueError(
                    f"SSIM needs images of at least 7x7 pixels; got {x.shape[1]}x{x.shape[0]}."
                )
            return
        planes = x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0)
        self._x = planes  # a view: each strip is copied (as float32) when it is used
        channels, M, N = self._x.shape
        self._rows, self._cols = M - SSIM_WINDOW + 1, N - SSIM_WINDOW + 1
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None
        if keep_statistics:
            self._mean = np.empty((channels, self._rows, self._cols), dtype=np.float32)
            self._var = np.empty_like(self._mean)
            map_on_cores(self._statistics, self._strips())

    @property
    def keeps_statistics(self) -> bool:
        """Whether the original's statistics are held between calls."""
        return self._mean is not None

    def __call__(self, approx: ArrayLike) -> float:
        """Mean SSIM of ``approx`` against the original (NaN if too small)."""
        y = as_image_array(approx, name="approx")
        if y.shape != self.shape:
            raise ValueError(f"images must have the same shape; got {self.shape} and {y.shape}.")
        if self.too_small:
            return float("nan")
        planes = y[None] if y.ndim == 2 else np.moveaxis(y, -1, 0)
        return self.of_rows(lambda start, stop: planes[:, start:stop])

    def of_rows(self, rows: Callable[[int, int], np.ndarray], *, band: int = 128) -> float:
        """Mean SSIM of an approximation handed over a band of rows at a time.

        For approximations that are never held whole: a truncated SVD's rows
        are built band by band (:class:`svdimage.ranks.displayed_quality.DisplayedQuality`),
        so that memory holds a band per core instead of an image. Bands run on
        every core, each thread building its bands with one BLAS thread (BLAS's
        own threads, idling between small products, would compete with them).

        Parameters
        ----------
        rows : callable
            ``rows(start, stop)`` returns the approximation's rows ``start`` to
            ``stop`` as planes, ``(C, stop - start, N)`` (``C = 1`` for gray).
            Called from several threads, once per band: band ``b`` asks for
            rows ``b * band`` to ``min((b + 1) * band, M - SSIM_WINDOW + 1) +
            SSIM_WINDOW - 1``, so consecutive bands share ``SSIM_WINDOW - 1``
            rows and the last one ends at row ``M``.
        band : int, optional
            Window positions (output rows) per band.

        Returns
        -------
        float
            As :meth:`__call__` (NaN if too small).
        """
        if self.too_small:
            return float("nan")
        done = map_on_cores(
            functools.partial(self._band_sums, rows, band), range(0, self._rows, band)
        )
        # Each channel's strip sums added in row order, whatever the bands and threads.
        sums = [item for block in done for item in block]
        means = [sum(t for channel, t in sums if channel == c) for c in range(self._x.shape[0])]
        return float(np.mean(means) / (self._rows * self._cols))

    def _band_sums(
        self, rows: Callable[[int, int], np.ndarray], band: int, first: int
    ) -> list[tuple[int, float]]:
        """(channel, SSIM sum) of each strip of the band of output rows from ``first``."""
        last = min(first + band, self._rows)
        planes = rows(first, last + SSIM_WINDOW - 1)
        return [
            (c, self._ssim_sum(planes, c, top, min(top + self.STRIP, last), first))
            for c in range(self._x.shape[0])
            for top in range(first, last, self.STRIP)
        ]

    def _strips(self) -> list[tuple[int, int, int]]:
        """(channel, first output row, stop row) of every strip."""
        return [
            (c, top, min(top + self.STRIP, self._rows))
            for c in range(self._x.shape[0])
            for top in range(0, self._rows, self.STRIP)
        ]

    def _statistics(self, strip: tuple[int, int, int]) -> None:
        c, top, stop = strip
        assert self._mean is not None and self._var is not None
        band = np.ascontiguousarray(self._x[c, top : stop + SSIM_WINDOW - 1], dtype=np.float32)
        self._mean[c, top:stop], self._var[c, top:stop] = _mean_and_variance(band)

    def _ssim_sum(self, planes: np.ndarray, c: int, top: int, stop: int, first: int) -> float:
        """Sum of SSIM over output rows ``top:stop``; ``planes`` starts at image row ``first``."""
        ys = np.ascontiguousarray(
            planes[c, top - first : stop - first + SSIM_WINDOW - 1], dtype=np.float32
        )
        xs = np.ascontiguousarray(self._x[c, top : stop + SSIM_WINDOW - 1], dtype=np.float32)
        if self._mean is None or self._var is None:
            ux, vx = _mean_and_variance(xs)
        else:
            ux, vx = self._mean[c, top:stop], self._var[c, top:stop]
        uy, vy = _mean_and_variance(ys)
        vxy = _COV_NORM * (_box_mean(xs * ys) - ux * uy)
        C1, C2 = np.float32(self.K1**2), np.float32(self.K2**2)
        numerator = (2 * ux * uy + C1) * (2 * vxy + C2)
        denominator = (ux * ux + uy * uy + C1) * (vx + vy + C2)
        return float(np.sum(numerator / denominator, dtype=np.float64))


def ssim_window_sums(original: np.ndarray, approx: np.ndarray) -> np.ndarray:
    """Sum of SSIM over every window that lies inside two bands of planes, per plane.

    The piece of :class:`SSIMReference` that measures images in bands: the
    mean SSIM of an image is the sum of these sums over bands that overlap by
    ``SSIM_WINDOW - 1`` rows, divided by the number of windows inside the
    image, ``C (M - 6) (N - 6)`` (scikit-image's definition: 7x7 uniform
    windows, data range 1, borders cropped; float32 as it computes them).

    Parameters
    ----------
    original, approx : (C, m, n) ndarray
        The same rows of ``C`` planes of the original and of the
        approximation, values in [0, 1]; ``m`` and ``n`` at least 7.

    Returns
    -------
    (C,) ndarray
        float64 sums over the ``(m - 6) (n - 6)`` windows of each plane.

    Examples
    --------
    >>> x = np.linspace(0, 1, 300, dtype=np.float32).reshape(1, 15, 20)
    >>> ssim_window_sums(x, x).tolist()  # 9 x 14 windows, each SSIM 1
    [126.0]
    """
    if original.shape != approx.shape or original.ndim != 3:
        raise ValueError(
            f"need two (C, m, n) bands of the same shape; got {original.shape} and {approx.shape}."
        )
    sums = np.zeros(original.shape[0])
    rows = original.shape[1] - SSIM_WINDOW + 1
    for c in range(original.shape[0]):
        for top in range(0, rows, SSIMReference.STRIP):
            stop = min(top + SSIMReference.STRIP, rows) + SSIM_WINDOW - 1
            xs = np.ascontiguousarray(original[c, top:stop], dtype=np.float32)
            ys = np.ascontiguousarray(approx[c, top:stop], dtype=np.float32)
            ux, vx = _mean_and_variance(xs)
            uy, vy = _mean_and_variance(ys)
            vxy = _COV_NORM * (_box_mean(xs * ys) - ux * uy)
            C1, C2 = np.float32(SSIMReference.K1**2), np.float32(SSIMReference.K2**2)
            numerator = (2 * ux * uy + C1) * (2 * vxy + C2)
            denominator = (ux * ux + uy * uy + C1) * (vx + vy + C2)
            sums[c] += float(np.sum(numerator / denominator, dtype=np.float64))
    return sums


def band_sums(
    original: np.ndarray, approx: np.ndarray, own: int, *, ssim: bool = True
) -> tuple[float, float]:
    """The sums behind PSNR and SSIM over one band of rows of two images.

    For images measured a band of rows at a time (bands that overlap by
    ``SSIM_WINDOW - 1`` rows, the last ending at the image's last row): the
    sum of squared differences over the band's first ``own`` rows, and the
    sum of SSIM over the windows whose top row is one of them (every window
    inside the band when it holds ``own + SSIM_WINDOW - 1`` rows).

    Parameters
    ----------
    original, approx : (m, N) or (m, N, C) ndarray
        The same rows of both images, values in [0, 1].
    own : int
        The band's own rows (the rest is the overlap with the next band).
    ssim : bool, optional
        Also sum SSIM (else 0 is returned for it).

    Returns
    -------
    squared, ssim_sum : float
    """
    x = (original[None] if original.ndim == 2 else np.moveaxis(original, -1, 0)).astype(
        np.float32, copy=False
    )
    y = (approx[None] if approx.ndim == 2 else np.moveaxis(approx, -1, 0)).astype(
        np.float32, copy=False
    )
    difference = y[:, :own] - x[:, :own]
    squared = float(np.sum(np.square(difference, out=difference), dtype=np.float64))
    if not ssim or x.shape[1] < SSIM_WINDOW or x.shape[2] < SSIM_WINDOW:
        return squared, 0.0
    return squared, float(ssim_window_sums(x, y).sum())


def chunked_psnr_ssim(original: Any, approx: Any) -> tuple[float, float]:
    """PSNR (dB) and SSIM of two images bigger than memory (Dask arrays of the same shape,
    values in [0, 1]; integers are scaled by their range), in one pass over both.

    Each band of the original's row chunks, with the ``SSIM_WINDOW - 1`` rows after
    it, is a task that returns :func:`band_sums`: the same numbers as
    :func:`peak_signal_noise_ratio` and :func:`structural_similarity` of the whole
    images, up to float rounding, with a band per task in memory.
    """
    from dask.base import compute
    from dask.delayed import delayed

    from svdimage.chunked_io import unit_range

    x, y = unit_range(original), unit_range(approx)
    shape = tuple(int(n) for n in x.shape)
    if shape != tuple(int(n) for n in y.shape):
        raise ValueError(f"images must have the same shape; got {shape} and {tuple(y.shape)}.")
    M, N = shape[:2]
    ssim = min(M, N) >= SSIM_WINDOW
    bounds = np.cumsum([0, *x.chunks[0]]).tolist()
    tasks = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        end = min(stop + SSIM_WINDOW - 1, M) if ssim else stop
        tasks.append(delayed(band_sums)(x[start:end], y[start:end], stop - start, ssim=ssim))
    done = compute(*tasks)
    channels = 1 if len(shape) == 2 else shape[2]
    psnr = psnr_of_mse(sum(d[0] for d in done) / (M * N * channels))
    if not ssim:
        return psnr, float("nan")
    windows = channels * (M - SSIM_WINDOW + 1) * (N - SSIM_WINDOW + 1)
    return psnr, float(sum(d[1] for d in done) / windows)


#: scikit-image's sample-covariance correction, n / (n - 1) for the n pixels of a window.
_COV_NORM = np.float32(SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1))


def _mean_and_variance(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's mean and sample variance, in float32 as scikit-image computes them."""
    mean = _box_mean(band)
    return mean, _COV_NORM * (_box_mean(band * band) - mean * mean)


def _box_mean(band: np.ndarray) -> np.ndarray:
    """float32 means over every SSIM_WINDOW x SSIM_WINDOW window inside ``band``."""
    w = SSIM_WINDOW
    rows = band.shape[0] - w + 1
    vertical = band[:rows].astype(np.float32, copy=True)
    for i in range(1, w):
        vertical += band[i : rows + i]
    cols = band.shape[1] - w + 1
    out = vertical[:, :cols].copy()
    for i in range(1, w):
        out += vertical[:, i : cols + i]
    out *= np.float32(1 / (w * w))
    return out


def bits_per_pixel(nbytes: int, shape: tuple[int, ...]) -> float:
    """Bits per pixel of ``nbytes`` bytes storing an image of ``shape``.

    A pixel is one position ``(i, j)``; color channels do not multiply it, so
    an 8-bit RGB image is 24 bpp, as is usual for codecs.

    Examples
    --------
    >>> bits_per_pixel(512 * 512, (512, 512))
    8.0
    """
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0; got {nbytes}.")
    if len(shape) < 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"shape must start with two positive sizes; got {shape}.")
    return 8.0 * nbytes / (shape[0] * shape[1])


def compression_ratio(original_bytes: int, compressed_bytes: int) -> float:
    """``original_bytes / compressed_bytes``: above 1 means the data got smaller.

    Examples
    --------
    >>> compression_ratio(1000, 250)
    4.0
    """
    if original_bytes < 0 or compressed_bytes <= 0:
        raise ValueError(
            "byte counts must be positive; got "
            f"original_bytes={original_bytes}, compressed_bytes={compressed_bytes}."
        )
    return original_bytes / compressed_bytes


def bd_psnr(
    test_rates: ArrayLike,
    test_quality: ArrayLike,
    reference_rates: ArrayLike,
    reference_quality: ArrayLike,
    *,
    low: float | None = None,
    high: float | None = None,
) -> float:
    """Bjøntegaard delta: the mean quality gain of ``test`` over ``reference`` at equal rate.

    Each curve's quality (PSNR in dB, or SSIM) is fitted by a polynomial in
    log10 of the rate (a cubic, or of lower degree for fewer than four
    points) and the difference of the fits is averaged over the rates both
    curves cover, narrowed to ``[low, high]`` when given (e.g. 0.25-2 bpp:
    a fit is only trusted where it has points). Points with a non-finite
    value are dropped. NaN when a curve has fewer than two points or the
    ranges do not overlap.

    References
    ----------
    .. [1] G. Bjøntegaard, "Calculation of average PSNR differences between
       RD-curves", ITU-T SG16 Q.6, VCEG-M33, 2001.

    Examples
    --------
    >>> rates = [0.25, 0.5, 1.0, 2.0]
    >>> round(bd_psnr(rates, [31, 34, 37, 40], rates, [30, 33, 36, 39]), 6)
    1.0
    """

    def fit(rates: ArrayLike, quality: ArrayLike) -> tuple[np.ndarray, float, float] | None:
        r = np.asarray(rates, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
        keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
        r, q = np.log10(r[keep]), q[keep]
        if np.unique(r).size < 2:
            return None
        degree = min(3, np.unique(r).size - 1)
        return np.polyfit(r, q, degree), float(r.min()), float(r.max())

    a, b = fit(test_rates, test_quality), fit(reference_rates, reference_quality)
    if a is None or b is None:
        return float("nan")
    start = max(a[1], b[1], -np.inf if low is None else np.log10(low))
    stop = min(a[2], b[2], np.inf if high is None else np.log10(high))
    if not stop > start:
        return float("nan")
    difference = np.polyint(np.polysub(a[0], b[0]))
    return float((np.polyval(difference, stop) - np.polyval(difference, start)) / (stop - start))

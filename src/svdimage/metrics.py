"""Quality and storage measures: relative error, PSNR, SSIM, bits per pixel.

Images are floats in [0, 1], so PSNR and SSIM use ``data_range=1.0``;
PSNR and SSIM come from scikit-image and run in float32 when both images are
float32 (float64 otherwise).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from svdimage._validation import as_image_array

__all__ = [
    "relative_error",
    "peak_signal_noise_ratio",
    "structural_similarity",
    "bits_per_pixel",
    "compression_ratio",
    "SSIM_WINDOW",
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
    """Relative Frobenius error ``||A - B||_F / ||A||_F``, computed in float64.

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
    a64 = a.astype(np.float64)
    num = np.linalg.norm((a64 - b).ravel())
    den = np.linalg.norm(a64.ravel())
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)


def peak_signal_noise_ratio(original: ArrayLike, approx: ArrayLike) -> float:
    """PSNR in dB for images in [0, 1] (``data_range=1.0``), via scikit-image.

    Returns ``inf`` for identical images.

    See Also
    --------
    skimage.metrics.peak_signal_noise_ratio
    """
    from skimage.metrics import peak_signal_noise_ratio as psnr

    a, b = _pair(original, approx)
    if np.array_equal(a, b):
        return float("inf")
    return float(psnr(a, b, data_range=1.0))


#: Side of SSIM's window (scikit-image's default): smaller images have no SSIM.
SSIM_WINDOW = 7


def structural_similarity(
    original: ArrayLike, approx: ArrayLike, *, too_small: Literal["raise", "nan"] = "raise"
) -> float:
    """Mean SSIM for images in [0, 1] (``data_range=1.0``), via scikit-image.

    Uses scikit-image's defaults (7x7 uniform window); color images are
    averaged over channels (``channel_axis=-1``).

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
    from skimage.metrics import structural_similarity as ssim

    a, b = _pair(original, approx)
    if min(a.shape[:2]) < SSIM_WINDOW:
        if too_small == "nan":
            return float("nan")
        raise ValueError(
            f"SSIM needs images of at least 7x7 pixels; got {a.shape[1]}x{a.shape[0]}."
        )
    channel_axis = -1 if a.ndim == 3 else None
    return float(ssim(a, b, data_range=1.0, channel_axis=channel_axis))


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

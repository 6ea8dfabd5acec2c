"""Compression as a user asks for it: write the file, measure it, compare with JPEG.

Package-internal; :func:`compress` and :func:`jpeg_at_size` are re-exported by
:mod:`svdimage.codec`. Every size is a real file's bytes; every quality number
is measured on the 8-bit pixels its file decodes to, beside the best Pillow JPEG of at
most the same bytes.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, features

from svdimage import _progress, metrics
from svdimage._deprecation import destination_first
from svdimage._fileutil import atomic_path, check_writable
from svdimage._search import qualities_for_budgets
from svdimage._validation import as_image_array, is_chunked
from svdimage.codec._decode import decode
from svdimage.codec._encode import encode
from svdimage.io import from_uint8, to_uint8

__all__ = [
    "compress",
    "CompressionReport",
    "Measured",
    "jpeg_at_size",
    "pillow_at_size",
    "pillow_at_sizes",
    "PillowFile",
]


@dataclass(frozen=True)
class Measured:
    """One row of a comparison: a file's bytes and, when it is an image, its quality.

    ``psnr`` and ``ssim`` are ``None`` for rows that are not decoded images
    (the original file, the raw pixels); ``ssim`` is NaN below 7x7 pixels.
    """

    name: str
    nbytes: int
    bits_per_pixel: float
    psnr: float | None = None
    ssim: float | None = None


@dataclass(frozen=True)
class CompressionReport:
    """What :func:`compress` wrote and measured.

    Attributes
    ----------
    path : Path
    shape : tuple of int
    rank : int or None
        The global rank a rank criterion chose (``None`` without one; filled in
        by the caller that resolved it, as :func:`svdimage.batch.jobs.compress_image`).
    rows : list of Measured
        The original file (when its size is known), the raw 8-bit pixels, the
        ``.svdz`` file and, when asked, the best JPEG of at most its bytes.
    jpeg_quality : int or None
        That JPEG's quality; ``None`` when not compared or no JPEG is as small.
    """

    path: Path
    shape: tuple[int, ...]
    rank: int | None
    rows: list[Measured]
    jpeg_quality: int | None

    @property
    def svdz(self) -> Measured:
        """The ``.svdz`` row."""
        return next(row for row in self.rows if row.name == ".svdz")


def compress(
    path: str | os.PathLike[str],
    image: ArrayLike,
    *,
    force: bool = False,
    rank: int | None = None,
    original_bytes: int | None = None,
    compare_jpeg: bool = True,
    **options: Any,
) -> CompressionReport:
    """Encode ``image`` to an ``.svdz`` file at ``path`` and measure it honestly.

    The report's PSNR and SSIM are those of the 8-bit pixels each file decodes to
    (what ``decompress`` writes; the JPEG's likewise), against ``image``.

    A writer: the destination comes first, as in :func:`svdimage.io.save_image`
    and :func:`save` (``compress(image, path)``, the order before 0.2, still
    works until 0.3 with a ``DeprecationWarning``).

    Parameters
    ----------
    path : str or path
        Written atomically; an existing file only with ``force``. Checked
        before any work is done.
    image : (M, N[, 3]) array_like
    force : bool, optional
    rank : int, optional
        A rank cap (as :func:`encode`). The codec takes integer ranks only: a
        criterion such as ``ssim=0.95`` is resolved by the caller
        (:func:`svdimage.ranks.growth.resolve_rank_items`), as
        :func:`svdimage.batch.jobs.compress_image` does.
    original_bytes : int, optional
        Size of the file the image came from, for the table's first row.
    compare_jpeg : bool, optional
        Also encode the best Pillow JPEG (``optimize=True``) of at most the
        same bytes and measure it.
    **options
        Passed to :func:`encode` (``quality``, ``psnr``, ``max_bytes``, ``bpp``,
        ``tile``, ``color``, ``chroma``).

    Returns
    -------
    CompressionReport

    Notes
    -----
    A Dask image (one bigger than memory, :func:`svdimage.open_image`) is
    written as a tiled file (format 2.4, :func:`svdimage.codec.save_tiled`),
    at ``quality`` only, and measured in one more pass over the image and the
    file; no JPEG is compared (Pillow encodes JPEGs whole, in memory).
    """
    path, image = destination_first(path, image, function="compress", names=("path", "image"))
    check_writable(path, force=force)
    if is_chunked(image):
        return _compress_tiled(path, image, rank, original_bytes, force=force, **options)
    array = as_image_array(image)
    data = encode(array, rank=rank, **options)
    # Measured as the 8-bit pixels the file decodes to (what ``decompress`` writes), as the
    # JPEG row is: the float decode scored up to 0.3 dB higher than any saved image.
    decoded = from_uint8(decode(data, max_pixels=None, dtype=np.uint8))
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    shape = array.shape

    def row(name: str, nbytes: int, approx: np.ndarray | None = None) -> Measured:
        bpp = metrics.bits_per_pixel(nbytes, shape)
        if approx is None:
            return Measured(name, nbytes, bpp)
        return Measured(
            name,
            nbytes,
            bpp,
            metrics.peak_signal_noise_ratio(array, approx),
            metrics.structural_similarity(array, approx, too_small="nan"),
        )

    rows = [] if original_bytes is None else [row("original file", original_bytes)]
    rows += [row("raw 8-bit pixels", int(array.size)), row(".svdz", len(data), decoded)]
    del decoded  # not held beside the JPEG's
    jpeg = jpeg_at_size(array, len(data)) if compare_jpeg else None
    if jpeg is not None:
        rows.append(row("JPEG", jpeg.nbytes, jpeg.image))
    return CompressionReport(
        path=Path(path),
        shape=shape,
        rank=None,
        rows=rows,
        jpeg_quality=None if jpeg is None else jpeg.quality,
    )


#: Why a Dask image takes a quality and nothing else.
TILED_ONLY_QUALITY = (
    "an image read out of core is compressed in tiles at one quality; a PSNR, size or bpp "
    "target, a rank, a patch side or RGB planes need the whole image in memory: set the "
    "quality only (75 by default)."
)


def _compress_tiled(
    path: str | os.PathLike[str],
    image: Any,
    rank: int | None,
    original_bytes: int | None,
    *,
    force: bool,
    quality: float | None = None,
    **options: Any,
) -> CompressionReport:
    """:func:`compress` of a Dask image: a tiled file at one quality, measured in bands."""
    from svdimage.codec._tiled import open_tiled, save_tiled

    given = [name for name, value in options.items() if value not in (None, "auto", "ycbcr")]
    if rank is not None or given:
        raise ValueError(TILED_ONLY_QUALITY)
    tiles = math.prod(-(-int(n) // 2048) for n in image.shape[:2])
    with _progress.task(f"compressing in {tiles} tiles", tiles, unit="tiles") as step:
        saved = save_tiled(
            path, image, quality=75.0 if quality is None else quality, force=force,
            on_tile=step.advance,
        )  # fmt: skip
    with _progress.task("measuring PSNR and SSIM in bands of rows"):
        eight_bits = open_tiled(path, max_pixels=None).map_blocks(
            lambda tile: from_uint8(to_uint8(tile)), dtype=np.float32
        )  # the 8-bit pixels it decodes to, as compress measures a whole file
        psnr, ssim = metrics.chunked_psnr_ssim(image, eight_bits)
    shape = tuple(int(n) for n in image.shape)

    def row(name: str, nbytes: int) -> Measured:
        return Measured(name, nbytes, metrics.bits_per_pixel(nbytes, shape))

    rows = [] if original_bytes is None else [row("original file", original_bytes)]
    rows += [row("raw 8-bit pixels", math.prod(shape))]
    rows.append(dataclasses.replace(row(".svdz", saved.nbytes), psnr=psnr, ssim=ssim))
    return CompressionReport(path=Path(path), shape=shape, rank=None, rows=rows, jpeg_quality=None)


@dataclass(frozen=True)
class PillowFile:
    """A file Pillow wrote for a comparison (:func:`pillow_at_size`), and what it decodes to.

    Attributes
    ----------
    quality : int
        Pillow's quality setting of the file.
    data : bytes
        The file.
    image : ndarray
        Its decoded pixels, float32 in [0, 1], the shape of the original.
    """

    quality: int
    data: bytes
    image: np.ndarray

    @property
    def nbytes(self) -> int:
        """The file's size in bytes."""
        return len(self.data)


def jpeg_at_size(image: ArrayLike, max_bytes: int) -> PillowFile | None:
    """The best Pillow JPEG (``optimize=True``) of at most ``max_bytes`` bytes, or ``None``
    when even quality 1 is larger. For honest side-by-side comparisons."""
    return pillow_at_size(image, max_bytes, format="JPEG")


def pillow_at_size(image: ArrayLike, max_bytes: int, *, format: str = "JPEG") -> PillowFile | None:
    """The best Pillow ``format`` file (``'JPEG'`` or ``'WEBP'``) of at most ``max_bytes``
    bytes, or ``None`` when even quality 1 is larger.

    JPEG with ``optimize=True`` and quality at most 95 (above it Pillow's own
    documentation advises against); lossy WebP at quality 1-100, Pillow's
    default effort.
    """
    return pillow_at_sizes(image, [max_bytes], format=format)[0]


def pillow_at_sizes(
    image: ArrayLike, max_bytes: Sequence[float], *, format: str = "JPEG"
) -> list[PillowFile | None]:
    """:func:`pillow_at_size` for several byte budgets, sharing the trial encodes."""

    if format not in ("JPEG", "WEBP"):
        raise ValueError(f"format must be 'JPEG' or 'WEBP'; got {format!r}.")
    if format == "WEBP" and not features.check("webp"):
        raise ValueError("this Pillow was built without WebP; install a Pillow wheel from PyPI.")
    array = as_image_array(image)
    pixels = Image.fromarray(to_uint8(array))
    top = 95 if format == "JPEG" else 100
    options: dict[str, Any] = {"optimize": True} if format == "JPEG" else {}
    trials: dict[int, bytes] = {}

    def size_at(quality: int) -> int:
        quality = min(quality, top)
        if quality not in trials:
            buffer = io.BytesIO()
            pixels.save(buffer, format=format, quality=quality, **options)
            trials[quality] = buffer.getvalue()
        return len(trials[quality])

    qualities = qualities_for_budgets(size_at, list(max_bytes))
    pixels.close()  # frees its pixels: only the decodes below are image-sized
    found: list[PillowFile | None] = []
    for quality in qualities:
        if quality is None:
            found.append(None)
            continue
        quality = min(quality, top)
        data = trials[quality]
        with Image.open(io.BytesIO(data)) as opened:
            # WebP decodes gray as RGB
            decoded = opened.convert("L") if array.ndim == 2 and opened.mode != "L" else opened
            found.append(PillowFile(quality, data, from_uint8(np.asarray(decoded))))
    return found

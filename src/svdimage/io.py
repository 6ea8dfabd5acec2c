"""Reading and writing images: files, URLs, bytes and arrays, through Pillow.

Every image enters the package as a floating array in [0, 1] of shape
``(M, N)`` (gray) or ``(M, N, 3)`` (RGB), and leaves it as 8-bit (or, on
request, 16-bit) pixels, clipped first and written atomically.
"""

from __future__ import annotations

import contextlib
import io as _io
import logging
import os
import re
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal, Union

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageOps, UnidentifiedImageError

from svdimage._download import download
from svdimage._fileutil import atomic_path, check_regular_input
from svdimage._linalg import row_blocks
from svdimage._validation import (
    DEFAULT_MAX_PIXELS,
    as_image_array,
    check_memory,
    composite_on_white,
    is_chunked,
)
from svdimage.chunked_io import is_zarr_store, open_image, save_chunked

__all__ = [
    "load_image",
    "open_image",
    "save_image",
    "to_uint8",
    "from_uint8",
    "ImageNote",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
]

#: Default cap on the bytes downloaded from a URL (256 MiB).
DEFAULT_MAX_BYTES = 256 * 2**20

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, ArrayLike]
Mode = Literal["auto", "gray", "rgb"]

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "La"}
_PIL_LIMIT_LOCK = threading.Lock()
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ImageNote(UserWarning):
    """Something :func:`load_image` did to a file's pixels, or a warning of the decoder.

    Issued (with :func:`warnings.warn`) for conversions a user may not expect:
    an alpha channel composited on white, the first frame of an animation or
    a multi-page file, CMYK or another colour space converted to RGB, 16-bit
    colour read as 8-bit; and for the warnings of Pillow and libtiff on a file
    that still decoded. The command line prints each as one line on stderr
    (``--quiet`` hides them); in Python, filter them as any warning.
    """


def load_image(
    source: ImageSource,
    *,
    mode: Mode = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_memory: int | None = None,
) -> np.ndarray:
    """Load an image as a float32 array in [0, 1].

    Parameters
    ----------
    source : str, path, bytes, binary file object or array
        A file path; an ``http://`` or ``https://`` URL; the encoded bytes of
        an image file; an open binary file; or an ``(M, N[, C])`` array
        (integers are scaled by their dtype's range, floats are taken as
        [0, 1]).
    mode : {'auto', 'gray', 'rgb'}, optional
        ``'gray'`` returns ``(M, N)``, converting color with the ITU-R BT.709
        luma weights of :func:`skimage.color.rgb2gray`; ``'rgb'`` returns
        ``(M, N, 3)``; ``'auto'`` keeps gray files gray and returns color
        files as RGB, unless all three channels are equal, which gives gray.
    max_pixels : int or None, optional
        Refuse images with more pixels than this (default: Pillow's
        decompression-bomb limit, about 89.5 MP). ``None`` removes the cap.
    timeout : float, optional
        Seconds to wait for a URL's server (connect and each read).
    max_bytes : int, optional
        Refuse URL downloads larger than this many bytes.
    max_memory : int, optional
        Refuse files whose decoding would need more bytes than this, as
        estimated from the file's header before any pixel is read. The
        default is the memory available to the process (see
        :func:`svdimage._validation.available_memory`).

    Returns
    -------
    image : (M, N) or (M, N, 3) ndarray of float32
        Pixel values in [0, 1].

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    OSError
        If a path is a FIFO, a device or a socket (refused at once: reading
        one would block or never end).
    ValueError
        If the data is not an image Pillow can read, is truncated (a PNG's
        pixel data is checked to the last row, a TIFF's strips must cover its
        height, and data too short to hold the declared size, compressed or
        not, is refused before allocating), holds NaN or infinite pixels,
        is smaller than 2x2 pixels, exceeds ``max_pixels``, ``max_memory`` or
        (URL) ``max_bytes``.
    TimeoutError, ConnectionError
        If a URL's server does not answer in time, or cannot be reached.

    Warns
    -----
    ImageNote
        For each notable conversion, and each warning of the decoding library.

    Notes
    -----
    8- and 16-bit gray, 8-bit RGB, palette and CMYK files are supported; the
    EXIF orientation tag is applied, so the array looks as a viewer shows the
    photo. An alpha channel is composited on a white background. Pillow reads
    16-bit RGB PNG files as 8-bit RGB.

    Pixels outside [0, 1] are mapped by one rule, with an :class:`ImageNote`:
    32-bit float files (TIFF mode ``F``) whose values are all in [0, 1] are
    kept; 32-bit integer files (mode ``I``) whose values are all in
    0..65535 are divided by 65535, as 16-bit files are. Otherwise the values
    are mapped linearly from their minimum and maximum to [0, 1] (a constant
    image is clipped to [0, 1] instead). NaN or infinite values are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage import load_image
    >>> load_image(np.zeros((4, 6), dtype=np.uint8)).dtype
    dtype('float32')
    """
    if mode not in ("auto", "gray", "rgb"):
        raise ValueError(f"mode must be 'auto', 'gray' or 'rgb'; got {mode!r}.")
    if max_pixels is not None and max_pixels < 4:
        raise ValueError(f"max_pixels must be at least 4 or None; got {max_pixels}.")

    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.lower().startswith(("http://", "https://")):
            data: bytes | BinaryIO | Path = download(text, timeout=timeout, max_bytes=max_bytes)
            label = text
        else:
            scheme = _URL_SCHEME.match(text) if isinstance(text, str) else None
            if scheme is not None and not os.path.exists(text):
                raise ValueError(
                    f"{text!r} is a {scheme.group(1)}:// address; only http:// and https:// "
                    "URLs are supported (download the file and pass its path)."
                )
            path = Path(text)
            if not path.exists():
                raise FileNotFoundError(f"image file {text!r} does not exist.")
            if is_zarr_store(path) or (path.suffix.lower() == ".npy" and path.is_file()):
                return _to_mode(_load_array_file(path, max_pixels), mode)
            if path.is_dir():
                raise IsADirectoryError(f"{text!r} is a folder, not an image file.")
            check_regular_input(path, what="image file")  # a FIFO would block forever
            data, label = path, text
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "<bytes>"
    elif hasattr(source, "read"):
        data, label = source, "<file object>"  # type: ignore[assignment]
    else:
        array = as_image_array(source)
        _check_pixels(array.shape[0] * array.shape[1], max_pixels, "<array>")
        return _to_mode(array.astype(np.float32, copy=False), mode)

    array = _decode(data, label, max_pixels=max_pixels, max_memory=max_memory)
    return _to_mode(array, mode)


def save_image(
    path: str | os.PathLike[str],
    image: ArrayLike,
    *,
    force: bool = False,
    bit_depth: Literal[8, 16] = 8,
    compress_level: int = 1,
) -> Path:
    """Write an image in [0, 1] to a file, clipping and rounding first.

    Parameters
    ----------
    path : str or path
        Output file; the format follows the extension (``.png``, ``.jpg``,
        ``.tif``, ``.webp``, ...).
    image : (M, N) or (M, N, 3) array_like
        Float values in [0, 1] (values outside are clipped) or integers
        (scaled by their dtype's range).
    force : bool, optional
        Overwrite an existing file. Without it an existing file is an error.
    bit_depth : {8, 16}, optional
        16 keeps 16-bit precision (gray PNG or TIFF only).
    compress_level : int, optional
        PNG's zlib level, 0-9 (other formats ignore it). The default, 1, as
        OpenCV's, writes a 12 MP photo about 4x faster than Pillow's default
        6, for a file about 25 % larger (both lossless); 9 gives the smallest
        file.

    Returns
    -------
    path : Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``force`` is off.
    ValueError
        If the extension is unknown or ``bit_depth`` does not suit the image.

    Notes
    -----
    The file is written to a temporary name in the same folder and renamed
    into place, so a crash never leaves a half-written image behind.

    A Dask array (an image bigger than memory, such as the reconstruction of
    an out-of-core decomposition) is written block by block, never whole in
    memory, to a tiled BigTIFF (``.tif``, zlib-compressed 256-pixel tiles) or a
    Zarr array (``.zarr``), 8-bit.
    """
    if is_chunked(image):
        return save_chunked(path, image, force=force)
    pixels = np.asarray(image)
    # 8-bit gray or RGB pixels are written as they are, not converted to float and back.
    shape = pixels.shape
    eight_bit = (
        bit_depth == 8
        and pixels.dtype == np.uint8
        and (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3))
        and min(shape[:2]) >= 2
    )
    array = pixels if eight_bit else as_image_array(image)
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(
            f"cannot tell the image format from {str(path)!r}; use an extension "
            "such as .png, .jpg, .tif or .webp."
        )
    if eight_bit:
        pil = Image.fromarray(np.ascontiguousarray(array))
    elif bit_depth == 8:
        pil = Image.fromarray(_quantized(array, 255.0, np.uint8))
    elif bit_depth == 16:
        if array.ndim != 2 or fmt not in ("PNG", "TIFF"):
            raise ValueError("bit_depth=16 is supported for gray images saved as PNG or TIFF only.")
        pil = Image.fromarray(_quantized(array, 65535.0, np.uint16))
    else:
        raise ValueError(f"bit_depth must be 8 or 16; got {bit_depth!r}.")
    if isinstance(compress_level, bool) or compress_level not in range(10):
        raise ValueError(f"compress_level must be an integer 0-9; got {compress_level!r}.")
    options = {"compress_level": compress_level} if fmt == "PNG" else {}
    with atomic_path(path, force=force) as tmp:
        pil.save(tmp, format=fmt, **options)
    return path


def to_uint8(image: ArrayLike) -> np.ndarray:
    """8-bit pixels of an image in [0, 1]: ``rint(clip(image, 0, 1) * 255)`` as uint8.

    Clipped before the cast (a cast alone would wrap values outside [0, 1]),
    a block of rows at a time: no image-sized float temporary. ``image`` has
    at least one dimension.

    Examples
    --------
    >>> to_uint8(np.array([[-0.2, 0.5, 1.3]], dtype=np.float32))
    array([[  0, 128, 255]], dtype=uint8)
    """
    return _quantized(np.asarray(image), 255.0, np.uint8)


def from_uint8(pixels: ArrayLike) -> np.ndarray:
    """Float32 in [0, 1] of 8-bit pixels: ``pixels / 255`` in float32.

    The inverse of :func:`to_uint8` on its values, converted a block of rows
    at a time: the float32 result is the only image-sized allocation (a plain
    ``astype`` then division makes two).

    Examples
    --------
    >>> from_uint8(np.array([[0, 51, 255]], dtype=np.uint8))
    array([[0. , 0.2, 1. ]], dtype=float32)
    """
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8; got {array.dtype}.")
    out = np.empty(array.shape, dtype=np.float32)
    if array.ndim == 0:
        out[...] = array / np.float32(255.0)
        return out
    for block in row_blocks(array, 1 << 18):
        np.divide(array[block], np.float32(255.0), out=out[block])
    return out


def _quantized(array: np.ndarray, top: float, dtype: type[np.integer]) -> np.ndarray:
    """``rint(clip(array, 0, 1) * top)`` as ``dtype``, a block of rows at a time (float
    temporaries of about a MiB, not three of the image's size)."""
    out = np.empty(array.shape, dtype=dtype)
    for block in row_blocks(array, 1 << 18):
        scaled = np.clip(array[block], 0.0, 1.0)
        scaled *= top
        out[block] = np.rint(scaled, out=scaled)
    return out


def _convert_hint(fmt: str | None) -> str:
    """What to do with an image over the pixel cap in a format decoded only whole."""
    if fmt == "TIFF":
        return " A tiled TIFF is read out of core by svdimage info and reconstruct."
    return (
        f" Or convert it to a tiled TIFF (a {fmt or 'file'} can only be decoded whole), e.g. "
        "`vips tiffsave IN OUT.tif --tile --bigtiff --compression deflate`: svdimage info and "
        "reconstruct read those out of core."
    )


def _load_array_file(path: Path, max_pixels: int | None) -> np.ndarray:
    """A Zarr array or group, or a ``.npy`` file, read whole (:func:`open_image`, then
    computed), as float32 in [0, 1]: integers scaled by their type's range, floats as they
    are (checked as :func:`svdimage._validation.as_image_array` checks arrays)."""
    lazy = open_image(path)
    _check_pixels(int(lazy.shape[0]) * int(lazy.shape[1]), max_pixels, str(path))
    array = as_image_array(np.asarray(lazy.compute()))
    return array.astype(np.float32, copy=False)


def _check_pixels(pixels: int, max_pixels: int | None, label: str) -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ValueError(
            f"{label} has {pixels:,} pixels, over the {max_pixels:,}-pixel cap; "
            "raise max_pixels if you trust the file."
        )


class _OwnError(Exception):
    """Our own refusal inside the decoding block, kept apart from the decoder's errors."""


def _decode(
    data: bytes | BinaryIO | Path, label: str, *, max_pixels: int | None, max_memory: int | None
) -> np.ndarray:
    """Decode with Pillow, check size and memory before reading pixels, return float32.

    Warnings of Pillow (Python) and libtiff (C, written to file descriptor 2)
    are captured: on failure the first one joins the error's message; on
    success each becomes an :class:`ImageNote`.
    """
    stream = _io.BytesIO(data) if isinstance(data, bytes) else data
    start = 0 if isinstance(stream, Path) else _position(stream)
    notes: list[str] = []
    libtiff: list[str] = []  # filled as each block ends, also when decoding raises
    logged: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with (
            _PIL_LIMIT_LOCK,
            warnings.catch_warnings(record=True) as caught,
            _libtiff_messages(_looks_like_tiff(stream), into=libtiff),
            _pillow_log(into=logged),
        ):
            warnings.simplefilter("always")
            # We apply our own cap below; Pillow's global one must not interfere.
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                pil = Image.open(stream)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
            with pil:
                width, height = pil.size
                try:
                    try:
                        _check_pixels(width * height, max_pixels, label)
                    except ValueError as cap:
                        raise ValueError(f"{cap}{_convert_hint(pil.format)}") from None
                    if width < 2 or height < 2:
                        raise ValueError(f"{label} is {width}x{height} pixels; need at least 2x2.")
                    check_memory(
                        _decode_bytes(pil),
                        f"decoding {label} ({width:,}x{height:,} {pil.mode})",
                        max_memory=max_memory,
                    )
                except ValueError as err:
                    raise _OwnError(str(err)) from None
                notes += _conversions(pil)
                problem = _raw_problem(pil, _length(stream) - start)
                if problem is None and pil.format == "PNG":
                    problem = _png_problem(stream, start)
                if problem is not None:
                    raise _OwnError(f"{label} is truncated or corrupt ({problem}).")
                pil.load()
                array = _pil_to_float(ImageOps.exif_transpose(pil))
                try:
                    array = _unit_range(array, pil.mode, label, notes)
                except ValueError as err:
                    raise _OwnError(str(err)) from None
        notes += libtiff + logged
    except UnidentifiedImageError:
        raise ValueError(
            f"{label} is not an image file Pillow can read (PNG, JPEG, TIFF, WebP, BMP, GIF, ...)."
        ) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except _OwnError as err:
        raise ValueError(str(err)) from None
    except MemoryError:
        raise ValueError(
            f"{label} needs more memory to decode than this machine has free; "
            "use a smaller image or free some memory."
        ) from None
    except Image.DecompressionBombError as err:  # pragma: no cover - cap lifted above
        raise ValueError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - whatever the decoder raises, one clear error
        # Pillow and its plugins raise OSError, SyntaxError, EOFError, but also TypeError,
        # OverflowError, struct.error, IndexError ... on malformed files.
        detail = " ".join(str(err).split()) or type(err).__name__
        said = [*libtiff, *logged, *(_one_line(w.message) for w in caught)]
        if said:
            detail += f"; {said[0]}"
        raise ValueError(f"{label} is truncated or corrupt ({detail}).") from None
    notes += [_one_line(w.message) for w in caught if not isinstance(w.message, ImageNote)]
    for note in dict.fromkeys(notes):
        warnings.warn(ImageNote(f"{label}: {note}"), stacklevel=3)
    return array


def _one_line(message: Warning | str) -> str:
    return " ".join(str(message).split())


def _looks_like_tiff(stream: Path | BinaryIO) -> bool:
    """Whether the data starts as a TIFF or BigTIFF file does (libtiff may speak)."""
    try:
        if isinstance(stream, Path):
            with open(stream, "rb") as handle:
                head = handle.read(4)
        else:
            position = stream.tell()
            head = stream.read(4)
            stream.seek(position)
    except (OSError, ValueError, AttributeError):
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _decode_bytes(pil: Image.Image) -> int:
    """Estimated peak bytes of decoding ``pil`` to float32 (from its header only)."""
    bands = len(pil.getbands())
    per_pixel = 8  # Pillow's own buffer (up to 4 bytes per pixel) and one converted copy
    per_pixel += bands * 5  # NumPy's copy of the samples, and their float32 version
    if "A" in pil.getbands() or "transparency" in pil.info:
        per_pixel += 24  # compositing on white: the float32 result and a temporary
    return pil.size[0] * pil.size[1] * per_pixel


def _conversions(pil: Image.Image) -> list[str]:
    """What decoding ``pil`` will change that a user may not expect (one phrase each)."""
    notes = []
    frames = getattr(pil, "n_frames", 1)
    if frames > 1:
        notes.append(f"the file holds {frames} frames; the first is used.")
    mode = pil.mode
    if "A" in pil.getbands() or (mode == "P" and "transparency" in pil.info):
        notes.append("its transparency was composited on a white background.")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"its {mode} colours were converted to RGB.")
    raw = [_rawmode(t) for t in getattr(pil, "tile", None) or []]
    if mode in ("RGB", "RGBA") and any(";16" in r for r in raw):
        notes.append("its 16-bit colour was read as 8-bit (Pillow reads colour at 8 bits).")
    return notes


@contextlib.contextmanager
def _pillow_log(*, into: list[str]) -> Iterator[None]:
    """Collect Pillow's log records of WARNING and above in ``into`` instead of letting them
    reach stderr through logging's last-resort handler ("More samples per pixel than can be
    decoded")."""
    logger = logging.getLogger("PIL")
    handler = _ListHandler(into)
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _ListHandler(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(_one_line(record.getMessage()))


@contextlib.contextmanager
def _libtiff_messages(active: bool, *, into: list[str]) -> Iterator[None]:
    """Capture what C code writes to file descriptor 2 (libtiff's messages) meanwhile.

    The messages are appended to ``into`` once the block ends (also when it
    raises). Terminal output captured meanwhile (a spinner) is written back.
    Only with ``active`` (TIFF files); the caller holds a lock, so one decode at
    a time redirects the descriptor.
    """
    if not active:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            others = []
            for line in text.splitlines():
                if "\x1b" in line or "\r" in line:  # a terminal's spinner, not libtiff
                    others.append(line)
                elif line.strip():
                    into.append(f"libtiff: {line.strip()}")
            if others:
                os.write(2, ("\n".join(others) + "\n").encode())


def _pil_to_float(pil: Image.Image) -> np.ndarray:
    mode = pil.mode
    if mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
    elif mode == "PA":
        pil = pil.convert("RGBA")
    elif mode in ("1", "L", "LA", "RGB", "RGBA", "F"):
        pass
    elif mode.startswith("I;16"):
        array = np.asarray(pil, dtype=np.float32)
        return (array / 65535.0).astype(np.float32)
    elif mode == "I":  # 32-bit signed integers: scaled by _unit_range
        return np.asarray(pil, dtype=np.float64)
    else:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        pil = pil.convert("RGB")
    array = np.asarray(pil)
    if array.dtype == bool:
        out = array.astype(np.float32)
    elif array.dtype == np.uint8:
        out = from_uint8(array)
    else:
        out = array.astype(np.float32)
    if out.ndim == 3 and out.shape[2] in (2, 4):
        out = composite_on_white(out)
        if out.shape[2] == 1:
            out = out[:, :, 0]
    return out.astype(np.float32, copy=False)


def _unit_range(array: np.ndarray, mode: str, label: str, notes: list[str]) -> np.ndarray:
    """Pixels of a 32-bit integer (``I``) or float (``F``) file in [0, 1], by the rule of
    :func:`load_image`'s notes; a phrase for each mapping joins ``notes``."""
    if mode not in ("I", "F"):
        return array
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(
            f"{label} holds NaN or infinite pixel values; replace them (numpy.nan_to_num) "
            "and save the image again."
        )
    top = 65535.0 if mode == "I" else 1.0
    if low >= 0.0 and high <= top:
        return (array / top).astype(np.float32)
    kind, usual = ("integer", "0..65535") if mode == "I" else ("float", "[0, 1]")
    if high > low:
        out = ((array - low) / (high - low)).astype(np.float32)
        rule = f"mapped linearly to [0, 1] ({low:.6g} -> 0, {high:.6g} -> 1)"
    else:
        out = np.clip(array, 0.0, 1.0).astype(np.float32)
        rule = "the image is constant, so it was clipped to [0, 1]"
    notes.append(f"its {kind} pixel values span [{low:.6g}, {high:.6g}], outside {usual}; {rule}.")
    return out


def _length(stream: Path | BinaryIO) -> int:
    """Bytes of the file or stream (a huge number when it cannot be told)."""
    try:
        if isinstance(stream, Path):
            return stream.stat().st_size
        position = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(position)
        return int(end)
    except (OSError, ValueError, AttributeError):
        return 1 << 62


def _raw_problem(pil: Image.Image, length: int) -> str | None:
    """Why the uncompressed pixel data of ``pil`` (BMP, PPM, plain TIFF: Pillow's ``raw``
    tiles) cannot be in a file of ``length`` bytes, or None: each tile needs at least one
    bit per pixel after its offset. Checked before Pillow allocates the image."""
    tiles = [t for t in getattr(pil, "tile", None) or [] if t[0] == "raw"]
    for tile in tiles:
        x0, y0, x1, y1 = tile[1]
        need = int(tile[2]) + (y1 - y0) * -(-(x1 - x0) // 8)
        if need > length:
            return (
                f"its {length:,} bytes cannot hold the {x1 - x0:,}x{y1 - y0:,} pixels it "
                f"declares (at least {need:,} bytes uncompressed)"
            )
    if pil.format == "TIFF" and tiles and len(tiles) == len(getattr(pil, "tile", [])):
        # Strips that stop short of the declared height leave the other rows black.
        covered = sum((t[1][3] - t[1][1]) * (t[1][2] - t[1][0]) for t in tiles)
        if covered < pil.size[0] * pil.size[1]:
            return f"its strips hold {covered:,} of the {pil.size[0] * pil.size[1]:,} pixels"
    return None


def _position(stream: BinaryIO) -> int:
    try:
        return int(stream.tell())
    except (OSError, ValueError, AttributeError):
        return 0


#: Channels of each PNG colour type (grey, -, RGB, palette, grey+alpha, -, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
#: Most bytes deflate can inflate one byte of its stream to (RFC 1951: a 258-byte match
#: in at least 2 bits), with the stream's own headers as slack.
_DEFLATE_RATIO, _DEFLATE_SLACK = 1032, 1024


def _png_problem(stream: Path | BinaryIO, start: int) -> str | None:
    """Why a PNG's pixel data cannot fill the image its header declares, or None.

    Pillow fills rows that a short (but well-ended) IDAT stream lacks with
    black and says nothing. Here the chunks are walked and the IDAT data is
    inflated and counted, a MiB at a time, against the bytes the header's
    size, depth, colour type and interlacing need. Data too short to reach
    them even at deflate's largest ratio is refused before any inflating.
    """
    if isinstance(stream, Path):
        with open(stream, "rb") as handle:
            return _png_data_problem(handle, 0)
    try:
        position = stream.tell()
    except (OSError, ValueError, AttributeError):
        return None
    try:
        return _png_data_problem(stream, start)
    finally:
        stream.seek(position)


def _png_data_problem(handle: BinaryIO, start: int) -> str | None:
    handle.seek(start + 8)  # the signature, checked by Pillow
    head = handle.read(8 + 13)
    if len(head) < 21 or head[4:8] != b"IHDR":
        return "no IHDR chunk"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[8:21])
    channels = _PNG_CHANNELS.get(colour)
    if channels is None:
        return f"unknown colour type {colour}"
    need = _png_bytes(width, height, channels * depth, interlace == 1)
    handle.seek(4, os.SEEK_CUR)  # IHDR's CRC
    chunks, idat = [], 0
    while True:  # the chunks' lengths and types, without reading their data
        header = handle.read(8)
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        if length > 0x7FFFFFFF:
            return f"a {kind!r} chunk declares {length:,} bytes, over PNG's limit of 2^31 - 1"
        if kind == b"IEND":
            break
        offset = handle.tell()
        chunks.append((kind, offset, length))
        if kind == b"IDAT":
            idat += length
        handle.seek(offset + length + 4)
    if idat * _DEFLATE_RATIO + _DEFLATE_SLACK < need:
        return (
            f"its {idat:,} bytes of pixel data cannot hold the {need:,} bytes that "
            f"{width:,}x{height:,} pixels need"
        )
    inflater, produced = zlib.decompressobj(), 0
    for kind, offset, length in chunks:
        if kind != b"IDAT":
            continue
        handle.seek(offset)
        left = length
        while left and not inflater.eof:
            piece = handle.read(min(left, 1 << 20))
            if not piece:
                break
            left -= len(piece)
            while piece and not inflater.eof:
                try:
                    produced += len(inflater.decompress(piece, 1 << 20))
                except zlib.error as err:
                    return f"its pixel data is not valid deflate data: {err}"
                if produced >= need:
                    return None
                piece = inflater.unconsumed_tail
    if produced < need:
        rows = produced * height // max(need, 1)
        return (
            f"its pixel data ends after {produced:,} of {need:,} bytes "
            f"(about {rows:,} of {height:,} rows)"
        )
    return None


def _png_bytes(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of a PNG's filtered scanlines: per row, a filter byte and the packed pixels."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns = -(-(width - x0) // dx) if width > x0 else 0
        rows = -(-(height - y0) // dy) if height > y0 else 0
        if columns and rows:
            total += rows * (1 + -(-columns * bits // 8))
    return total


def _rawmode(tile: object) -> str:
    """The raw sample layout of one of Pillow's decoder tiles (``"RGB;16B"``), or ''."""
    args = getattr(tile, "args", None)
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def _to_mode(array: np.ndarray, mode: Mode) -> np.ndarray:
    from skimage.color import rgb2gray

    if array.ndim == 2:
        if mode == "rgb":
            return np.repeat(array[:, :, None], 3, axis=2)
        return array
    if mode == "gray":
        return rgb2gray(array).astype(array.dtype, copy=False)
    if (
        mode == "auto"
        and np.array_equal(array[:, :, 0], array[:, :, 1])
        and np.array_equal(array[:, :, 0], array[:, :, 2])
    ):
        return np.ascontiguousarray(array[:, :, 0])
    return array

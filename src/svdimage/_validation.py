"""Shared argument checks, run once at the public boundary.

Each checker returns the normalized value or raises ``ValueError`` /
``TypeError`` with a message that names the argument, what was expected, what
was given and, when known, the fix.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import resource
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "as_image_array",
    "is_chunked",
    "check_rank",
    "check_ranks",
    "parse_rank_spec",
    "float_dtype_for",
    "composite_on_white",
    "available_memory",
    "check_memory",
    "DEFAULT_MAX_PIXELS",
]

#: Default pixel cap, shared by image reading and .svdz decoding: Pillow's own
#: decompression-bomb limit (about 89.5 MP).
DEFAULT_MAX_PIXELS = 89_478_485


def composite_on_white(image: np.ndarray) -> np.ndarray:
    """Composite ``(M, N, C)`` whose last channel is alpha in [0, 1] on white.

    Returns the ``C - 1`` colour channels, ``colour * alpha + (1 - alpha)``,
    in the image's dtype.
    """
    alpha = image[:, :, -1:]
    return image[:, :, :-1] * alpha + (1 - alpha)


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as the system tells (None: unknown).

    The smaller of the memory the kernel reports available (``MemAvailable`` in
    ``/proc/meminfo``, which counts reclaimable caches) and what is left under
    the process's address-space limit (``ulimit -v``).
    """
    limits = []
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(max(0, soft - _address_space_used()))
    return min(limits) if limits else None


def _address_space_used() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_memory(needed: int, what: str, *, max_memory: int | None = None) -> None:
    """Refuse, before allocating, work that needs more memory than there is.

    Parameters
    ----------
    needed : int
        Estimated peak bytes.
    what : str
        What needs them, for the message ("decoding 'x.png' (48x1,114,152 RGBA)").
    max_memory : int, optional
        A cap in bytes; the default is :func:`available_memory`.

    Raises
    ------
    ValueError
        When ``needed`` exceeds the cap (or the memory available).
    """
    cap = available_memory() if max_memory is None else max_memory
    if cap is not None and needed > cap:
        source = "the cap" if max_memory is not None else "the memory available"
        raise ValueError(
            f"{what} needs about {format_bytes(needed)}, more than {source} "
            f"({format_bytes(cap)}); use a smaller image or free some memory."
        )


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, 3 significant digits."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover


def float_dtype_for(dtype: np.dtype) -> np.dtype:
    """Return the floating dtype an array of ``dtype`` is computed in.

    float32 (and float16) stay single precision; everything else becomes
    float64, as in scikit-image's ``_supported_float_type``.
    """
    dtype = np.dtype(dtype)
    if dtype in (np.float16, np.float32):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def is_chunked(image: object) -> bool:
    """Whether ``image`` is a chunked, lazy (Dask) array: an image read out of core. Dask
    is not imported to tell."""
    return type(image).__module__.startswith("dask.") and hasattr(image, "chunks")


def as_image_array(image: object, *, name: str = "image") -> np.ndarray:
    """Validate an in-memory image and return it as a floating array.

    Accepts ``(M, N)`` gray or ``(M, N, C)`` images with ``C`` in 1, 3 or 4
    (a 4th channel is taken as alpha and composited on white). Integer images
    are scaled to [0, 1] by their dtype's range (as ``skimage.img_as_float``);
    float32 stays float32, other floats become float64. A single channel
    ``(M, N, 1)`` becomes ``(M, N)``.
    """
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name} must be an array; got {type(image).__name__}.")
    array = np.asarray(image)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real; got dtype {array.dtype}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"{name} must have shape (M, N) or (M, N, 3); got shape {array.shape}.")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise ValueError(
            f"{name} must be at least 2x2 pixels; got {array.shape[1]}x{array.shape[0]}."
        )
    if array.dtype == bool:
        array = array.astype(np.float64)
    elif np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min < 0:
            raise ValueError(
                f"{name} has signed integer dtype {array.dtype}; convert it to "
                "float in [0, 1] or to an unsigned integer type first."
            )
        array = array.astype(np.float64) / info.max
    else:
        array = array.astype(float_dtype_for(array.dtype), copy=False)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    if array.ndim == 3 and array.shape[2] == 4:
        array = composite_on_white(array)
    return array


def check_rank(
    rank: object, max_rank: int, *, shape: Sequence[int] | None = None, name: str = "rank"
) -> int:
    """Return ``rank`` as an int in ``[1, max_rank]`` or raise ``ValueError``."""
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {rank!r}.")
    rank = int(rank)
    if not 1 <= rank <= max_rank:
        where = ""
        if shape is not None:
            where = f" for a {shape[1]}x{shape[0]} image"
        raise ValueError(f"{name} must be between 1 and {max_rank}{where}; got {rank}.")
    return rank


def check_ranks(
    ranks: Iterable[object], max_rank: int, *, shape: Sequence[int] | None = None
) -> list[int]:
    """Validate a collection of ranks; return them sorted and without repeats."""
    checked = sorted({check_rank(r, max_rank, shape=shape) for r in ranks})
    if not checked:
        raise ValueError("ranks must name at least one rank; got none.")
    return checked


def parse_rank_spec(spec: str) -> list[int]:
    """Parse a rank list such as ``"3,10,20"`` or ``"1:70,80:500:10"``.

    Items are separated by commas. ``a:b`` is every rank from ``a`` to ``b``
    inclusive; ``a:b:s`` steps by ``s``. The result is sorted and unique;
    ranks are checked against the image later.

    Raises
    ------
    ValueError
        If an item is not a positive integer or a well-formed range.
    """
    ranks: set[int] = set()
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise ValueError(
            f"ranks {spec!r} has an empty item; write e.g. '3,10,20' or '1:70,80:500:10'."
        )
    for item in items:
        parts = item.split(":")
        try:
            numbers_ = [int(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"rank item {item!r} is not an integer or a range 'start:stop[:step]'."
            ) from None
        if len(numbers_) == 1:
            values = numbers_
        elif len(numbers_) in (2, 3):
            start, stop = numbers_[0], numbers_[1]
            step = numbers_[2] if len(numbers_) == 3 else 1
            if step < 1 or stop < start:
                raise ValueError(f"rank range {item!r} must have start <= stop and a step >= 1.")
            values = list(range(start, stop + 1, step))
        else:
            raise ValueError(f"rank item {item!r} has too many ':' (use start:stop:step).")
        if any(v < 1 for v in values):
            raise ValueError(f"ranks must be >= 1; {item!r} is not.")
        ranks.update(values)
    return sorted(ranks)

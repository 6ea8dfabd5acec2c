"""Images bigger than memory: opened lazily as Dask arrays, read in bands, written block by block.

:func:`open_image` gives a Dask array over a tiled (Big)TIFF, an OME-TIFF, a
Zarr array or OME-Zarr group, or a ``.npy`` file, in chunks that are bands of
the file's own tiles, sized by :func:`chunk_bytes_for` from a memory limit. The
graph holds the file's *path*, never an open handle or mapped pages, so the
same array runs on the threads of this process or on the workers of a Dask
cluster that see the same path; each process opens the file once, on its first
read. A chunk that cannot be read raises :class:`ChunkReadError` (a
``ValueError``) naming the file and the region.

:func:`save_chunked` writes a Dask image (values in [0, 1]) to a tiled BigTIFF
or a Zarr array, 8-bit, band by band, atomically; :func:`block_mean` shrinks a
lazy image by averaging blocks (one pass) for figures and the explorer.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from svdimage._fileutil import atomic_path, check_regular_input

__all__ = [
    "ChunkReadError",
    "DEFAULT_MEMORY_LIMIT",
    "open_image",
    "chunk_bytes_for",
    "memory_plan",
    "running_on",
    "keep_leading",
    "unit_range",
    "luma",
    "open_if_too_big",
    "is_zarr_store",
    "save_chunked",
    "block_mean",
]

#: Peak memory an out-of-core command aims at, besides the thin factors (2 GiB).
DEFAULT_MEMORY_LIMIT = 2 * 2**30

#: float32 bytes of one chunk when nothing else is said (64 MiB: a 4,096-row band of an
#: 4,096-pixel-wide image); few, large chunks keep Dask's per-task cost negligible.
DEFAULT_CHUNK_BYTES = 64 * 2**20

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a Zarr array or group (v2 or v3): one image,
    not a folder of images."""
    path = Path(path)
    return path.is_dir() and any(
        (path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup")
    )


class ChunkReadError(ValueError):
    """A region of an image file could not be read (a damaged tile, a file that changed or
    vanished): bad input, as a damaged file given to :func:`svdimage.io.load_image` is."""


def open_image(
    path: str | os.PathLike[str], *, chunks: Any = "auto", chunk_bytes: int | None = None
) -> Any:
    """Open an image file lazily, as a Dask array, without reading its pixels.

    For images bigger than memory: :func:`svdimage.decompose` of the result
    (with a ``rank``) streams over it chunk by chunk. The pixels keep their
    file's type (``uint8``, ``uint16``, float); ``decompose`` scales integers
    to [0, 1] by their type's range, as :func:`svdimage.io.load_image` does.

    Parameters
    ----------
    path : str or path
        A TIFF, BigTIFF or OME-TIFF (its full-resolution level; tiled and
        compressed ones through ``tifffile``'s Zarr view, uncompressed
        contiguous ones mapped), a Zarr array or an OME-Zarr group (its first,
        full-resolution array), or a ``.npy`` file. Gray ``(M, N)`` or colour
        ``(M, N, 3)`` (a leading channel axis of 3, as OME stores colour, is
        moved last; axes of length 1 are dropped).
    chunks : optional
        Dask's ``chunks``. The default, ``"auto"``, cuts the image in bands of
        whole tiles of the file (whole rows when they fit), each about
        ``chunk_bytes`` as float32.
    chunk_bytes : int, optional
        Target float32 size of an ``"auto"`` chunk (default 64 MiB); see
        :func:`chunk_bytes_for` to derive it from a memory limit.

    Returns
    -------
    dask.array.Array

    Raises
    ------
    FileNotFoundError, OSError
        When ``path`` is missing or not a regular file (nor a Zarr folder).
    ValueError
        For another format (read those with :func:`svdimage.io.load_image`
        when they fit in memory) or an unsupported shape.

    Notes
    -----
    Reading a chunk that fails (a corrupt tile) raises :class:`ChunkReadError`
    when the array is computed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "big.npy")
    >>> np.save(path, np.zeros((40, 60), dtype=np.uint8))
    >>> open_image(path).shape
    (40, 60)
    """
    import dask.array as da

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist.")
    if path.is_dir():
        kind = "zarr"
    else:
        check_regular_input(path, what="image file")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            kind = "npy"
        elif suffix in _TIFF_SUFFIXES:
            kind = "tiff"
        else:
            raise ValueError(
                f"{str(path)!r}: open_image reads TIFF (tiled or not, OME-TIFF), Zarr and .npy; "
                "load_image reads every other format (into memory)."
            )
    source = _Source(path, kind)
    if chunks == "auto":
        chunks = _band_chunks(source.shape, source.tile, chunk_bytes or DEFAULT_CHUNK_BYTES)
    elif len(source.shape) == 3 and not isinstance(chunks, (tuple, dict)):
        chunks = (chunks, chunks, source.shape[2])
    # asarray=False: the source's blocks are NumPy already; lock=False: each process opens
    # the file once and tifffile/zarr lock their own reads.
    pixels = da.from_array(source, chunks=chunks, name=f"read-{source.token}", asarray=False)
    return _as_image_axes(pixels, str(path))


def chunk_bytes_for(memory_limit: int, workers: int) -> int:
    """float32 bytes of a chunk so that ``workers`` tasks fit in ``memory_limit``.

    A pass holds, per running task, the chunk as read, its float32 copy and
    the products' temporaries: about four chunks; a quarter of the limit is
    left for the thin factors and the interpreter. Between 4 and 256 MiB.
    """
    if memory_limit <= 0 or workers < 1:
        raise ValueError(
            f"memory_limit and workers must be positive; got {memory_limit} and {workers}."
        )
    share = (memory_limit * 3 // 4) // (4 * workers)
    return int(min(max(share, 4 * 2**20), 256 * 2**20))


def memory_plan(
    memory_limit: int = DEFAULT_MEMORY_LIMIT, *, workers: int | None = None
) -> tuple[int, int]:
    """How an out-of-core run spends ``memory_limit`` bytes: ``(chunk_bytes, keep_bytes)``.

    Half holds the running tasks, in chunks of ``chunk_bytes`` (float32) from
    :func:`chunk_bytes_for` (``workers`` defaults to the cores); the other half
    keeps chunks of the image, as stored, between passes (:func:`keep_leading`),
    so that an 8-bit image up to about half the limit is read from its file
    once, and a bigger one partly.
    """
    from svdimage._dask import available_cores

    workers = workers or available_cores()
    return chunk_bytes_for(memory_limit // 2, workers), memory_limit // 2


def keep_leading(image: Any, nbytes: int) -> Any:
    """``image`` (a Dask array) with its leading row bands that fit in ``nbytes``, as
    stored, read now and held in memory (``persist``: in this process, or in the workers'
    memory on a cluster); the rest is read again by each pass over it.

    Every computation on the result -- the passes of an SVD, PSNR and SSIM measured block
    by block, a rank-k image written -- then reads only the rest from the file."""
    import dask.array as da

    if nbytes <= 0:
        return image
    row_bytes = image.dtype.itemsize * math.prod(int(n) for n in image.shape[1:])
    rows = 0
    for band in image.chunks[0]:
        if (rows + band) * row_bytes > nbytes:
            break
        rows += band
    if rows == 0:
        return image
    if rows == image.shape[0]:
        return image.persist()
    return da.concatenate([image[:rows].persist(), image[rows:]], axis=0)


#: Suffixes of the files :func:`open_image` reads lazily (``.zarr`` is a folder).
CHUNKABLE_SUFFIXES = (*_TIFF_SUFFIXES, ".npy", ".zarr")


def open_if_too_big(
    source: str | os.PathLike[str],
    *,
    max_pixels: int,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    workers: int | None = None,
) -> Any:
    """The image at ``source`` as a lazy Dask array when it is a file :func:`open_image`
    reads and too big to load: over ``max_pixels``, or over a quarter of the available
    memory as float32, in chunks that follow :func:`memory_plan` (then
    :func:`keep_leading` keeps what the plan allows, inside :func:`running_on`, so that a
    cluster's workers keep it). ``None`` when it should be loaded whole
    (:func:`svdimage.io.load_image` says what is wrong with a file that is neither)."""
    from svdimage._validation import available_memory

    path = Path(source)
    if not path.exists() or not str(source).lower().rstrip("/").endswith(CHUNKABLE_SUFFIXES):
        return None
    chunk_bytes, _ = memory_plan(memory_limit, workers=workers)
    try:
        lazy = open_image(path, chunk_bytes=chunk_bytes)
    except ValueError:
        return None
    M, N = (int(n) for n in lazy.shape[:2])
    nbytes = 4 * int(np.prod(lazy.shape))
    memory = available_memory()
    if max_pixels >= M * N and (memory is None or nbytes <= memory // 4):
        return None
    return lazy


@contextlib.contextmanager
def running_on(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> Iterator[None]:
    """Run the Dask computations of the block (the passes of an out-of-core SVD, a
    lazy image's writing) on the scheduler at ``scheduler`` (``tcp://host:8786``: its
    workers read the image by the same path), on a local cluster of ``workers``
    processes sharing ``memory_limit``, or, by default, on the threads of this
    process (one per core), where the image's chunks need not travel."""
    if workers is not None and scheduler is not None:
        raise ValueError("workers and scheduler do not go together; give one of them.")
    if workers is None and scheduler is None:
        import dask

        from svdimage._dask import available_cores

        with dask.config.set(scheduler="threads", num_workers=available_cores()):
            yield
        return
    from svdimage._dask import dask_client

    with dask_client(scheduler, workers, memory_limit=memory_limit, set_as_default=True):
        yield


class _Source:
    """The pixels of an image file, read region by region, for ``dask.array.from_array``.

    Pickled with its path only: each process (this one, or a Dask worker)
    opens the file on its first read and keeps it open while the source
    lives.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = str(path), kind
        self._array: Any = None
        array = self._opened()
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        chunks = getattr(array, "chunks", None)
        # tifffile's Zarr view and Zarr arrays are cut in tiles; a mapped file is not.
        self.tile = tuple(int(n) for n in chunks) if isinstance(chunks, tuple) else None
        stat = os.stat(path)
        self.token = f"{abs(hash((self.path, stat.st_mtime_ns, stat.st_size))):x}"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def _opened(self) -> Any:
        if self._array is None:
            self._array = _open_pixels(Path(self.path), self.kind)
        return self._array

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._opened()[key])
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - any reader's failure, named once
            detail = " ".join(str(error).split()) or type(error).__name__
            raise ChunkReadError(
                f"could not read {_region(key)} of {self.path!r} ({detail}); the file is "
                "damaged, or changed while it was read."
            ) from None


def _region(key: Any) -> str:
    """``rows 0-4095, columns 0-8191`` for a tuple of slices."""
    names = ("rows", "columns")
    parts = []
    for name, item in zip(names, key if isinstance(key, tuple) else (key,)):
        if isinstance(item, slice) and item.start is not None and item.stop is not None:
            parts.append(f"{name} {item.start:,}-{item.stop - 1:,}")
    return ", ".join(parts) or "a region"


def _open_pixels(path: Path, kind: str) -> Any:
    """An array-like over the file's pixels (sliceable; nothing read yet)."""
    if kind == "npy":
        return np.load(path, mmap_mode="r", allow_pickle=False)
    if kind == "zarr":
        return _zarr_array(path)
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):  # compressed, tiled or in pieces: tifffile's Zarr view
        pass
    try:
        store = tifffile.imread(path, aszarr=True, level=0)
    except (tifffile.TiffFileError, ValueError, OSError) as error:
        raise ValueError(f"{str(path)!r} is not a TIFF tifffile can read ({error}).") from None
    array = _zarr_array(store)
    # The store holds the file open; it closes when the last array reading it goes.
    weakref.finalize(array, store.close)
    return array


def _zarr_array(store: Any) -> Any:
    """The array of a Zarr store, or the first (full-resolution) array of a group."""
    import zarr

    opened = zarr.open(store, mode="r")
    if isinstance(opened, zarr.Group):
        names = sorted(name for name, _ in opened.arrays())
        if not names:
            raise ValueError(f"the Zarr group {store!s} holds no array.")
        # OME-Zarr: the multiscales' first dataset is the full resolution ("0").
        attrs: Any = dict(opened.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or [{}]
        datasets = multiscales[0].get("datasets", [])
        first = str(datasets[0]["path"]) if datasets else names[0]
        opened = opened[first]
    return opened


def _band_chunks(
    shape: tuple[int, ...], tile: tuple[int, ...] | None, chunk_bytes: int
) -> tuple[int, ...]:
    """Chunks of whole tiles, about ``chunk_bytes`` as float32: bands of whole rows when a
    band of one tile's height fits, else blocks of whole tiles."""
    tile = tile or tuple(1 for _ in shape)
    ndim = len(shape)
    # The two image axes are the two longest (OME's channel axis may come first).
    rows_axis, cols_axis = sorted(sorted(range(ndim), key=lambda a: shape[a])[-2:])
    others = math.prod(shape[a] for a in range(ndim) if a not in (rows_axis, cols_axis))
    row_bytes = 4 * shape[cols_axis] * others
    t_rows, t_cols = max(1, tile[rows_axis]), max(1, tile[cols_axis])
    rows = max(t_rows, chunk_bytes // row_bytes // t_rows * t_rows)
    cols = shape[cols_axis]
    if rows == t_rows and row_bytes * t_rows > chunk_bytes:  # a tile row too big: cut columns
        cols = max(t_cols, chunk_bytes // (4 * t_rows * others) // t_cols * t_cols)
    chunks = list(shape)
    chunks[rows_axis], chunks[cols_axis] = min(rows, shape[rows_axis]), cols
    return tuple(chunks)


def _as_image_axes(pixels: Any, label: str) -> Any:
    """``(M, N)`` or ``(M, N, 3)``: length-1 axes dropped, a leading channel axis moved last."""
    shape = tuple(int(n) for n in pixels.shape)
    pixels = pixels.reshape(tuple(n for n in shape if n != 1)) if 1 in shape else pixels
    if pixels.ndim == 3 and pixels.shape[0] == 3 and pixels.shape[2] != 3:
        pixels = pixels.transpose(1, 2, 0)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"{label!r} has shape {shape}; need (M, N) or (M, N, 3).")
    dtype = np.dtype(pixels.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{label!r} holds {dtype} values, not pixels.")
    return pixels


def unit_range(image: Any) -> Any:
    """A lazy image's values as float32 in [0, 1], lazily: integers divided by their
    type's range (as :func:`svdimage.io.load_image` scales them), floats as they are."""
    dtype = np.dtype(image.dtype)
    if dtype.kind in "fb":
        return image.astype(np.float32)
    if dtype.kind != "u":
        raise ValueError(f"image has {dtype} values; need unsigned integers or floats.")
    return image.astype(np.float32) * np.float32(1 / np.iinfo(dtype).max)


#: Luma weights (ITU-R BT.709), as :func:`svdimage.io.load_image` with ``mode="gray"``.
_BT709 = (0.2125, 0.7154, 0.0721)


def luma(image: Any) -> Any:
    """A lazy colour image as gray, lazily: BT.709 luma of its values in [0, 1], float32,
    as :func:`svdimage.io.load_image` converts with ``mode="gray"``. Gray images come back
    as they are."""
    if len(image.shape) == 2:
        return image
    return unit_range(image) @ np.asarray(_BT709, dtype=np.float32)


def block_mean(image: Any, factor: int) -> np.ndarray:
    """A lazy image shrunk ``factor`` times by averaging ``factor x factor`` blocks (the
    edge's partial blocks averaged over what they hold), computed in one pass: a NumPy
    array, in the image's scale (integers stay their values, as float32)."""
    import dask.array as da

    if factor < 1:
        raise ValueError(f"factor must be >= 1; got {factor}.")
    x = image.astype(np.float32)
    if factor == 1:
        return np.asarray(x.compute())
    M, N = (int(n) for n in image.shape[:2])
    # Chunks in whole blocks, so that each chunk shrinks on its own.
    rows = max(factor, x.chunks[0][0] // factor * factor)
    cols = max(factor, x.chunks[1][0] // factor * factor)
    x = x.rechunk({0: rows, 1: cols})

    def shrink(block: np.ndarray) -> np.ndarray:
        m, n = block.shape[:2]
        mm, nn = -(-m // factor), -(-n // factor)
        padded = np.zeros((mm * factor, nn * factor) + block.shape[2:], dtype=np.float64)
        counts = np.zeros((mm * factor, nn * factor), dtype=np.float64)
        padded[:m, :n], counts[:m, :n] = block, 1.0
        sums = padded.reshape(mm, factor, nn, factor, *block.shape[2:]).sum(axis=(1, 3))
        n_in = counts.reshape(mm, factor, nn, factor).sum(axis=(1, 3))
        return (sums / (n_in if block.ndim == 2 else n_in[..., None])).astype(np.float32)

    chunks = tuple(tuple(-(-c // factor) for c in axis) for axis in x.chunks[:2]) + x.chunks[2:]
    small = da.map_blocks(shrink, x, chunks=chunks, dtype=np.float32)
    out = np.asarray(small.compute())
    assert out.shape[:2] == (-(-M // factor), -(-N // factor))
    return out


#: Tile side of the BigTIFFs :func:`save_chunked` writes.
_TILE = 256


def save_chunked(path: str | os.PathLike[str], image: Any, *, force: bool = False) -> Path:
    """Write a Dask image (values in [0, 1]) band by band, 8-bit, to a tiled BigTIFF
    (zlib-compressed 256-pixel tiles) or a Zarr array (256-pixel chunks), atomically:
    a temporary name in the same folder, renamed into place when complete.
    :func:`svdimage.io.save_image` calls it for Dask arrays."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".zarr"):
        raise ValueError(
            f"an image bigger than memory is written to .tif (tiled BigTIFF) or .zarr; "
            f"got {str(path)!r}."
        )
    shape = tuple(int(n) for n in image.shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"image must have shape (M, N) or (M, N, 3); got shape {shape}.")
    N = shape[1]
    tile = (_TILE, _TILE) + shape[2:]
    # Rows in bands of whole tiles; each block of the image is computed once, whatever the
    # tiles it covers.
    band_rows = max(_TILE, image.chunks[0][0] // _TILE * _TILE)
    image = image.rechunk({0: band_rows})
    row_starts = np.cumsum((0,) + image.chunks[0])
    col_starts = np.cumsum((0,) + image.chunks[1])

    def blocks(i: int) -> Iterator[tuple[int, np.ndarray]]:  # band i: (first column, block)
        for j in range(len(image.chunks[1])):
            block = np.asarray(image.blocks[i, j].compute(), dtype=np.float32)
            np.clip(block, 0, 1, out=block)
            yield int(col_starts[j]), np.rint(block * np.float32(255)).astype(np.uint8)

    if suffix == ".zarr":
        import shutil

        import zarr

        if path.exists() and not force:
            raise FileExistsError(
                f"output {str(path)!r} already exists; pass force=True to overwrite it."
            )
        temporary = path.with_name(f".{path.name}.svdimage-{os.getpid()}.tmp")
        try:
            target: Any = zarr.open_array(
                temporary, mode="w", shape=shape, chunks=tile, dtype="uint8"
            )
            for i, r in enumerate(row_starts[:-1]):
                for c, block in blocks(i):
                    target[r : r + block.shape[0], c : c + block.shape[1]] = block
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(temporary, path)
        return path
    import tifffile

    def tiles() -> Iterator[np.ndarray]:  # row by row of tiles, edge tiles padded
        for i in range(len(image.chunks[0])):
            band = np.zeros((image.chunks[0][i], N) + shape[2:], dtype=np.uint8)
            for c, block in blocks(i):
                band[:, c : c + block.shape[1]] = block
            for r in range(0, band.shape[0], _TILE):
                for c in range(0, N, _TILE):
                    piece = np.zeros(tile, dtype=np.uint8)
                    part = band[r : r + _TILE, c : c + _TILE]
                    piece[: part.shape[0], : part.shape[1]] = part
                    yield piece

    with atomic_path(path, force=force) as tmp:
        tifffile.imwrite(
            tmp,
            tiles(),
            shape=shape,
            dtype="uint8",
            tile=(_TILE, _TILE),
            bigtiff=True,
            compression="zlib",
            photometric="rgb" if len(shape) == 3 else "minisblack",
        )
    return path

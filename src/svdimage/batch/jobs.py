"""One image's command, as a function: the same for one image and for each image of a folder.

Each job loads one image, resolves what the user asked (rank items through
:func:`svdimage.ranks.growth.resolve_rank_items`, the one path from a rank item to
an SVD and a rank), calls the library, writes its output (atomically, never
over an existing file without ``force``) and returns a small dict for the
command's line about it, never the arrays, which stay on the worker. The
one-image commands call the same functions (:func:`compress_image` and
:func:`reconstruct_image` return the full results they print).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from svdimage import codec, metrics, sweep
from svdimage._fileutil import check_writable
from svdimage._validation import is_chunked
from svdimage.batch._sources import find_images, is_url, output_path
from svdimage.denoising import denoise
from svdimage.image_svd import ImageSVD
from svdimage.io import load_image, save_image
from svdimage.ranks.criteria import Criterion, parse_rank_item
from svdimage.ranks.displayed_quality import DisplayedQuality
from svdimage.ranks.growth import resolve_rank_items

__all__ = [
    "Outputs",
    "FolderPlan",
    "plan_folder",
    "Reconstruction",
    "compress_image",
    "reconstruct_image",
    "compress_job",
    "sweep_job",
    "reconstruct_job",
    "denoise_job",
]


@dataclass(frozen=True)
class Outputs:
    """Where a folder mode writes each image's output (see :func:`output_path`)."""

    folder: str
    suffix: str
    roots: tuple[str, ...] = ()

    def __call__(self, path: str) -> str:
        return output_path(path, roots=self.roots, folder=self.folder, suffix=self.suffix)


@dataclass(frozen=True)
class FolderPlan:
    """What a command's folder mode does (:func:`plan_folder`).

    Attributes
    ----------
    sources : list of str
        The images to process, in order.
    outputs : Outputs
        Where each one's output goes.
    done : int
        Images skipped by ``resume`` because their output exists.
    """

    sources: list[str]
    outputs: Outputs
    done: int


def plan_folder(
    items: Sequence[str],
    folder: str | os.PathLike[str],
    *,
    suffix: str,
    resume: bool = False,
    done_marker: str = "",
) -> FolderPlan:
    """The images of ``items`` (files, folders searched recursively, globs, URLs) and where
    each one's output goes in ``folder``: ``NAME + suffix``, mirroring the subfolders of an
    input folder. A file named but missing is kept (the job reports it and the run goes on).

    Parameters
    ----------
    items : sequence of str
    folder : str or path
        Must be a folder, or not exist yet.
    suffix : str
        Of each output (``'.svdz'``; ``''`` for an output folder per image).
    resume : bool, optional
        Leave out the images whose output (or ``done_marker`` inside their output
        folder) exists.
    done_marker : str, optional
        The file whose presence means an output folder is complete.

    Raises
    ------
    NotADirectoryError
        When ``folder`` is a file.
    ValueError
        When two inputs would write the same output.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"output {str(folder)!r} must be a folder for several images.")
    sources = find_images(items, missing="keep")
    roots = tuple(os.path.abspath(item) for item in items if os.path.isdir(item))
    outputs = Outputs(os.fspath(folder), suffix, roots)
    written: dict[str, str] = {}
    for source in sources:
        output = _output_of(outputs, source)
        if output in written:
            raise ValueError(
                f"{written[output]!r} and {source!r} would both write {output!r}; "
                "process them into separate folders."
            )
        written[output] = source
    if not resume:
        return FolderPlan(sources, outputs, 0)
    marker = [done_marker] if done_marker else []  # join(x, "") would add a slash
    todo = [s for s in sources if not os.path.exists(os.path.join(_output_of(outputs, s), *marker))]
    return FolderPlan(todo, outputs, len(sources) - len(todo))


def _output_of(outputs: Outputs, source: str) -> str:
    """The output for ``source`` as given on the command line (a path made absolute)."""
    return outputs(source if is_url(source) else os.path.abspath(source))


def _load(path: str, loading: dict[str, Any]) -> Any:
    return load_image(
        path,
        mode="gray" if loading.get("gray") else "auto",
        max_pixels=loading.get("max_pixels"),
        timeout=loading.get("timeout", 10.0),
    )


def compress_image(
    image: Any,
    output: str | os.PathLike[str],
    *,
    options: dict[str, Any],
    force: bool,
    compare_jpeg: bool = True,
    original_bytes: int | None = None,
) -> codec.CompressionReport:
    """``svdimage compress`` of one loaded image: a rank criterion in ``options['rank']``
    (a :class:`~svdimage.ranks.criteria.Criterion`, needing ``tile=None``) is resolved on the
    image's global SVD here, and the codec gets its integer rank."""
    rank = options.get("rank")
    chosen = None
    if rank is not None and is_chunked(image):  # said before any pass over the image
        raise ValueError(codec.TILED_ONLY_QUALITY)
    if isinstance(rank, Criterion):
        if options.get("tile", 8) is not None:
            raise ValueError("a rank criterion needs the global SVD: pass tile=None.")
        chosen = resolve_rank_items(image, [rank]).rank(rank)
        options = {**options, "rank": chosen}
    report = codec.compress(
        output,
        image,
        force=force,
        original_bytes=original_bytes,
        compare_jpeg=compare_jpeg,
        **options,
    )
    return report if chosen is None else dataclasses.replace(report, rank=chosen)


def compress_job(
    path: str, *, outputs: Outputs, loading: dict[str, Any], options: dict[str, Any], force: bool
) -> dict[str, Any]:
    """``svdimage compress`` of one image of a folder (no JPEG comparison)."""
    output = outputs(path)
    check_writable(output, force=force)
    image = _load(path, loading)
    original = os.path.getsize(path) if os.path.isfile(path) else None
    report = compress_image(
        image, output, options=options, force=force, compare_jpeg=False, original_bytes=original
    )
    svdz = report.svdz
    return {
        "output": output,
        "original_bytes": original,
        "bytes": svdz.nbytes,
        "bpp": svdz.bits_per_pixel,
        "psnr": svdz.psnr,
        "ssim": svdz.ssim,
        "rank": report.rank,
    }


def sweep_job(
    path: str,
    *,
    outputs: Outputs,
    loading: dict[str, Any],
    ranks: str | Sequence[int] | None,
    force: bool,
) -> dict[str, Any]:
    """``svdimage sweep`` of one image of a folder: its five files in its own folder."""
    folder = outputs(path)
    result = sweep.run(folder, _load(path, loading), ranks=ranks, label=path, force=force)
    return {
        "output": folder,
        "method": result.svd.method,
        "max_rank": result.svd.max_rank,
        "ranks": [row.rank for row in result.rows],
        "psnr": [row.psnr for row in result.rows],
    }


@dataclass(frozen=True)
class Reconstruction:
    """What :func:`reconstruct_image` wrote and measured.

    Attributes
    ----------
    output : str
    rank : int
    svd : ImageSVD
        The decomposition the image was rebuilt from.
    image : ndarray
        The rank-``rank`` image as written (clipped to [0, 1]); a Dask array,
        computed block by block, for an image read out of core.
    relative_error : float
        ``||A - A_k||_F / ||A||_F`` of the written image (clipped, before the
        8-bit rounding of the file).
    optimal_error : float
        The optimal (Eckart-Young) relative error of rank ``rank``, from the
        singular values: equal to ``relative_error`` up to the clipping.
    psnr : float
        Of the written image, in dB.
    """

    output: str
    rank: int
    svd: ImageSVD
    image: np.ndarray
    relative_error: float
    optimal_error: float
    psnr: float


def reconstruct_image(
    image: Any, output: str | os.PathLike[str], *, rank: str | int | Criterion, force: bool
) -> Reconstruction:
    """``svdimage reconstruct`` of one loaded image: the rank-K image, written, with the
    error of that very image.

    An image read out of core (a Dask array) is decomposed in passes over it, its rank-K
    image written block by block to a tiled BigTIFF or a Zarr array
    (:func:`svdimage.chunked_io.save_chunked`), and measured in one more pass."""
    item = parse_rank_item(rank) if isinstance(rank, str) else rank
    if is_chunked(image):
        suffix = os.path.splitext(str(output))[1].lower()
        if suffix not in (".tif", ".tiff", ".zarr"):  # said before the passes, not after
            raise ValueError(
                f"an image read out of core is written to .tif (a tiled BigTIFF) or .zarr; "
                f"got {str(output)!r}."
            )
    found = resolve_rank_items(image, [item])
    k = found.rank(item)
    approx = found.svd.reconstruct(k)
    save_image(output, approx, force=force)
    if is_chunked(image):
        quality = DisplayedQuality(found.svd, image)
        psnr = quality.psnr(k)
        size = math.prod(found.svd.shape)
        squared_error = size * 10 ** (-psnr / 10) if math.isfinite(psnr) else 0.0
        return Reconstruction(
            output=str(output),
            rank=k,
            svd=found.svd,
            image=approx,
            relative_error=math.sqrt(squared_error / found.svd.squared_norm),
            optimal_error=float(found.svd.relative_error(k)),
            psnr=psnr,
        )
    return Reconstruction(
        output=str(output),
        rank=k,
        svd=found.svd,
        image=approx,
        relative_error=metrics.relative_error(image, approx),
        optimal_error=float(found.svd.relative_error(k)),
        psnr=metrics.peak_signal_noise_ratio(image, approx),
    )


def reconstruct_job(
    path: str, *, outputs: Outputs, loading: dict[str, Any], rank: str, force: bool
) -> dict[str, Any]:
    """``svdimage reconstruct`` of one image of a folder: the rank-K image."""
    output = outputs(path)
    check_writable(output, force=force)
    done = reconstruct_image(_load(path, loading), output, rank=rank, force=force)
    return {"output": output, "rank": done.rank, "psnr": done.psnr}


def denoise_job(
    path: str,
    *,
    outputs: Outputs,
    loading: dict[str, Any],
    sigma: float | None,
    force: bool,
) -> dict[str, Any]:
    """``svdimage denoise`` of one image of a folder (the optimal hard threshold)."""
    output = outputs(path)
    check_writable(output, force=force)
    result = denoise(_load(path, loading), sigma=sigma)
    save_image(output, result.image, force=force)
    return {"output": output, "rank": result.rank, "full_rank": result.svd.full_rank}

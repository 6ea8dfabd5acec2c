"""The per-image work of the commands' folder modes, as functions a worker runs.

Package-internal. Each job loads one image, calls the same library functions
as the one-image command, writes its output (atomically, never over an
existing file without ``force``) and returns a small dict for the command's
line about it, never the arrays, which stay on the worker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Outputs", "compress_job", "sweep_job", "reconstruct_job", "denoise_job"]


@dataclass(frozen=True)
class Outputs:
    """Where a folder mode writes each image's output (see :func:`output_path`)."""

    folder: str
    suffix: str
    roots: tuple[str, ...] = ()

    def __call__(self, path: str) -> str:
        from svdimage.batch._sources import output_path

        return output_path(path, roots=self.roots, folder=self.folder, suffix=self.suffix)


def _load(path: str, loading: dict[str, Any]) -> Any:
    from svdimage.io import load_image

    return load_image(
        path,
        mode="gray" if loading.get("gray") else "auto",
        max_pixels=loading.get("max_pixels"),
        timeout=loading.get("timeout", 10.0),
    )


def compress_job(
    path: str, *, outputs: Outputs, loading: dict[str, Any], options: dict[str, Any], force: bool
) -> dict[str, Any]:
    """``svdimage compress`` of one image of a folder (no JPEG comparison)."""
    from svdimage import codec
    from svdimage._fileutil import check_writable

    output = outputs(path)
    check_writable(output, force=force)
    image = _load(path, loading)
    original = os.path.getsize(path) if os.path.isfile(path) else None
    report = codec.compress(
        image, output, force=force, original_bytes=original, compare_jpeg=False, **options
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
    from svdimage import sweep

    folder = outputs(path)
    result = sweep.run(_load(path, loading), folder, ranks=ranks, label=path, force=force)
    return {
        "output": folder,
        "ranks": [row.rank for row in result.rows],
        "psnr": [row.psnr for row in result.rows],
    }


def reconstruct_job(
    path: str, *, outputs: Outputs, loading: dict[str, Any], rank: str, force: bool
) -> dict[str, Any]:
    """``svdimage reconstruct`` of one image of a folder: the rank-K image."""
    from svdimage import metrics
    from svdimage._fileutil import check_writable
    from svdimage._validation import check_rank
    from svdimage.criteria import Criterion, parse_rank_item, resolve_criterion
    from svdimage.decomposition import decompose
    from svdimage.growth import decompose_for
    from svdimage.io import save_image

    output = outputs(path)
    check_writable(output, force=force)
    image = _load(path, loading)
    item = parse_rank_item(rank)
    if isinstance(item, Criterion):
        svd = decompose_for(image, [item])
        k = resolve_criterion(svd, item, image=image)
    else:
        k = check_rank(item, min(image.shape[:2]), shape=image.shape)
        svd = decompose(image, rank=k)
    approx = svd.reconstruct(k)
    save_image(output, approx, force=force)
    return {"output": output, "rank": k, "psnr": metrics.peak_signal_noise_ratio(image, approx)}


def denoise_job(
    path: str,
    *,
    outputs: Outputs,
    loading: dict[str, Any],
    sigma: float | None,
    force: bool,
) -> dict[str, Any]:
    """``svdimage denoise`` of one image of a folder (the optimal hard threshold)."""
    from svdimage._fileutil import check_writable
    from svdimage.denoising import denoise
    from svdimage.io import save_image

    output = outputs(path)
    check_writable(output, force=force)
    result = denoise(_load(path, loading), sigma=sigma)
    save_image(output, result.image, force=force)
    return {"output": output, "rank": result.rank, "full_rank": result.svd.full_rank}

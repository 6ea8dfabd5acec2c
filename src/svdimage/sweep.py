"""Measure one decomposition at a set of ranks: quality and storage, as a table.

This is what ``svdimage sweep`` prints and writes to ``metrics.csv`` and
``metrics.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage import metrics
from svdimage._fileutil import atomic_path
from svdimage._validation import as_image_array
from svdimage.decomposition import ImageSVD

__all__ = ["RankMetrics", "measure_ranks", "write_metrics_csv", "write_metrics_json",
           "DEFAULT_RANKS"]

#: The homework seed's ranks.
DEFAULT_RANKS = (3, 10, 20, 50, 100)


@dataclass(frozen=True)
class RankMetrics:
    """Quality and storage of one rank-``k`` approximation.

    Attributes
    ----------
    rank : int
    relative_error : float
        ``||A - A_k||_F / ||A||_F`` of the unclipped approximation (from the
        singular values, Eckart--Young).
    psnr : float
        PSNR in dB of the displayed (clipped to [0, 1]) approximation.
    ssim : float
        Mean SSIM of the displayed approximation (scikit-image defaults); NaN
        for images smaller than SSIM's 7x7 window.
    energy : float
        Fraction of ``||A||_F^2`` kept, ``1 - relative_error**2``.
    stored_values : int
        ``C * k * (M + N + 1)`` numbers in the factors.
    factor_bytes_float32 : int
        Bytes of those numbers as float32 (``4 * stored_values``).
    compression_ratio_vs_raw8bit : float
        Raw 8-bit image bytes (``M * N * C``) over ``factor_bytes_float32``;
        below 1 the factors are bigger than the pixels.
    """

    rank: int
    relative_error: float
    psnr: float
    ssim: float
    energy: float
    stored_values: int
    factor_bytes_float32: int
    compression_ratio_vs_raw8bit: float


def measure_ranks(image: ArrayLike, svd: ImageSVD, ranks: Iterable[int]) -> list[RankMetrics]:
    """Measure ``svd``'s approximations of ``image`` at each of ``ranks``.

    Reconstructions are built incrementally (one pass over the ranks).

    Parameters
    ----------
    image : (M, N[, C]) array_like
        The decomposed image (the reference for PSNR and SSIM).
    svd : ImageSVD
        Its decomposition.
    ranks : iterable of int
        Ranks from 1 to ``svd.max_rank``.

    Returns
    -------
    rows : list of RankMetrics, by increasing rank
    """
    reference = as_image_array(image)
    if reference.shape != svd.shape:
        raise ValueError(
            f"image shape {reference.shape} does not match the decomposition's {svd.shape}."
        )
    raw_bytes = int(np.prod(svd.shape))
    rows = []
    for k, approx in svd.iter_reconstructions(ranks, clip=True):
        values = svd.stored_values(k)
        rows.append(RankMetrics(
            rank=k,
            relative_error=float(svd.relative_error(k)),
            psnr=metrics.peak_signal_noise_ratio(reference, approx),
            ssim=(metrics.structural_similarity(reference, approx)
                  if min(svd.shape[:2]) >= 7 else float("nan")),
            energy=float(svd.energy(k)),
            stored_values=values,
            factor_bytes_float32=4 * values,
            compression_ratio_vs_raw8bit=raw_bytes / (4 * values),
        ))
    return rows


_FIELDS = [f.name for f in dataclasses.fields(RankMetrics)]


def write_metrics_csv(path: str | os.PathLike[str], rows: Sequence[RankMetrics], *,
                      force: bool = False) -> Path:
    """Write ``rows`` as CSV, one line per rank, full float precision."""
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: repr(v) if isinstance(v, float) else v
                                 for k, v in dataclasses.asdict(row).items()})
    return Path(path)


def write_metrics_json(path: str | os.PathLike[str], rows: Sequence[RankMetrics], *,
                       info: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write ``{"image": info, "ranks": [...]}`` as JSON (infinite PSNR as null)."""
    document = {
        "image": info or {},
        "ranks": [{k: _json_number(v) for k, v in dataclasses.asdict(row).items()}
                  for row in rows],
    }
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""A rank sweep: one decomposition measured at a set of ranks, with its figures and tables.

:func:`run` is ``svdimage sweep`` as a function: it checks the outputs, computes
the SVD, resolves rank criteria, measures every rank and writes ``grid.png``,
``error_curve.png``, ``spectrum.png``, ``metrics.csv`` and ``metrics.json``.
:func:`measure_ranks` and the writers are its parts.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, metrics
from svdimage._deprecation import destination_first
from svdimage._fileutil import atomic_path, check_writable
from svdimage._validation import as_image_array, check_ranks, is_chunked, parse_rank_spec
from svdimage.image_svd import ImageSVD
from svdimage.ranks.criteria import Criterion, criterion_label, parse_rank_items
from svdimage.ranks.displayed_quality import DisplayedQuality
from svdimage.ranks.growth import resolve_rank_items
from svdimage.visualization import figure_bytes, plot_error_curve, plot_grid, plot_spectrum

__all__ = [
    "RankMetrics",
    "SweepResult",
    "run",
    "check_outputs",
    "measure_ranks",
    "write_metrics_csv",
    "write_metrics_json",
    "DEFAULT_RANKS",
    "OUTPUT_NAMES",
]

#: The homework seed's ranks.
DEFAULT_RANKS = (3, 10, 20, 50, 100)


@dataclass(frozen=True)
class RankMetrics:
    """Quality and storage of one rank-``k`` approximation.

    Attributes
    ----------
    rank : int
    criterion : str
        The criteria that picked this rank, as written (``'psnr=35'``; several
        joined by ``'; '``), or ``''`` for a rank asked for by number.
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
    criterion: str
    relative_error: float
    psnr: float
    ssim: float
    energy: float
    stored_values: int
    factor_bytes_float32: int
    compression_ratio_vs_raw8bit: float


def measure_ranks(
    image: ArrayLike,
    svd: ImageSVD,
    ranks: Iterable[int],
    *,
    criteria: Mapping[int, str] | None = None,
) -> list[RankMetrics]:
    """Measure ``svd``'s approximations of ``image`` at each of ``ranks``.

    Each approximation is built and measured a band of rows at a time
    (:class:`svdimage.ranks.displayed_quality.DisplayedQuality`), never whole.

    Parameters
    ----------
    image : (M, N[, C]) array_like
        The decomposed image (the reference for PSNR and SSIM).
    svd : ImageSVD
        Its decomposition.
    ranks : iterable of int
        Ranks from 1 to ``svd.max_rank``.
    criteria : mapping of int to str, optional
        For ranks that criteria picked, the criteria's labels (the
        ``criterion`` column).

    Returns
    -------
    rows : list of RankMetrics, by increasing rank
    """
    raw_bytes = int(np.prod(svd.shape))
    if is_chunked(image):  # read out of core: each rank is one pass over the image
        quality = DisplayedQuality(svd, image)
    else:
        reference = as_image_array(image)
        if reference.shape != svd.shape:
            raise ValueError(
                f"image shape {reference.shape} does not match the decomposition's {svd.shape}."
            )
        # The original's SSIM statistics are recomputed per rank rather than held (twice the
        # image): 0.1 s per rank of a 12 MP photo.
        ssim = metrics.SSIMReference(reference, too_small="nan", keep_statistics=False)
        quality = DisplayedQuality(svd, reference, ssim_reference=ssim)
    ordered = check_ranks(ranks, svd.max_rank, shape=svd.shape)
    rows = []
    with _progress.task("measuring PSNR and SSIM", len(ordered), unit="ranks") as step:
        for k in ordered:
            rows.append(_measured(k, quality, svd, criteria, raw_bytes))
            step.advance()
    return rows


def _measured(
    k: int,
    quality: DisplayedQuality,
    svd: ImageSVD,
    criteria: Mapping[int, str] | None,
    raw_bytes: int,
) -> RankMetrics:
    values = svd.stored_values(k)
    ssim = quality.ssim(k)  # measures the PSNR on the way
    return RankMetrics(
        rank=k,
        criterion=(criteria or {}).get(k, ""),
        relative_error=float(svd.relative_error(k)),
        psnr=quality.psnr(k),
        ssim=ssim,
        energy=float(svd.energy(k)),
        stored_values=values,
        factor_bytes_float32=4 * values,
        compression_ratio_vs_raw8bit=raw_bytes / (4 * values),
    )


_FIELDS = [f.name for f in dataclasses.fields(RankMetrics)]


def write_metrics_csv(
    path: str | os.PathLike[str], rows: Sequence[RankMetrics], *, force: bool = False
) -> Path:
    """Write ``rows`` as CSV, one line per rank, full float precision."""
    with (
        atomic_path(path, force=force) as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.DictWriter(handle, fieldnames=_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: repr(v) if isinstance(v, float) else v
                    for k, v in dataclasses.asdict(row).items()
                }
            )
    return Path(path)


def write_metrics_json(
    path: str | os.PathLike[str],
    rows: Sequence[RankMetrics],
    *,
    info: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``{"image": info, "ranks": [...]}`` as JSON (infinite PSNR as null)."""
    document = {
        "image": info or {},
        "ranks": [{k: _json_number(v) for k, v in dataclasses.asdict(row).items()} for row in rows],
    }
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: The files :func:`run` writes into its output folder.
OUTPUT_NAMES = ("grid.png", "error_curve.png", "spectrum.png", "metrics.csv", "metrics.json")


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run` computed and wrote.

    Attributes
    ----------
    rows : list of RankMetrics
        One per rank, increasing.
    svd : ImageSVD
    info : dict
        The image's description written to ``metrics.json``.
    paths : dict of str to Path
        Each written file by name (:data:`OUTPUT_NAMES`).
    """

    rows: list[RankMetrics]
    svd: ImageSVD
    info: dict[str, Any]
    paths: dict[str, Path]


def check_outputs(out: str | os.PathLike[str], *, force: bool = False) -> dict[str, Path]:
    """The paths :func:`run` writes in the folder ``out``, after checking that each can be
    written (:func:`run` checks them first too; a caller that loads an image first checks
    before loading it).

    Raises
    ------
    NotADirectoryError
        When ``out`` is a file, or a folder on the way to it is.
    FileExistsError
        When an output exists and ``force`` is off.
    OSError
        When the folder cannot be written (read-only, not yours), the disk is full, or an
        output is a device or a FIFO.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output folder {str(folder)!r} exists and is not a folder.")
    paths = {name: folder / name for name in OUTPUT_NAMES}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(
            f"output {existing[0]!r} already exists; pass force=True "
            "to overwrite it, or choose another folder."
        )
    for path in paths.values():
        check_writable(path, force=force)
    return paths


def run(
    out: str | os.PathLike[str],
    image: ArrayLike,
    *,
    ranks: str | Sequence[int] | None = None,
    label: str = "image",
    force: bool = False,
    step: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> SweepResult:
    """Sweep ranks of ``image``: measure them and write figures and tables to ``out``.

    A writer: the destination comes first, as in :func:`svdimage.io.save_image`
    (``run(image, out)``, the order before 0.2, still works until 0.3 with a
    ``DeprecationWarning``).

    Parameters
    ----------
    out : str or path
        Output folder, created (with its parents) if missing. Existing
        outputs are refused unless ``force``, before any work is done.
    image : (M, N[, C]) array_like
    ranks : str or sequence of int, optional
        Ranks, or text mixing ranks, ranges and criteria such as
        ``'3,10,1:5,psnr=35,knee'`` (:mod:`svdimage.ranks.criteria`). Default
        :data:`DEFAULT_RANKS` up to the image's rank.
    label : str, optional
        How the image is named in ``metrics.json`` (its path or URL).
    force : bool, optional
        Overwrite existing outputs.
    step : callable, optional
        ``step(name)`` returns a context manager wrapped around each stage.
        By default each stage is reported as a step of :mod:`svdimage._progress`
        (the CLI's progress display).

    Returns
    -------
    SweepResult
    """

    def stage(name: str) -> AbstractContextManager[Any]:
        return _progress.task(name) if step is None else step(name)

    out, image = destination_first(out, image, function="run", names=("out", "image"))
    # An image read out of core (a Dask array) stays lazy: its SVD, measurements and the
    # grid's original are passes over it.
    reference: Any = image if is_chunked(image) else as_image_array(image)
    paths = check_outputs(out, force=force)
    folder = Path(out)
    full = min(reference.shape[:2])
    criteria: list[Criterion] = []
    if ranks is None:
        numbers = [k for k in DEFAULT_RANKS if k <= full] or [full]
    elif isinstance(ranks, str):
        text, criteria = parse_rank_items(ranks)
        numbers = check_ranks(parse_rank_spec(text), full, shape=reference.shape) if text else []
    else:
        numbers = check_ranks(ranks, full, shape=reference.shape)
    # matplotlib is imported on a worker thread while this one computes the SVD (BLAS
    # leaves the GIL to it): half a second of Python out of the way. The figures are drawn
    # here afterwards: drawing them beside the SSIM bands took the bands' GIL and saved
    # nothing.
    importer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="svdimage-import")
    imported = importer.submit(_import_plotting)
    importer.shutdown(wait=False)
    with stage("computing the SVD"):
        found = resolve_rank_items(reference, [*numbers, *criteria])
        svd = found.svd
    picked: dict[int, list[str]] = {}
    for criterion in criteria:
        picked.setdefault(found.rank(criterion), []).append(criterion_label(criterion))
    chosen = sorted(set(numbers) | set(picked))
    with stage("measuring ranks"):
        rows = measure_ranks(
            reference, svd, chosen, criteria={k: "; ".join(v) for k, v in picked.items()}
        )
    with stage("drawing figures"):
        imported.result()
        drawn = {
            "grid.png": figure_bytes(plot_grid(reference, svd, rows)),
            "error_curve.png": figure_bytes(plot_error_curve(svd, marked_ranks=chosen)),
            "spectrum.png": figure_bytes(plot_spectrum(svd)),
        }
    info = {
        "source": label,
        "shape": [int(n) for n in reference.shape],
        "mode": "rgb" if len(reference.shape) == 3 else "gray",
        "method": svd.method,
        "max_rank": svd.max_rank,
        "raw_8bit_bytes": int(reference.size),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in drawn.items():
        with atomic_path(paths[name], force=force) as tmp:
            tmp.write_bytes(data)
    write_metrics_csv(paths["metrics.csv"], rows, force=force)
    write_metrics_json(paths["metrics.json"], rows, info=info, force=force)
    return SweepResult(rows=rows, svd=svd, info=info, paths=paths)


def _import_plotting() -> None:
    """Import what the figures need (about half a second of Python), ahead of them."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

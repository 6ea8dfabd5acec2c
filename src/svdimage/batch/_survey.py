"""A dataset survey: per image, the ranks that targets need and .svdz beside JPEG and WebP.

Package-internal; :func:`survey` and :func:`survey_image` are re-exported by
:mod:`svdimage.batch`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svdimage import codec, metrics
from svdimage._download import download
from svdimage._validation import DEFAULT_MAX_PIXELS
from svdimage.batch._engine import Outcome
from svdimage.batch._engine import map as batch_map
from svdimage.batch._sources import find_images, is_url
from svdimage.batch._store import CSV_NAME, PARQUET_NAME, SurveyStore
from svdimage.batch._summary import RANKS_FIGURE, RD_FIGURE, SUMMARY_NAME, summarize
from svdimage.io import DEFAULT_MAX_BYTES, from_uint8, load_image
from svdimage.ranks.criteria import parse_criterion
from svdimage.ranks.growth import resolve_rank_items

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["survey", "survey_image", "survey_columns", "DEFAULT_BPP", "DEFAULT_TARGETS"]

#: The rates a survey compares codecs at (bits per pixel).
DEFAULT_BPP = (0.25, 0.5, 1.0, 2.0)
#: The rank criteria a survey resolves on each image.
DEFAULT_TARGETS = ("ssim=0.95", "psnr=35", "energy=0.99", "knee")
#: The codecs measured at each rate, in the columns' order.
CODECS = ("svdz", "jpeg", "webp")
#: What each codec's columns hold at each rate (Pillow's quality setting for JPEG and WebP).
CODEC_FIELDS = {
    "svdz": ("bytes", "bpp", "psnr", "ssim"),
    "jpeg": ("quality", "bytes", "bpp", "psnr", "ssim"),
    "webp": ("quality", "bytes", "bpp", "psnr", "ssim"),
}


def survey_columns(bpp: Sequence[float], targets: Sequence[str]) -> list[str]:
    """The CSV's columns, in order, for these rates and targets.

    ``rank_<target>`` per target (``rank_ssim=0.95``, ``rank_knee``), then
    ``<codec>_<field>@<bpp>`` per codec and rate (``jpeg_psnr@0.5``).
    """
    columns = ["path", "width", "height", "mode", "original_bytes", "method", "decompose_seconds"]
    columns += [f"rank_{target}" for target in targets]
    for rate in bpp:
        columns += [
            f"{codec}_{field}@{rate:g}" for codec in CODECS for field in CODEC_FIELDS[codec]
        ]
    return columns + ["seconds", "error"]


def survey_image(
    source: str,
    *,
    bpp: Sequence[float] = DEFAULT_BPP,
    targets: Sequence[str] = DEFAULT_TARGETS,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """One image's row of a survey (without ``path``, ``seconds`` and ``error``).

    The image is loaded as the commands load it; the targets are resolved on
    the SVD that answers them and no more (:func:`svdimage.ranks.growth.decompose_for`,
    NaN for a target no rank reaches); at each rate, the best ``.svdz`` file
    of at most that many bytes (:func:`svdimage.codec.encode_for_sizes`) and
    the best Pillow JPEG (``optimize=True``) and WebP of at most the
    ``.svdz`` file's bytes (:func:`svdimage.codec.pillow_at_sizes`), each
    decoded to 8-bit pixels and measured against the loaded image (PSNR, SSIM as
    :mod:`svdimage.metrics`). NaN where a codec cannot get that small, or
    where Pillow lacks WebP.

    Parameters
    ----------
    source : str
        A path or an http(s) URL.
    bpp : sequence of float
    targets : sequence of str
        Rank criteria as the command line writes them (``ssim=0.95``, ``knee``).
    gray : bool, optional
    max_pixels : int or None, optional
    timeout : float, optional

    Returns
    -------
    dict
    """

    criteria = [parse_criterion(target) for target in targets]
    data: Any = source
    if is_url(source):
        data = download(source, timeout=timeout, max_bytes=DEFAULT_MAX_BYTES)
        original = len(data)
    else:
        original = os.path.getsize(source)
    image = load_image(data, mode="gray" if gray else "auto", max_pixels=max_pixels)
    row: dict[str, Any] = {
        "width": image.shape[1],
        "height": image.shape[0],
        "mode": "gray" if image.ndim == 2 else "rgb",
        "original_bytes": original,
    }
    start = time.perf_counter()
    ranked = resolve_rank_items(image, criteria, unreached="none")  # None: no rank reaches it
    row["method"] = ranked.svd.method
    row["decompose_seconds"] = time.perf_counter() - start
    for target, criterion in zip(targets, criteria):
        row[f"rank_{target}"] = ranked.ranks[criterion]
    del ranked
    pixels = image.shape[0] * image.shape[1]
    budgets = [rate * pixels / 8 for rate in bpp]
    files = codec.encode_for_sizes(image, budgets)
    made = [len(data) for data in files if data is not None]
    others = {}
    for name, format in (("jpeg", "JPEG"), ("webp", "WEBP")):
        try:
            others[name] = iter(codec.pillow_at_sizes(image, made, format=format))
        except ValueError:  # this Pillow has no WebP
            others[name] = iter([None] * len(made))
    for rate, data_svdz in zip(bpp, files):
        found: dict[str, Any] = {}
        if data_svdz is not None:
            # The 8-bit pixels it decodes to, as Pillow's files are measured.
            decoded = codec.decode(data_svdz, max_pixels=None, dtype=np.uint8)
            found["svdz"] = (None, data_svdz, from_uint8(decoded))
            found.update(
                (name, None if result is None else (result.quality, result.data, result.image))
                for name, results in others.items()
                for result in [next(results)]
            )
        for name in CODECS:
            row.update(_measure(image, name, rate, found.get(name), metrics))
    return row


def _measure(image: np.ndarray, name: str, rate: float, found: Any, metrics: Any) -> dict[str, Any]:
    keys = [f"{name}_{field}@{rate:g}" for field in CODEC_FIELDS[name]]
    if found is None:
        return dict.fromkeys(keys, None)
    quality, data, decoded = found
    values = (() if quality is None else (quality,)) + (
        len(data),
        metrics.bits_per_pixel(len(data), image.shape),
        metrics.peak_signal_noise_ratio(image, decoded),
        metrics.structural_similarity(image, decoded, too_small="nan"),
    )
    return dict(zip(keys, values))


def _survey_task(path: str, options: dict[str, Any]) -> dict[str, Any]:
    return survey_image(path, **options)


def survey(
    sources: Any,
    output: str | os.PathLike[str] | None = None,
    *,
    bpp: Sequence[float] = DEFAULT_BPP,
    targets: Sequence[str] = DEFAULT_TARGETS,
    gray: bool = False,
    workers: int | None = None,
    scheduler: Any = None,
    resume: bool = False,
    force: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = 10.0,
    summary: bool = True,
    on_row: Callable[[Outcome | None, int, int], None] | None = None,
) -> pd.DataFrame:
    """Survey a dataset: one row per image (see :func:`survey_image`), in parallel.

    Parameters
    ----------
    sources : str, path or iterable of them
        Images, folders (recursive), globs or URLs (:func:`find_images`).
    output : str or path, optional
        A folder that receives ``survey.csv`` (each row appended as its image
        finishes, so a killed run keeps what it did; rewritten in the input
        order at the end), ``survey.parquet`` (when pyarrow is installed),
        and with ``summary``, ``summary.md`` and its figures
        (:func:`svdimage.batch.summarize`). ``None``: nothing is written.
    bpp, targets : sequence
        Rates (bits per pixel) and rank criteria.
    gray : bool, optional
    workers, scheduler : optional
        Where the work runs (:func:`svdimage.batch.map`): a local Dask cluster
        of ``workers`` processes (default: the cores), ``workers=0`` for this
        process, or a running cluster's ``scheduler``.
    resume : bool, optional
        Keep the rows of an earlier run's ``survey.csv`` (same rates and
        targets) and process only the images it lacks.
    force : bool, optional
        Replace an existing survey in ``output``.
    max_pixels : int or None, optional
        Images over this many pixels are failed rows.
    timeout : float, optional
        Seconds to wait for a URL.
    summary : bool, optional
    on_row : callable, optional
        ``on_row(outcome, done, total)`` after each image (a progress bar),
        and once with ``outcome=None, done=0`` before the first.

    Returns
    -------
    pandas.DataFrame
        One row per image, in the order of ``sources``; ``error`` is empty
        where the image succeeded.

    Raises
    ------
    FileExistsError
        When ``output`` holds a survey and neither ``resume`` nor ``force``.
    ValueError
        For bad rates or targets, or a ``resume`` with other rates or targets.
    """
    bpp = [float(rate) for rate in bpp]
    if not bpp or any(not (np.isfinite(rate) and 0 < rate <= 64) for rate in bpp):
        raise ValueError(f"bpp must be one or more rates in (0, 64] bits per pixel; got {bpp}.")
    targets = [str(target).strip() for target in targets]
    for target in targets:
        parse_criterion(target)
    if len(set(targets)) != len(targets) or len({f"{r:g}" for r in bpp}) != len(bpp):
        raise ValueError("each rate and each target may be given once.")
    found = find_images(sources)
    columns = survey_columns(bpp, targets)
    store = SurveyStore(output, columns, resume=resume, force=force)
    todo = [source for source in found if source not in store.done]
    options = dict(bpp=bpp, targets=targets, gray=gray, max_pixels=max_pixels, timeout=timeout)
    task = functools.partial(_survey_task, options=options)
    if on_row is not None:
        on_row(None, 0, len(todo))
    for done, outcome in enumerate(
        batch_map(task, todo, workers=workers, scheduler=scheduler), start=1
    ):
        row = dict(outcome.value or {})
        row.update(path=outcome.source, seconds=outcome.seconds, error=outcome.error or "")
        store.append(row)
        if on_row is not None:
            on_row(outcome, done, len(todo))
    frame = store.finish(order=found)
    if output is not None and summary:
        summarize(frame, Path(output), bpp=bpp, targets=targets, force=True)
    return frame


def survey_outputs(folder: str | os.PathLike[str]) -> list[Path]:
    """The files a survey wrote in ``folder``, in order: ``survey.csv``, ``survey.parquet``
    (with pyarrow), ``summary.md`` and the two figures; those that are there."""
    names = (CSV_NAME, PARQUET_NAME, SUMMARY_NAME, RD_FIGURE, RANKS_FIGURE)
    return [Path(folder) / name for name in names if (Path(folder) / name).is_file()]

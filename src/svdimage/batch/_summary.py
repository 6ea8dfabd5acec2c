"""A survey's summary: the dataset's numbers in ``summary.md``, with two figures.

Package-internal; :func:`summarize` is re-exported by :mod:`svdimage.batch`.
Every number is recomputed from the survey's rows (the CSV), never carried
over from the run.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svdimage._fileutil import atomic_path
from svdimage.metrics import bd_psnr
from svdimage.visualization import save_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["summarize", "bd_table", "survey_layout"]

SUMMARY_NAME = "summary.md"
RD_FIGURE = "rd_curves.png"
RANKS_FIGURE = "target_ranks.png"
LABELS = {"svdz": ".svdz", "jpeg": "JPEG", "webp": "WebP"}


def survey_layout(frame: pd.DataFrame) -> tuple[list[float], list[str]]:
    """The rates and targets a survey's columns were written for."""
    rates = [float(m.group(1)) for c in frame.columns if (m := re.match(r"svdz_bytes@(.+)$", c))]
    targets = [c[len("rank_") :] for c in frame.columns if c.startswith("rank_")]
    return rates, targets


def bd_table(frame: pd.DataFrame, bpp: Sequence[float]) -> list[dict[str, Any]]:
    """BD-PSNR and BD-SSIM against JPEG: per image (mean, median) and of the mean curves.

    For each image, :func:`svdimage.metrics.bd_psnr` of a codec's (bpp, PSNR)
    points at the survey's rates against JPEG's, within the rates surveyed;
    images where a curve has fewer than two points are left out. The mean
    curves average bpp and quality over the images that have all three codecs
    at a rate.
    """
    low, high = min(bpp), max(bpp)
    rows = []
    for codec in ("svdz", "webp"):
        for metric in ("psnr", "ssim"):
            if not _has(frame, codec, metric, bpp):
                continue
            per_image = [
                bd_psnr(
                    [row[f"{codec}_bpp@{r:g}"] for r in bpp],
                    [row[f"{codec}_{metric}@{r:g}"] for r in bpp],
                    [row[f"jpeg_bpp@{r:g}"] for r in bpp],
                    [row[f"jpeg_{metric}@{r:g}"] for r in bpp],
                    low=low,
                    high=high,
                )
                for _, row in frame.iterrows()
            ]
            values = np.array([v for v in per_image if np.isfinite(v)])
            mean = _mean_curves(frame, bpp)
            rows.append(
                {
                    "codec": codec,
                    "metric": metric,
                    "images": int(values.size),
                    "mean": float(values.mean()) if values.size else math.nan,
                    "median": float(np.median(values)) if values.size else math.nan,
                    "mean_curves": bd_psnr(
                        mean[codec]["bpp"],
                        mean[codec][metric],
                        mean["jpeg"]["bpp"],
                        mean["jpeg"][metric],
                        low=low,
                        high=high,
                    ),
                }
            )
    return rows


def _has(frame: pd.DataFrame, codec: str, metric: str, bpp: Sequence[float]) -> bool:
    return any(frame[f"{codec}_{metric}@{r:g}"].notna().any() for r in bpp)


def _mean_curves(frame: pd.DataFrame, bpp: Sequence[float]) -> dict[str, dict[str, list[float]]]:
    """Mean bits per pixel, PSNR and SSIM of each codec at each rate, over the *same* images
    at every rate: those where every codec present has a point at every rate. (Averaging,
    at each rate, only the images complete there mixes different images along a curve, so
    that a mean could fall as the rate rises.) ``images`` holds that count at each point."""
    curves: dict[str, dict[str, list[float]]] = {
        codec: {"bpp": [], "psnr": [], "ssim": [], "images": []} for codec in LABELS
    }
    columns = [f"{codec}_{m}@{rate:g}" for rate in bpp for codec in LABELS for m in ("bpp", "psnr")]
    codecs = [
        codec
        for codec in LABELS
        if any(frame[f"{codec}_psnr@{rate:g}"].notna().any() for rate in bpp)  # WebP may be absent
    ]
    present = [c for c in columns if c.split("_", 1)[0] in codecs]
    common = frame.dropna(subset=present) if present else frame.iloc[:0]
    if common.empty:
        return curves
    for rate in bpp:
        for codec in codecs:
            curve = curves[codec]
            curve["bpp"].append(float(common[f"{codec}_bpp@{rate:g}"].mean()))
            curve["psnr"].append(float(common[f"{codec}_psnr@{rate:g}"].mean()))
            curve["ssim"].append(float(common[f"{codec}_ssim@{rate:g}"].mean()))
            curve["images"].append(len(common))
    return curves


def summarize(
    frame: pd.DataFrame,
    folder: str | os.PathLike[str],
    *,
    bpp: Sequence[float] | None = None,
    targets: Sequence[str] | None = None,
    force: bool = False,
) -> str:
    """Write ``summary.md``, ``rd_curves.png`` and ``target_ranks.png`` for a survey.

    Parameters
    ----------
    frame : pandas.DataFrame
        A survey's rows (:func:`survey`, or :func:`read_survey` of its CSV).
    folder : str or path
    bpp, targets : sequence, optional
        Default: read from the columns.
    force : bool, optional
        Replace existing files.

    Returns
    -------
    str
        The Markdown text written.
    """
    layout_bpp, layout_targets = survey_layout(frame)
    bpp = list(layout_bpp if bpp is None else bpp)
    targets = list(layout_targets if targets is None else targets)
    folder = Path(folder)
    failed = frame[frame["error"] != ""]
    fine = frame[frame["error"] == ""]
    lines = [
        f"# Survey of {len(frame):,} images",
        "",
        f"{len(fine):,} succeeded, {len(failed):,} failed. Rates: "
        + ", ".join(f"{r:g}" for r in bpp)
        + " bpp. Targets: "
        + ", ".join(targets)
        + ". Every number below is computed from `survey.csv`.",
        "",
    ]
    if len(fine) and bpp:
        lines += [
            "## .svdz and WebP against JPEG at equal bytes",
            "",
            "Bjøntegaard deltas (BD-PSNR in dB, BD-SSIM) over JPEG (Pillow, optimize=True); "
            "positive means better than JPEG at the same bytes. Per image within "
            f"{min(bpp):g}-{max(bpp):g} bpp, then the mean and median over the images; and "
            "between the mean curves (the figure).",
            "",
            "| codec | measure | images | mean | median | mean curves |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in bd_table(fine, bpp):
            digits = 2 if row["metric"] == "psnr" else 4
            name = "BD-PSNR (dB)" if row["metric"] == "psnr" else "BD-SSIM"
            lines.append(
                f"| {LABELS[row['codec']]} | {name} | {row['images']:,} | "
                f"{_number(row['mean'], digits)} | {_number(row['median'], digits)} | "
                f"{_number(row['mean_curves'], digits)} |"
            )
        lines += ["", f"![rate-distortion curves]({RD_FIGURE})", ""]
    if len(fine) and targets:
        lines += [
            "## Ranks the targets need",
            "",
            "| target | images | not reached | Q1 | median | Q3 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for target in targets:
            ranks = fine[f"rank_{target}"].dropna()
            q1, median, q3 = _quartiles(ranks)
            lines.append(
                f"| {target} | {len(ranks):,} | {len(fine) - len(ranks):,} | "
                f"{_number(q1, 1)} | {_number(median, 1)} | {_number(q3, 1)} |"
            )
        lines += ["", f"![ranks the targets need]({RANKS_FIGURE})", ""]
    numeric = [c for c in frame.columns if c not in ("path", "mode", "method", "error")]
    if len(fine):
        lines += [
            "## Every column",
            "",
            "| column | count | min | Q1 | median | Q3 | max |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for column in numeric:
            values = fine[column].dropna().astype(float)
            q1, median, q3 = _quartiles(values)
            low, high = (values.min(), values.max()) if len(values) else (math.nan, math.nan)
            lines.append(
                f"| {column} | {len(values):,} | {_g(low)} | {_g(q1)} | {_g(median)} | "
                f"{_g(q3)} | {_g(high)} |"
            )
        lines.append("")
    if len(failed):
        lines += ["## Failed images", "", "| image | error |", "|---|---|"]
        for _, row in failed.iterrows():
            lines.append(f"| {_cell(row['path'])} | {_cell(row['error'])} |")
        lines.append("")
    text = "\n".join(lines)
    folder.mkdir(parents=True, exist_ok=True)
    if len(fine) and bpp:
        _save(plot_rd_curves(fine, bpp), folder / RD_FIGURE, force=force)
    if len(fine) and targets:
        _save(plot_target_ranks(fine, targets), folder / RANKS_FIGURE, force=force)
    with atomic_path(folder / SUMMARY_NAME, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text


def _quartiles(values: Any) -> tuple[float, float, float]:
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(q1), float(median), float(q3)


def _number(value: float, digits: int) -> str:
    return "—" if not np.isfinite(value) else f"{value:+.{digits}f}" if digits > 1 else f"{value:g}"


def _g(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.4g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _save(fig: Figure, path: Path, *, force: bool) -> None:
    save_figure(fig, path, force=force)


def plot_rd_curves(frame: pd.DataFrame, bpp: Sequence[float]) -> Figure:
    """Mean PSNR and SSIM against mean bits per pixel, one line per codec."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, NullLocator

    curves = _mean_curves(frame, bpp)
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, unit in zip(axes, ("psnr", "ssim"), ("PSNR (dB)", "SSIM")):
        for codec, curve in curves.items():
            if curve["bpp"]:
                ax.plot(curve["bpp"], curve[metric], marker="o", label=LABELS[codec])
        ax.set_xscale("log")
        ax.set_xticks(list(bpp), [f"{r:g}" for r in bpp])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bits per pixel (mean over images)")
        ax.set_ylabel(f"mean {unit}")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[1]:  # no curve at all: the title says why
            ax.legend()
    count = max((max(c["images"], default=0) for c in curves.values()), default=0)
    total = len(frame)
    if count:
        fig.suptitle(
            f"Rate-distortion at equal bytes: mean of the same {count:,} of {total:,} images at "
            "every rate (those every codec reaches at every rate)",
            fontsize=10,
        )
    else:
        fig.suptitle(f"No image of {total:,} has every codec at every rate", fontsize=10)
    return fig


def plot_target_ranks(frame: pd.DataFrame, targets: Sequence[str]) -> Figure:
    """A histogram of the rank each target needs, one panel per target."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(3.2 * len(targets), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(targets)))
    for ax, target in zip(axes, targets):
        ranks = frame[f"rank_{target}"].dropna().astype(float)
        if len(ranks):
            ax.hist(ranks, bins=min(30, max(5, len(ranks) // 3)), color="tab:blue")
        ax.set_title(f"{target} ({len(ranks):,} images)", fontsize=10)
        ax.set_xlabel("rank")
        ax.set_ylabel("images")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig

"""Static figures of a decomposition: the grid of reconstructions, the error curve, the spectrum.

matplotlib is imported inside the functions and figures are built with
:class:`matplotlib.figure.Figure` directly (Agg canvas), so no display and no
global pyplot state are involved. Each function returns the figure;
:func:`save_figure` writes it atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage._fileutil import atomic_path
from svdimage._validation import as_image_array, check_ranks, is_chunked
from svdimage.image_svd import ImageSVD

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from svdimage.sweep import RankMetrics

__all__ = [
    "plot_grid",
    "plot_error_curve",
    "plot_spectrum",
    "save_figure",
    "figure_bytes",
    "for_display",
]


def _figure(**kwargs: object) -> Figure:
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)  # type: ignore[arg-type]


def for_display(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Shrink by block means to at most ``max_side`` pixels a side.

    A panel shows no more, and matplotlib resampling a 12 MP image costs seconds.
    """
    factor = -(-max(image.shape[:2]) // max_side)
    if factor <= 1:
        return image
    from skimage.transform import downscale_local_mean

    blocks = (factor, factor) + (1,) * (image.ndim - 2)
    return downscale_local_mean(image, blocks).astype(image.dtype, copy=False)


def _show(ax: object, image: np.ndarray, title: str) -> None:
    image = for_display(image)
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased")  # type: ignore[attr-defined]
    else:
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="antialiased")  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=10)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def plot_grid(
    image: ArrayLike, svd: ImageSVD, rows: Sequence[RankMetrics], *, panel_size: float = 3.2
) -> Figure:
    """The original beside each measured rank, titled with rank, error and PSNR.

    Parameters
    ----------
    image : (M, N[, C]) array_like
        The original image.
    svd : ImageSVD
        Its decomposition.
    rows : sequence of RankMetrics
        From :func:`svdimage.sweep.measure_ranks`; one panel each.
    panel_size : float, optional
        Width of a panel in inches.
    """
    # An image read out of core (a Dask array) is averaged over blocks in one pass.
    original: Any = image if is_chunked(image) else as_image_array(image)
    n = len(rows) + 1
    ncols = min(n, 3 if n <= 6 else 4)
    nrows = math.ceil(n / ncols)
    aspect = original.shape[0] / original.shape[1]
    fig = _figure(figsize=(panel_size * ncols, panel_size * aspect * nrows + 0.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    # Panels are drawn at about twice their printed resolution: the original and the factors'
    # rows are averaged over blocks first (averaging is linear, so the block means of A_k are
    # the product of the averaged factors), instead of resampling full-size images.
    factor = max(1, math.ceil(max(original.shape[:2]) / (2 * panel_size * fig.dpi)))
    small, (U, s, Vt) = _block_means(original, svd, factor)
    _show(axes[0], small, f"original {original.shape[1]}x{original.shape[0]}")
    for ax, row in zip(axes[1:], rows):
        k = row.rank
        approx = np.stack([(U[c, :, :k] * s[c, :k]) @ Vt[c, :k] for c in range(len(s))], axis=-1)
        approx = np.clip(approx if len(original.shape) == 3 else approx[:, :, 0], 0.0, 1.0)
        _show(ax, approx, f"rank {k}\nrel. error {row.relative_error:.4f}, PSNR {row.psnr:.1f} dB")
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig


def _block_means(
    image: Any, svd: ImageSVD, factor: int
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``image`` and ``svd``'s factors averaged over ``factor`` x ``factor`` blocks (the
    partial blocks at the edges left out). A Dask image (read out of core) is averaged
    chunk by chunk, in one pass (:func:`svdimage.chunked_io.block_mean`)."""
    U, s, Vt = svd.stacked_factors()
    M, N = (int(n) // factor * factor for n in image.shape[:2])
    m, n = M // factor, N // factor
    if is_chunked(image):
        from svdimage.chunked_io import block_mean, unit_range

        small = block_mean(unit_range(image)[:M, :N], factor)
    elif factor == 1:
        return image, (U, s, Vt)
    else:
        # Rows of a block summed first (contiguous), then its columns: 5x faster than one
        # mean over both axes of a 12 MP colour image (0.06 s instead of 0.3 s).
        rows = np.add.reduce(image[:M, :N].reshape(m, factor, N, *image.shape[2:]), axis=1)
        small = np.add.reduce(rows.reshape(m, n, factor, *image.shape[2:]), axis=2)
        small /= np.asarray(factor * factor, dtype=small.dtype)
    if factor == 1:
        return small, (U, s, Vt)
    U_small = U[:, :M].reshape(U.shape[0], m, factor, U.shape[2]).mean(axis=2)
    Vt_small = Vt[:, :, :N].reshape(Vt.shape[0], Vt.shape[1], n, factor).mean(axis=3)
    return small, (U_small, s, Vt_small)


def plot_error_curve(svd: ImageSVD, *, marked_ranks: Sequence[int] = ()) -> Figure:
    """Relative error ``||A - A_k||_F / ||A||_F`` against every rank, log axis.

    Parameters
    ----------
    svd : ImageSVD
    marked_ranks : sequence of int, optional
        Ranks to mark and label on the curve.
    """
    errors = np.asarray(svd.relative_error())
    ranks = np.arange(1, svd.max_rank + 1)
    fig = _figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    positive = errors > 0
    ax.semilogy(
        ranks[positive],
        errors[positive],
        color="tab:red",
        lw=1.5,
        label=r"$\|A-A_k\|_F\,/\,\|A\|_F$",
    )
    marks = check_ranks(marked_ranks, svd.max_rank) if len(marked_ranks) else []
    marks = [k for k in marks if errors[k - 1] > 0]
    for k in marks:
        ax.plot(k, errors[k - 1], "o", color="black", ms=5)
    ax.set_xlabel("rank k")
    ax.set_ylabel("relative error")
    ax.set_title("Relative error of the rank-k approximation" + _computed_range(svd))
    ax.grid(True, which="both", ls=":", lw=0.6)
    # Room on the right for the label of a mark at the last computed rank.
    room = 1.15 if marks and max(marks) > 0.85 * svd.max_rank else 1.0
    ax.set_xlim(1, max(svd.max_rank, 2) * room)
    ax.legend(loc="upper right")  # above a falling curve: the labels go below it
    _label_points(
        fig, ax, [(k, float(errors[k - 1]), f"k={k}: {errors[k - 1]:.3g}") for k in marks]
    )
    return fig


def _computed_range(svd: ImageSVD) -> str:
    """A title's note of the ranks a truncated SVD covers ('' when complete)."""
    if svd.is_complete:
        return ""
    return f"\n(ranks 1-{svd.max_rank} computed, of {svd.full_rank})"


def _label_points(fig: Figure, ax: Any, points: Sequence[tuple[float, float, str]]) -> None:
    """Label points on a falling curve so that no label overlaps another or the curve.

    Each label starts below and to the right of its point, towards the empty
    space under a falling curve (to the left where the right would leave the
    figure), and is pushed further down (a leader line
    keeping it tied to its point) until its box clears every label placed
    before it and every drawn line of the axes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # fix the layout, so display coordinates are final
    lines = [line.get_transform().transform(line.get_xydata()) for line in ax.get_lines()]
    curve = np.concatenate(lines) if lines else np.zeros((0, 2))

    pad = 4.0 * fig.dpi / 72.0  # marker radius and line width, in pixels

    def text_box(label: Any) -> Any:  # the text alone, without its leader line
        label.update_positions(renderer)
        return Text.get_window_extent(label, renderer).padded(pad)

    placed: list[Any] = []
    for x, y, text in points:
        offset, side = -8.0, 8.0
        label = ax.annotate(
            text,
            (x, y),
            textcoords="offset points",
            xytext=(side, offset),
            fontsize=8,
            va="top",
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4", "shrinkA": 0, "shrinkB": 3},
        )
        label.set_in_layout(False)
        if text_box(label).x1 > fig.bbox.x1:  # past the figure's right edge: left of the point
            side = -8.0
            label.set_horizontalalignment("right")
            label.xyann = (side, offset)
        for _ in range(200):
            box = text_box(label)
            bottoms = [other.y0 for other in placed if box.overlaps(other)]
            inside = (
                (curve[:, 0] >= box.x0)
                & (curve[:, 0] <= box.x1)
                & (curve[:, 1] >= box.y0)
                & (curve[:, 1] <= box.y1)
            )
            bottoms += list(curve[inside, 1])
            if not bottoms:
                break
            # Drop the label's top just below the lowest obstacle (pixels -> points).
            offset -= (box.y1 - min(bottoms)) * 72.0 / fig.dpi + 1.0
            label.xyann = (side, offset)
        placed.append(text_box(label))


def plot_spectrum(svd: ImageSVD) -> Figure:
    """Singular values on a log axis, with the cumulative energy on a second axis."""
    fig = _figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    ranks = np.arange(1, svd.max_rank + 1)
    s = np.atleast_2d(svd.s)
    labels = ["σ"] if s.shape[0] == 1 else ["σ (R)", "σ (G)", "σ (B)"]
    colors = ["black"] if s.shape[0] == 1 else ["tab:red", "tab:green", "tab:blue"]
    for values, label, color in zip(s, labels, colors):
        keep = values > 0
        ax.semilogy(ranks[keep], values[keep], color=color, lw=1.2, label=label)
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value σᵢ")
    ax.grid(True, which="both", ls=":", lw=0.6)
    twin = ax.twinx()
    energy = 100 * np.asarray(svd.energy())
    twin.plot(ranks, energy, color="tab:purple", lw=1.5, ls="--", label="cumulative energy")
    twin.set_ylabel("energy kept (%)")
    # Photos keep most energy in the first component: zoom on the part that moves.
    twin.set_ylim(min(5 * np.floor(energy[0] / 5), 99.0), 100.2)
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(
        handles[0] + twin_handles[0],
        handles[1] + twin_handles[1],
        loc="upper right",
        bbox_to_anchor=(1.0, 0.9),
    )
    ax.set_title("Singular value spectrum" + _computed_range(svd))
    ax.set_xlim(1, max(svd.max_rank, 2))
    return fig


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, force: bool = False, dpi: int = 120
) -> Path:
    """Save ``fig`` atomically (format from the extension); refuse to overwrite."""
    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


def figure_bytes(fig: Figure, *, format: str = "png", dpi: int = 120) -> bytes:
    """The file :func:`save_figure` would write, in memory: for drawing figures on one
    thread and writing them, atomically, on another once every result is ready."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=format)
    return buffer.getvalue()

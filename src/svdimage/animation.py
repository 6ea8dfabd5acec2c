"""The animation of an image sharpening as the rank grows, beside its error curve (MP4/GIF).

The seed notebook's picture, made fast: the figure is drawn once and frames
are blitted; the image panel is rebuilt incrementally at the panel's own
resolution from resized factors. Frames stream to ffmpeg (imageio-ffmpeg) or
Pillow's GIF writer, and the file appears only when complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from svdimage import _progress
from svdimage._deprecation import destination_first, renamed_argument
from svdimage._fileutil import atomic_path
from svdimage._linalg import RankAccumulator
from svdimage._validation import check_ranks
from svdimage.image_svd import ImageSVD
from svdimage.io import to_uint8

__all__ = [
    "animate",
    "render_frame",
    "default_animation_ranks",
    "DEFAULT_FRAME_SIZE",
    "DEFAULT_LAST_RANK",
]


#: Frame size in pixels when none is given, per layout (the seed's 5x8 inch figure at 100 dpi).
DEFAULT_FRAME_SIZE = {"stacked": (500, 800), "side": (1000, 500)}


#: The last rank of the default schedule. At a frame's panel size (about 500 pixels wide)
#: nothing changes beyond it: a 12 MP photo's rank-250 panel is 63 dB from the original's
#: (benchmarks/bench_commands.py's photo), while the seed's schedule to the full rank gave
#: 363 frames (45 s of video, 35 s of them still) and needed the complete SVD.
DEFAULT_LAST_RANK = 250


def default_animation_ranks(max_rank: int, *, last: int = DEFAULT_LAST_RANK) -> list[int]:
    """The seed notebook's schedule: ranks 1..70, then every 10th, then the last.

    The seed ran to the full rank of a small image; here the schedule stops at
    ``min(max_rank, last)`` (:data:`DEFAULT_LAST_RANK`, 250), so that a phone
    photo's animation does not end in hundreds of identical frames. Pass
    ``last=max_rank``, or explicit ranks to :func:`animate`, for the full range.

    Examples
    --------
    >>> default_animation_ranks(100)[68:]
    [69, 70, 80, 90, 100]
    >>> default_animation_ranks(3000)[-3:], default_animation_ranks(3000, last=3000)[-2:]
    ([230, 240, 250], [2990, 3000])
    """
    top = min(max_rank, last)
    ranks = list(range(1, min(70, top) + 1)) + list(range(80, top, 10))
    if ranks[-1] != top:
        ranks.append(top)
    return ranks


class _AnimationFigure:
    """The two-panel figure, drawn once; frames update only what moves.

    The static parts (axes, ticks, the faint full error curve) are rendered
    once and kept as a bitmap. Each frame restores it, draws the live curve,
    the current point and the title on top (matplotlib blitting on the Agg
    canvas) and pastes the image panel's pixels, which are computed at the
    panel's own resolution: resizing is linear and separable, so resizing
    the factors once, ``(R_r U) diag(s) (R_c V)^T``, gives the resized
    reconstruction of every rank for a few small products.
    """

    def _keep_labels_inside(self) -> None:
        """Narrow the error axes until all it draws (its labels and tick labels) lies inside
        the figure: a narrow stacked frame cut "relative error" at the left edge and "rank
        k" at the bottom."""
        renderer = self.canvas.get_renderer()
        width, height = self.fig.bbox.width, self.fig.bbox.height
        for _ in range(3):
            drawn = self.ax_err.get_tightbbox(renderer)
            if drawn is None:
                return
            left, bottom = 4.0 - drawn.x0, 4.0 - drawn.y0
            right, top = drawn.x1 - (width - 4.0), drawn.y1 - (height - 4.0)
            if max(left, bottom, right, top) <= 0:
                return
            box = self.ax_err.get_position()
            dx0, dy0 = max(left, 0.0) / width, max(bottom, 0.0) / height
            dx1, dy1 = max(right, 0.0) / width, max(top, 0.0) / height
            self.ax_err.set_position(
                (box.x0 + dx0, box.y0 + dy0, box.width - dx0 - dx1, box.height - dy0 - dy1)
            )
            self.canvas.draw()

    def __init__(
        self,
        svd: ImageSVD,
        ranks: Sequence[int],
        *,
        size: tuple[int, int],
        layout: str,
        caption: str | None,
        dpi: int = 100,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width, height = size
        self.svd = svd
        self.fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        if layout == "stacked":
            grid = self.fig.add_gridspec(
                2,
                1,
                height_ratios=[1.6, 1],
                left=0.16,
                right=0.95,
                top=0.93,
                bottom=0.09 if caption else 0.07,
                hspace=0.28,
            )
        else:
            grid = self.fig.add_gridspec(
                1,
                2,
                width_ratios=[1, 1],
                left=0.03,
                right=0.97,
                top=0.86,
                bottom=0.16 if caption else 0.12,
                wspace=0.22,
            )
        self.ax_img = self.fig.add_subplot(grid[0])
        self.ax_err = self.fig.add_subplot(grid[1])
        self.ranks = list(ranks)
        all_errors = np.asarray(svd.relative_error())
        self.errors = all_errors[np.asarray(self.ranks) - 1]

        blank = np.zeros(svd.shape if svd.is_color else svd.shape[:2], dtype=np.float32)
        self.image = self.ax_img.imshow(
            blank,
            cmap=None if svd.is_color else "gray",
            vmin=0.0,
            vmax=1.0,
            interpolation="antialiased",
            animated=True,
        )
        self.ax_img.set_axis_off()
        self.title = self.ax_img.set_title("", fontsize=11, animated=True)

        positive = all_errors > 0
        everything = np.arange(1, svd.max_rank + 1)
        self.ax_err.semilogy(everything[positive], all_errors[positive], color="0.85", lw=1.2)
        (self.line,) = self.ax_err.plot([], [], color="tab:red", lw=1.6, animated=True)
        (self.point,) = self.ax_err.plot([], [], "o", color="tab:red", ms=5, animated=True)
        shown = self.errors[self.errors > 0]
        low = float(shown.min()) / 2 if shown.size else 1e-6
        high = float(all_errors.max()) * 1.6 if all_errors.max() > 0 else 1.0
        self.ax_err.set_ylim(low, high)
        self.ax_err.set_xlim(1, max(svd.max_rank, 2))  # one held rank: still a valid axis
        self.ax_err.set_xlabel("rank k")
        self.ax_err.set_ylabel("relative error")
        self.ax_err.set_title(r"Relative error $\|A-A_k\|_F\,/\,\|A\|_F$", fontsize=10)
        self.ax_err.grid(True, which="both", ls=":", lw=0.6)
        if caption:
            # The caption is the user's text, drawn as written: "$5 and $6" is not mathtext.
            self.fig.text(
                0.5,
                0.015,
                caption,
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.35",
                parse_math=False,
            )
        self.moving = [self.title, self.line, self.point]
        self.canvas.draw()
        self._keep_labels_inside()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        box = self.ax_img.get_window_extent()
        self.cols = slice(int(round(box.x0)), int(round(box.x1)))
        self.rows = slice(height - int(round(box.y1)), height - int(round(box.y0)))
        # Only these parts of a frame change: the image panel (pasted), the band above it
        # (the title) and, in the error axes, the stretch from the previous point to the
        # current one (the curve only grows). The rest stays from the first drawing.
        self.height, self.width = height, width
        self.title_band = (slice(0, self.rows.start), slice(0, width))
        self.err_box = self.ax_err.get_window_extent().padded(4)
        self.pad = 2 + (5 + 1.6) * dpi / 72  # marker radius and line width, in pixels
        self.previous: tuple[float, float] | None = None
        self.out = np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()

    def _pixels(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
        """Buffer slices (rows, cols) of a display-coordinate box, clipped to the figure."""
        rows = slice(
            max(0, self.height - int(np.ceil(y1))),
            min(self.height, self.height - int(np.floor(y0)) + 1),
        )
        cols = slice(max(0, int(np.floor(x0))), min(self.width, int(np.ceil(x1)) + 1))
        return rows, cols

    def _dirty_curve(self, index: int) -> tuple[slice, slice]:
        k, error = self.ranks[index], float(self.errors[index])
        if index == 0 or self.previous is None:
            box = self.err_box
            region = self._pixels(box.x0, box.y0, box.x1, box.y1)
        else:
            points = [self.previous]
            if error > 0:
                points.append(tuple(self.ax_err.transData.transform((k, error))))
            xs, ys = zip(*points)
            region = self._pixels(
                min(xs) - self.pad, min(ys) - self.pad, max(xs) + self.pad, max(ys) + self.pad
            )
        if error > 0:
            self.previous = tuple(self.ax_err.transData.transform((k, error)))
        return region

    def display_factors(self) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """Left and right factors resized to the panel, ``(R_r U_c s_c)`` and ``(R_c V_c)``."""
        from skimage.transform import resize

        top = max(self.ranks)
        panel_h = self.rows.stop - self.rows.start
        panel_w = self.cols.stop - self.cols.start
        U, s, Vt = self.svd.stacked_factors()
        V = np.swapaxes(Vt, 1, 2)
        left, right = [], []

        def along_rows(factor: np.ndarray, size: int) -> np.ndarray:
            # Shrinking: linear interpolation after a Gaussian pre-filter; enlarging: nearest
            # pixel, as matplotlib shows small images. Either is the same linear operator on
            # every column, so it commutes with the product U diag(s) Vt.
            shrink = size < factor.shape[0]
            resized = resize(
                factor,
                (size, factor.shape[1]),
                order=1 if shrink else 0,
                anti_aliasing=shrink,
                preserve_range=True,
            )
            return np.asfortranarray(resized.astype(self.svd.dtype))

        for c in range(self.svd.n_channels):
            left.append(along_rows(U[c, :, :top] * s[c, :top], panel_h))
            right.append(along_rows(V[c, :, :top], panel_w))
        return left, s, right

    def _update(self, index: int) -> None:
        k, error = self.ranks[index], float(self.errors[index])
        self.title.set_text(f"Rank {k}; relative error {error:.4f}")
        visible = self.errors[: index + 1] > 0
        xs = np.asarray(self.ranks[: index + 1])[visible]
        self.line.set_data(xs, self.errors[: index + 1][visible])
        self.point.set_data([k] if error > 0 else [], [error] if error > 0 else [])

    def frame(self, index: int, panel: np.ndarray) -> np.ndarray:
        """Blit rank ``self.ranks[index]`` with ``panel`` (panel-sized, [0, 1]) pasted in.

        Returns (H, W, 3) uint8: one buffer, reused by the next call.
        """
        self._update(index)
        self.canvas.restore_region(self.background)
        for artist in self.moving:
            self.fig.draw_artist(artist)
        drawn = np.asarray(self.canvas.buffer_rgba())
        for rows, cols in (self.title_band, self._dirty_curve(index)):
            self.out[rows, cols] = drawn[rows, cols, :3]
        pixels = to_uint8(panel)
        self.out[self.rows, self.cols] = pixels[:, :, None] if pixels.ndim == 2 else pixels
        return self.out

    def full_frame(self, index: int, image: np.ndarray) -> np.ndarray:
        """Draw the whole figure from scratch with matplotlib's own imshow; for checks."""
        self._update(index)
        self.image.set_data(image)
        for artist in [self.image, *self.moving]:
            artist.set_animated(False)
        self.canvas.draw()
        for artist in [self.image, *self.moving]:
            artist.set_animated(True)
        return np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()

    def panels(self) -> Iterator[np.ndarray]:
        """The image panel of every rank, at panel resolution, updated incrementally."""
        left, _, right = self.display_factors()
        sums = RankAccumulator(left, [np.asfortranarray(r.T) for r in right])
        for k in self.ranks:
            acc = sums.advance(k)
            yield np.stack(acc, axis=-1) if self.svd.is_color else acc[0]


def _animation_setup(
    svd: ImageSVD,
    ranks: Sequence[int] | None,
    size: tuple[int, int] | None,
    layout: str,
    fps: float,
) -> tuple[list[int], tuple[int, int]]:
    if layout not in DEFAULT_FRAME_SIZE:
        raise ValueError(f"layout must be 'stacked' or 'side'; got {layout!r}.")
    if not fps > 0:
        raise ValueError(f"fps must be positive; got {fps}.")
    chosen = (
        default_animation_ranks(svd.max_rank)
        if ranks is None
        else check_ranks(ranks, svd.max_rank, shape=svd.shape)
    )
    width, height = DEFAULT_FRAME_SIZE[layout] if size is None else size
    if width < 64 or height < 64 or width > 8192 or height > 8192:
        raise ValueError(f"size must be between 64x64 and 8192x8192 pixels; got {width}x{height}.")
    # H.264 with yuv420p needs even sizes, or common players refuse the file.
    return chosen, (int(width) // 2 * 2, int(height) // 2 * 2)


def render_frame(
    svd: ImageSVD,
    rank: int,
    *,
    ranks: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
    layout: str = "stacked",
    caption: str | None = None,
) -> np.ndarray:
    """Render the animation frame of one rank from scratch, as (H, W, 3) uint8.

    The picture :func:`animate` writes for ``rank``, drawn independently: a
    fresh figure, ``svd.reconstruct(rank)`` at full resolution shown by
    matplotlib's ``imshow`` (which resizes it to the panel), no blitting. A
    reference for checking frames; it differs from them by the resampling
    filter only.
    """
    chosen, frame_size = _animation_setup(svd, ranks, size, layout, 1.0)
    if rank not in chosen:
        raise ValueError(f"rank {rank} is not in the animation's ranks.")
    figure = _AnimationFigure(svd, chosen, size=frame_size, layout=layout, caption=caption)
    return figure.full_frame(chosen.index(rank), svd.reconstruct(rank))


def animate(
    path: str | os.PathLike[str],
    svd: ImageSVD,
    *,
    ranks: Sequence[int] | None = None,
    fps: float = 8,
    size: tuple[int, int] | None = None,
    layout: str = "stacked",
    caption: str | None = None,
    force: bool = False,
    mp4_quality: float = 5,
    progress: Callable[[int, int], None] | None = None,
    quality: float | None = None,
) -> Path:
    """Write an MP4 or GIF of the image sharpening as the rank grows.

    Each frame shows the rank-k reconstruction titled "Rank k; relative error
    e" and the relative error so far against rank on a log axis, the current
    point marked (the layout of the seed notebook).

    A writer: the destination comes first, as in :func:`svdimage.io.save_image`
    (``animate(svd, path)``, the order before 0.2, still works until 0.3 with a
    ``DeprecationWarning``).

    Parameters
    ----------
    path : str or path
        ``.mp4`` (H.264, yuv420p, through imageio-ffmpeg's bundled ffmpeg) or
        ``.gif`` (Pillow, adaptive palette per frame, looping).
    svd : ImageSVD
        The decomposition (one SVD for all frames).
    ranks : sequence of int, optional
        Default: 1..70, then every 10th rank, up to the maximum or 250, whichever
        is smaller (:func:`default_animation_ranks`).
    fps : float, optional
        Frames per second (the seed used 8).
    size : (int, int), optional
        Frame width and height in pixels, rounded down to even numbers
        (default 500x800 stacked, 1000x500 side by side).
    layout : {'stacked', 'side'}, optional
        Image above the curve, or beside it.
    caption : str, optional
        Small text under the panels, drawn as written (``$`` is not mathtext).
    force : bool, optional
        Overwrite an existing file.
    mp4_quality : float, optional
        MP4 quality 0-10 (imageio-ffmpeg's scale); x264 runs its 'veryfast' preset.
        (``quality`` is the codec's 1-100 setting everywhere else; ``quality=`` here
        is the spelling before 0.2, with a ``DeprecationWarning`` until 0.3.)
    progress : callable, optional
        Called as ``progress(done, total)`` after each frame.

    Returns
    -------
    path : Path

    Notes
    -----
    The figure is drawn once; each frame redraws only the title and the
    curve, and the image panel is reconstructed incrementally at the panel's
    resolution from resized factors (resizing is linear), so a 12 MP photo
    animates as fast as a small one.
    MP4 frames are streamed to ffmpeg, so memory does not grow with the number
    of frames; a GIF keeps each palettized frame (one byte per pixel) until
    Pillow writes the file. The file appears under ``path`` only when complete.
    """
    path, svd = destination_first(path, svd, function="animate", names=("path", "svd"))
    if quality is not None:  # the old spelling: warns, and means the same
        mp4_quality = renamed_argument(
            None, quality, new="mp4_quality", old="quality", function="animate"
        )
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"output must end in .mp4 or .gif; got {str(path)!r}.")
    chosen, frame_size = _animation_setup(svd, ranks, size, layout, fps)
    figure = _AnimationFigure(svd, chosen, size=frame_size, layout=layout, caption=caption)
    frames = (figure.frame(i, panel) for i, panel in enumerate(figure.panels()))
    with (
        atomic_path(path, force=force) as tmp,
        _progress.task(f"writing {suffix[1:].upper()}", len(chosen), unit="frames") as step,
    ):

        def advance(done: int, total: int) -> None:
            step.advance()
            if progress is not None:
                progress(done, total)

        if suffix == ".mp4":
            _write_mp4(
                tmp,
                frames,
                frame_size,
                fps=fps,
                quality=mp4_quality,
                total=len(chosen),
                progress=advance,
            )
        else:
            _write_gif(tmp, frames, fps=fps, total=len(chosen), progress=advance)
    return path


def _write_mp4(
    path: Path,
    frames: Iterator[np.ndarray],
    size: tuple[int, int],
    *,
    fps: float,
    quality: float,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    import imageio_ffmpeg

    # x264's 'veryfast' preset encoded 2.5x faster than its default here at equal quality
    # setting, with files of similar size.
    writer = imageio_ffmpeg.write_frames(
        str(path),
        size,
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=quality,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-preset", "veryfast"],
    )
    writer.send(None)
    written = 0
    try:
        for written, frame in enumerate(frames, 1):
            writer.send(frame)
            if progress is not None:
                progress(written, total)
    finally:
        if written:
            writer.close()
        else:  # interrupted before the first frame: the temporary file is removed anyway
            quiet = logging.getLogger("imageio_ffmpeg")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                writer.close()
            finally:
                quiet.setLevel(level)


def _write_gif(
    path: Path,
    frames: Iterator[np.ndarray],
    *,
    fps: float,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    from PIL import Image

    palettized = []
    for done, frame in enumerate(frames, 1):
        palettized.append(
            Image.fromarray(frame).quantize(
                colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            )
        )
        if progress is not None:
            progress(done, total)
    # GIF counts time in centiseconds: spread the rounding so that the mean rate is exact
    # (8 fps alternates 120 and 130 ms frames).
    ticks = np.rint(np.arange(len(palettized) + 1) * 100.0 / fps).astype(int)
    durations = [10 * int(d) for d in np.maximum(np.diff(ticks), 1)]
    palettized[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=palettized[1:],
        duration=durations,
        loop=0,
        optimize=True,
    )

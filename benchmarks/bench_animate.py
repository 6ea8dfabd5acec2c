"""The seed notebook's animation method against ``svdimage.animation.animate``.

The seed (``shared/seeds/000_*``) builds a matplotlib ``FuncAnimation`` whose
update function rebuilds ``U[:, :k] @ diag(s[:k]) @ V[:k]`` from scratch,
takes ``norm(A - A_k) / norm(A)``, updates the image and the error curve, calls
``tight_layout`` and is saved with matplotlib's ffmpeg writer at 8 fps. Both
methods here render the same frames (ranks 1..70, every 10th, the maximum) of
the same photo at the same pixel size to MP4 with the same ffmpeg (the one
imageio-ffmpeg bundles), in one process; the SVD is computed once outside the
timings for both.

Run ``python benchmarks/bench_animate.py`` (camera 512x512, 500x800 frames),
``--dpi 300`` for the seed's own 1500x2400 frames, or ``--quick``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table
from svdimage import decompose, load_image
from svdimage.animation import animate, default_animation_ranks


def seed_animation(
    image: np.ndarray,
    U: np.ndarray,
    S: np.ndarray,
    V: np.ndarray,
    ranks: list[int],
    path: Path,
    *,
    dpi: int,
) -> None:
    """The seed notebook's method, with its gaps filled in as the notebook intends."""
    import imageio_ffmpeg
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.animation as animation
    import matplotlib.pyplot as plt

    plt.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    errors: list[float] = []
    shown: list[int] = []
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(5, 8))
    img_plot = ax1.imshow(image, cmap="gray", animated=True)
    (error_plot,) = ax2.plot([], [], "r-", animated=True)

    def update_plot(i: int) -> tuple:
        rank = ranks[i]
        reconstructed = U[:, :rank] @ np.diag(S[:rank]) @ V[:rank, :]
        relative_error = np.linalg.norm(image - reconstructed) / np.linalg.norm(image)
        errors.append(relative_error)
        shown.append(rank)
        img_plot.set_data(reconstructed)
        ax1.set_title(
            f"Image compression with SVD\n Rank {rank}; Relative error {relative_error:.2f}"
        )
        ax1.set_xticks([])
        ax1.set_yticks([])
        error_plot.set_data(shown, errors)
        ax2.set_xlim(1, len(S))
        ax2.grid(linestyle=":")
        ax2.set_ylim(1e-4, 0.5)
        ax2.set_ylabel("Relative Error")
        ax2.set_xlabel("Rank")
        ax2.set_title("Relative Error over Rank")
        ax2.semilogy()
        ax2.set_xticks(range(1, len(S) + 1, max(len(S) // 10, 1)))
        plt.tight_layout()
        return img_plot, error_plot

    ani = animation.FuncAnimation(fig, update_plot, frames=len(ranks), interval=50, blit=True)
    ani.save(str(path), writer="ffmpeg", fps=8, dpi=dpi)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small image, few frames (CI)")
    parser.add_argument(
        "--dpi",
        type=int,
        default=100,
        help="frame size = the seed's 5x8 inches at this dpi (seed: 300)",
    )
    args = parser.parse_args(argv)

    import skimage.data

    image = load_image(skimage.data.camera())
    if args.quick:
        image = np.ascontiguousarray(image[::8, ::8])
    svd = decompose(image, method="exact")
    ranks = default_animation_ranks(svd.max_rank)
    if args.quick:
        ranks = ranks[:12] + ranks[-1:]
    size = (5 * args.dpi, 8 * args.dpi)
    with tempfile.TemporaryDirectory() as folder:
        seed_path, our_path = Path(folder) / "seed.mp4", Path(folder) / "ours.mp4"
        start = time.perf_counter()
        seed_animation(image, svd.U, svd.s, svd.Vt, ranks, seed_path, dpi=args.dpi)
        seed_time = time.perf_counter() - start
        start = time.perf_counter()
        animate(our_path, svd, ranks=ranks, size=size, fps=8)
        our_time = time.perf_counter() - start
        seed_bytes, our_bytes = seed_path.stat().st_size, our_path.stat().st_size

    print(f"Machine: {machine()}")
    print(
        f"Image: skimage.data.camera {image.shape[1]}x{image.shape[0]}, {len(ranks)} frames "
        f"of {size[0]}x{size[1]} pixels, MP4 at 8 fps, one run each.\n"
    )
    print(f"Seed method / ours: {seed_time / our_time:.1f}x\n")
    print_table(
        ["method", "time s", "time / ours", "ms per frame", "file bytes"],
        [
            [
                "seed: FuncAnimation + ffmpeg writer, full rebuild per frame",
                f"{seed_time:.2f}",
                f"{seed_time / our_time:.1f}",
                f"{1e3 * seed_time / len(ranks):.1f}",
                f"{seed_bytes:,}",
            ],
            [
                "svdimage.animation.animate (ours)",
                f"{our_time:.2f}",
                "1.0",
                f"{1e3 * our_time / len(ranks):.1f}",
                f"{our_bytes:,}",
            ],
        ],
    )


if __name__ == "__main__":
    main()

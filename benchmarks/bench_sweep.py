"""A rank sweep as the seed notebook does it, against svdimage, in one process.

The seed (``shared/seeds/000_*``) visits ranks 1..70, then every 10th rank, and
for each one rebuilds ``U[:, :k] @ diag(s[:k]) @ Vt[:k]`` from scratch and
takes ``norm(A - A_k) / norm(A)``. svdimage adds the new rank-one terms to the
previous image (``ImageSVD.iter_reconstructions``) and reads the error off the
singular values (``ImageSVD.relative_error``). Both start from the same SVD,
which is not timed. Also timed: the error curve for every rank at once.

Run ``python benchmarks/bench_sweep.py`` (1024x1024) or ``--quick``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, photo, print_table
from svdimage import decompose
from svdimage.image_svd import ImageSVD


def seed_ranks(max_rank: int) -> list[int]:
    """The seed's schedule: 1..70, then every 10th rank below the maximum."""
    return list(range(1, min(70, max_rank) + 1)) + list(range(80, max_rank, 10))


def seed_sweep(
    A: np.ndarray, U: np.ndarray, s: np.ndarray, Vt: np.ndarray, ranks: list[int]
) -> list[float]:
    errors = []
    norm = np.linalg.norm(A)
    for k in ranks:
        approx = U[:, :k] @ np.diag(s[:k]) @ Vt[:k, :]
        errors.append(float(np.linalg.norm(A - approx) / norm))
    return errors


def our_sweep(svd: ImageSVD, ranks: list[int], *, copy: bool = True) -> list[float]:
    errors = []
    for k, _ in svd.iter_reconstructions(ranks, clip=False, copy=copy):
        errors.append(float(svd.relative_error(k)))
    return errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small image, for CI")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    side = 160 if args.quick else 1024
    repeats = args.repeats or (2 if args.quick else 5)

    A = np.ascontiguousarray(photo(side * side * 4 / 3 / 1e6)[:side, :side])
    svd = decompose(A, method="exact")
    U, s, Vt = svd.U, svd.s, svd.Vt
    ranks = seed_ranks(svd.max_rank)

    seed_time, seed_errors = median_time(lambda: seed_sweep(A, U, s, Vt, ranks), repeats=repeats)
    our_time, our_errors = median_time(lambda: our_sweep(svd, ranks), repeats=repeats)
    stream_time, _ = median_time(lambda: our_sweep(svd, ranks, copy=False), repeats=repeats)
    worst = max(abs(a - b) for a, b in zip(our_errors, seed_errors))

    def curve() -> np.ndarray:
        fresh = ImageSVD(
            svd._U, svd._s, svd._Vt, shape=svd.shape, norm_sq=svd._norm_sq, method=svd.method
        )
        return np.asarray(fresh.relative_error())

    curve_time, _ = median_time(curve, repeats=max(repeats, 20))

    print(f"Machine: {machine()}")
    print(
        f"Image: skimage.data.astronaut (gray) resized to {side}x{side}, float32; "
        f"{len(ranks)} ranks (1..70, then every 10th); median of {repeats} runs.\n"
    )
    print(
        f"Seed loop / ours: {seed_time / our_time:.1f}x with copies, "
        f"{seed_time / stream_time:.1f}x streaming.\n"
    )
    print_table(
        ["what", "time ms", "time / ours"],
        [
            [
                "seed loop: rebuild + norm per rank",
                f"{seed_time * 1e3:.1f}",
                f"{seed_time / our_time:.1f}",
            ],
            [
                "svdimage: incremental + errors from σ, a new array per rank (ours)",
                f"{our_time * 1e3:.1f}",
                "1.0",
            ],
            [
                "svdimage: the same, streaming (copy=False, as the seed drops each image)",
                f"{stream_time * 1e3:.1f}",
                f"{stream_time / our_time:.2f}",
            ],
            [f"svdimage: error curve, all {svd.max_rank} ranks", f"{curve_time * 1e3:.3f}", ""],
        ],
    )
    print(f"\nLargest difference between the two lists of relative errors: {worst:.2e}")


if __name__ == "__main__":
    main()

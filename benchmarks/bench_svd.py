"""Truncated SVD of big photos: svdimage against the tools a user would pick.

For a real photo (scikit-image's astronaut, gray) resized to 1, 4 and 12 MP
(float32), times in one process, median of >= 5 runs:

* ``svdimage.decompose(rank=k, method="randomized")`` (ours, the baseline of
  every ratio), and two variants: all BLAS threads for the small
  factorizations, and QR instead of LU between power iterations;
* ``sklearn.utils.extmath.randomized_svd`` (defaults);
* ``scipy.sparse.linalg.svds(solver="propack")``;
* ``torch.svd_lowrank(niter=4)`` when torch is installed;
* ``scipy.linalg.svd`` (gesdd, full; its time does not depend on k).

Errors are computed directly, ``||A - U diag(s) Vt||_F`` in float64, and
divided by the optimum from the full float64 SVD's singular values. The GEMM
share is (flops our algorithm performs) / time / (float32 GEMM rate of
``A @ X`` measured in this run).

Run ``python benchmarks/bench_svd.py`` (about 10 minutes on 2 cores) or
``--quick`` (tiny sizes, seconds; CI runs it so the script cannot rot).
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import frobenius_error, gemm_rate, machine, median_time, photo, print_table
from svdimage import decompose, randomized_svd
from svdimage.randomized import auto_sketch


def _methods(k: int) -> dict:
    methods = {
        "svdimage (ours)": lambda A: _factors(decompose(A, rank=k, method="randomized", rng=0)),
        "ours, LAPACK on all threads": lambda A: randomized_svd(A, k, rng=0, lapack_threads=None),
        "ours, QR normalizer": lambda A: randomized_svd(A, k, rng=0, normalizer="qr"),
    }
    try:
        from sklearn.utils.extmath import randomized_svd as sklearn_rsvd

        methods["sklearn randomized_svd"] = lambda A: sklearn_rsvd(A, k, random_state=0)
    except ImportError:  # pragma: no cover - optional in a bare environment
        pass
    methods["scipy svds propack"] = lambda A: scipy.sparse.linalg.svds(
        A, k=k, solver="propack", random_state=0
    )
    try:
        import torch

        p, _ = auto_sketch(k, "auto", "auto")

        def torch_lowrank(A: np.ndarray) -> tuple:
            U, s, V = torch.svd_lowrank(torch.from_numpy(A), q=k + p, niter=4)
            return U[:, :k].numpy(), s[:k].numpy(), V[:, :k].T.numpy()

        methods["torch svd_lowrank niter=4"] = torch_lowrank
    except ImportError:
        pass
    return methods


def _factors(svd: object) -> tuple:
    return svd.U, svd.s, svd.Vt  # type: ignore[attr-defined]


def _our_flops(shape: tuple[int, int], k: int) -> float:
    M, N = shape
    p, q = auto_sketch(k, "auto", "auto")
    width = min(k + p, min(shape))
    passes = 2 * q + 2
    return passes * 2.0 * M * N * width


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    sizes = [0.05, 0.1] if args.quick else [1.0, 4.0, 12.0]
    ranks = [5, 10] if args.quick else [10, 50, 100, 200]
    repeats = args.repeats or (2 if args.quick else 5)

    print(f"Machine: {machine()}")
    print(f"Image: skimage.data.astronaut (gray) resized, float32; median of {repeats} runs.\n")
    rows, summary = [], []
    for mp in sizes:
        A = photo(mp)
        M, N = A.shape
        label = f"{M}x{N}"
        s_opt = scipy.linalg.svd(A.astype(np.float64), compute_uv=False, check_finite=False)
        norm = float(np.sqrt(np.sum(s_opt**2)))
        full_time, (U, s, Vt) = median_time(
            lambda A=A: scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd"),
            repeats=min(repeats, 3),
        )
        tracemalloc.start()
        decompose(A, rank=max(ranks), method="randomized", rng=0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        for k in ranks:
            optimum = np.sqrt(np.sum(s_opt[k:] ** 2))
            results = {}
            for name, method in _methods(k).items():
                seconds, factors = median_time(
                    lambda m=method, A=A: m(A), repeats=repeats, max_seconds=30.0
                )
                results[name] = (seconds, frobenius_error(A, *factors) / optimum)
            results["scipy.linalg.svd gesdd (full)"] = (
                full_time,
                frobenius_error(A, U[:, :k], s[:k], Vt[:k]) / optimum,
            )
            ours = results["svdimage (ours)"][0]
            rate = gemm_rate(
                A, min(k + auto_sketch(k, "auto", "auto")[0], min(A.shape)), repeats=repeats
            )
            share = _our_flops(A.shape, k) / ours / rate
            for name, (seconds, ratio) in results.items():
                rows.append(
                    [
                        label,
                        k,
                        name,
                        f"{seconds * 1e3:.1f}",
                        f"{seconds / ours:.2f}",
                        f"{ratio:.4f}",
                        f"{share:.0%}" if name == "svdimage (ours)" else "",
                    ]
                )
            summary.append([label, k, f"{optimum / norm:.4f}", f"{rate / 1e9:.0f}", f"{share:.0%}"])
        rows.append(
            [
                label,
                "-",
                "peak memory of ours above the image",
                f"{peak / 2**20:.1f} MiB",
                f"{peak / A.nbytes:.2f}x image",
                "",
                "",
            ]
        )

    print_table(
        ["image", "k", "method", "time ms", "time / ours", "error / optimal", "GEMM share"], rows
    )
    print()
    print_table(
        ["image", "k", "optimal rel. error", "f32 GEMM GFLOP/s", "ours: share of GEMM bound"],
        summary,
    )


if __name__ == "__main__":
    main()

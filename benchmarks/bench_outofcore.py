"""Out of core: the truncated SVD of a tiled TIFF in passes over its tiles, against the
in-memory path and Dask's ``svd_compressed``.

A deterministic gray photo (scikit-image's ``camera``, upscaled, with shot and read noise)
is written as a tiled, zlib-compressed BigTIFF (256-pixel tiles). Each case runs in its
own process, so that its peak memory (the process's VmHWM, its maximum resident set) is its
own:

* **in memory** (baseline): ``tifffile.imread`` into float32, then
  ``decompose(image, rank=k, method="randomized")``;
* **out of core**: ``open_image`` (a Dask array over the tiles) and
  ``decompose(lazy, rank=k)``: ``2 n_iter + 2`` passes over the file;
* **dask svd_compressed**: ``dask.array.linalg.svd_compressed`` at the same rank with the
  same number of power iterations (so the same passes), on the same lazy array.

Accuracy: the top ``k`` singular values against LAPACK's (``gesdd``, values only, on the
in-memory image), as the largest relative error over the first ``k/2`` and over all ``k``.
Times are ratios against the in-memory path, timed on the same file in the same run.

    python benchmarks/bench_outofcore.py                 # 12 MP, rank 100: about 2 minutes
    python benchmarks/bench_outofcore.py --megapixels 100
    python benchmarks/bench_outofcore.py --quick         # 0.5 MP, rank 20: seconds
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table


def make_tiff(path: Path, megapixels: float, seed: int = 7) -> tuple[int, int]:
    import skimage.data
    import skimage.transform
    import tifffile

    rows = int(round(np.sqrt(megapixels * 1e6 * 3 / 4)))
    cols = int(round(rows * 4 / 3))
    base = skimage.data.camera().astype(np.float32) / 255.0
    big = skimage.transform.resize(base, (rows, cols), order=1).astype(np.float32)
    rng = np.random.default_rng(seed)
    noisy = rng.poisson(np.clip(big, 0, 1) * 2000.0) / 2000.0 + rng.normal(0, 0.004, big.shape)
    pixels = np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    tifffile.imwrite(path, pixels, tile=(256, 256), compression="zlib", bigtiff=True)
    return rows, cols


def run_case(case: str, path: str, rank: int, n_iter: int) -> dict[str, object]:
    """One case, in this process: seconds, singular values, peak resident set."""
    import svdimage

    start = time.perf_counter()
    if case == "in memory":
        import tifffile

        image = tifffile.imread(path).astype(np.float32) / np.float32(255)
        svd = svdimage.decompose(image, rank=rank, method="randomized", n_iter=n_iter, rng=0)
        s = svd.s
    elif case == "out of core":
        svd = svdimage.decompose(svdimage.open_image(path), rank=rank, n_iter=n_iter, rng=0)
        s = svd.s
    else:
        import dask.array as da

        lazy = svdimage.open_image(path).astype(np.float32) / np.float32(255)
        _, s, _ = da.linalg.svd_compressed(lazy, k=rank, n_power_iter=n_iter, seed=0)
        s = s.compute()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "sigma": [float(v) for v in np.ravel(s)], "peak": _peak()}


def _peak() -> int:
    """This process's peak resident set: VmHWM (Linux; ru_maxrss would carry the parent's
    peak across exec), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--rank", type=int, default=100)
    parser.add_argument("--n-iter", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="0.5 MP, rank 20 (keeps it running)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child process: one case, its numbers as JSON
        print(json.dumps(run_case(args.case, args.path, args.rank, args.n_iter)))
        return
    if args.quick:
        args.megapixels, args.rank = 0.5, 20

    import scipy.linalg
    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.tif"
        rows, cols = make_tiff(path, args.megapixels)
        size = path.stat().st_size
        pixels = tifffile.imread(path).astype(np.float32) / np.float32(255)
        exact = scipy.linalg.svd(pixels, compute_uv=False, lapack_driver="gesdd")[: args.rank]
        image_bytes = pixels.nbytes
        del pixels
        results = {}
        for case in ("in memory", "out of core", "dask svd_compressed"):
            command = [sys.executable, __file__, "--case", case, "--path", str(path)]
            command += ["--rank", str(args.rank), "--n-iter", str(args.n_iter)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[case] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["in memory"]
    half = args.rank // 2
    rows_out = []
    for case, r in results.items():
        sigma = np.asarray(r["sigma"])
        error = np.abs(sigma - exact) / exact
        rows_out.append(
            [
                case + (" (baseline)" if case == "in memory" else ""),
                f"{r['seconds']:.1f} s ({r['seconds'] / base['seconds']:.2f}x)",
                f"{r['peak'] / 2**20:,.0f} MiB ({r['peak'] / base['peak']:.2f}x)",
                f"{error[:half].max():.1e}",
                f"{error.max():.1e}",
            ]
        )
    print(
        f"{cols}x{rows} gray ({rows * cols / 1e6:.1f} MP, float32 {image_bytes / 2**20:,.0f} MiB), "
        f"tiled BigTIFF of {size / 2**20:,.0f} MiB; rank {args.rank}, {args.n_iter} power "
        f"iterations ({2 * args.n_iter + 2} passes); {machine()}"
    )
    headers = ["case", "time (÷ in memory)", "peak memory (÷ in memory)",
               f"σ error, top {half}", f"σ error, top {args.rank}"]  # fmt: skip
    print_table(headers, rows_out)


if __name__ == "__main__":
    main()

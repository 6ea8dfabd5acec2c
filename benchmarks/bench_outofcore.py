"""Out of core: the rank-k SVD of gigapixel images in passes over their tiles, against the
in-memory path and Dask's ``svd_compressed``.

Test images, deterministic: a bundled photo (scikit-image's ``camera`` for gray,
``astronaut`` for colour) upscaled 4x (bilinear), mirrored to fill the size, with shot and read
noise (a seeded generator per band), 8-bit; written band by band (never whole in memory) as a
tiled BigTIFF (zlib, 256-pixel tiles) and a Zarr array (Zarr's default zstd, 1024-pixel chunks).

Cases, each in its own process, so that its peak memory (the process's VmHWM) is its own:

* **in memory** (baseline): ``tifffile.imread``, float32 in [0, 1], then
  ``decompose(image, rank=k, method="randomized")`` (only where 3x the float32 image fits);
* **out of core**: ``open_image``, ``keep_leading`` and ``decompose(lazy, rank=k)`` under the
  command line's default memory plan (2 GiB: ``memory_plan``) on the threads of the process,
  one or two (``workers``);
* **dask svd_compressed**: ``dask.array.linalg.svd_compressed`` at the same rank and number of
  power iterations (the same passes) on the same lazy array, in float32.

Accuracy: the top k/2 and k singular values against a reference: LAPACK's values-only
``gesdd`` where the image is small (``--quick``), else the in-memory randomized SVD with 6
power iterations (``reference``), which agrees with LAPACK to 1e-7 on the top half at 12 MP.
Times and memory are ratios against the in-memory path that read the same file, in the same
run; ``--limits`` adds out-of-core cases at other memory limits (MiB).

    python benchmarks/bench_outofcore.py           # 1 GP gray, 1 GP colour, 4 GP gray: ~30 min
    python benchmarks/bench_outofcore.py --quick   # 12 MP gray, LAPACK reference: ~1 min
    python benchmarks/bench_outofcore.py --sizes 1000g --formats tif
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table

BAND = 4096  # rows generated and written at a time


def _base(color: bool) -> np.ndarray:
    import skimage.data

    from svdimage import load_image

    photo = skimage.data.astronaut() if color else skimage.data.camera()
    return load_image(photo, mode="rgb" if color else "gray").astype(np.float32)


def _band(base: np.ndarray, top: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """Rows ``top:top+rows`` of the test image: ``base`` upscaled 4x, mirrored, noisy."""
    from scipy.ndimage import map_coordinates

    h, w = base.shape[:2]
    period_r, period_c = 2 * 4 * h, 2 * 4 * w

    def coords(index: np.ndarray, period: int, size: int) -> np.ndarray:
        folded = index % period
        folded = np.where(folded >= period // 2, period - 1 - folded, folded)
        return np.clip((folded + 0.5) / 4 - 0.5, 0, size - 1)

    r = coords(np.arange(top, top + rows), period_r, h)
    c = coords(np.arange(cols), period_c, w)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    planes = [base] if base.ndim == 2 else [base[..., i] for i in range(base.shape[2])]
    out = np.stack([map_coordinates(p, [rr, cc], order=1) for p in planes], axis=-1)
    rng = np.random.default_rng([seed, top])
    noisy = rng.poisson(np.clip(out, 0, 1) * 2000.0) / 2000.0 + rng.normal(0, 0.004, out.shape)
    pixels = np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    return pixels[..., 0] if base.ndim == 2 else pixels


def make_images(folder: Path, megapixels: float, color: bool, formats: list[str]) -> dict:
    """Write the test image in each format, band by band; return {format: path} and shape."""
    import tifffile
    import zarr

    rows = int(round(np.sqrt(megapixels * 1e6 * 3 / 4)) // 256 * 256)
    cols = int(round(rows * 4 / 3) // 256 * 256)
    base = _base(color)
    shape = (rows, cols, 3) if color else (rows, cols)
    name = f"{megapixels:g}mp-{'rgb' if color else 'gray'}"
    paths = {}
    tif = folder / f"{name}.tif"
    store = folder / f"{name}.zarr"
    target = None
    if "zarr" in formats:
        chunks = (1024, 1024) + shape[2:]
        target = zarr.open_array(store, mode="w", shape=shape, chunks=chunks, dtype="uint8")
        paths["zarr"] = store

    def tiles():
        for top in range(0, rows, BAND):
            band = _band(base, top, min(BAND, rows - top), cols, seed=7)
            if target is not None:
                target[top : top + band.shape[0]] = band
            for r in range(0, band.shape[0], 256):
                for c in range(0, cols, 256):
                    yield np.ascontiguousarray(band[r : r + 256, c : c + 256])

    if "tif" in formats:
        photometric = "rgb" if color else "minisblack"
        tifffile.imwrite(tif, tiles(), shape=shape, dtype="uint8", tile=(256, 256),
                         compression="zlib", bigtiff=True, photometric=photometric)  # fmt: skip
        paths["tif"] = tif
    else:
        for _ in tiles():
            pass
    return {"paths": paths, "shape": shape}


def run_case(
    case: str, path: str, rank: int, n_iter: int, workers: int, memory_limit: int = 2 * 2**30
) -> dict[str, object]:
    """One case, in this process: seconds, singular values, peak resident set."""
    import dask

    import svdimage
    from svdimage.chunked_io import keep_leading, memory_plan, running_on

    dask.config.set(scheduler="threads", num_workers=workers)
    start = time.perf_counter()
    if case in ("in memory", "reference"):
        import tifffile

        pixels = tifffile.imread(path) if path.endswith(".tif") else _read_zarr(path)
        image = pixels.astype(np.float32)
        del pixels
        image *= np.float32(1 / 255)
        q = 6 if case == "reference" else n_iter
        svd = svdimage.decompose(image, rank=rank, method="randomized", n_iter=q, rng=0)
        s = svd.s
    elif case == "out of core":
        chunk_bytes, keep_bytes = memory_plan(memory_limit, workers=workers)
        lazy = svdimage.open_image(path, chunk_bytes=chunk_bytes)
        with running_on():
            dask.config.set(num_workers=workers)
            lazy = keep_leading(lazy, keep_bytes)
            svd = svdimage.decompose(lazy, rank=rank, n_iter=n_iter, rng=0)
        s = svd.s
    else:
        import dask.array as da

        chunk_bytes, _ = memory_plan(workers=workers)
        lazy = svdimage.open_image(path, chunk_bytes=chunk_bytes)
        lazy = lazy.astype(np.float32) / np.float32(255)
        planes = [lazy] if lazy.ndim == 2 else [lazy[..., c] for c in range(3)]
        s = [da.linalg.svd_compressed(p, k=rank, n_power_iter=n_iter, seed=0)[1].compute()
             for p in planes]  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "sigma": np.asarray(s).tolist(), "peak": _peak()}


def _read_zarr(path: str) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(path, mode="r")[:])


def _peak() -> int:
    """This process's peak resident set: VmHWM (Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(
    case: str, path: Path, args: argparse.Namespace, workers: int, limit: int = 2 * 2**30
) -> dict:
    command = [sys.executable, __file__, "--case", case, "--path", str(path), "--rank",
               str(args.rank), "--n-iter", str(args.n_iter), "--workers", str(workers),
               "--memory-limit", str(limit)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["died"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available() -> int:
    from svdimage._validation import available_memory

    return available_memory() or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000g,1000c,4000g",
                        help="megapixels and g(ray)/c(olour), comma-separated")  # fmt: skip
    parser.add_argument("--formats", default="tif,zarr")
    parser.add_argument("--rank", type=int, default=100)
    parser.add_argument("--n-iter", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="12 MP gray, tif, LAPACK reference")
    parser.add_argument("--folder", help="where to write the test images (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the test images in --folder")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", type=int, default=2 * 2**30, help=argparse.SUPPRESS)
    parser.add_argument(
        "--limits", default="2048", help="out-of-core memory limits (MiB), comma-separated"
    )
    args = parser.parse_args()
    if args.case:  # a child process: one case, its numbers as JSON
        result = run_case(
            args.case, args.path, args.rank, args.n_iter, args.workers, args.memory_limit
        )
        print(json.dumps(result))
        return
    if args.quick:
        args.sizes, args.formats = "12g", "tif"
    if args.keep and not args.folder:
        parser.error("--keep needs --folder")
    formats = args.formats.split(",")
    print(f"rank {args.rank}, {args.n_iter} power iterations ({2 * args.n_iter + 2} passes); "
          f"{machine()}")  # fmt: skip
    with contextlib.ExitStack() as stack:
        tmp = (
            args.folder
            if args.keep
            else stack.enter_context(tempfile.TemporaryDirectory(dir=args.folder))
        )
        for item in args.sizes.split(","):
            megapixels, color = float(item[:-1]), item[-1] == "c"
            started = time.perf_counter()
            made = make_images(Path(tmp), megapixels, color, formats)
            shape = made["shape"]
            float_bytes = 4 * int(np.prod(shape))
            fits = 3.5 * float_bytes < _available()
            first = next(iter(made["paths"].values()))
            if megapixels <= 50:
                import scipy.linalg
                import tifffile

                planes = tifffile.imread(first).astype(np.float32) / np.float32(255)
                planes = [planes] if planes.ndim == 2 else [planes[..., c] for c in range(3)]
                exact = np.array([scipy.linalg.svd(p, compute_uv=False)[: args.rank]
                                  for p in planes])  # fmt: skip
                reference = "LAPACK gesdd"
            elif fits:
                exact = np.atleast_2d(_child("reference", first, args, 2)["sigma"])
                reference = "in-memory randomized SVD, 6 power iterations"
            else:
                exact, reference = None, "none (does not fit in memory)"
            limits = [int(mib) * 2**20 for mib in args.limits.split(",")]
            cases: list[tuple[str, Path, int, int]] = []
            for fmt, path in made["paths"].items():
                if fits:
                    cases.append(("in memory", path, 2, 0))
                for limit in limits:
                    cases.append(("out of core", path, 2, limit))
                    if megapixels > 2000 and fmt == "tif":
                        cases.append(("out of core", path, 1, limit))
            cases.append(("dask svd_compressed", first, 2, 0))
            results = [(case, path, workers, limit, _child(case, path, args, workers, limit))
                       for case, path, workers, limit in cases]  # fmt: skip
            # Each file's cases against the in-memory path that read the same file.
            bases = {path: r for case, path, _, _, r in results
                     if case == "in memory" and "error" not in r}  # fmt: skip
            rows_out = []
            for case, path, workers, limit, r in results:
                where = f"{Path(path).suffix}, {workers}"
                memory = f"{limit / 2**30:g} GiB" if limit else "-"
                if "error" in r:
                    rows_out.append([case, where, memory, r["error"], "", "", ""])
                    continue
                base = bases.get(path)
                ratio = f" ({r['seconds'] / base['seconds']:.2f}x)" if base else ""
                mem = f" ({r['peak'] / base['peak']:.2f}x)" if base else ""
                if exact is not None:
                    sigma = np.atleast_2d(r["sigma"])
                    error = np.abs(sigma - exact) / exact
                    half, full = f"{error[:, : args.rank // 2].max():.1e}", f"{error.max():.1e}"
                else:
                    half = full = "-"
                label = case + (" (baseline)" if base is r else "")
                rows_out.append([label, where, memory, f"{r['seconds']:.1f} s{ratio}",
                                 f"{r['peak'] / 2**20:,.0f} MiB{mem}", half, full])  # fmt: skip
            sizes = ", ".join(
                f"{fmt} {_size(p) / 2**20:,.0f} MiB" for fmt, p in made["paths"].items()
            )
            print(f"\n{shape[1]}x{shape[0]} {'colour' if color else 'gray'} "
                  f"({shape[0] * shape[1] / 1e6:,.0f} MP; float32 {float_bytes / 2**30:.1f} GiB; "
                  f"{sizes}); σ reference: {reference}; made in "
                  f"{time.perf_counter() - started:.0f} s in all")  # fmt: skip
            headers = ["case", "file, threads", "memory limit", "time (÷ in memory)",
                       "peak memory (÷ in memory)", f"σ error, top {args.rank // 2}",
                       f"σ error, top {args.rank}"]  # fmt: skip
            print_table(headers, rows_out)
            sys.stdout.flush()
            if not args.keep:
                for p in made["paths"].values():
                    _remove(p)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path) if path.is_dir() else os.remove(path)


if __name__ == "__main__":
    main()

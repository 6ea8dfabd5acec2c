"""Batch survey throughput: one process, a local Dask cluster, and a running scheduler.

200 generated photos (crops and rescalings of scikit-image's bundled photos,
0.3-3 MP log-uniform, gray and colour, saved as JPEG or PNG, with mild
sensor-like noise) are surveyed with the default rates and targets, three
ways in one run:

* serially in this process (``workers=0``): the baseline;
* a local cluster of 2 worker processes (``workers=2``), cluster start-up
  included;
* ``dask scheduler`` and two ``dask worker --nthreads 1`` processes started
  here, reached by address (``scheduler=...``), as on a real cluster.

Prints images per second and the ratio to the serial rate, and checks that
the three CSVs hold the same numbers (every column but the timings). Writes
the table to ``benchmarks/results/batch.md``. ``--quick``: 6 small images.

    python benchmarks/bench_batch.py [--quick] [--images N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from _common import machine, print_table

RESULTS = Path(__file__).resolve().parent / "results" / "batch.md"
SAMPLES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "cat")


def make_dataset(folder: Path, count: int, *, low: float, high: float) -> float:
    """``count`` deterministic photos in ``folder``; returns their megapixels in all."""
    import skimage.data
    import skimage.transform
    from PIL import Image

    rng = np.random.default_rng(2026)
    total = 0.0
    for index in range(count):
        base = getattr(skimage.data, SAMPLES[index % len(SAMPLES)])().astype(np.float32) / 255
        rows, cols = base.shape[:2]
        top, left = rng.integers(0, rows // 4), rng.integers(0, cols // 4)
        crop = base[top : top + rows * 3 // 4, left : left + cols * 3 // 4]
        megapixels = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        scale = np.sqrt(megapixels * 1e6 / (crop.shape[0] * crop.shape[1]))
        shape = (max(8, round(crop.shape[0] * scale)), max(8, round(crop.shape[1] * scale)))
        image = skimage.transform.resize(crop, shape, order=1, anti_aliasing=scale < 1)
        if image.ndim == 3 and index % 3 == 0:
            image = image @ np.array([0.2126, 0.7152, 0.0722])  # a third of the colour ones gray
        image = image + rng.normal(0, 0.01, image.shape)  # sensor-like noise
        pixels = Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8))
        if index % 2:
            pixels.save(folder / f"photo{index:04d}.jpg", quality=90)
        else:
            pixels.save(folder / f"photo{index:04d}.png")
        total += shape[0] * shape[1] / 1e6
    return total


@contextlib.contextmanager
def scheduler_with_workers(workers: int, folder: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` processes, found through a scheduler file."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    file = folder / "scheduler.json"
    # As docs/batch.md advises for any cluster: no MALLOC_TRIM_THRESHOLD_ in the workers.
    config = folder / "dask-config"
    config.mkdir(exist_ok=True)
    (config / "svdimage.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n"
    )
    env = {**os.environ, "DASK_CONFIG": str(config)}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)  # a nanny started in our parent may have set it
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--scheduler-file", str(file), "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard"],
            **quiet,
        )
    ]  # fmt: skip
    try:
        while not file.exists():
            time.sleep(0.1)
        processes += [
            subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(file), "--nthreads", "1",
                 "--no-dashboard"],
                **quiet,
            )
            for _ in range(workers)
        ]  # fmt: skip
        with Client(scheduler_file=str(file), timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
            address = client.scheduler.address
            trims = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
            assert set(trims.values()) == {None}, trims
        yield address
    finally:
        for process in processes[::-1]:
            process.terminate()
            process.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 small images (CI)")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    from svdimage import batch

    count, low, high = (6, 0.02, 0.06) if args.quick else (args.images, 0.3, 3.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "photos"
        data.mkdir()
        megapixels = make_dataset(data, count, low=low, high=high)
        print(f"{count} photos, {megapixels:.1f} MP in all ({low:g}-{high:g} MP each)")
        print(machine())
        runs = {}
        for name, engine in (
            ("serial, this process (baseline)", {"workers": 0}),
            ("local cluster, 2 workers", {"workers": 2}),
            ("scheduler + 2 dask workers", None),
        ):
            start = time.perf_counter()
            if engine is None:
                with scheduler_with_workers(2, root) as address:
                    start = time.perf_counter()  # the cluster was already running
                    frame = batch.survey(data, None, scheduler=address)
            else:
                frame = batch.survey(data, None, **engine)
            runs[name] = (time.perf_counter() - start, frame)
            print(f"{name}: {runs[name][0]:.1f} s", flush=True)
    baseline = next(iter(runs.values()))
    timing = [c for c in baseline[1].columns if c.endswith("seconds")]
    reference = baseline[1].drop(columns=timing)
    rows = []
    for name, (seconds, frame) in runs.items():
        same = frame.drop(columns=timing).equals(reference)
        failed = int((frame["error"] != "").sum())
        rows.append(
            (
                name,
                f"{count}",
                f"{failed}",
                f"{seconds:.1f}",
                f"{count / seconds:.3f}",
                f"{baseline[0] / seconds:.2f}",
                "yes" if same else "NO",
            )
        )
    headers = ["run", "images", "failed", "seconds", "images/s", "× serial", "same numbers"]
    print_table(headers, rows)
    if not args.quick:
        lines = [
            f"{count} photos, {megapixels:.1f} MP in all ({low:g}-{high:g} MP each), default "
            f"survey (4 rates, 4 targets); {machine()}.",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---:" for _ in headers) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

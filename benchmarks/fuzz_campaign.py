"""Fuzz campaigns: 20,000 hostile .svdz files and 10,000 hostile images, counted.

The cases are those of the tests' fuzz targets (``tests/fuzz_cases.py``), drawn from a fixed
seed, each case from its own generator (``default_rng([seed, target, index])``), so that any
case can be rebuilt from its number:

* ``.svdz``: mutations of files of every version and mode, tiled ones included (bit flips,
  deletions, insertions, JSON punctuation; in the header or the payload with checksums
  recomputed, or anywhere), a seed's payload under a header declaring a larger image, and
  format-2 files declaring
  images of up to 2000x2000 (gray or colour, patches of 4, 8 or 16, any number of
  components) with empty, padded or cut segments. Each goes through ``decode`` and
  ``inspect`` (pixel cap 4 MP).
* images: PNG, JPEG, TIFF, BMP, GIF and WebP files of a photo crop, truncated anywhere,
  with their header's dimensions edited (up to 2^31), both, or mutated, through
  ``load_image`` (pixel cap 1 MP).

A case fails when it raises anything but the expected error (``FormatError``; ``ValueError``
for images; ``MemoryError`` is a failure), takes more than 10 s (a hang), or peaks over its
memory bound (3x the declared float32 output + 64 MiB for .svdz files; 64 MiB + 64 bytes per
allowed pixel for images), measured as the growth of the process's resident set (Linux
VmHWM, reset before each case: C allocations count). Nothing here is timed against a
baseline: this is not a speed benchmark, only a count.

    python benchmarks/fuzz_campaign.py            # ~10 min on 2 cores; writes results/fuzz.md
    python benchmarks/fuzz_campaign.py --quick    # 200 + 100 cases, seconds
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().parent / "results" / "fuzz.md"


def _svdz_seeds() -> list[bytes]:
    import skimage.data

    from svdimage.codec import encode

    gray = skimage.data.camera()[200:264, 200:280] / 255
    colour = skimage.data.astronaut()[100:148, 200:264] / 255
    return [
        encode(gray, quality=80, version=1),
        encode(gray, quality=60, tile=None, version=1),
        encode(colour, quality=70, version=1),
        encode(colour, quality=50, tile=None, chroma="444", version=1),
        encode(gray, quality=80),
        encode(colour, quality=70),
        encode(colour, quality=90, tile=4, chroma="444"),
        encode(gray, quality=80, tile=None),
        encode(colour, quality=80, tile=None),
        encode(colour, quality=70, tile=None, color="rgb"),
        encode(colour, quality=15),
        *(
            (ROOT / "tests" / "data" / "svdz" / f"color-tiled-v{version}.svdz").read_bytes()
            for version in ("2.1", "2.4")  # tiled: 2x2 tiles of 256 pixels, partial edges
        ),
    ]


_SEEDS: dict[str, object] = {}


def _run(job: tuple[str, int, int, int]) -> list[tuple[int, str, str | None, float, int, int]]:
    """Cases ``first .. first + count - 1`` of ``target``: (index, kind, problem, seconds,
    peak, bound) of each."""
    from tests import fuzz_cases

    target, seed, first, count = job
    if target not in _SEEDS:
        _SEEDS[target] = _svdz_seeds() if target == "svdz" else fuzz_cases.image_seeds()
    seeds = _SEEDS[target]
    out = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, 0 if target == "svdz" else 1, index])
        if target == "svdz":
            outcome = fuzz_cases.check_svdz(fuzz_cases.svdz_case(seeds, rng))
        else:
            outcome = fuzz_cases.check_image(fuzz_cases.image_case(seeds, rng))
        out.append(
            (index, outcome.kind, outcome.problem, outcome.seconds, outcome.peak, outcome.bound)
        )
    return out


def campaign(target: str, cases: int, *, seed: int, workers: int) -> dict[str, object]:
    chunk = 50
    jobs = [(target, seed, first, min(chunk, cases - first)) for first in range(0, cases, chunk)]
    start = time.perf_counter()
    # A fresh process per 40 chunks: a leak or a fragmented heap cannot pile up over a run.
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=40) as pool:
        rows = [row for part in pool.imap_unordered(_run, jobs) for row in part]
    seconds = time.perf_counter() - start
    kinds = collections.Counter(kind for _, kind, _, _, _, _ in rows)
    problems = sorted((index, problem) for index, _, problem, _, _, _ in rows if problem)
    ratios = [peak / bound for _, _, _, _, peak, bound in rows if bound]
    return {
        "target": target,
        "cases": len(rows),
        "decoded": kinds["ok"],
        "refused": kinds["refused"],
        "wrong": sum(p.startswith("wrong exception") for _, p in problems),
        "hangs": sum(p.startswith("hang") for _, p in problems),
        "over": sum(p.startswith("peak") for _, p in problems),
        "bad": sum(p.startswith("decode") or "image" in p for _, p in problems),
        "worst": max(ratios, default=0.0),
        "slowest": max((s for _, _, _, s, _, _ in rows), default=0.0),
        "seconds": seconds,
        "problems": problems[:20],
    }


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| target | cases | decoded | refused | wrong exception types | hangs (> 10 s) "
        "| over the memory bound | other | largest peak ÷ bound | slowest case s | run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {r['cases']:,} | {r['decoded']:,} | {r['refused']:,} "
            f"| {r['wrong']} | {r['hangs']} | {r['over']} | {r['bad']} | {r['worst']:.2f} "
            f"| {r['slowest']:.2f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="200 .svdz and 100 image cases")
    parser.add_argument("--svdz", type=int, default=20_000, help="cases of .svdz files")
    parser.add_argument("--images", type=int, default=10_000, help="cases of images")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.quick:
        args.svdz, args.images, args.no_write = 200, 100, True
    results = [
        campaign("svdz", args.svdz, seed=args.seed, workers=args.workers),
        campaign("image", args.images, seed=args.seed, workers=args.workers),
    ]
    text = table(results)
    print(text)
    for r in results:
        for index, problem in r["problems"]:  # type: ignore[attr-defined]
            print(f"{r['target']} case {index}: {problem}")
    if not args.no_write:
        RESULTS.write_text(
            "# Fuzz campaigns (`python benchmarks/fuzz_campaign.py`)\n\n"
            f"Seed {args.seed}, {args.workers} worker processes; cases as described in the "
            "script's docstring.\n\n" + text + "\n",
            encoding="utf-8",
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

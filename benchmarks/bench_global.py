"""The global SVD's file: format 3.0 (range-coded) against format 1.1 (LZMA over varints).

The same quantized factors are written both ways (``codec.encode(image, rank=k,
tile=None)`` and the same with ``version=2``, which writes 1.1), so the files
decode to the same image and differ only in their coder. Reported per photo
and rank: bytes of each, their ratio, and the seconds to code and to decode
each, as ratios against format 1.1 timed in the same process (the baseline).

Photos: the 12 MP benchmark photo of ``bench_commands.py`` (``chelsea``
upscaled with noise: a tuning photo, on which the coder's two constants, the
scale classes per octave and the table precision, were chosen) and the
evaluation photos of ``bench_rd.py``, which no constant was chosen on.

Run ``python benchmarks/bench_global.py`` (about 3 minutes) or ``--quick``.
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
from bench_commands import make_photo
from bench_rd import EVALUATION
from bench_rd import load as load_photo
from svdimage import codec, load_image

RANKS = (10, 50, 200)


def _timed(call, *args, **kwargs):
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - start, result


def measure(name: str, image: np.ndarray, ranks: tuple[int, ...]) -> list[list[str]]:
    rows = []
    for k in ranks:
        if k > min(image.shape[:2]):
            continue
        t_new, new = _timed(codec.encode, image, rank=k, tile=None)
        t_old, old = _timed(codec.encode, image, rank=k, tile=None, version=2)
        d_new, _ = _timed(codec.decode, new, max_pixels=None)
        d_old, _ = _timed(codec.decode, old, max_pixels=None)
        rows.append(
            [
                name,
                str(k),
                f"{len(old):,}",
                f"{len(new):,}",
                f"{len(new) / len(old):.3f}",
                f"{t_new:.2f} / {t_old:.2f}",
                f"{d_new:.2f} / {d_old:.2f}",
                f"{d_new / d_old:.2f}",
            ]
        )
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small photos, one rank (CI)")
    options = parser.parse_args(argv)
    rows = []
    if options.quick:
        rows += measure("coins", load_photo("coins"), (10,))
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "photo.jpg"
            make_photo(path, width=4000, height=3000)
            rows += measure("12 MP photo (tuning)", load_image(path), (50, 200, 600))
        for name in EVALUATION:
            rows += measure(name, load_photo(name), RANKS)
    headers = [
        "photo",
        "rank",
        "1.1 bytes",
        "3.0 bytes",
        "3.0 ÷ 1.1",
        "encode s: 3.0 / 1.1",
        "decode s: 3.0 / 1.1",
        "decode ÷ 1.1",
    ]
    print(f"Machine: {machine()}")
    print_table(headers, rows)
    ratios = [float(row[4]) for row in rows if not row[0].startswith("12 MP")]
    if ratios:
        print(
            f"evaluation photos: 3.0 ÷ 1.1 bytes median {np.median(ratios):.3f}, "
            f"range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} files"
        )


if __name__ == "__main__":
    main()

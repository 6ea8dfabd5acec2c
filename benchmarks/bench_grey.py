"""Do neutral greys stay neutral? The mean chroma error of grey areas, .svdz against WebP.

A *grey area* is a 16x16 block of the original whose mean R - G and G - B are within
3 levels of 0 and whose mean |R - G| and |G - B| are within 5 (neutral, not a mix of
colours). On those pixels, the *cast* of a decoded image is the larger of the mean
errors of G - R and of G - B, in levels of 255 (the issue's measure: a grey at 0.5 bpp
whose G - R came out +3.2 where the original had -0.6 has a cast of 3.8).

Reported for the default encoder (format 2.2 where chroma means need it), the
same encoder restricted to format 2.0 (``version=2``, the baseline) and Pillow's
WebP (method 6) at the largest quality of at most the ``.svdz`` file's bytes, at
0.25, 0.5, 1 and 2 bpp, on the evaluation colour photos of ``bench_rd.py`` that
have grey areas (the rule's constant was chosen on astronaut, coffee and chelsea),
with each photo's BD-PSNR of the default against 2.0 (0.25-2 bpp).

Run ``python benchmarks/bench_grey.py`` (about a minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table
from bench_rd import EVALUATION, load
from svdimage import codec
from svdimage.metrics import bd_psnr, peak_signal_noise_ratio

RATES = (0.25, 0.5, 1.0, 2.0)
BLOCK = 16


def grey_areas(pixels: np.ndarray) -> np.ndarray:
    """The mask of the 16x16 blocks of 8-bit ``pixels`` that are neutral grey."""
    h, w = pixels.shape[0] // BLOCK * BLOCK, pixels.shape[1] // BLOCK * BLOCK
    r, g, b = (pixels[:h, :w, c].astype(np.int64) for c in range(3))

    def block_mean(x: np.ndarray) -> np.ndarray:
        return x.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))

    neutral = (
        (np.abs(block_mean(r - g)) <= 3)
        & (np.abs(block_mean(g - b)) <= 3)
        & (block_mean(np.abs(r - g)) <= 5)
        & (block_mean(np.abs(g - b)) <= 5)
        & (block_mean(g) > 20)
        & (block_mean(g) < 235)
    )
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    mask[:h, :w] = np.repeat(np.repeat(neutral, BLOCK, axis=0), BLOCK, axis=1)
    return mask


def cast(decoded: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    error = (decoded.astype(np.int64) - original.astype(np.int64))[mask]
    return float(
        max(abs((error[:, 1] - error[:, 0]).mean()), abs((error[:, 1] - error[:, 2]).mean()))
    )


def _eight_bit(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def webp_at_most(pixels: np.ndarray, nbytes: int) -> np.ndarray:
    from PIL import Image

    for quality in range(100, -1, -1):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "WEBP", quality=quality, method=6)
        if buffer.tell() <= nbytes:
            break
    return np.asarray(Image.open(buffer).convert("RGB"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one photo at one rate (CI)")
    options = parser.parse_args(argv)
    names = [n for n in EVALUATION if not n.startswith("gray:")]
    rates = RATES
    if options.quick:
        names, rates = ["stereo_motorcycle"], (0.5,)
    rows = []
    for name in names:
        image = load(name)
        if image.ndim != 3:
            continue
        pixels = _eight_bit(image)
        mask = grey_areas(pixels)
        if mask.mean() < 0.005:
            print(f"{name}: no grey areas (skipped)", file=sys.stderr)
            continue
        for bpp in rates:
            new = codec.encode(image, bpp=bpp)
            old = codec.encode(image, bpp=bpp, version=2)
            rows.append(
                [
                    name,
                    f"{mask.mean():.3f}",
                    f"{bpp:g}",
                    f"{new[5]}.{new[6]}",
                    f"{cast(_eight_bit(codec.decode(new)), pixels, mask):.2f}",
                    f"{cast(_eight_bit(codec.decode(old)), pixels, mask):.2f}",
                    f"{cast(webp_at_most(pixels, len(new)), pixels, mask):.2f}",
                    "",
                ]
            )
        if not options.quick:
            curves = []
            for version in (3, 2):
                rate, quality = [], []
                for q in (10, 20, 30, 45, 60, 75, 88):
                    data = codec.encode(image, quality=q, version=version)
                    rate.append(8 * len(data) / (image.shape[0] * image.shape[1]))
                    quality.append(peak_signal_noise_ratio(image, codec.decode(data)))
                curves.append((np.array(rate), np.array(quality)))
            rows[-1][-1] = f"{bd_psnr(*curves[0], *curves[1], low=0.25, high=2.0):+.3f}"
    headers = [
        "photo",
        "grey area",
        "bpp",
        ".svdz version",
        "cast: .svdz",
        "cast: 2.0 only",
        "cast: WebP",
        "BD-PSNR vs 2.0 dB",
    ]
    print(f"Machine: {machine()}")
    print_table(headers, rows)


if __name__ == "__main__":
    main()

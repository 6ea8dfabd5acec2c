"""Encode and decode speed of .svdz on a 12 MP colour photo, against WebP in the same process.

The photo is ``bench_commands.py``'s (``chelsea`` upscaled with noise, 4000x3000).
Each row is the minimum of ``--repeats`` runs, in this process, after one warm-up:
``.svdz`` at quality 75 (the default, which tries patch sides 4 and 8, and patch
side 8 alone), ``.svdz`` at 1 bpp (rate control), and its decode to a float32
array; WebP (Pillow, ``method=6``) at the quality whose file is nearest the
``.svdz`` file at 1 bpp, and its decode; AVIF (``speed=6``) and JPEG likewise. The
baseline of every ratio is WebP's time for the same operation.

Run ``python benchmarks/bench_codec_speed.py`` (about 3 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table
from bench_commands import make_photo
from svdimage import codec, load_image


def best_of(repeats: int, call, *args, **kwargs):  # type: ignore[no-untyped-def]
    call(*args, **kwargs)  # warm-up
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), result


def pil_encode(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    options = {"WEBP": {"method": 6}, "AVIF": {"speed": 6}, "JPEG": {"optimize": True}}[fmt]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, quality=quality, **options)
    return buffer.getvalue()


def pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def nearest_quality(pixels: np.ndarray, fmt: str, nbytes: int) -> int:
    """The quality whose file is nearest ``nbytes`` (bisection; sizes grow with it)."""
    low, high = 1, 100
    while high - low > 1:
        middle = (low + high) // 2
        if len(pil_encode(pixels, fmt, middle)) <= nbytes:
            low = middle
        else:
            high = middle
    sizes = {q: len(pil_encode(pixels, fmt, q)) for q in (low, high)}
    return min(sizes, key=lambda q: abs(sizes[q] - nbytes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 400x300 photo, one run (CI)")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)
    width, height = (400, 300) if options.quick else (4000, 3000)
    repeats = 1 if options.quick else options.repeats
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        make_photo(path, width=width, height=height)
        image = load_image(path)
    pixels = np.rint(image * 255).astype(np.uint8)
    megapixels = width * height / 1e6

    rows: list[list[str]] = []
    t_q_auto, q_auto = best_of(repeats, codec.encode, image, quality=75)
    t_q_8, q_8 = best_of(repeats, codec.encode, image, quality=75, tile=8)
    t_bpp, at_bpp = best_of(repeats, codec.encode, image, bpp=1.0)
    t_dec, _ = best_of(repeats, codec.decode, at_bpp)
    webp_q = nearest_quality(pixels, "WEBP", len(at_bpp))
    t_webp, webp = best_of(repeats, pil_encode, pixels, "WEBP", webp_q)
    t_webp_dec, _ = best_of(repeats, pil_decode, webp)
    for label, seconds, nbytes, baseline in (
        (".svdz encode, quality 75 (patch 4 or 8)", t_q_auto, len(q_auto), t_webp),
        (".svdz encode, quality 75, patch 8 only", t_q_8, len(q_8), t_webp),
        (".svdz encode, --bpp 1 (rate control)", t_bpp, len(at_bpp), t_webp),
        (f"WebP encode, method 6, quality {webp_q}", t_webp, len(webp), t_webp),
        (".svdz decode (the 1 bpp file, to float32)", t_dec, len(at_bpp), t_webp_dec),
        ("WebP decode", t_webp_dec, len(webp), t_webp_dec),
    ):
        rows.append([label, f"{seconds:.3f}", f"{nbytes:,}", f"{seconds / baseline:.2f}"])
    for fmt, name in (("AVIF", "AVIF speed 6"), ("JPEG", "JPEG optimize")):
        quality = nearest_quality(pixels, fmt, len(at_bpp))
        t_enc, data = best_of(repeats, pil_encode, pixels, fmt, quality)
        t_d, _ = best_of(repeats, pil_decode, data)
        rows.append(
            [
                f"{name} encode, quality {quality}",
                f"{t_enc:.3f}",
                f"{len(data):,}",
                f"{t_enc / t_webp:.2f}",
            ]
        )
        rows.append([f"{name} decode", f"{t_d:.3f}", f"{len(data):,}", f"{t_d / t_webp_dec:.2f}"])
    print(f"Machine: {machine()}")
    print(f"Photo: {width}x{height} colour ({megapixels:.0f} MP); minimum of {repeats} run(s)")
    print_table(["operation", "seconds", "bytes", "÷ WebP's same operation"], rows)


if __name__ == "__main__":
    main()

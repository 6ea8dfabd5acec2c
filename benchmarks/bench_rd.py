"""Rate-distortion of .svdz against JPEG, WebP and the naive SVD "compressors".

For scikit-image's bundled photos (gray and color), each method is swept over
its own knob and its PSNR and SSIM are read at equal bits per pixel (0.25,
0.5, 1 and 2 bpp, interpolated on log rate). Methods:

* ``.svdz tiled`` (8x8 tiles, the default) and ``.svdz global`` (one SVD
  per plane), swept over quality;
* Pillow JPEG (``optimize=True``) and WebP (``method=6``), swept over quality;
* the naive baselines: float32 factors of the rank-k SVD (4 C k (M + N + 1)
  bytes); the usual "quantized SVD" (each vector to 8 bits between its own
  min and max, LZMA-compressed); and a PNG of the rank-k reconstruction, all
  swept over rank.

Also printed: the Bjontegaard delta PSNR (BD-PSNR) of each .svdz mode (and
WebP) against JPEG, and of the global .svdz against the per-vector 8-bit SVD,
over 0.25-2 bpp (cubic fit of PSNR against log10 rate; positive means the
first is better). Writes ``benchmarks/results/rd.md`` and ``rd.png``.

Run ``python benchmarks/bench_rd.py`` (a few minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table
from svdimage import codec, decompose, load_image
from svdimage.metrics import peak_signal_noise_ratio, structural_similarity

TARGETS = (0.25, 0.5, 1.0, 2.0)
BD_HEADERS = [
    "image",
    ".svdz tiled vs JPEG",
    ".svdz global vs JPEG",
    "WebP vs JPEG",
    ".svdz global vs 8-bit per-vector",
]
RESULTS = Path(__file__).resolve().parent / "results"


def _pil(image: np.ndarray):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8))


def _decode_pil(data: bytes, *, gray: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as handle:
        return np.asarray(handle.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0


def sweep(image: np.ndarray, method: str, *, quick: bool) -> list[tuple[float, float, float]]:
    """(bpp, PSNR, SSIM) points of one method on one image."""
    pixels = image.shape[0] * image.shape[1]
    points = []
    qualities = (
        [5, 20, 50, 75, 90] if quick else [2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95]
    )
    if method.startswith(".svdz"):
        tile = 8 if method == ".svdz tiled" else None
        for quality in qualities:
            data = codec.encode(image, quality=quality, tile=tile)
            points.append((len(data), codec.decode(data)))
    elif method in ("JPEG", "WebP"):
        for quality in qualities:
            buffer = io.BytesIO()
            if method == "JPEG":
                _pil(image).save(buffer, format="JPEG", quality=min(quality, 95), optimize=True)
            else:
                _pil(image).save(buffer, format="WEBP", quality=quality, method=6)
            points.append(
                (len(buffer.getvalue()), _decode_pil(buffer.getvalue(), gray=image.ndim == 2))
            )
    elif method == "8-bit per-vector factors":
        svd = decompose(image)
        ranks = [1, 4, 16, 64] if quick else [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192]
        for rank in ranks:
            if rank <= svd.max_rank:
                points.append(_per_vector_8bit(svd, rank))
    else:
        svd = decompose(image)
        ranks = (
            [1, 2, 4, 8, 16, 32, 64, 128]
            if quick
            else [1, 2, 3, 5, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]
        )
        for rank, approx in svd.iter_reconstructions([r for r in ranks if r <= svd.max_rank]):
            if method == "float32 factors":
                points.append((4 * svd.stored_values(rank), approx))
            else:
                buffer = io.BytesIO()
                _pil(approx).save(buffer, format="PNG", optimize=True)
                points.append((len(buffer.getvalue()), np.rint(approx * 255) / 255))
    return [
        (8 * n / pixels, peak_signal_noise_ratio(image, out), structural_similarity(image, out))
        for n, out in points
    ]


def _per_vector_8bit(svd, rank: int) -> tuple[int, np.ndarray]:  # type: ignore[no-untyped-def]
    """The common "compressed SVD": each singular vector quantized to 8 bits between its own
    min and max (two float32 per vector), sigma as float32, everything LZMA-compressed."""
    import lzma

    U, s, Vt = (
        np.atleast_3d(svd.U) if svd.is_color else svd.U[None],
        np.atleast_2d(svd.s),
        svd.Vt if svd.is_color else svd.Vt[None],
    )
    payload, planes = [], []
    for c in range(s.shape[0]):
        parts = []
        for vectors in (U[c, :, :rank], Vt[c, :rank].T):
            low, high = vectors.min(axis=0), vectors.max(axis=0)
            span = np.where(high > low, high - low, 1.0)
            codes = np.rint((vectors - low) / span * 255).astype(np.uint8)
            payload += [
                codes.tobytes(),
                low.astype(np.float32).tobytes(),
                span.astype(np.float32).tobytes(),
            ]
            parts.append(codes / 255.0 * span + low)
        payload.append(s[c, :rank].astype(np.float32).tobytes())
        planes.append((parts[0] * s[c, :rank]) @ parts[1].T)
    image = np.stack(planes, axis=-1) if svd.is_color else planes[0]
    return len(lzma.compress(b"".join(payload), preset=9)), np.clip(image, 0, 1)


def at_rate(points: list[tuple[float, float, float]], bpp: float, index: int) -> float | None:
    """Metric ``index`` (1 PSNR, 2 SSIM) at ``bpp`` by interpolation on log rate."""
    ordered = sorted(points)
    rates = np.log([p[0] for p in ordered])
    if not rates[0] <= np.log(bpp) <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), rates, [p[index] for p in ordered]))


def bd_psnr(
    test: list[tuple[float, float, float]],
    reference: list[tuple[float, float, float]],
    low: float = 0.25,
    high: float = 2.0,
) -> float | None:
    """Bjontegaard delta PSNR of ``test`` over ``reference`` within [low, high] bpp."""
    from svdimage.metrics import bd_psnr as bd

    value = bd(
        [p[0] for p in test],
        [p[1] for p in test],
        [p[0] for p in reference],
        [p[1] for p in reference],
        low=low,
        high=high,
    )
    return None if np.isnan(value) else value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images, few points (CI)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    import skimage.data

    names = (
        ["camera", "astronaut"]
        if args.quick
        else ["camera", "moon", "astronaut", "coffee", "chelsea"]
    )
    methods = [
        ".svdz tiled",
        ".svdz global",
        "JPEG",
        "WebP",
        "8-bit per-vector factors",
        "float32 factors",
        "PNG of reconstruction",
    ]
    rows, bd_rows, curves = [], [], {}
    for name in names:
        image = load_image(getattr(skimage.data, name)())
        if args.quick:
            image = np.ascontiguousarray(image[::4, ::4])
        kind = "color" if image.ndim == 3 else "gray"
        results = {method: sweep(image, method, quick=args.quick) for method in methods}
        curves[name] = results
        for method, points in results.items():
            cells = []
            for bpp in TARGETS:
                psnr, ssim = at_rate(points, bpp, 1), at_rate(points, bpp, 2)
                cells.append("—" if psnr is None else f"{psnr:.2f} / {ssim:.3f}")
            rows.append([f"{name} ({kind})", method, *cells])
        pairs = [
            (".svdz tiled", "JPEG"),
            (".svdz global", "JPEG"),
            ("WebP", "JPEG"),
            (".svdz global", "8-bit per-vector factors"),
        ]
        bd_rows.append(
            [
                name,
                *(
                    ("—" if (v := bd_psnr(results[a], results[b])) is None else f"{v:+.2f} dB")
                    for a, b in pairs
                ),
            ]
        )

    print(f"Machine: {machine()}\n")
    print("PSNR (dB) / SSIM at equal bits per pixel (— : the method does not reach that rate)\n")
    print_table(["image", "method", *(f"{b:g} bpp" for b in TARGETS)], rows)
    print("\nBD-PSNR over 0.25-2 bpp (positive: the first method is better)\n")
    print_table(BD_HEADERS, bd_rows)
    if not args.no_write:
        _write(curves, rows, bd_rows)


def _write(curves: dict, rows: list, bd_rows: list) -> None:
    from matplotlib.figure import Figure

    RESULTS.mkdir(exist_ok=True)
    fig = Figure(figsize=(4 * len(curves), 4), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, results) in zip(axes, curves.items()):
        for method, points in results.items():
            ordered = sorted(points)
            ax.semilogx([p[0] for p in ordered], [p[1] for p in ordered], marker=".", label=method)
        ax.set_title(name)
        ax.set_xlabel("bits per pixel")
        ax.set_xlim(0.05, 16)
        ax.grid(True, which="both", ls=":", lw=0.5)
    axes[0].set_ylabel("PSNR (dB)")
    axes[-1].legend(fontsize=7)
    fig.savefig(RESULTS / "rd.png", dpi=100)
    lines = [
        "| image | method | " + " | ".join(f"{b:g} bpp" for b in TARGETS) + " |",
        "|---|---|" + "---:|" * len(TARGETS),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    lines += ["", "| " + " | ".join(BD_HEADERS) + " |", "|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in bd_rows]
    (RESULTS / "rd.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Rate-distortion of .svdz against JPEG, WebP, AVIF, JPEG XL and the naive SVD "compressors".

The protocol (so that a constant tuned on some photos is judged on others):

* ``TUNING`` lists the photos every constant of the codec was chosen on
  (:mod:`svdimage.codec._patches` and ``_tiles``); ``EVALUATION`` lists photos
  that no constant was chosen with. Both are reported, separately; the
  evaluation set is the evidence.
* Each codec is swept over its own knob (the .svdz step, Pillow's quality) and
  scored on the decoded 8-bit image: RGB PSNR, luma (BT.601 Y) PSNR and SSIM
  (scikit-image, 7x7 windows, ``data_range=255``).
* BD-PSNR and BD-SSIM use only the points inside 0.25-2 bpp of each curve (a
  cubic on log10 rate; :func:`svdimage.metrics.bd_psnr`), per image and as the
  mean of gray and colour images separately: ``.svdz`` against WebP (the
  issue's bar: RGB PSNR, Y PSNR and SSIM), and every codec against Pillow JPEG
  (``optimize=True``).

Methods: ``.svdz`` (the default: the patch-matrix SVD of format 2), ``.svdz
global`` (one SVD per plane, format 3.0), JPEG, WebP (``method=6``), AVIF
(``speed=4``), JPEG XL (``effort=7``, with the ``bench`` extra's
pillow-jxl-plugin; left out when it is not installed), and the naive
baselines of the usual SVD tools: float32 factors of the rank-k SVD, each
vector quantized to 8 bits between its own min and max (LZMA), and a PNG of
the rank-k reconstruction. Writes
``benchmarks/results/rd.md`` and ``rd.png``.

Run ``python benchmarks/bench_rd.py`` (about 10 minutes) or ``--quick``.
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
from svdimage.metrics import bd_psnr

TARGETS = (0.25, 0.5, 1.0, 2.0)
LOW, HIGH = 0.25, 2.0
#: The photos the codec's constants were chosen on (scikit-image names; "gray:" = its luma).
TUNING = ("camera", "moon", "astronaut", "coffee", "chelsea")
#: Photos no constant was chosen with, declared before any was measured: the first eight
#: since format 2; the last seven added on 2026-12-07 (issue #28 asks for at least 8 gray
#: and 8 colour), chosen among the photos that scikit-image and matplotlib ship before any
#: was encoded: 8 gray and 7 colour, every colour photo they ship without a download
#: beyond the tuning ones (matplotlib's other colour sample is a 128-pixel clip-art box).
#: ``mpl:NAME`` is matplotlib's sample photo NAME; stereo_motorcycle_right is the other
#: view of stereo_motorcycle's scene. Later that day, scikit-learn's two sample photos
#: (``sklearn:NAME``, shipped in its wheel, no download) were added as the 8th and 9th
#: colour photos, declared here before either was encoded.
EVALUATION = (
    "coins",
    "clock",
    "gray:rocket",
    "gray:stereo_motorcycle",
    "rocket",
    "stereo_motorcycle",
    "immunohistochemistry",
    "retina",
    "brick",
    "gravel",
    "gray:mpl:grace_hopper",
    "gray:hubble_deep_field",
    "hubble_deep_field",
    "mpl:grace_hopper",
    "stereo_motorcycle_right",
    "sklearn:china",
    "sklearn:flower",
)
CODECS = (".svdz", ".svdz global", "JPEG", "WebP", "AVIF", "JPEG XL")
NAIVE = ("8-bit per-vector factors", "float32 factors", "PNG of reconstruction")
RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> np.ndarray:
    """A scikit-image photo (or matplotlib's, ``mpl:NAME``, or scikit-learn's,
    ``sklearn:NAME``) as float32 in [0, 1]; ``gray:NAME`` is its luma."""
    import skimage.data

    gray = name.startswith("gray:")
    name = name.removeprefix("gray:")
    mode = "gray" if gray else "rgb" if name.startswith(("mpl:", "sklearn:")) else "auto"
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        return load_image(load_sample_image(name.removeprefix("sklearn:") + ".jpg"), mode=mode)
    if name.startswith("mpl:"):
        from matplotlib import cbook

        stem = name.removeprefix("mpl:")
        return load_image(str(cbook.get_sample_data(stem + ".jpg", asfileobj=False)), mode=mode)
    right = name == "stereo_motorcycle_right"
    raw = getattr(skimage.data, "stereo_motorcycle" if right else name)()
    if isinstance(raw, tuple) or (raw.ndim == 3 and raw.shape[0] == 2):
        raw = raw[1 if right else 0]  # stereo pairs: the left view, or the right one
    return load_image(raw, mode=mode)


def scores(image: np.ndarray, decoded: np.ndarray) -> tuple[float, float, float]:
    """(RGB PSNR, Y PSNR, SSIM) of a decoded image against the original, both as 8-bit."""
    from skimage.metrics import structural_similarity

    a = np.rint(np.clip(image, 0, 1) * 255)
    b = np.rint(np.clip(decoded, 0, 1) * 255)

    def psnr(x: np.ndarray, y: np.ndarray) -> float:
        mse = float(np.mean((x - y) ** 2))
        return 10 * np.log10(255**2 / max(mse, 1e-12))

    luma = np.array([0.299, 0.587, 0.114])
    y_psnr = psnr(a @ luma, b @ luma) if a.ndim == 3 else psnr(a, b)
    ssim = structural_similarity(a, b, data_range=255, channel_axis=-1 if a.ndim == 3 else None)
    return psnr(a, b), y_psnr, float(ssim)


def _pil(image: np.ndarray):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8))


def _decode_pil(data: bytes, *, gray: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as handle:
        return np.asarray(handle.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0


def sweep(image: np.ndarray, method: str, *, quick: bool) -> list[tuple[float, ...]]:
    """(bpp, RGB PSNR, Y PSNR, SSIM) points of one method on one image."""
    pixels = image.shape[0] * image.shape[1]
    points: list[tuple[int, np.ndarray]] = []
    qualities = list(range(5, 96, 15 if quick else 3))
    if method == ".svdz":
        for step in np.geomspace(0.004, 0.4, 6 if quick else 24):
            data = codec.encode(image, step=float(step))
            points.append((len(data), codec.decode(data)))
    elif method == ".svdz global":
        for quality in [5, 20, 50, 75, 90] if quick else range(5, 96, 5):
            data = codec.encode(image, quality=quality, tile=None)
            points.append((len(data), codec.decode(data)))
    elif method in ("JPEG", "WebP", "AVIF", "JPEG XL"):
        for quality in qualities:
            buffer = io.BytesIO()
            if method == "JPEG":
                _pil(image).save(buffer, format="JPEG", quality=quality, optimize=True)
            elif method == "WebP":
                _pil(image).save(buffer, format="WEBP", quality=quality, method=6)
            elif method == "AVIF":
                _pil(image).save(buffer, format="AVIF", quality=quality, speed=4)
            else:
                _pil(image).save(buffer, format="JXL", quality=quality, effort=7)
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
    return [(8 * n / pixels, *scores(image, out)) for n, out in points]


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


def at_rate(points: list[tuple[float, ...]], bpp: float, index: int) -> float | None:
    """Metric ``index`` (1 RGB PSNR, 2 Y PSNR, 3 SSIM) at ``bpp`` by interpolation on log
    rate (of the upper hull: a rate at which a better point exists is not a loss)."""
    ordered = sorted(points)
    rates = np.log([p[0] for p in ordered])
    if not rates[0] <= np.log(bpp) <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), rates, [p[index] for p in ordered]))


def bd(test: list[tuple[float, ...]], reference: list[tuple[float, ...]], index: int) -> float:
    """BD of metric ``index`` of ``test`` over ``reference``, each curve fitted only to its
    points inside LOW..HIGH bpp (NaN when either has fewer than two there)."""

    def inside(points: list[tuple[float, ...]]) -> tuple[list[float], list[float]]:
        chosen = [p for p in points if LOW <= p[0] <= HIGH]
        return [p[0] for p in chosen], [p[index] for p in chosen]

    return bd_psnr(*inside(test), *inside(reference), low=LOW, high=HIGH)


def _cell(value: float, unit: str = "dB", digits: int = 2) -> str:
    return "—" if not np.isfinite(value) else f"{value:+.{digits}f}{' ' + unit if unit else ''}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images, few points (CI)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--crops-only", action="store_true", help="only the crop comparison")
    args = parser.parse_args(argv)
    if args.crops_only:
        crops()
        return
    sets = {"tuning": TUNING, "evaluation": EVALUATION}
    if args.quick:
        sets = {"tuning": ("camera",), "evaluation": ("rocket",)}
    methods = [m for m in (*CODECS, *NAIVE) if m != "JPEG XL" or _has_jxl()]
    curves: dict[str, dict[str, list[tuple[float, ...]]]] = {}
    rate_rows, bd_tables = [], {}
    for set_name, names in sets.items():
        bd_rows, means = [], {"gray": [], "colour": []}
        for name in names:
            image = load(name)
            if args.quick:
                image = np.ascontiguousarray(image[::4, ::4])
            kind = "colour" if image.ndim == 3 else "gray"
            results = {method: sweep(image, method, quick=args.quick) for method in methods}
            curves[name] = results
            for method, points in results.items():
                cells = []
                for bpp in TARGETS:
                    psnr, ssim = at_rate(points, bpp, 1), at_rate(points, bpp, 3)
                    cells.append("—" if psnr is None else f"{psnr:.2f} / {ssim:.3f}")
                rate_rows.append([f"{name} ({kind}, {set_name})", method, *cells])
            nan = float("nan")
            values = [
                bd(results[".svdz"], results["WebP"], 1),
                bd(results[".svdz"], results["WebP"], 2),
                bd(results[".svdz"], results["WebP"], 3),
                bd(results[".svdz"], results["JPEG"], 1),
                bd(results["WebP"], results["JPEG"], 1),
                bd(results["AVIF"], results["JPEG"], 1),
                bd(results["JPEG XL"], results["JPEG"], 1) if "JPEG XL" in results else nan,
                bd(results[".svdz global"], results["JPEG"], 1),
            ]
            means[kind].append(values)
            bd_rows.append([f"{name} ({kind})", *_bd_cells(values)])
        for kind, rows in means.items():
            if rows:
                mean = np.nanmean(np.array(rows), axis=0)
                bd_rows.append([f"**mean, {kind}**", *_bd_cells(list(mean))])
        bd_tables[set_name] = bd_rows

    print(f"Machine: {machine()}\n")
    print(
        "RGB PSNR (dB) / SSIM at equal bits per pixel (— : the method does not reach that rate)\n"
    )
    print_table(["image", "method", *(f"{b:g} bpp" for b in TARGETS)], rate_rows)
    for set_name, rows in bd_tables.items():
        print(
            f"\nBD over {LOW:g}-{HIGH:g} bpp, {set_name} set: .svdz against WebP (positive: "
            ".svdz better), then each codec against JPEG (positive: better than JPEG)\n"
        )
        print_table(BD_HEADERS, rows)
    if not args.no_write:
        _write(curves, rate_rows, bd_tables)
        if not args.quick:
            crops()


#: The crop comparison: an evaluation photo, a region with edges, texture and smooth sky.
CROP_IMAGE, CROP = "stereo_motorcycle", (slice(165, 275), slice(350, 500))
CROPS_PATH = Path(__file__).resolve().parents[1] / "docs" / "images" / "svdz_vs_webp.png"


def crops(path: Path = CROPS_PATH) -> None:
    """Decoded crops of an evaluation photo at 0.5 and 1 bpp: .svdz beside the best WebP,
    AVIF and JPEG of at most the same bytes, shown at 3x (nearest neighbour) with bytes,
    PSNR and SSIM."""
    from matplotlib.figure import Figure

    image = load(CROP_IMAGE)
    pixels = image.shape[0] * image.shape[1]
    fig = Figure(figsize=(17, 6.6), layout="constrained")
    axes = fig.subplots(2, 5)
    for row, bpp in zip(axes, (0.5, 1.0)):
        data = codec.encode(image, bpp=bpp)
        panels = [
            ("original", image),
            (f".svdz {len(data):,} bytes ({8 * len(data) / pixels:.2f} bpp)", codec.decode(data)),
        ]
        for name in ("WebP", "AVIF", "JPEG"):
            quality, nbytes, decoded = _at_most(image, name, len(data))
            panels.append((f"{name} q{quality} {nbytes:,} bytes", decoded))
        for ax, (title, shown) in zip(row, panels):
            crop = np.clip(shown[CROP], 0, 1)
            ax.imshow(crop.repeat(3, axis=0).repeat(3, axis=1), interpolation="nearest")
            if shown is not image:
                rgb, y, ssim = scores(image, shown)
                title += f"\nPSNR {rgb:.2f} dB, Y {y:.2f}, SSIM {ssim:.3f}"
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    fig.suptitle(
        f"{CROP_IMAGE} (evaluation photo), crops at 3x; every codec at no more bytes than "
        ".svdz (PSNR and SSIM of the whole image)",
        fontsize=10,
    )
    fig.savefig(path, dpi=72)


def _at_most(image: np.ndarray, method: str, nbytes: int) -> tuple[int, int, np.ndarray]:
    """(quality, bytes, decoded) of ``method``'s largest quality of at most ``nbytes``."""
    options = {
        "WebP": {"format": "WEBP", "method": 6},
        "AVIF": {"format": "AVIF", "speed": 4},
        "JPEG": {"format": "JPEG", "optimize": True},
    }[method]
    low, high, best = 1, 100, None
    while low <= high:  # sizes grow with the quality: bisect on it
        quality = (low + high) // 2
        buffer = io.BytesIO()
        _pil(image).save(buffer, quality=quality, **options)
        if len(buffer.getvalue()) <= nbytes:
            best, low = (quality, buffer.getvalue()), quality + 1
        else:
            high = quality - 1
    if best is None:
        raise ValueError(f"{method} has no file of at most {nbytes} bytes.")
    return best[0], len(best[1]), _decode_pil(best[1], gray=image.ndim == 2)


BD_HEADERS = [
    "image",
    ".svdz vs WebP: RGB PSNR",
    "Y PSNR",
    "SSIM",
    "vs JPEG: .svdz",
    "WebP",
    "AVIF",
    "JPEG XL",
    ".svdz global",
]


def _has_jxl() -> bool:
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
    except ImportError:
        return False
    return True


def _bd_cells(values: list[float]) -> list[str]:
    svdz_webp, svdz_webp_y, svdz_webp_ssim, svdz, webp, avif, jxl, global_ = values
    return [
        _cell(svdz_webp),
        _cell(svdz_webp_y),
        _cell(svdz_webp_ssim, "", 4),
        _cell(svdz),
        _cell(webp),
        _cell(avif),
        _cell(jxl),
        _cell(global_),
    ]


def _write(curves: dict, rate_rows: list, bd_tables: dict) -> None:
    from matplotlib.figure import Figure

    RESULTS.mkdir(exist_ok=True)
    columns = 4
    rows = -(-len(curves) // columns)
    fig = Figure(figsize=(4 * columns, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, results) in zip(axes, curves.items()):
        for method, points in results.items():
            ordered = sorted(points)
            ax.semilogx([p[0] for p in ordered], [p[1] for p in ordered], marker=".", label=method)
        ax.set_title(name + (" (tuning)" if name in TUNING else " (evaluation)"))
        ax.set_xlabel("bits per pixel")
        ax.set_xlim(0.1, 8)
        ax.set_xticks([0.1, 0.25, 0.5, 1, 2, 4, 8], ["0.1", "0.25", "0.5", "1", "2", "4", "8"])
        ax.minorticks_off()
        ax.axvspan(LOW, HIGH, color="0.9", zorder=0)
        ax.grid(True, which="both", ls=":", lw=0.5)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("RGB PSNR (dB)")
    axes[0].legend(fontsize=7)
    fig.savefig(RESULTS / "rd.png", dpi=80)
    lines = [f"Machine: {machine()}", ""]
    for set_name, rows_ in bd_tables.items():
        lines += [
            f"BD over {LOW:g}-{HIGH:g} bpp, {set_name} set: .svdz against WebP, then each "
            "codec against Pillow JPEG (each curve fitted only to its points inside the range):",
            "",
            "| " + " | ".join(BD_HEADERS) + " |",
            "|---|" + "---:|" * (len(BD_HEADERS) - 1),
        ]
        lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows_]
        lines.append("")
    lines += [
        "RGB PSNR (dB) / SSIM at equal bits per pixel:",
        "",
        "| image | method | " + " | ".join(f"{b:g} bpp" for b in TARGETS) + " |",
        "|---|---|" + "---:|" * len(TARGETS),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rate_rows]
    (RESULTS / "rd.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""The ``svdimage`` command: parses arguments, calls the library, prints.

No mathematics lives here. Every error becomes one line on stderr and an exit
code (see ``EXIT_CODES``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from svdimage import __version__
from svdimage.io import DEFAULT_MAX_PIXELS

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_FILES = 4
EXIT_NETWORK = 5

EXIT_CODES = f"""Exit codes: {EXIT_OK} success; {EXIT_INTERNAL} internal error (a bug: please report it
with --debug output); {EXIT_USAGE} bad command-line usage; {EXIT_BAD_INPUT} bad input value (not an image,
corrupt file, rank out of range, over a size cap); {EXIT_FILES} file problem (input missing, output
exists without --force, folder not writable); {EXIT_NETWORK} network problem (URL unreachable or too slow)."""

app = typer.Typer(
    name="svdimage",
    help="Compress and explore images with truncated SVD.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])

# -- options shared by several commands --------------------------------------
GrayOption = typer.Option(False, "--gray", help="Convert to gray (BT.709 luma) first.")
ForceOption = typer.Option(False, "--force", "-f", help="Overwrite existing outputs.")
MaxPixelsOption = typer.Option(
    DEFAULT_MAX_PIXELS, "--max-pixels", min=4,
    help="Refuse images with more pixels than this.")
TimeoutOption = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for a URL.")


def _exit_code(error: BaseException) -> int:
    if isinstance(error, (TimeoutError, ConnectionError)):
        return EXIT_NETWORK
    if isinstance(error, OSError):
        return EXIT_FILES
    if isinstance(error, (ValueError, TypeError)):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename!s}"
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def _handle_errors(func: F) -> F:
    """Turn exceptions into one line on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("svdimage: interrupted.", soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
            if _state["debug"]:
                raise
            code = _exit_code(error)
            prefix = "internal error" if code == EXIT_INTERNAL else "error"
            err_console.print(f"svdimage: {prefix}: {_message(error)}", soft_wrap=True,
                              markup=False)
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _step(text: str) -> Iterator[None]:
    """A spinner on stderr while a step runs (shown on terminals only)."""
    if err_console.is_terminal:
        with err_console.status(text):
            yield
    else:
        yield


def _version(value: bool) -> None:
    if value:
        out_console.print(f"svdimage {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                           is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


# -- helpers -------------------------------------------------------------------
def _load(source: str, *, gray: bool, max_pixels: int, timeout: float) -> Any:
    from svdimage.io import load_image

    with _step(f"loading {source}"):
        return load_image(source, mode="gray" if gray else "auto", max_pixels=max_pixels,
                          timeout=timeout)


def _split_rank_spec(spec: Optional[str]) -> tuple[str, list[Any]]:
    """Split '3,10,psnr=35,knee' into the numeric part and parsed criteria."""
    from svdimage.rank_selection import parse_criterion

    if spec is None:
        return "", []
    items = [item.strip() for item in spec.split(",")]
    criteria = [parse_criterion(i) for i in items if i[:1].isalpha()]
    numbers = ",".join(i for i in items if not i[:1].isalpha())
    if not numbers and not criteria:
        raise ValueError(f"ranks {spec!r} names no rank.")
    return numbers, criteria


def _sweep_outputs(out: Path) -> dict[str, Path]:
    names = ["grid.png", "error_curve.png", "spectrum.png", "metrics.csv", "metrics.json"]
    return {name: out / name for name in names}


def _run_sweep(image: Any, *, label: str, ranks_spec: Optional[str], out: Path,
               force: bool) -> None:
    from svdimage._validation import check_ranks, parse_rank_spec
    from svdimage.decomposition import decompose
    from svdimage.sweep import DEFAULT_RANKS, measure_ranks, write_metrics_csv, write_metrics_json
    from svdimage.visualization import plot_error_curve, plot_grid, plot_spectrum, save_figure

    outputs = _sweep_outputs(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a folder.")
    existing = [str(p) for p in outputs.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{existing[0]} already exists; pass --force to overwrite or choose another --out."
        )
    full = min(image.shape[:2])
    numbers, criteria = _split_rank_spec(ranks_spec)
    if ranks_spec is None:
        ranks = [k for k in DEFAULT_RANKS if k <= full] or [full]
    else:
        ranks = check_ranks(parse_rank_spec(numbers), full, shape=image.shape) if numbers else []

    with _step("computing the SVD"):
        # The error curve and spectrum cover every rank: this needs the complete (exact) SVD.
        svd = decompose(image)
    if criteria:
        from svdimage.rank_selection import resolve_criterion

        with _step("resolving rank criteria"):
            ranks = sorted(set(ranks) | {resolve_criterion(svd, c, image=image) for c in criteria})
    with _step("measuring ranks"):
        rows = measure_ranks(image, svd, ranks)
    out.mkdir(parents=True, exist_ok=True)
    info = {
        "source": label,
        "shape": list(image.shape),
        "mode": "rgb" if image.ndim == 3 else "gray",
        "method": svd.method,
        "max_rank": svd.max_rank,
        "raw_8bit_bytes": int(image.size),
    }
    with _step("drawing figures"):
        save_figure(plot_grid(image, svd, rows), outputs["grid.png"], force=force)
        save_figure(plot_error_curve(svd, marked_ranks=ranks), outputs["error_curve.png"],
                    force=force)
        save_figure(plot_spectrum(svd), outputs["spectrum.png"], force=force)
    write_metrics_csv(outputs["metrics.csv"], rows, force=force)
    write_metrics_json(outputs["metrics.json"], rows, info=info, force=force)

    kind = "color" if image.ndim == 3 else "gray"
    table = Table(title=f"{label}: {image.shape[1]}x{image.shape[0]} {kind}, "
                        f"{svd.method} SVD")
    for header in ("rank", "error", "PSNR", "SSIM", "energy%", "values", "f32 bytes",
                   "vs 8-bit"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(str(row.rank), f"{row.relative_error:.4f}", f"{row.psnr:.2f}",
                      f"{row.ssim:.4f}", f"{100 * row.energy:.3f}", f"{row.stored_values:,}",
                      f"{row.factor_bytes_float32:,}", f"{row.compression_ratio_vs_raw8bit:.2f}")
    out_console.print(table)
    out_console.print("Wrote:", soft_wrap=True)
    for path in outputs.values():
        out_console.print(f"  {path}", soft_wrap=True)


# -- commands ------------------------------------------------------------------
@app.command()
@_handle_errors
def demo(
    out: Path = typer.Option(Path("svdimage-demo"), "--out", "-o",
                             help="Folder for the figures and tables."),
    sample: str = typer.Option("camera", "--sample",
                               help="Bundled scikit-image photo: camera (gray), astronaut, "
                                    "coffee, chelsea (color)."),
    force: bool = ForceOption,
) -> None:
    """Sweep ranks 3, 10, 20, 50, 100 on a bundled sample photo and write the results."""
    import skimage.data

    samples = {"camera", "astronaut", "coffee", "chelsea"}
    if sample not in samples:
        raise ValueError(f"--sample must be one of {', '.join(sorted(samples))}; got {sample!r}.")
    from svdimage.io import load_image

    image = load_image(getattr(skimage.data, sample)())
    _run_sweep(image, label=f"skimage.data.{sample}()", ranks_spec=None, out=out,
               force=force)
    out_console.print(f"Open {out / 'grid.png'} to see the reconstructions.", soft_wrap=True)


@app.command()
@_handle_errors
def sweep(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    ranks: Optional[str] = typer.Option(
        None, "--ranks", "-r",
        help="Ranks to show, e.g. 3,10,20,50,100 or 1:70,80:500:10, and/or criteria "
             "such as psnr=35, ssim=0.95, energy=0.99, error=0.05, ratio=4, bytes=N, bpp=B, "
             "percent=P, knee, denoise (default 3,10,20,50,100 up to the image's rank)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the outputs."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Reconstruct IMAGE at several ranks; write grid.png, error_curve.png,
    spectrum.png, metrics.csv and metrics.json to --out, and print the table."""
    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    _run_sweep(array, label=image, ranks_spec=ranks, out=out, force=force)


@app.command()
@_handle_errors
def reconstruct(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    rank: str = typer.Option(..., "--rank", "-k",
                             help="Number of singular values kept, or a criterion such as "
                                  "psnr=35, ssim=0.95, energy=0.99, knee (see 'choose')."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, ...)."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Write the rank-K approximation of IMAGE and compare the sizes honestly."""
    from svdimage import metrics
    from svdimage._fileutil import check_writable
    from svdimage._validation import check_rank
    from svdimage.decomposition import decompose
    from svdimage.io import save_image

    check_writable(output, force=force)
    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    if rank.strip().lstrip("+-").isdigit():
        k = check_rank(int(rank), min(array.shape[:2]), shape=array.shape)
        with _step("computing the SVD"):
            svd = decompose(array, rank=k)
    else:
        from svdimage.rank_selection import parse_criterion, resolve_criterion

        criterion = parse_criterion(rank)
        with _step("computing the SVD"):
            svd = decompose(array)
        k = resolve_criterion(svd, criterion, image=array)
        out_console.print(f"{rank} chose rank {k}.", soft_wrap=True)
    approx = svd.reconstruct(k)
    save_image(output, approx, force=force)

    values = svd.stored_values(k)
    sizes: list[tuple[str, Optional[int]]] = [
        ("original file", os.path.getsize(image) if os.path.isfile(image) else None),
        ("raw 8-bit pixels", int(array.size)),
        (f"output {output.suffix or 'file'} (a reconstruction)", os.path.getsize(output)),
        (f"rank-{k} factors as float32", 4 * values),
    ]
    table = Table(title=f"rank {k} of {array.shape[1]}x{array.shape[0]}: "
                        f"relative error {svd.relative_error(k):.4f}, "
                        f"PSNR {metrics.peak_signal_noise_ratio(array, approx):.2f} dB")
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("bits/pixel", justify="right")
    for name, nbytes in sizes:
        if nbytes is None:
            continue
        table.add_row(name, f"{nbytes:,}", f"{metrics.bits_per_pixel(nbytes, array.shape):.3f}")
    out_console.print(table)
    out_console.print(
        f"Wrote {output}. Note: this file is a picture of the reconstruction, not a compressed "
        "file: its size says nothing about SVD compression (it can even be larger than the "
        f"original). The factors need {values:,} numbers.", soft_wrap=True)


@app.command()
@_handle_errors
def info(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    gray: bool = GrayOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Print the size, mode, numerical rank, largest singular value and the
    ranks that keep 90, 99 and 99.9 % of the energy."""
    from svdimage.decomposition import decompose
    from svdimage.rank_selection import rank_for_energy

    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    with _step("computing the singular values"):
        svd = decompose(array, compute_vectors=False)
    table = Table(title=image, show_header=False)
    table.add_column("property")
    table.add_column("value", justify="right")
    table.add_row("size", f"{array.shape[1]} x {array.shape[0]} pixels")
    table.add_row("mode", "RGB (one SVD per channel)" if svd.is_color else "gray")
    table.add_row("largest possible rank", str(svd.full_rank))
    num = svd.numerical_rank()
    table.add_row("numerical rank", ", ".join(map(str, num)) if isinstance(num, tuple)
                  else str(num))
    s1 = svd.s[..., 0]
    table.add_row("σ₁ (largest singular value)",
                  ", ".join(f"{v:.4g}" for v in s1) if svd.is_color else f"{float(s1):.4g}")
    for fraction in (0.9, 0.99, 0.999):
        table.add_row(f"rank for {100 * fraction:g} % energy", str(rank_for_energy(svd, fraction)))
    out_console.print(table)


_CHOOSE_UNITS = {"error": "relative error", "energy": "energy kept", "psnr": "PSNR (dB)",
                 "ssim": "SSIM", "ratio": "ratio to raw 8-bit (float32 factors)",
                 "bytes": "float32 factor bytes", "bpp": "bits per pixel (float32 factors)",
                 "percent": "% of the short side", "knee": "relative error",
                 "denoise": "smallest kept singular value"}


@app.command()
@_handle_errors
def choose(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    max_error: Optional[float] = typer.Option(None, "--max-error",
                                              help="Smallest rank with relative error <= E."),
    energy: Optional[float] = typer.Option(None, "--energy",
                                           help="Smallest rank keeping this fraction of energy."),
    psnr: Optional[float] = typer.Option(None, "--psnr", help="Smallest rank with PSNR >= DB."),
    ssim: Optional[float] = typer.Option(None, "--ssim", help="Smallest rank with SSIM >= V."),
    ratio: Optional[float] = typer.Option(None, "--ratio",
                                          help="Largest rank whose float32 factors are R "
                                               "times smaller than the raw 8-bit image."),
    nbytes: Optional[int] = typer.Option(None, "--bytes",
                                         help="Largest rank whose float32 factors fit N bytes."),
    bpp: Optional[float] = typer.Option(None, "--bpp",
                                        help="Largest rank whose float32 factors fit B bits "
                                             "per pixel."),
    percent: Optional[float] = typer.Option(None, "--percent",
                                            help="Rank as P % of the short side."),
    storage: str = typer.Option("values", "--storage",
                                help="How --ratio/--bytes/--bpp count: 'values' (float32 "
                                     "factors) or 'svdz' (a real global .svdz file)."),
    knee: bool = typer.Option(False, "--knee", help="The knee of the error curve (Kneedle)."),
    denoise: bool = typer.Option(False, "--denoise",
                                 help="Gavish-Donoho optimal hard threshold (noise estimated)."),
    gray: bool = GrayOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Answer "which rank?": the rank a criterion picks and why, or, with no
    criterion, a table of the ranks common targets pick with their quality and storage."""
    from svdimage.decomposition import decompose
    from svdimage.rank_selection import (
        VISUALLY_LOSSLESS_SSIM,
        Criterion,
        criterion_value,
        recommend,
        resolve_criterion,
    )

    given = [Criterion(name, value) for name, value in (
        ("error", max_error), ("energy", energy), ("psnr", psnr), ("ssim", ssim),
        ("ratio", ratio), ("bytes", nbytes), ("bpp", bpp), ("percent", percent))
        if value is not None]
    given += [Criterion(name) for name, flag in (("knee", knee), ("denoise", denoise)) if flag]
    if len(given) > 1:
        raise ValueError("give one criterion at a time (or none for the recommendation table).")
    if storage not in ("values", "svdz"):
        raise ValueError(f"--storage must be 'values' or 'svdz'; got {storage!r}.")
    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    with _step("computing the SVD"):
        svd = decompose(array)
    if given:
        criterion = given[0]
        k = resolve_criterion(svd, criterion, image=array, storage=storage)  # type: ignore[arg-type]
        budget = criterion.name in ("ratio", "bytes", "bpp")
        other = k + 1 if budget else k - 1
        unit = _CHOOSE_UNITS[criterion.name]
        if budget and storage == "svdz":
            unit = unit.replace("float32 factor", ".svdz").replace("float32 factors", ".svdz")
        target = "" if criterion.value is None else f" (target {criterion.value:g})"
        def value(rank: int) -> float:
            return criterion_value(svd, criterion, rank, image=array,
                                   storage=storage)  # type: ignore[arg-type]

        lines = [f"rank {k}: {unit} {value(k):.6g}{target}"]
        if criterion.name == "denoise":
            from svdimage.rank_selection import (
                optimal_hard_threshold,
                optimal_hard_threshold_rank,
            )

            ranks = optimal_hard_threshold_rank(svd)
            per_channel = ranks if isinstance(ranks, tuple) else (ranks,)
            s_all = np.atleast_2d(svd.s)
            lines = [f"rank {k}: the singular values above the Gavish-Donoho threshold "
                     "(noise estimated from the median singular value)"]
            for c, (r, tau) in enumerate(zip(per_channel, optimal_hard_threshold(svd))):
                name = f"channel {c}: " if svd.is_color else ""
                below = f", σ{r + 1} = {s_all[c, r]:.4g}" if r < svd.max_rank else ""
                lines.append(f"{name}threshold τ = {tau:.4g}; σ{r} = {s_all[c, r - 1]:.4g}"
                             f"{below} (rank {r})")
        elif 1 <= other <= svd.max_rank:
            why = "does not fit" if budget else "falls short"
            if criterion.name in ("knee", "percent"):
                why = "for comparison"
            lines.append(f"rank {other}: {unit} {value(other):.6g} ({why})")
        out_console.print("\n".join(lines), soft_wrap=True)
        return
    with _step("measuring candidate ranks"):
        rows = recommend(svd, image=array)
    lossless = [row for row in rows if row.ssim >= VISUALLY_LOSSLESS_SSIM]
    best = min(lossless, key=lambda row: row.rank) if lossless else None
    table = Table(title=f"{image}: which rank? ({array.shape[1]}x{array.shape[0]}, "
                        f"{'color' if svd.is_color else 'gray'})")
    for header in ("target", "rank", "PSNR", "SSIM", "float32 B", ".svdz B", ".svdz bpp"):
        table.add_column(header, justify="left" if header == "target" else "right",
                         no_wrap=True)
    for row in rows:
        mark = " *" if row is best else ""
        table.add_row(row.criterion + mark, str(row.rank), f"{row.psnr:.2f}", f"{row.ssim:.4f}",
                      f"{row.factor_bytes_float32:,}", f"{row.svdz_bytes:,}",
                      f"{row.svdz_bits_per_pixel:.2f}")
    out_console.print(table)
    raw = int(array.size)
    out_console.print(
        f"* smallest visually lossless rank. Bar: SSIM >= {VISUALLY_LOSSLESS_SSIM} (Flynn et al., HCI "
        "International 2013: most observers stop telling compressed from original there). "
        f"The raw 8-bit image is {raw:,} bytes ({8 * raw / (array.shape[0] * array.shape[1]):g}"
        " bpp); float32 factors count 4 bytes per value; .svdz is a real file of the global "
        "rank-k SVD.", soft_wrap=True)


@app.command("denoise")
@_handle_errors
def denoise_command(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    output: Path = typer.Option(..., "--output", "-o", help="Denoised image (.png, ...)."),
    sigma: Optional[float] = typer.Option(None, "--sigma", min=0.0,
                                          help="Known noise level in [0, 1] units "
                                               "(default: estimated from the median σ)."),
    add_noise: Optional[float] = typer.Option(
        None, "--add-noise", min=0.0,
        help="Treat IMAGE as clean: add Gaussian noise of this level first, then report "
             "PSNR before and after against the clean image."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the added noise."),
    noisy_output: Optional[Path] = typer.Option(None, "--noisy-output",
                                                help="Also save the noisy image here."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Remove Gaussian noise by keeping the singular values above the Gavish-Donoho
    optimal hard threshold."""
    from svdimage import metrics
    from svdimage._fileutil import check_writable
    from svdimage.io import save_image
    from svdimage.rank_selection import add_noise as make_noisy
    from svdimage.rank_selection import denoise as run_denoise

    check_writable(output, force=force)
    if noisy_output is not None:
        if add_noise is None:
            raise ValueError("--noisy-output needs --add-noise.")
        check_writable(noisy_output, force=force)
    clean = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    noisy = clean if add_noise is None else make_noisy(clean, add_noise, rng=seed)
    with _step("computing the SVD"):
        result = run_denoise(noisy, sigma=sigma)
    save_image(output, result.image, force=force)
    if noisy_output is not None:
        save_image(noisy_output, noisy, force=force)
    how = f"known σ = {sigma:g}" if sigma is not None else "σ estimated from the median singular value"
    out_console.print(f"Kept rank {result.rank} of {result.svd.full_rank} ({how}); wrote {output}.",
                      soft_wrap=True)
    if add_noise is not None:
        before = metrics.peak_signal_noise_ratio(clean, noisy.clip(0, 1))
        after = metrics.peak_signal_noise_ratio(clean, result.image)
        out_console.print(f"PSNR against the clean image: noisy {before:.2f} dB, "
                          f"denoised {after:.2f} dB ({after - before:+.2f} dB).", soft_wrap=True)


def _image_sources(items: Sequence[str]) -> tuple[list[str], bool]:
    """Expand folders into the image files they hold (sorted, not recursive).

    Returns the sources and whether this is a batch (several inputs or a folder).
    """
    from PIL import Image

    known = set(Image.registered_extensions())
    sources: list[str] = []
    batch = len(items) > 1
    for item in items:
        if os.path.isdir(item):
            batch = True
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and p.suffix.lower() in known)
            if not found:
                raise FileNotFoundError(f"folder {item!r} holds no image files.")
            sources += found
        else:
            sources.append(item)
    return sources, batch


@app.command()
@_handle_errors
def compress(
    images: list[str] = typer.Argument(..., help="Image files, folders of images, or URLs."),
    output: Path = typer.Option(..., "--output", "-o",
                                help="Output .svdz file; a folder for several images."),
    quality: Optional[float] = typer.Option(None, "--quality", "-q", min=1, max=100,
                                            help="1-100, monotone (default 75)."),
    rank: Optional[str] = typer.Option(
        None, "--rank", "-k",
        help="Global rank K (implies --global), or a criterion resolved on the global SVD: "
             "energy=0.99, error=0.05, ssim=0.95, knee, ..."),
    psnr: Optional[float] = typer.Option(None, "--psnr", help="Smallest file reaching DB."),
    size: Optional[int] = typer.Option(None, "--size", min=1, help="Best file of at most N bytes."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Best file of at most B bits/pixel."),
    tiles: int = typer.Option(8, "--tiles", min=4, max=256, help="Tile side in pixels."),
    global_svd: bool = typer.Option(False, "--global", help="One SVD per plane, no tiles."),
    color: str = typer.Option("ycbcr", "--color", help="ycbcr (4:2:0) or rgb."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Compress images to real .svdz files and compare them honestly with JPEG at equal size.

    One image: OUTPUT is the file, and a table compares it with the original and with the
    best JPEG of at most the same bytes. Several images or a folder: OUTPUT is a folder
    (created if needed) that receives NAME.svdz for each, with one line per image; a failing
    image is reported and skipped, and the exit code is that of the last failure."""
    if color not in ("ycbcr", "rgb"):
        raise ValueError(f"--color must be 'ycbcr' or 'rgb'; got {color!r}.")
    sources, batch = _image_sources(images)
    options: dict[str, Any] = dict(quality=quality, rank=rank, psnr=psnr, size=size, bpp=bpp,
                                   tile=None if global_svd else tiles, color=color, gray=gray,
                                   max_pixels=max_pixels, timeout=timeout)
    if not batch:
        _compress_one(sources[0], output, force=force, report=True, **options)
        return
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"--output {str(output)!r} must be a folder for several images.")
    stems = [Path(source).stem for source in sources]
    if len(set(stems)) != len(stems):
        raise ValueError("two inputs share a file name; compress them into separate folders.")
    output.mkdir(parents=True, exist_ok=True)
    failures = 0
    code = EXIT_OK
    for source, stem in zip(sources, stems):
        try:
            _compress_one(source, output / f"{stem}.svdz", force=force, report=False, **options)
        except Exception as error:  # noqa: BLE001 - report, skip, go on with the others
            if _state["debug"]:
                raise
            failures += 1
            code = _exit_code(error)
            err_console.print(f"svdimage: error: {source}: {_message(error)}", soft_wrap=True,
                              markup=False)
    out_console.print(f"{len(sources) - failures} of {len(sources)} images compressed into "
                      f"{output}.", soft_wrap=True)
    if failures:
        raise typer.Exit(code)


def _compress_one(image: str, output: Path, *, force: bool, report: bool,
                  quality: Optional[float], rank: Optional[str], psnr: Optional[float],
                  size: Optional[int], bpp: Optional[float], tile: Optional[int], color: str,
                  gray: bool, max_pixels: int, timeout: float) -> None:
    from svdimage import codec, metrics
    from svdimage._fileutil import atomic_path, check_writable

    check_writable(output, force=force)
    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    cap: Optional[int] = None
    if rank is not None:
        tile = None
        if rank.strip().isdigit():
            cap = int(rank)
        else:
            from svdimage.decomposition import decompose
            from svdimage.rank_selection import parse_criterion, resolve_criterion

            with _step("computing the SVD"):
                cap = resolve_criterion(decompose(array), parse_criterion(rank), image=array)
            out_console.print(f"{image}: {rank} chose rank {cap}.", soft_wrap=True)
    with _step(f"compressing {image}"):
        data = codec.encode(array, quality=quality, rank=cap, psnr=psnr, size=size, bpp=bpp,
                            tile=tile, color=color)  # type: ignore[arg-type]
        decoded = codec.decode(data, max_pixels=None)
    with atomic_path(output, force=force) as tmp:
        tmp.write_bytes(data)
    original = os.path.getsize(image) if os.path.isfile(image) else None
    shape = array.shape
    if not report:
        before = f"{original:,} -> " if original else ""
        out_console.print(
            f"{image} -> {output}: {before}{len(data):,} bytes, "
            f"{metrics.bits_per_pixel(len(data), shape):.3f} bpp, "
            f"PSNR {metrics.peak_signal_noise_ratio(array, decoded):.2f} dB", soft_wrap=True)
        return
    table = Table(title=f"{image} -> {output}")
    for header in ("", "bytes", "bpp", "ratio", "PSNR dB", "SSIM"):
        table.add_column(header, justify="left" if not header else "right")

    def row(name: str, nbytes: int, approx: Any = None) -> None:
        ratio = f"{original / nbytes:.2f}" if original else ""
        ssim = (f"{metrics.structural_similarity(array, approx):.4f}"
                if approx is not None and min(shape[:2]) >= 7 else "")
        quality_cells = (["", ""] if approx is None else
                         [f"{metrics.peak_signal_noise_ratio(array, approx):.2f}", ssim])
        table.add_row(name, f"{nbytes:,}", f"{metrics.bits_per_pixel(nbytes, shape):.3f}",
                      ratio, *quality_cells)

    if original:
        row("original file", original)
    row("raw 8-bit pixels", int(array.size))
    row(".svdz (this file)", len(data), decoded)
    jpeg = codec.jpeg_at_size(array, len(data))
    if jpeg is not None:
        row(f"JPEG quality {jpeg[0]} at most the same bytes", len(jpeg[1]), jpeg[2])
    out_console.print(table)
    if jpeg is None:
        out_console.print("No JPEG is this small (even quality 1 is larger).", soft_wrap=True)


@app.command()
@_handle_errors
def decompress(
    source: Path = typer.Argument(..., help="An .svdz file."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, ...)."),
    max_bytes: Optional[int] = typer.Option(
        None, "--max-bytes", min=1,
        help="Decode only the first N bytes (progressive: a lower-rank image)."),
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
) -> None:
    """Decode an .svdz file to an image."""
    from svdimage import codec
    from svdimage._fileutil import check_writable
    from svdimage.io import save_image

    check_writable(output, force=force)
    if not source.is_file():
        raise FileNotFoundError(f"file {str(source)!r} does not exist.")
    image = codec.load(source, max_bytes=max_bytes, max_pixels=max_pixels)
    save_image(output, image, force=force)
    used = os.path.getsize(source) if max_bytes is None else min(max_bytes, os.path.getsize(source))
    out_console.print(f"Wrote {output} ({image.shape[1]}x{image.shape[0]}) from {used:,} bytes.",
                      soft_wrap=True)


@app.command("inspect")
@_handle_errors
def inspect_command(
    source: Path = typer.Argument(..., help="An .svdz file."),
    max_pixels: int = MaxPixelsOption,
) -> None:
    """Print an .svdz file's header, sizes and ranks (and check its checksums)."""
    import json

    from svdimage import codec

    if not source.is_file():
        raise FileNotFoundError(f"file {str(source)!r} does not exist.")
    info = codec.inspect(source.read_bytes(), max_pixels=max_pixels)
    out_console.print(f"{source}: .svdz version {info.version[0]}.{info.version[1]}, "
                      f"{info.file_bytes:,} bytes ({info.payload_bytes:,} payload)", soft_wrap=True)
    out_console.print(json.dumps(info.header, indent=2), soft_wrap=True, markup=False)
    for index, stats in enumerate(info.tile_ranks):
        out_console.print(f"plane {index}: {stats['tiles']} tiles, mean rank "
                          f"{stats['mean_rank']:.2f}, max rank {stats['max_rank']}", soft_wrap=True)


def _parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--size must look like 640x960 (width x height in pixels); got {text!r}.")
    return int(parts[0]), int(parts[1])


@app.command()
@_handle_errors
def animate(
    image: str = typer.Argument(..., help="Image file or http(s) URL."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .mp4 or .gif."),
    ranks: Optional[str] = typer.Option(
        None, "--ranks", "-r",
        help="Frames' ranks, e.g. 1:70,80:500:10 (default: 1..70, every 10th, the maximum)."),
    fps: float = typer.Option(8.0, "--fps", min=0.1, max=120, help="Frames per second."),
    size: Optional[str] = typer.Option(None, "--size",
                                       help="Frame size WxH in pixels (default 500x800 "
                                            "stacked, 1000x500 side)."),
    layout: str = typer.Option("stacked", "--layout", help="stacked or side."),
    caption: Optional[str] = typer.Option(None, "--caption", help="Small text under the panels."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Write an MP4 or GIF of IMAGE sharpening as the rank grows, beside its error curve."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from svdimage._fileutil import check_writable
    from svdimage._validation import parse_rank_spec
    from svdimage.decomposition import decompose
    from svdimage.visualization import animate as write_animation
    from svdimage.visualization import default_animation_ranks

    if output.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--output must end in .mp4 or .gif; got {str(output)!r}.")
    if layout not in ("stacked", "side"):
        raise ValueError(f"--layout must be 'stacked' or 'side'; got {layout!r}.")
    frame_size = _parse_size(size)
    wanted = None if ranks is None else parse_rank_spec(ranks)
    check_writable(output, force=force)
    array = _load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    full = min(array.shape[:2])
    top = None if wanted is None or max(wanted) >= full else max(wanted)
    if wanted is not None and max(wanted) > full:
        raise ValueError(f"ranks must be between 1 and {full} for a "
                         f"{array.shape[1]}x{array.shape[0]} image; got {max(wanted)}.")
    with _step("computing the SVD"):
        svd = decompose(array, rank=top)
    frame_ranks = wanted or default_animation_ranks(svd.max_rank)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("frames", total=len(frame_ranks))
        write_animation(svd, output, ranks=frame_ranks, fps=fps, size=frame_size, layout=layout,
                        caption=caption, force=force,
                        progress=lambda done, total: bar.update(task, completed=done,
                                                                total=total))
    out_console.print(f"Wrote {output} ({len(frame_ranks)} frames at {fps:g} fps, "
                      f"{os.path.getsize(output):,} bytes).", soft_wrap=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``svdimage`` script."""
    app(args=list(argv) if argv is not None else None, prog_name="svdimage")


if __name__ == "__main__":  # pragma: no cover
    main()

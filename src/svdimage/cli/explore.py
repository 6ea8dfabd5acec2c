"""Commands that explore one image: demo, sweep, reconstruct, info, animate, explore."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from svdimage import metrics, sweep
from svdimage._fileutil import check_writable, path_bytes
from svdimage._validation import (
    check_ranks,
    format_bytes,
    is_chunked,
    parse_rank_spec,
)
from svdimage.animation import DEFAULT_LAST_RANK, default_animation_ranks
from svdimage.animation import animate as write_animation
from svdimage.batch.jobs import reconstruct_image, reconstruct_job, sweep_job
from svdimage.cli import _batch
from svdimage.cli._app import (
    ForceOption,
    GrayOption,
    ImageArgument,
    ImagesArgument,
    JsonOption,
    MaxPixelsLoadOption,
    MaxPixelsOption,
    MemoryLimitOption,
    TimeoutOption,
    UsageError,
    check_conflicts,
    command,
    fmt_bpp,
    fmt_count,
    fmt_error,
    fmt_percent,
    fmt_psnr,
    fmt_ratio,
    fmt_sigma,
    fmt_ssim,
    handle_errors,
    image_for,
    load,
    out_console,
    print_json,
    renamed,
    step,
)
from svdimage.decomposition import decompose
from svdimage.explorer import blank_page, explore
from svdimage.io import load_image
from svdimage.ranks.criteria import Criterion, parse_rank_item
from svdimage.ranks.growth import describe_spectrum
from svdimage.sweep import SweepResult

RANKS_HELP = (
    "Ranks to show, e.g. 3,10,20,50,100 or 1:70,80:500:10, and/or criteria such as "
    "psnr=35, ssim=0.95, energy=0.99, error=0.05, ratio=4, bytes=N, bpp=B, "
    "percent=P, knee, denoise (default 3,10,20,50,100 up to the image's rank)."
)


def _print_sweep(result: object, *, label: str) -> None:
    assert isinstance(result, SweepResult)
    shape = result.svd.shape
    kind = "color" if result.svd.is_color else "gray"
    # A light frame: with a criterion column the table must still fit 80 columns.
    table = Table(
        title=f"{label}: {shape[1]}x{shape[0]} {kind}, {result.svd.method} SVD",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # The criterion column only when a criterion picked a rank (it is always in CSV/JSON).
    named = any(row.criterion for row in result.rows)
    headers = ["rank", "criterion"] if named else ["rank"]
    for header in (
        *headers,
        "error",
        "PSNR",
        "SSIM",
        "energy %",
        "values",
        "f32 bytes",
        "vs 8-bit",
    ):
        table.add_column(
            header,
            justify="left" if header == "criterion" else "right",
            no_wrap=header == "criterion",
        )
    for row in result.rows:
        first = [fmt_count(row.rank), row.criterion] if named else [fmt_count(row.rank)]
        table.add_row(
            *first,
            fmt_error(row.relative_error),
            fmt_psnr(row.psnr),
            fmt_ssim(row.ssim),
            fmt_percent(row.energy),
            fmt_count(row.stored_values),
            fmt_count(row.factor_bytes_float32),
            fmt_ratio(row.compression_ratio_vs_raw8bit),
        )
    out_console.print(table)
    out_console.print("Wrote:", soft_wrap=True)
    for path in result.paths.values():
        out_console.print(f"  {path}", soft_wrap=True)


@command()
@handle_errors
def demo(
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        metavar="DIR",
        help="Folder for the figures and tables (default svdimage-demo).",
    ),
    old_out: Optional[Path] = typer.Option(None, "--out", hidden=True),
    sample: str = typer.Option(
        "camera",
        "--sample",
        metavar="NAME",
        help="Bundled scikit-image photo: camera (gray), astronaut, coffee, chelsea (color).",
    ),
    force: bool = ForceOption,
) -> None:
    """Sweep ranks 3, 10, 20, 50, 100 on a bundled sample photo and write the results."""
    import skimage.data

    out = renamed(output, old_out, new="--output", old="--out") or Path("svdimage-demo")
    samples = {"camera", "astronaut", "coffee", "chelsea"}
    if sample not in samples:
        raise ValueError(f"--sample must be one of {', '.join(sorted(samples))}; got {sample!r}.")
    label = f"skimage.data.{sample}()"
    image = load_image(getattr(skimage.data, sample)())
    _print_sweep(sweep.run(out, image, label=label, force=force), label=label)
    out_console.print(f"Open {out / 'grid.png'} to see the reconstructions.", soft_wrap=True)


@command("sweep")
@handle_errors
def sweep_command(
    images: list[str] = ImagesArgument,
    ranks: Optional[str] = typer.Option(None, "--ranks", "-r", metavar="LIST", help=RANKS_HELP),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="DIR", help="Folder for the outputs (required)."
    ),
    old_out: Optional[Path] = typer.Option(None, "--out", hidden=True),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
    resume: bool = _batch.ResumeOption,
    memory_limit: int = MemoryLimitOption,
) -> None:
    """Reconstruct IMAGE at several ranks; write grid.png, error_curve.png,
    spectrum.png, metrics.csv and metrics.json to --output, and print the table.

    Several images, a folder or a glob: one subfolder of --output per image (named after it),
    in parallel, one line per image; exit code 3 when some failed."""
    out = renamed(output, old_out, new="--output", old="--out")
    if out is None:
        raise UsageError("sweep needs --output DIR, the folder for its five files.")
    check_conflicts("sweep", workers=workers, scheduler=scheduler, resume=resume, force=force)

    if _batch.is_batch(images):
        _batch.folder_mode(
            sweep_job,
            images,
            out,
            suffix="",
            done_marker="metrics.json",
            label="sweeping",
            options=dict(ranks=ranks),
            loading=dict(gray=gray, max_pixels=max_pixels, timeout=timeout),
            force=force,
            resume=resume,
            engine=_batch.where(workers, scheduler),
            report=_batch.line_report(
                lambda v: (
                    "ranks "
                    + ", ".join(f"{k} ({fmt_psnr(p)} dB)" for k, p in zip(v["ranks"], v["psnr"]))
                )
            ),
        )
        return
    image = images[0]
    sweep.check_outputs(out, force=force)  # before the work, not after it
    with image_for(
        image,
        gray=gray,
        max_pixels=max_pixels,
        timeout=timeout,
        memory_limit=memory_limit,
        workers=workers,
        scheduler=scheduler,
    ) as array:
        done = sweep.run(out, array, ranks=ranks, label=image, force=force)
    _print_sweep(done, label=image)


@command()
@handle_errors
def reconstruct(
    images: list[str] = ImagesArgument,
    rank: str = typer.Option(
        ...,
        "--rank",
        "-k",
        metavar="K",
        help="Number of singular values kept, or a criterion such as "
        "psnr=35, ssim=0.95, energy=0.99, knee (see 'choose').",
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        metavar="FILE",
        help="Output image (.png, .jpg, ...); a folder for several images (NAME.png).",
    ),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
    resume: bool = _batch.ResumeOption,
    memory_limit: int = MemoryLimitOption,
) -> None:
    """Write the rank-K approximation of IMAGE and compare the sizes honestly.

    Several images, a folder or a glob: NAME.png in the --output folder for each, in
    parallel, one line per image; exit code 3 when some failed."""
    check_conflicts("reconstruct", workers=workers, scheduler=scheduler, resume=resume, force=force)
    if _batch.is_batch(images):
        parse_rank_item(rank)  # a bad rank is one error now, not one per image
        _batch.folder_mode(
            reconstruct_job,
            images,
            output,
            suffix=".png",
            label="reconstructing",
            options=dict(rank=rank),
            loading=dict(gray=gray, max_pixels=max_pixels, timeout=timeout),
            force=force,
            resume=resume,
            engine=_batch.where(workers, scheduler),
            report=_batch.line_report(lambda v: f"rank {v['rank']}, PSNR {fmt_psnr(v['psnr'])} dB"),
        )
        return
    image = images[0]
    item = parse_rank_item(rank)
    check_writable(output, force=force)
    with (
        image_for(
            image,
            gray=gray,
            max_pixels=max_pixels,
            timeout=timeout,
            memory_limit=memory_limit,
            workers=workers,
            scheduler=scheduler,
        ) as array,
        step("computing the SVD"),
    ):  # the same job as each image of a folder
        done = reconstruct_image(array, output, rank=item, force=force)
    k, svd = done.rank, done.svd
    if isinstance(item, Criterion):
        out_console.print(f"{rank} chose rank {k}.", soft_wrap=True)
    values = svd.stored_values(k)
    sizes: list[tuple[str, Optional[int]]] = [
        ("original file", path_bytes(image) if os.path.exists(image) else None),
        ("raw 8-bit pixels", int(math.prod(array.shape))),
        (f"output {output.suffix or 'file'} (a reconstruction)", path_bytes(output)),
        (f"rank-{k} factors as float32", 4 * values),
    ]
    where = ", out of core" if svd.out_of_core else ""
    out_console.print(
        f"rank {k} of {array.shape[1]}x{array.shape[0]}{where}: relative error "
        f"{fmt_error(done.relative_error)} (optimal {fmt_error(done.optimal_error)}: "
        f"{svd.method} SVD, kept triplets exact), PSNR {fmt_psnr(done.psnr)} dB",
        soft_wrap=True,
    )
    table = Table()
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("bits/pixel", justify="right")
    for name, nbytes in sizes:
        if nbytes is not None:
            table.add_row(
                name, fmt_count(nbytes), fmt_bpp(metrics.bits_per_pixel(nbytes, array.shape))
            )
    out_console.print(table)
    out_console.print(
        f"Wrote {output}. Note: this file is a picture of the reconstruction, not a compressed "
        "file: its size says nothing about SVD compression (it can even be larger than the "
        f"original). The factors need {fmt_count(values)} numbers.",
        soft_wrap=True,
    )


@command()
@handle_errors
def info(
    image: str = ImageArgument,
    gray: bool = GrayOption,
    json_output: bool = JsonOption,
    full: bool = typer.Option(
        False,
        "--full",
        help="Compute every singular value, for the numerical rank (a full SVD: "
        "seconds on a 12 MP photo; images up to 768 px get it anyway).",
    ),
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    memory_limit: int = MemoryLimitOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
) -> None:
    """Print the size, mode, largest singular value, the ranks that keep 90, 99
    and 99.9 % of the energy and, with --full or for small images, the numerical rank."""
    check_conflicts("info", workers=workers, scheduler=scheduler)
    with image_for(
        image,
        gray=gray,
        max_pixels=max_pixels,
        timeout=timeout,
        memory_limit=memory_limit,
        workers=workers,
        scheduler=scheduler,
    ) as array:
        if full and is_chunked(array):
            raise ValueError(
                "--full computes every singular value, which needs the whole image in memory; "
                "an image read out of core gets its top ones."
            )
        with step("computing the singular values"):
            facts = describe_spectrum(array, full=full)
    svd, numerical, sigma1 = facts.svd, facts.numerical_rank, list(facts.sigma1)
    energy = {f"{100 * f:g}": k for f, k in facts.rank_for_energy.items()}
    if json_output:
        print_json(
            {
                "source": image,
                "width": array.shape[1],
                "height": array.shape[0],
                "mode": "rgb" if svd.is_color else "gray",
                "full_rank": svd.full_rank,
                "numerical_rank": list(numerical) if isinstance(numerical, tuple) else numerical,
                "singular_values_computed": svd.max_rank,
                "sigma1": sigma1 if svd.is_color else sigma1[0],
                "rank_for_energy": energy,
            }
        )
        return
    table = Table(title=image, show_header=False)
    table.add_column("property")
    table.add_column("value", justify="right")
    table.add_row("size", f"{fmt_count(array.shape[1])} x {fmt_count(array.shape[0])} pixels")
    table.add_row("mode", "RGB (one SVD per channel)" if svd.is_color else "gray")
    table.add_row("largest possible rank", fmt_count(svd.full_rank))
    if numerical is None:
        table.add_row("numerical rank", f"--full computes it (top {svd.max_rank} σ here)")
    else:
        table.add_row(
            "numerical rank",
            ", ".join(fmt_count(n) for n in numerical)
            if isinstance(numerical, tuple)
            else fmt_count(numerical),
        )
    table.add_row("σ₁ (largest singular value)", ", ".join(fmt_sigma(v) for v in sigma1))
    for percent, k in energy.items():
        reached = f"more than {fmt_count(svd.max_rank)}" if k is None else fmt_count(k)
        table.add_row(f"rank for {percent} % energy", reached)
    out_console.print(table)


def _parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--size must look like 640x960 (width x height in pixels); got {text!r}.")
    return int(parts[0]), int(parts[1])


@command()
@handle_errors
def animate(
    image: str = ImageArgument,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Output .mp4 or .gif."),
    ranks: Optional[str] = typer.Option(
        None,
        "--ranks",
        "-r",
        metavar="LIST",
        help="Frames' ranks, e.g. 1:70,80:3000:10 (default: 1..70, then every 10th up to 250 or "
        "the image's full rank, whichever is smaller).",
    ),
    fps: float = typer.Option(
        8.0, "--fps", min=0.1, max=120, metavar="FPS", help="Frames per second."
    ),
    size: Optional[str] = typer.Option(
        None,
        "--size",
        metavar="WxH",
        help="Frame size in pixels (default 500x800 stacked, 1000x500 side).",
    ),
    layout: str = typer.Option("stacked", "--layout", metavar="LAYOUT", help="stacked or side."),
    caption: Optional[str] = typer.Option(
        None, "--caption", metavar="TEXT", help="Small text under the panels."
    ),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Write an MP4 or GIF of IMAGE sharpening as the rank grows, beside its error curve."""

    if output.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--output must end in .mp4 or .gif; got {str(output)!r}.")
    if layout not in ("stacked", "side"):
        raise ValueError(f"--layout must be 'stacked' or 'side'; got {layout!r}.")
    frame_size = _parse_size(size)
    wanted = None if ranks is None else parse_rank_spec(ranks)
    check_writable(output, force=force)
    array = load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    full = min(array.shape[:2])
    if wanted is not None:
        wanted = check_ranks(wanted, full, shape=array.shape)
    last = DEFAULT_LAST_RANK if wanted is None else max(wanted)
    with step("computing the SVD"):
        svd = decompose(array, rank=None if last >= full else last)  # only the ranks shown
    frame_ranks = wanted or default_animation_ranks(svd.max_rank)
    write_animation(
        output,
        svd,
        ranks=frame_ranks,
        fps=fps,
        size=frame_size,
        layout=layout,
        caption=caption,
        force=force,
    )
    out_console.print(
        f"Wrote {output} ({fmt_count(len(frame_ranks))} frames at {fps:g} fps, "
        f"{fmt_count(os.path.getsize(output))} bytes).",
        soft_wrap=True,
    )


@command("explore")
@handle_errors
def explore_command(
    image: Optional[str] = typer.Argument(
        None, metavar="IMAGE", help="Image file or http(s) URL (none with --blank)."
    ),
    output: Path = typer.Option(
        Path("explore.html"), "--output", "-o", metavar="FILE", help="The HTML page to write."
    ),
    max_side: int = typer.Option(
        1024, "--max-side", min=1, metavar="PIXELS", help="Longest side of the display image."
    ),
    max_rank: Optional[int] = typer.Option(
        None,
        "--max-rank",
        min=1,
        metavar="K",
        help="Ranks on the slider (default: every rank of the display image, made smaller "
        "for a busy photo whose every rank would not fit about 3 JPEGs + 1 MB).",
    ),
    compare_files: Optional[bool] = typer.Option(
        None,
        "--compare-files/--no-compare-files",
        help="Measure real .svdz files and JPEGs at equal bytes (default on; slow on big photos).",
    ),
    old_storage: Optional[bool] = typer.Option(None, "--storage/--no-storage", hidden=True),
    open_page: bool = typer.Option(
        False, "--open", help="Open the page in the default web browser."
    ),
    blank: bool = typer.Option(
        False,
        "--blank",
        help="A page without a photo: drop one on it, its SVD is computed in the browser.",
    ),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    memory_limit: int = MemoryLimitOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
) -> None:
    """Write ONE self-contained HTML page to explore IMAGE's SVD: a rank slider, views,
    live numbers and curves, computed in the browser; it works offline from a double click.
    Any photo dropped on the page (or on an empty --blank page) is explored there too."""
    import webbrowser

    storage = renamed(compare_files, old_storage, new="--compare-files", old="--storage")
    storage = True if storage is None else storage
    if (image is None) == (not blank):
        raise UsageError(
            "give IMAGE, or --blank for a page without a photo (not both)."
            if blank
            else "explore needs IMAGE (or --blank for a page that asks for a photo)."
        )
    check_writable(output, force=force)
    if image is None:
        blank_page().save(output, force=force)
        out_console.print(
            f"Wrote {output} ({format_bytes(os.path.getsize(output))}): drop any photo on it; "
            "its SVD is computed in the browser, with no server or network.",
            soft_wrap=True,
        )
        if open_page:
            webbrowser.open(Path(output).resolve().as_uri())
        return
    check_conflicts("explore", workers=workers, scheduler=scheduler)
    with image_for(
        image,
        gray=gray,
        max_pixels=max_pixels,
        timeout=timeout,
        memory_limit=memory_limit,
        workers=workers,
        scheduler=scheduler,
    ) as array:
        page = explore(
            array,
            max_side=max_side,
            max_rank=None if max_rank is None else min(max_rank, min(array.shape[:2])),
            storage=storage,
            title=f"{os.path.basename(image.rstrip('/')) or image} - svdimage explorer",
        )
    page.save(output, force=force)
    size = os.path.getsize(output)
    out_console.print(
        f"Wrote {output} ({format_bytes(size)}, {page.data['width']}x{page.data['height']}, "
        f"ranks 1-{page.max_rank} of {page.data['fullRank']}); open it in any browser, no "
        "server or network needed.",
        soft_wrap=True,
    )
    if open_page:
        webbrowser.open(Path(output).resolve().as_uri())
